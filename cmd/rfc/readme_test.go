package main

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ciCommands are the README's commands that are the CI itself (this test among them): they
// are left out rather than run recursively.
var ciCommands = regexp.MustCompile(`^\s*(go test|bash \.ci/run|\.ci/run|bash examples/check\.sh|\./check\.sh)\b`)

// TestREADMECommands runs every ```sh block of the README, as written, in a copy of the
// tree (so that rfc fmt and the outputs touch nothing here): one bash script per block, in
// order, from the copy's root, with go install putting rfc into a private GOBIN on PATH.
// Every command must succeed: the README promises that a fresh clone runs them. Then it
// runs the examples of rfc help the same way.
func TestREADMECommands(t *testing.T) {
	needGo(t)
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := shellBlocks(string(readme))
	if len(blocks) < 2 {
		t.Fatalf("found %d sh blocks in README.md", len(blocks))
	}
	tmp := t.TempDir()
	tree := filepath.Join(tmp, "rfc")
	copyTree(t, root, tree)
	bin := filepath.Join(tmp, "bin")
	env := append(os.Environ(), "GOBIN="+bin, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "RFC_ROOT="+tree)
	for i, block := range blocks {
		script := "set -euo pipefail\n" + block
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir, cmd.Env = tree, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README sh block %d failed (%v):\n%s\n--- output\n%s", i+1, err, block, out)
		}
		t.Logf("block %d: ok (%d bytes of output)", i+1, len(out))
	}
	// The tour's outputs are there: the round trip through the interpreter made an image.
	if _, err := os.Stat(filepath.Join(tree, "out", "astronaut.png")); err != nil {
		t.Errorf("the README's round trip wrote no out/astronaut.png: %v", err)
	}
	// So do the examples of rfc help, in the order of the commands (the run examples make
	// the tensors that the image examples read).
	for _, c := range commands {
		for _, e := range c.examples {
			cmd := exec.Command("bash", "-c", "set -euo pipefail\n"+e)
			cmd.Dir, cmd.Env = tree, env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("the example of rfc help %s failed (%v):\n%s\n--- output\n%s", c.name, err, e, out)
			}
		}
	}
}

// shellBlocks returns the ```sh blocks of a Markdown text, without the commands of the CI.
func shellBlocks(md string) []string {
	var blocks []string
	var cur *strings.Builder
	sc := bufio.NewScanner(strings.NewReader(md))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```sh":
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil && !ciCommands.MatchString(line):
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// copyTree copies the files of the repository at root that git tracks or would track (a
// fresh clone's), or every file but .git's where git is missing.
func copyTree(t *testing.T, root, dst string) {
	t.Helper()
	var files []string
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		for _, f := range bytes.Split(out, []byte{0}) {
			if len(f) > 0 {
				files = append(files, string(f))
			}
		}
	} else {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == ".git" {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() {
				rel, _ := filepath.Rel(root, path)
				files = append(files, rel)
			}
			return nil
		})
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		info, _ := os.Stat(filepath.Join(root, f))
		path := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestShellBlocks(t *testing.T) {
	md := "text\n```sh\nrfc check a.rfn   # ok\ngo test ./...\n```\n```go\nx := 1\n```\n```sh\nrfc fmt \\\n    a.rfn\n```\n"
	got := shellBlocks(md)
	if len(got) != 2 || got[0] != "rfc check a.rfn   # ok\n" || got[1] != "rfc fmt \\\n    a.rfn\n" {
		t.Errorf("got %q", got)
	}
}
