package passes

import (
	"strings"
	"testing"
)

// archive is a txtar file: a free comment, then sections each opened by a line
// `-- name --`. It is small enough not to need golang.org/x/tools/txtar.
type archive struct {
	comment string
	files   []section
}

type section struct {
	name, data string
}

func parseArchive(text string) archive {
	var a archive
	cur := &a.comment
	for _, line := range strings.SplitAfter(text, "\n") {
		if name, ok := sectionName(line); ok {
			a.files = append(a.files, section{name: name})
			cur = &a.files[len(a.files)-1].data
			continue
		}
		*cur += line
	}
	return a
}

func sectionName(line string) (string, bool) {
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "-- ") || !strings.HasSuffix(line, " --") || len(line) < 7 {
		return "", false
	}
	name := strings.TrimSpace(line[3 : len(line)-3])
	return name, name != ""
}

func (a archive) get(name string) (string, bool) {
	for _, f := range a.files {
		if f.name == name {
			return f.data, true
		}
	}
	return "", false
}

// set replaces a section's content, or appends the section.
func (a *archive) set(name, data string) {
	for i := range a.files {
		if a.files[i].name == name {
			a.files[i].data = data
			return
		}
	}
	a.files = append(a.files, section{name: name, data: data})
}

func (a archive) format() string {
	var b strings.Builder
	b.WriteString(a.comment)
	for _, f := range a.files {
		b.WriteString("-- " + f.name + " --\n")
		b.WriteString(f.data)
		if f.data != "" && !strings.HasSuffix(f.data, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestArchiveRoundTrip(t *testing.T) {
	text := "a comment\n-- in.ir --\nmodule M\n-- empty --\n-- out.ir --\nx\ny\n"
	a := parseArchive(text)
	if a.comment != "a comment\n" || len(a.files) != 3 {
		t.Fatalf("parsed %+v", a)
	}
	if d, _ := a.get("out.ir"); d != "x\ny\n" {
		t.Errorf("out.ir = %q", d)
	}
	if got := a.format(); got != text {
		t.Errorf("format = %q", got)
	}
	a.set("out.ir", "z\n")
	a.set("new", "n")
	if got := a.format(); got != "a comment\n-- in.ir --\nmodule M\n-- empty --\n-- out.ir --\nz\n-- new --\nn\n" {
		t.Errorf("after set: %q", got)
	}
	if _, ok := sectionName("-- --\n"); ok {
		t.Error("empty section name accepted")
	}
}
