package parser

// Syntax decisions (the participle grammar below implements them; the
// lexer in lexer.go does the line handling):
//
//   - Statements and top-level declarations end at a newline or ';'. Several
//     statements may share a line when ';' separates them; two statements on
//     one line without ';' are an error. Blank lines and comment-only lines
//     are free.
//   - Newlines inside (…) and […] are ignored, so argument, parameter,
//     dimension and list literals may span lines (a trailing comma is allowed
//     in all of them). Outside brackets a newline ends the statement, so a
//     long `let` expression must be wrapped in parentheses to span lines.
//   - A block's '{' opens on the line of its header (`Residual {`,
//     `model M() {`, `if c {`), and `else` must follow the '}' on the same
//     line (`} else {`), as in Go. The lexer inserts a separator before every
//     block-closing '}' and at the end of the file, so the grammar can say
//     "every statement is followed by a separator" and report a stray token
//     right where it is.
//   - Layer statements: `Name(args) [key expr] [{ … }]`; the key clause may
//     also name layouts: `key ldm="input_blocks.1", diffusers="down_blocks.0"`
//     (and a model declaration may carry one before its body). The parentheses may
//     be left out only when a block follows (`Residual { … }`,
//     `Chain key "x" { … }`); ParseFile rejects a bare `ReLU`.
//     Model parameter lists may also be left out: `model M { … }`.
//   - `#` starts a comment, to the end of the line; `//` is floor
//     division only. (Files from before `#` are read with the old `//`
//     rule by legacy.go, for `rfc fmt` to convert them.)
//   - Comparisons do not chain (`a < b < c` is an error): write `and`.
//   - Literals: decimal integers without leading zeros (int64), floats in
//     Python's form (`1e-5`, `0.5`, `3.`, `.5`), strings in double quotes with
//     Go's escapes. Keywords are reserved.

