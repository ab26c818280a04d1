package parser

import "fmt"

// Pos is a position in a source file. Line and Column are 1-based; Column
// counts bytes, as Go's tools do. The zero Pos is "no position".
type Pos struct {
	Filename string
	Offset   int // byte offset, 0-based
	Line     int
	Column   int
}

// IsValid reports whether p names a real place in a file.
func (p Pos) IsValid() bool { return p.Line > 0 }

// String returns "file:line:col", or "line:col" when there is no file name.
func (p Pos) String() string {
	if p.Filename == "" {
		return fmt.Sprintf("%d:%d", p.Line, p.Column)
	}
	return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
}

// Node is implemented by every AST node. Start is the position of the node's
// first byte; End is the position just after its last byte.
type Node interface {
	Start() Pos
	End() Pos
}

// File is one parsed .rfn file.
type File struct {
	Name     string
	Src      []byte
	Imports  []*Import
	Decls    []*Model
	Comments []*Comment // every comment of the file, in source order
}

// Comment is a `// …` comment; Text includes the leading "//" and has no
// trailing newline or trailing blanks.
type Comment struct {
	Pos, EndPos Pos
	Text        string
}

// Import is `import "path"`.
type Import struct {
	Pos, EndPos Pos
	Path        string
	PathPos     Pos // the string literal
}

// Model is a `model` or `adapter` declaration.
type Model struct {
	Pos, EndPos Pos
	IsAdapter   bool
	Name        string
	NamePos     Pos
	Params      []*Param
	// Lparen and Rparen enclose the parameter list; both are zero when the
	// declaration has no parentheses (`model M { … }`).
	Lparen, Rparen Pos
	Base           string // "" or the layer named after ':': a container, or a builtin layer the model specializes
	BasePos        Pos
	BaseArgs       []*Arg // the base's arguments, when written with parentheses
	BaseHasParens  bool
	BaseLparen     Pos
	BaseRparen     Pos
	// Key and LayoutKeys are the key clause before the body: the model's key segment
	// when a caller gives none, and its prefix as an entry point.
	Key        Expr
	LayoutKeys []*LayoutKey
	Body       *Block
}

// LayoutKey is `layout=expr` in a key clause: the layer's key segment in a named
// checkpoint layout.
type LayoutKey struct {
	Pos, EndPos Pos
	Layout      string
	Value       Expr
}

// Param is `name: type [= default]`. Type is kept as written (`int`,
// `float`, `Linear`, `[int]`, …); Default is nil when absent.
type Param struct {
	Pos, EndPos Pos
	Name        string
	Type        string
	TypePos     Pos
	Default     Expr
}

// Block is `{ statements }`. It is also the Else of an IfStmt, which is why
// it implements Stmt; the parser never puts a bare Block in a Stmts list.
type Block struct {
	Pos, EndPos Pos // the braces
	Stmts       []Stmt
}

// Stmt is one of *InputStmt, *LetStmt, *LayerStmt, *RepeatStmt, *IfStmt
// (and *Block, only as IfStmt.Else).
type Stmt interface {
	Node
	stmtNode()
}

// InputStmt is `input name: dtype[dims…]`.
type InputStmt struct {
	Pos, EndPos    Pos
	Name           string
	DType          string
	DTypePos       Pos
	Dims           []Expr
	Lbrack, Rbrack Pos
}

// LetStmt is `let name = value`.
type LetStmt struct {
	Pos, EndPos Pos
	Name        string
	Value       Expr
}

// LayerStmt is `Name(args…) [key expr] [{ body }]`.
type LayerStmt struct {
	Pos, EndPos Pos
	Name        string
	Args        []*Arg
	// HasParens reports whether the argument list was written; Lparen and
	// Rparen are its parentheses (zero when absent).
	HasParens      bool
	Lparen, Rparen Pos
	Key            Expr         // nil if no unnamed `key`
	LayoutKeys     []*LayoutKey // `key layout=expr, …`, in source order
	Body           *Block       // nil if no block
}

// RepeatStmt is `repeat count { … }` or `repeat var in count { … }`.
type RepeatStmt struct {
	Pos, EndPos Pos
	Var         string // "" if none
	VarPos      Pos
	Count       Expr
	Body        *Block
}

// IfStmt is `if cond { … } [else …]`. Else is nil, a *Block (`else { … }`)
// or an *IfStmt (`else if …`).
type IfStmt struct {
	Pos, EndPos Pos
	Cond        Expr
	Then        *Block
	Else        Stmt
}

// Arg is one layer argument; Name is "" for a positional argument.
type Arg struct {
	Pos, EndPos Pos
	Name        string
	Value       Expr
}

// Expr is one of *IntLit, *FloatLit, *StringLit, *BoolLit, *Ident,
// *ListLit, *UnaryExpr, *BinaryExpr, *CondExpr, *IndexExpr, *CallExpr,
// *ParenExpr.
type Expr interface {
	Node
	exprNode()
}

// IntLit is a decimal integer literal. Text is the literal as written.
type IntLit struct {
	Pos, EndPos Pos
	Value       int64
	Text        string
}

// FloatLit is a float literal (`1e-5`, `0.5`, `3.`). Text is the literal as
// written; Format prints Text when it is set.
type FloatLit struct {
	Pos, EndPos Pos
	Value       float64
	Text        string
}

// StringLit is a string literal; Value has its escapes resolved.
type StringLit struct {
	Pos, EndPos Pos
	Value       string
}

// BoolLit is `true` or `false`.
type BoolLit struct {
	Pos, EndPos Pos
	Value       bool
}

