package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// setFlags collects repeated --set k=v.
type setFlags map[string]string

func (s setFlags) String() string { return fmt.Sprint(map[string]string(s)) }

func (s setFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("--set wants name=value, got %q", v)
	}
	s[k] = val
	return nil
}

// listFlags collects a repeated flag.
type listFlags []string

func (l *listFlags) String() string { return strings.Join(*l, ",") }

func (l *listFlags) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// modelFlags are the flags every command that elaborates a model takes.
type modelFlags struct {
	model string
	set   setFlags
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("rfc "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func (m *modelFlags) register(fs *flag.FlagSet) {
	m.set = setFlags{}
	fs.StringVar(&m.model, "model", "", "entry point (default: the last model of the file)")
	fs.Var(m.set, "set", "override a model parameter: --set name=value (repeatable)")
}

// parseInterspersed lets flags follow positional arguments (rfc tree FILE --set k=v), as
// users type them.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