import (
	"sync"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// The g* structs are participle's grammar; ParseFile converts them into the
// public AST (ast.go) and they never leave the package. Every struct keeps
// the tokens it matched, for positions.

type gFile struct {
	Decls []*gTopDecl `parser:"Sep* ( @@ Sep+ )*"`
}

type gTopDecl struct {
	Import *gImport `parser:"  @@"`
	Model  *gModel  `parser:"| @@"`
}

type gImport struct {
	Tokens []lexer.Token
	Path   string `parser:"'import' @String"`
}

type gModel struct {
	Tokens []lexer.Token
	Kind   string       `parser:"@( 'model' | 'adapter' )"`
	Name   string       `parser:"@Ident"`
	Params *gParamList  `parser:"@@?"`
	Base   *gBase       `parser:"( ':' @@ )?"`
	Key    *gKeyClause  `parser:"@@?"`
	Body   *gModelBlock `parser:"@@"`
}

// gBase is what a model's body is: a container, with arguments
// (`: Concatenate(dim=1)`), or a builtin layer the model specializes, as a
// Refiners subclass does (`: Embedding(vocabulary_size, dim)`).
type gBase struct {
	Tokens []lexer.Token
	Name   string    `parser:"@Ident"`
	Args   *gArgList `parser:"@@?"`
}

// gKeyClause is `key EXPR` or `key [EXPR,] layout=EXPR, …`: the checkpoint
// key segment of a layer, unnamed and per named layout.
type gKeyClause struct {
	Tokens []lexer.Token
	First  *gKeyItem   `parser:"'key' @@"`
	Rest   []*gKeyTail `parser:"@@*"`
}

type gKeyTail struct {
	Tokens []lexer.Token
	Item   *gKeyItem `parser:"',' @@"`
}

// gKeyItem is gArg under another name, so that errors can say "a key".
type gKeyItem struct {
	Tokens []lexer.Token
	X      *gExpr `parser:"@@"`
	Value  *gExpr `parser:"( '=' @@ )?"`
}

// gModelBlock is a gBlock under another name, so that errors can tell a
// model body from a statement's block.
type gModelBlock struct {
	Tokens []lexer.Token
	Stmts  []*gStmt `parser:"'{' Sep* ( @@ Sep+ )* '}'"`
}

type gName struct {
	Tokens []lexer.Token
	Name   string `parser:"@Ident"`
}

// Lists are `first (',' next?)*` so that the grammar stays LL(1) with a
// trailing comma; an empty slot before another comma is rejected after
// parsing.
type gParamList struct {
	Tokens []lexer.Token
	First  *gParam       `parser:"'(' ( @@"`
	Rest   []*gParamTail `parser:"      @@* )? ')'"`
}

type gParamTail struct {
	Tokens []lexer.Token
	Param  *gParam `parser:"',' @@?"`
}

type gParam struct {
	Tokens  []lexer.Token
	Name    string     `parser:"@Ident ':'"`
	Type    *gTypeName `parser:"@@"`
	Default *gExpr     `parser:"( '=' @@ )?"`
}

// gTypeName is a parameter type: a name (`int`, `Linear`) or a list of one
// (`[int]`).
type gTypeName struct {
	Tokens []lexer.Token
	List   string `parser:"  '[' @Ident ']'"`
	Name   string `parser:"| @Ident"`
}

type gBlock struct {
	Tokens []lexer.Token
	Stmts  []*gStmt `parser:"'{' Sep* ( @@ Sep+ )* '}'"`
}

type gStmt struct {
	Input  *gInput  `parser:"  @@"`
	Let    *gLet    `parser:"| @@"`
	Repeat *gRepeat `parser:"| @@"`
	If     *gIf     `parser:"| @@"`
	Layer  *gLayer  `parser:"| @@"`
}

type gInput struct {
	Tokens []lexer.Token
	Name   string    `parser:"'input' @Ident ':'"`
	DType  *gName    `parser:"@@"`
	Dims   *gDimList `parser:"@@"`
}

type gDimList struct {
	Tokens []lexer.Token
	List   *gExprList `parser:"'[' @@? ']'"`
}

type gExprList struct {
	First *gExpr       `parser:"@@"`
	Rest  []*gExprTail `parser:"@@*"`
}

type gExprTail struct {
	Tokens []lexer.Token
	Elem   *gExpr `parser:"',' @@?"`
}

type gLet struct {
	Tokens []lexer.Token
	Name   string `parser:"'let' @Ident '='"`
	Value  *gExpr `parser:"@@"`
}

// gRepeat reads `repeat i in n` as `repeat EXPR in EXPR` to stay LL(1);
// the first expression must then be a name.
type gRepeat struct {
	Tokens []lexer.Token
	First  *gExpr  `parser:"'repeat' @@"`
	In     *gExpr  `parser:"( 'in' @@ )?"`
	Body   *gBlock `parser:"@@"`
}

type gIf struct {
	Tokens []lexer.Token
	Cond   *gExpr  `parser:"'if' @@"`
	Then   *gBlock `parser:"@@"`
	Else   *gElse  `parser:"@@?"`
}

type gElse struct {
	If    *gIf    `parser:"'else' ( @@"`
	Block *gBlock `parser:"| @@ )"`
}

type gLayer struct {
	Tokens []lexer.Token
	Name   string      `parser:"@Ident"`
	Args   *gArgList   `parser:"@@?"`
	Key    *gKeyClause `parser:"@@?"`
	Body   *gBlock     `parser:"@@?"`
}

type gArgList struct {
	Tokens []lexer.Token
	First  *gArg       `parser:"'(' ( @@"`
	Rest   []*gArgTail `parser:"      @@* )? ')'"`
}

type gArgTail struct {
	Tokens []lexer.Token
	Arg    *gArg `parser:"',' @@?"`
}

// gArg reads `name=value` as `EXPR = EXPR` to stay LL(1); the first
// expression must then be a name.
type gArg struct {
	Tokens []lexer.Token
	X      *gExpr `parser:"@@"`
	Value  *gExpr `parser:"( '=' @@ )?"`
}

// Expressions, one struct per precedence level, low to high.

// gExpr is Python's conditional expression `a if cond else b`, the lowest
// level: the branches are or-expressions and the else branch may itself be
// conditional (right-associative).
type gExpr struct {
	Tokens []lexer.Token
	X      *gOr   `parser:"@@"`
	Cond   *gOr   `parser:"( 'if' @@"`
	Else   *gExpr `parser:"  'else' @@ )?"`
}

type gOr struct {
	Tokens []lexer.Token
	X      *gAnd      `parser:"@@"`
	Rest   []*gOrTail `parser:"@@*"`
}

type gOrTail struct {
	Tokens []lexer.Token
	Y      *gAnd `parser:"'or' @@"`
}

type gAnd struct {
	Tokens []lexer.Token
	X      *gNot       `parser:"@@"`
	Rest   []*gAndTail `parser:"@@*"`
}

type gAndTail struct {
	Tokens []lexer.Token
	Y      *gNot `parser:"'and' @@"`
}

type gNot struct {
	Tokens []lexer.Token
	Not    *gNot `parser:"  'not' @@"`
	Cmp    *gCmp `parser:"| @@"`
}

type gCmp struct {
	Tokens []lexer.Token
	X      *gAdd       `parser:"@@"`
	Rest   []*gCmpTail `parser:"@@*"` // more than one is rejected after parsing
}

type gCmpTail struct {
	Tokens []lexer.Token
	Op     string `parser:"@( '==' | '!=' | '<=' | '>=' | '<' | '>' )"`
	Y      *gAdd  `parser:"@@"`
}

type gAdd struct {
	Tokens []lexer.Token
	X      *gMul       `parser:"@@"`
	Rest   []*gAddTail `parser:"@@*"`
}

type gAddTail struct {
	Tokens []lexer.Token
	Op     string `parser:"@( '+' | '-' )"`
	Y      *gMul  `parser:"@@"`
}

type gMul struct {
	Tokens []lexer.Token
	X      *gUnary     `parser:"@@"`
	Rest   []*gMulTail `parser:"@@*"`
}

type gMulTail struct {
	Tokens []lexer.Token
	Op     string  `parser:"@( '*' | '//' | '/' | '%' )"`
	Y      *gUnary `parser:"@@"`
}

type gUnary struct {
	Tokens []lexer.Token
	Neg    *gUnary `parser:"  '-' @@"`
	Pow    *gPow   `parser:"| @@"`
}

// gPow follows Python: the base is a primary and the exponent a unary
// expression, so -2**2 is -(2**2), 2**-1 works and ** is right-associative.
type gPow struct {
	Tokens []lexer.Token
	X      *gPostfix `parser:"@@"`
	Exp    *gUnary   `parser:"( '**' @@ )?"`
}

// gPostfix is a primary followed by indexes and slices: `xs[i]`, `xs[1:]`,
// `xs[:-1][0]`.
type gPostfix struct {
	Tokens  []lexer.Token
	X       *gPrimary `parser:"@@"`
	Indexes []*gIndex `parser:"@@*"`
}

type gIndex struct {
	Tokens []lexer.Token
	Lo     *gExpr `parser:"'[' @@?"`
	Colon  bool   `parser:"( @':'"`
	Hi     *gExpr `parser:"  @@? )? ']'"`
}

type gPrimary struct {
	Tokens []lexer.Token
	Float  *string   `parser:"  @Float"`
	Int    *string   `parser:"| @Int"`
	String *string   `parser:"| @String"`
	Bool   *string   `parser:"| @( 'true' | 'false' )"`
	Name   *gNameRef `parser:"| @@"`
	List   *gList    `parser:"| @@"`
	Paren  *gExpr    `parser:"| '(' @@ ')'"`
}

// gNameRef is a name, or a call when parentheses follow.
type gNameRef struct {
	Tokens []lexer.Token
	Name   string     `parser:"@Ident"`
	Call   *gCallArgs `parser:"@@?"`
}

type gCallArgs struct {
	Tokens []lexer.Token
	List   *gExprList `parser:"'(' @@? ')'"`
}

type gList struct {
	Tokens []lexer.Token
	List   *gExprList `parser:"'[' @@? ']'"`
}

var (
	grammarOnce sync.Once
	grammar     *participle.Parser[gFile]
	grammarErr  error
)

func fileParser() (*participle.Parser[gFile], error) {
	grammarOnce.Do(func() {
		grammar, grammarErr = participle.Build[gFile](
			participle.Lexer(lexDefinition{}),
			// The grammar is LL(1): a branch that consumed a token and then
			// failed is an error, reported where it failed.
			participle.UseLookahead(0),
		)
	})
	return grammar, grammarErr
}