// Ident is a name.
type Ident struct {
	Pos, EndPos Pos
	Name        string
}

// ListLit is `[a, b, …]`.
type ListLit struct {
	Pos, EndPos Pos // the brackets
	Elems       []Expr
}

// UnaryExpr is `-X` or `not X`.
type UnaryExpr struct {
	Pos, EndPos Pos
	Op          string // "-" or "not"
	X           Expr
}

// BinaryExpr is `X Op Y`. Op is one of + - * / // % ** == != < <= > >= and or.
type BinaryExpr struct {
	Pos, EndPos Pos
	Op          string
	OpPos       Pos
	X, Y        Expr
}

// CondExpr is `Then if Cond else Else`.
type CondExpr struct {
	Pos, EndPos Pos
	Then        Expr
	IfPos       Pos // the `if`
	Cond        Expr
	ElsePos     Pos // the `else`
	Else        Expr
}

// IndexExpr is `X[Index]`, or a slice `X[Lo:Hi]` (IsSlice; Lo and Hi may be nil).
type IndexExpr struct {
	Pos, EndPos Pos
	X           Expr
	Index       Expr // nil for a slice
	IsSlice     bool
	Lo, Hi      Expr
	Lbrack      Pos
}

// CallExpr is `Func(args…)`.
type CallExpr struct {
	Pos, EndPos    Pos
	Func           string
	Args           []Expr
	Lparen, Rparen Pos
}

// ParenExpr is `(X)`; it is kept so that Format reproduces the parentheses.
type ParenExpr struct {
	Pos, EndPos Pos
	X           Expr
}

func (n *Import) Start() Pos     { return n.Pos }
func (n *Import) End() Pos       { return n.EndPos }
func (n *Comment) Start() Pos    { return n.Pos }
func (n *Comment) End() Pos      { return n.EndPos }
func (n *Model) Start() Pos      { return n.Pos }
func (n *Model) End() Pos        { return n.EndPos }
func (n *LayoutKey) Start() Pos  { return n.Pos }
func (n *LayoutKey) End() Pos    { return n.EndPos }
func (n *Param) Start() Pos      { return n.Pos }
func (n *Param) End() Pos        { return n.EndPos }
func (n *Arg) Start() Pos        { return n.Pos }
func (n *Arg) End() Pos          { return n.EndPos }
func (n *Block) Start() Pos      { return n.Pos }
func (n *Block) End() Pos        { return n.EndPos }
func (n *InputStmt) Start() Pos  { return n.Pos }
func (n *InputStmt) End() Pos    { return n.EndPos }
func (n *LetStmt) Start() Pos    { return n.Pos }
func (n *LetStmt) End() Pos      { return n.EndPos }
func (n *LayerStmt) Start() Pos  { return n.Pos }
func (n *LayerStmt) End() Pos    { return n.EndPos }
func (n *RepeatStmt) Start() Pos { return n.Pos }
func (n *RepeatStmt) End() Pos   { return n.EndPos }
func (n *IfStmt) Start() Pos     { return n.Pos }
func (n *IfStmt) End() Pos       { return n.EndPos }
func (n *IntLit) Start() Pos     { return n.Pos }
func (n *IntLit) End() Pos       { return n.EndPos }
func (n *FloatLit) Start() Pos   { return n.Pos }
func (n *FloatLit) End() Pos     { return n.EndPos }
func (n *StringLit) Start() Pos  { return n.Pos }
func (n *StringLit) End() Pos    { return n.EndPos }
func (n *BoolLit) Start() Pos    { return n.Pos }
func (n *BoolLit) End() Pos      { return n.EndPos }
func (n *Ident) Start() Pos      { return n.Pos }
func (n *Ident) End() Pos        { return n.EndPos }
func (n *ListLit) Start() Pos    { return n.Pos }
func (n *ListLit) End() Pos      { return n.EndPos }
func (n *UnaryExpr) Start() Pos  { return n.Pos }
func (n *UnaryExpr) End() Pos    { return n.EndPos }
func (n *BinaryExpr) Start() Pos { return n.Pos }
func (n *BinaryExpr) End() Pos   { return n.EndPos }
func (n *CondExpr) Start() Pos   { return n.Pos }
func (n *CondExpr) End() Pos     { return n.EndPos }
func (n *IndexExpr) Start() Pos  { return n.Pos }
func (n *IndexExpr) End() Pos    { return n.EndPos }
func (n *CallExpr) Start() Pos   { return n.Pos }
func (n *CallExpr) End() Pos     { return n.EndPos }
func (n *ParenExpr) Start() Pos  { return n.Pos }
func (n *ParenExpr) End() Pos    { return n.EndPos }

func (*Block) stmtNode()      {}
func (*InputStmt) stmtNode()  {}
func (*LetStmt) stmtNode()    {}
func (*LayerStmt) stmtNode()  {}
func (*RepeatStmt) stmtNode() {}
func (*IfStmt) stmtNode()     {}

func (*IntLit) exprNode()     {}
func (*FloatLit) exprNode()   {}
func (*StringLit) exprNode()  {}
func (*BoolLit) exprNode()    {}
func (*Ident) exprNode()      {}
func (*ListLit) exprNode()    {}
func (*UnaryExpr) exprNode()  {}
func (*BinaryExpr) exprNode() {}
func (*CondExpr) exprNode()   {}
func (*IndexExpr) exprNode()  {}
func (*CallExpr) exprNode()   {}
func (*ParenExpr) exprNode()  {}
