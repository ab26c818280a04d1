// Package parser reads .rfn files (the language of dsl/LANGUAGE.md) into an
// AST and prints ASTs back in canonical form.
//
// ParseFile turns source text into a *File: imports, model and adapter
// declarations, statements and expressions, every node with its start and
// end positions, and every comment (for Format). Syntax errors come back as
// *Error with a file:line:col position; Caret shows the line with a caret
// under it. Format prints a File canonically and keeps all comments;
// ExprString prints one expression.
//
// The package knows syntax only: names, types, layer signatures and the
// meaning of expressions belong to package dsl. The grammar is written for
// github.com/alecthomas/participle/v2 over a hand-written lexer; its
// structs stay private, and the syntax decisions are listed at the top of
// grammar.go.
package parser
