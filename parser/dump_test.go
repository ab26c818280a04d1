package parser

import (
	"fmt"
	"strconv"
	"strings"
)

// dump prints an AST node as an s-expression without positions, so that
// tests can compare shapes (and two parses of equivalent text).
func dump(n any) string {
	var b strings.Builder
	dumpTo(&b, n)
	return b.String()
}

func dumpTo(b *strings.Builder, n any) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	switch n := n.(type) {
	case *File:
		w("(file")
		for _, i := range n.Imports {
			w(" (import %q)", i.Path)
		}
		for _, m := range n.Decls {
			w(" ")
			dumpTo(b, m)
		}
		w(")")
	case *Model:
		kind := "model"
		if n.IsAdapter {
			kind = "adapter"
		}
		w("(%s %s (", kind, n.Name)
		for i, p := range n.Params {
			if i > 0 {
				w(" ")
			}
			w("(%s %s", p.Name, p.Type)
			if p.Default != nil {
				w(" ")
				dumpTo(b, p.Default)
			}
			w(")")
		}
		w(")")
		if n.Base != "" {
			w(" :%s", n.Base)
			if n.BaseHasParens {
				dumpArgs(b, n.BaseArgs)
			}
		}
		dumpKeys(b, n.Key, n.LayoutKeys)
		w(" ")
		dumpTo(b, n.Body)
		w(")")
	case *Block:
		w("{")
		for i, s := range n.Stmts {
			if i > 0 {
				w(" ")
			}
			dumpTo(b, s)
		}
		w("}")
	case *InputStmt:
		w("(input %s %s", n.Name, n.DType)
		for _, d := range n.Dims {
			w(" ")
			dumpTo(b, d)
		}
		w(")")
	case *LetStmt:
		w("(let %s ", n.Name)
		dumpTo(b, n.Value)
		w(")")
	case *LayerStmt:
		w("(layer %s", n.Name)
		// Empty parentheses before a block are not significant (Format
		// drops them).
		if n.HasParens && (len(n.Args) > 0 || n.Body == nil) {
			w(" ")
			dumpArgs(b, n.Args)
		}
		dumpKeys(b, n.Key, n.LayoutKeys)
		if n.Body != nil {
			w(" ")
			dumpTo(b, n.Body)
		}
		w(")")
	case *RepeatStmt:
		w("(repeat ")
		if n.Var != "" {
			w("%s in ", n.Var)
		}
		dumpTo(b, n.Count)
		w(" ")
		dumpTo(b, n.Body)
		w(")")
	case *IfStmt:
		w("(if ")
		dumpTo(b, n.Cond)
		w(" ")
		dumpTo(b, n.Then)
		if n.Else != nil {
			w(" else ")
			dumpTo(b, n.Else)
		}
		w(")")
	case *IntLit:
		w("%d", n.Value)
	case *FloatLit:
		w("%sf", strconv.FormatFloat(n.Value, 'g', -1, 64))
	case *StringLit:
		w("%q", n.Value)
	case *BoolLit:
		w("%t", n.Value)
	case *Ident:
		w("%s", n.Name)
	case *ListLit:
		w("[")
		for i, e := range n.Elems {
			if i > 0 {
				w(" ")
			}
			dumpTo(b, e)
		}
		w("]")
	case *UnaryExpr:
		w("(%s ", n.Op)
		dumpTo(b, n.X)
		w(")")
	case *BinaryExpr:
		w("(%s ", n.Op)
		dumpTo(b, n.X)
		w(" ")
		dumpTo(b, n.Y)
		w(")")
	case *CallExpr:
		w("(call %s", n.Func)
		for _, a := range n.Args {
			w(" ")
			dumpTo(b, a)
		}
		w(")")
	case *ParenExpr:
		w("(paren ")
		dumpTo(b, n.X)
		w(")")
	case *CondExpr:
		w("(ifelse ")
		dumpTo(b, n.Then)
		w(" ")
		dumpTo(b, n.Cond)
		w(" ")
		dumpTo(b, n.Else)
		w(")")
	case *IndexExpr:
		w("(index ")
		dumpTo(b, n.X)
		if !n.IsSlice {
			w(" ")
			dumpTo(b, n.Index)
		} else {
			for _, k := range []Expr{n.Lo, n.Hi} {
				w(" ")
				if k == nil {
					w("_")
				} else {
					dumpTo(b, k)
				}
			}
			w(" slice")
		}
		w(")")
	default:
		w("<%T>", n)
	}
}

// dumpArgs prints a call's arguments, `(name=value value)`.
func dumpArgs(b *strings.Builder, args []*Arg) {
	b.WriteString("(")
	for i, a := range args {
		if i > 0 {
			b.WriteString(" ")
		}
		if a.Name != "" {
			fmt.Fprintf(b, "%s=", a.Name)
		}
		dumpTo(b, a.Value)
	}
	b.WriteString(")")
}

func dumpKeys(b *strings.Builder, unnamed Expr, named []*LayoutKey) {
	if unnamed != nil {
		b.WriteString(" key ")
		dumpTo(b, unnamed)
	}
	for _, k := range named {
		b.WriteString(" key " + k.Layout + "=")
		dumpTo(b, k.Value)
	}
}
