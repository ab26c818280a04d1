package ir

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Print writes the module in its text form. Op results are renumbered first, so two equal
// graphs print identically.
func Print(m *Module) string {
	m.Renumber()
	var b strings.Builder
	fmt.Fprintf(&b, "module %s\n", m.Name)
	if m.Source != "" {
		fmt.Fprintf(&b, "source %s\n", strconv.Quote(m.Source))
	}
	for _, s := range m.Settings {
		fmt.Fprintf(&b, "set %s = %s\n", s.Name, strconv.Quote(s.Value))
	}
	if m.Root != nil {
		printScope(&b, m.Root, 0)
	}
	for _, v := range m.Inputs {
		fmt.Fprintf(&b, "input %s: %s\n", v.Ref(), v.Type)
	}
	for _, v := range m.Params {
		fmt.Fprintf(&b, "param %s: %s key %s%s in %s\n", v.Ref(), v.Type, strconv.Quote(v.Key), formatLayoutKeys(v.LayoutKeys), strconv.Quote(v.Scope.Path()))
	}
	for _, v := range m.Body {
		b.WriteString(FormatValue(v))
		b.WriteByte('\n')
	}
	refs := make([]string, len(m.Outputs))
	for i, v := range m.Outputs {
		refs[i] = v.Ref()
	}
	fmt.Fprintf(&b, "output %s\n", strings.Join(refs, ", "))
	return b.String()
}

// FormatValue prints one op as it appears in the text form.
func FormatValue(v *Value) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s = %s(", v.Ref(), v.Type, v.Op)
	for i, a := range v.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Ref())
	}
	b.WriteString(")")
	if len(v.Attrs) > 0 {
		b.WriteString(" {")
		for i, a := range v.Attrs {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(a.Name + "=" + FormatAttr(a.Value))
		}
		b.WriteString("}")
	}
	if v.Scope != nil {
		fmt.Fprintf(&b, " in %s", strconv.Quote(v.Scope.Path()))
	}
	return b.String()
}

func printScope(b *strings.Builder, s *Scope, depth int) {
	b.WriteString(strings.Repeat("  ", depth))
	fmt.Fprintf(b, "scope %s %s", strconv.Quote(s.Name), s.Class)
	if s.Args != "" {
		fmt.Fprintf(b, " args %s", strconv.Quote(s.Args))
	}
	fmt.Fprintf(b, " key %s%s", strconv.Quote(s.Key), formatLayoutKeys(s.LayoutKeys))
	if s.Adapter != "" {
		fmt.Fprintf(b, " adapter %s", strconv.Quote(s.Adapter))
	}
	if len(s.Outs) > 0 {
		types := make([]string, len(s.Outs))
		for i, t := range s.Outs {
			types[i] = t.String()
		}
		fmt.Fprintf(b, " -> %s", strings.Join(types, ", "))
	}
	if len(s.Children) == 0 {
		b.WriteString("\n")
		return
	}
	b.WriteString(" {\n")
	for _, c := range s.Children {
		printScope(b, c, depth+1)
	}
	b.WriteString(strings.Repeat("  ", depth) + "}\n")
}

// FormatAttr prints an attribute value so that ParseModule reads back the same Go value:
// floats always carry a '.', an exponent, or are inf/nan.
func FormatAttr(a any) string {
	switch x := a.(type) {
	case int:
		return strconv.Itoa(x)
	case float64:
		return formatFloat(x)
	case bool:
		return strconv.FormatBool(x)
	case string:
		return strconv.Quote(x)
	case []int:
		parts := make([]string, len(x))
		for i, n := range x {
			parts[i] = strconv.Itoa(n)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprintf("?%T", a)
}

func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// formatLayoutKeys writes ` layout NAME "KEY"` for each named layout, sorted.
func formatLayoutKeys(keys map[string]string) string {
	var b strings.Builder
	for _, l := range Layouts(keys) {
		fmt.Fprintf(&b, " layout %s %s", l, strconv.Quote(keys[l]))
	}
	return b.String()
}
