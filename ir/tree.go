package ir

import (
	"fmt"
	"strings"
)

// FormatTree draws the layer tree the way `rfc tree` shows it: each layer's name and class,
// its key arguments, output types and parameter count; runs of identical siblings (same
// class, arguments, types and subtree, as `repeat` makes) fold into one line marked (×N).
// It ends with the total parameter count.
func FormatTree(m *Module) string {
	counts := map[*Scope]int{}
	for _, p := range m.Params {
		if n := p.Type.Shape.NumElements(); n.Static() {
			for s := p.Scope; s != nil; s = s.Parent {
				counts[s] += n.N
			}
		}
	}
	sigs := map[*Scope]string{}
	var sig func(s *Scope) string
	sig = func(s *Scope) string {
		if v, ok := sigs[s]; ok {
			return v
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s(%s)%v%s[", s.Class, s.Args, s.Outs, s.Adapter)
		for _, c := range s.Children {
			b.WriteString(sig(c))
			b.WriteByte(';')
		}
		b.WriteByte(']')
		sigs[s] = b.String()
		return sigs[s]
	}
	var b strings.Builder
	line := func(s *Scope, label string) string {
		var l strings.Builder
		l.WriteString(label)
		if s.Args != "" {
			l.WriteString("(" + s.Args + ")")
		}
		if s.Adapter != "" {
			fmt.Fprintf(&l, " [adapter %s]", s.Adapter)
		}
		if len(s.Outs) > 0 {
			types := make([]string, len(s.Outs))
			for i, t := range s.Outs {
				types[i] = t.String()
			}
			l.WriteString(" -> " + strings.Join(types, ", "))
		}
		if n := counts[s]; n > 0 {
			fmt.Fprintf(&l, "  [%d params]", n)
		}
		return l.String()
	}
	var walk func(s *Scope, prefix string)
	walk = func(s *Scope, prefix string) {
		for i := 0; i < len(s.Children); {
			c := s.Children[i]
			j := i + 1
			for j < len(s.Children) && sig(s.Children[j]) == sig(c) {
				j++
			}
			last := j == len(s.Children)
			branch, indent := "├── ", "│   "
			if last {
				branch, indent = "└── ", "    "
			}
			label := c.Name
			if c.Name != c.Class {
				label = c.Name + ": " + c.Class
			}
			if j-i > 1 {
				label = fmt.Sprintf("(×%d) %s … %s: %s", j-i, c.Name, s.Children[j-1].Name, c.Class)
			}
			b.WriteString(prefix + branch + line(c, label))
			if j-i > 1 && counts[c] > 0 {
				b.WriteString(" each")
			}
			b.WriteByte('\n')
			walk(c, prefix+indent)
			i = j
		}
	}
	root := m.Root
	var settings []string
	for _, s := range m.Settings {
		settings = append(settings, s.Name+"="+s.Value)
	}
	head := *root
	head.Args = strings.Join(settings, ", ")
	b.WriteString(line(&head, root.Class) + "\n")
	counts[&head] = counts[root]
	walk(root, "")
	fmt.Fprintf(&b, "total parameters: %d\n", m.ParamCount())
	return b.String()
}
