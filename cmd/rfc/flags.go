package main

import (
	"errors"
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

// newFlagSet makes the flag set of command name. Errors are printed by parseArgs: the flag
// package's own usage text is replaced by the command's help.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("rfc "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	return fs
}

func (m *modelFlags) register(fs *flag.FlagSet) {
	m.set = setFlags{}
	fs.StringVar(&m.model, "model", "", "the entry point, a `MODEL` of the file (default: its last model)")
	fs.Var(m.set, "set", "`NAME=VALUE`: set a model parameter, or fix a symbolic dim such as batch (repeatable)")
}

// parseArgs parses c's arguments, flags anywhere among the positional ones (rfc tree FILE
// --set k=v), as users type them. --help prints c's help on stdout; a bad flag gets one line
// and a pointer to the help. done reports that the command must return status.
func parseArgs(c *command, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (pos []string, status int, done bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, commandHelp(c))
				return nil, 0, true
			}
			fmt.Fprintf(stderr, "run 'rfc help %s' for its flags\n", c.name)
			return nil, 2, true
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, 0, false
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
