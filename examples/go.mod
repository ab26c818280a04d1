module github.com/rfc-project/rfc/examples

go 1.26

tool github.com/rfc-project/rfc/cmd/rfc

require github.com/rfc-project/rfc v0.0.0

require (
	github.com/alecthomas/participle/v2 v2.1.4 // indirect
	github.com/dave/jennifer v1.7.1 // indirect
)

replace github.com/rfc-project/rfc => ../
