// Command rfc compiles models written in the .rfn language.
//
//	rfc check FILE…                      check files; print ok or the errors
//	rfc tree FILE [flags]                print the layer tree
//	rfc ir FILE [flags]                  print the IR text
//	rfc fmt FILE…                        rewrite files in canonical form
//	rfc run FILE --weights W… --input IN --output OUT [flags]
//	rfc compile FILE -o DIR [flags]      write a Go (or CUDA) package
//	rfc image to-tensor IMAGE -o OUT     a PNG or JPEG as a [1, 3, H, W] tensor
//	rfc image to-png TENSORS -o IMAGE    a tensor as a PNG (or JPEG) image
//	rfc version                          the version (also rfc --version)
//
// rfc help COMMAND (or rfc COMMAND --help) prints a command's flags and examples.
// Exit status: 0 on success, 1 on errors in the input, 2 on bad usage.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// runFunc runs a command on its positional arguments, once its flags are parsed.
type runFunc func(pos []string, stdout, stderr io.Writer) int

// command is one subcommand: its help text and how it is run.
type command struct {
	name     string // "run", or "image to-png" for the commands of a group
	args     string // what follows the name in the usage line
	summary  string // one line, for rfc help
	about    string // paragraphs for rfc help COMMAND
	examples []string
	// define registers the command's flags on fs and returns what runs it.
	define func(fs *flag.FlagSet) runFunc
}

// commands is filled in init because their define functions print help, which reads it.
var commands []*command

func init() {
	commands = []*command{
		checkCommand, treeCommand, irCommand, fmtCommand, runCommand, compileCommand,
		imageToTensorCommand, imageToPNGCommand, versionCommand,
	}
}

// run is main without the exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, overview())
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return help(args[1:], stdout, stderr)
	case "-version", "--version":
		return run(append([]string{"version"}, args[1:]...), stdout, stderr)
	}
	c, rest := findCommand(args)
	if c == nil {
		if args[0] == "image" {
			if len(args) == 2 && (args[1] == "-h" || args[1] == "-help" || args[1] == "--help") {
				return help(args[:1], stdout, stderr)
			}
			fmt.Fprintf(stderr, "rfc image: want a subcommand: to-tensor or to-png (rfc help image)\n")
			return 2
		}
		fmt.Fprintf(stderr, "rfc: unknown command %q\n\n%s", strings.Join(args[:min(len(args), 2)], " "), overview())
		return 2
	}
	fs := newFlagSet(c.name, stderr)
	runCmd := c.define(fs)
	pos, status, done := parseArgs(c, fs, rest, stdout, stderr)
	if done {
		return status
	}
	return runCmd(pos, stdout, stderr)
}

// findCommand matches the first words of args with a command's name.
func findCommand(args []string) (*command, []string) {
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c, args[len(words):]
		}
	}
	return nil, nil
}

// help is rfc help [COMMAND]: the overview, or a command's full help.
func help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, overview())
		return 0
	}
	if c, rest := findCommand(args); c != nil && len(rest) == 0 {
		fmt.Fprint(stdout, commandHelp(c))
		return 0
	}
	// A group (rfc help image): the help of each of its commands.
	var group []string
	for _, c := range commands {
		if strings.HasPrefix(c.name, strings.Join(args, " ")+" ") {
			group = append(group, commandHelp(c))
		}
	}
	if len(group) > 0 {
		fmt.Fprint(stdout, strings.Join(group, "\n"))
		return 0
	}
	fmt.Fprintf(stderr, "rfc help: unknown command %q\n\n%s", strings.Join(args, " "), overview())
	return 2
}

// flagNames lists a command's flags as they are typed: --model, --set, ….
func flagNames(c *command) []string {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.define(fs)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, flagDash(f.Name)+f.Name) })
	return names
}

// flagDash is how the help writes a flag: -o, -v as one letter, the others with two dashes
// (the flag package takes either).
func flagDash(name string) string {
	if len(name) == 1 {
		return "-"
	}
	return "--"
}

func overview() string {
	var b strings.Builder
	b.WriteString(`rfc compiles neural networks written in the .rfn language into Go packages, and runs them.

usage: rfc COMMAND [arguments]

commands:
`)
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-18s %s\n", c.name, c.summary)
		if names := flagNames(c); len(names) > 0 {
			fmt.Fprintf(&b, "  %-18s flags: %s\n", "", strings.Join(names, " "))
		}
	}
	b.WriteString(`
rfc help COMMAND (or rfc COMMAND --help) prints a command's flags and examples; rfc --version
prints the version. Flags may come before or after the file. Exit status: 0 on success, 1 on
errors in the input, 2 on bad usage.
`)
	return b.String()
}

// commandHelp is the full help of c: usage, description, every flag, examples.
func commandHelp(c *command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: rfc %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.about))
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.define(fs)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			b.WriteString("\nflags:\n")
			first = false
		}
		kind, usage := flag.UnquoteUsage(f)
		head := "  " + flagDash(f.Name) + f.Name
		if kind != "" {
			head += " " + kind
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "map[]" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(&b, "%s\n      %s\n", head, usage)
	})
	if len(c.examples) > 0 {
		b.WriteString("\nexamples:\n")
		for _, e := range c.examples {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	return b.String()
}

var versionCommand = &command{
	name:     "version",
	summary:  "print rfc's version (also rfc --version)",
	about:    "Prints the module version of this rfc binary and, when it was built from a git checkout, the revision (with \"+ local changes\" when the tree was modified) and its time, then the Go version.",
	examples: []string{"rfc version", "rfc --version"},
	define: func(fs *flag.FlagSet) runFunc {
		return func(pos []string, stdout, stderr io.Writer) int {
			if len(pos) > 0 {
				fmt.Fprintf(stderr, "rfc version: takes no arguments, got %q\n", strings.Join(pos, " "))
				return 2
			}
			info, ok := debug.ReadBuildInfo()
			fmt.Fprintln(stdout, versionString(info, ok))
			return 0
		}
	},
}

// versionString is the version line of a binary with build info info.
func versionString(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "rfc (unknown version: the binary has no build information)"
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	line := "rfc " + version
	if rev := settings["vcs.revision"]; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		detail := settings["vcs"] + " " + rev
		if settings["vcs.modified"] == "true" {
			detail += " + local changes"
		}
		if t := settings["vcs.time"]; t != "" {
			detail += ", " + t
		}
		line += " (" + strings.TrimSpace(detail) + ")"
	}
	if info.GoVersion != "" {
		line += " " + info.GoVersion
	}
	return line
}
