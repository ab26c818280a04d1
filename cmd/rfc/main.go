// Command rfc compiles models written in the .rfn language.
//
//	rfc check FILE…                                   check files, print ok or the errors
//	rfc tree FILE [--model M] [--set k=v]…            print the layer tree
//	rfc ir FILE [--model M] [--set k=v]…              print the IR text
//	rfc fmt FILE…                                     rewrite files in canonical form
//	rfc run FILE [--model M] [--set k=v]… --weights W… --input IN --output OUT [--engine interp|compiled]
//	rfc compile FILE [--model M] [--set k=v]… [--dump PASS] [--disable PASS] -o DIR [--pkg NAME]   write a Go package
//
// Exit status: 0 on success, 1 on errors in the input, 2 on bad usage.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: rfc <command> [arguments]

commands:
  check FILE…                                   check files; print ok or the errors
  tree FILE [--model M] [--set k=v]…            print the layer tree with shapes and parameter counts
  ir FILE [--model M] [--set k=v]… [--dump PASS|all]… [--disable PASS]…
                                                print the IR text (after the passes when --dump or --disable is given)
  fmt FILE…                                     rewrite files in canonical form
  run FILE [--model M] [--set k=v]… --weights W.safetensors… --input IN.safetensors --output OUT.safetensors
                                                run a model (--engine interp, the default, or compiled)
  compile FILE [--model M] [--set k=v]… [--dump PASS] [--disable PASS] [--target go|cuda] -o DIR [--pkg NAME]
                                                write the model as a Go package (all sizes fixed)
`

// run is main without the exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "tree":
		return cmdTree(rest, stdout, stderr)
	case "ir":
		return cmdIR(rest, stdout, stderr)
	case "fmt":
		return cmdFmt(rest, stdout, stderr)
	case "run":
		return cmdRun(rest, stdout, stderr)
	case "compile":
		return cmdCompile(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "rfc: unknown command %q\n%s", cmd, usage)
	return 2
}
