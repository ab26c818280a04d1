package cuda

import (
	_ "embed"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// library is the kernel library whose sections model.cu copies (kernels.cuh).
//
//go:embed kernels.cuh
var library string

// section is one part of the library, with the sections it needs.
type section struct {
	name string
	deps []string
	text string
}

// librarySections splits the library at its "//== section NAME: DEPS" lines; the text
// before the first section (the file's own comment) is dropped.
func librarySections() ([]section, error) {
	var out []section
	for _, line := range strings.SplitAfter(library, "\n") {
		head, ok := strings.CutPrefix(line, "//== section ")
		if !ok {
			if len(out) > 0 {
				out[len(out)-1].text += line
			}
			continue
		}
		name, deps, ok := strings.Cut(strings.TrimSpace(head), ":")
		if !ok {
			return nil, fmt.Errorf("cuda: kernels.cuh: section line %q has no colon", strings.TrimSpace(line))
		}
		out = append(out, section{name: strings.TrimSpace(name), deps: strings.Fields(deps)})
	}
	return out, nil
}

// withDeps closes a set of section names over their dependencies and returns the library
// text of those sections in library order.
func withDeps(names []string) (string, error) {
	secs, err := librarySections()
	if err != nil {
		return "", err
	}
	byName := map[string]section{}
	for _, s := range secs {
		byName[s.name] = s
	}
	need := map[string]bool{}
	var visit func(string) error
	visit = func(n string) error {
		s, ok := byName[n]
		if !ok {
			return fmt.Errorf("cuda: kernels.cuh has no section %q", n)
		}
		if need[n] {
			return nil
		}
		need[n] = true
		for _, d := range s.deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	for _, s := range secs {
		if need[s.name] {
			fmt.Fprintf(&b, "// ---- %s\n%s", s.name, strings.TrimLeft(s.text, "\n"))
			if !strings.HasSuffix(s.text, "\n\n") {
				b.WriteString("\n")
			}
		}
	}
	return b.String(), nil
}

// cFloat writes a float32 as a C literal that reads back to the same value; infinities
// and NaNs, which have no literal, are built from their bits.
func cFloat(f float32) string {
	if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
		return fmt.Sprintf("rfc_bits(0x%08xu)", math.Float32bits(f))
	}
	s := strconv.FormatFloat(float64(f), 'g', -1, 32)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s + "f"
}

// iterDim is one dimension of the index space a kernel walks, with the stride of each
// operand along it (0 where the operand is broadcast).
type iterDim struct {
	size    int
	strides []int
}

// mergeDims drops dimensions of size 1 and merges neighbours along which every operand
// walks contiguously; dims run innermost first.
func mergeDims(dims []iterDim) []iterDim {
	var out []iterDim
	for _, d := range dims {
		if d.size == 1 {
			continue
		}
		if n := len(out); n > 0 {
			in := out[n-1]
			ok := true
			for j := range d.strides {
				if d.strides[j] != in.strides[j]*in.size {
					ok = false
					break
				}
			}
			if ok {
				out[n-1].size *= d.size
				continue
			}
		}
		out = append(out, iterDim{d.size, slices.Clone(d.strides)})
	}
	return out
}

// indexCode writes the start of an element-wise kernel over total elements: the thread's
// flat index i (returning when past the end) and, for each operand, the variable names[j]
// holding its element offset bases[j] + Σ coordinate·stride. An operand laid out like the
// index space itself gets i + base without arithmetic.
func indexCode(total int, dims []iterDim, names []string, bases []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  const int i = blockIdx.x * %d + threadIdx.x;\n  if (i >= %d) return;\n", blockSize, total)
	dims = mergeDims(dims)
	contiguous := make([]bool, len(names))
	for j := range names {
		contiguous[j] = true
		step := 1
		for _, d := range dims {
			if d.strides[j] != step {
				contiguous[j] = false
			}
			step *= d.size
		}
	}
	// Only the dimensions up to the outermost one that some strided operand moves along
	// need their coordinate.
	lastUsed := -1
	used := make([]bool, len(dims))
	for k, d := range dims {
		for j := range names {
			if !contiguous[j] && d.strides[j] != 0 {
				used[k] = true
				lastUsed = k
			}
		}
	}
	for j, name := range names {
		switch {
		case contiguous[j]:
			fmt.Fprintf(&b, "  const int %s = i%s;\n", name, plusConst(bases[j]))
		case lastUsed < 0:
			fmt.Fprintf(&b, "  const int %s = %d;\n", name, bases[j])
		default:
			fmt.Fprintf(&b, "  int %s = %d;\n", name, bases[j])
		}
	}
	if lastUsed < 0 {
		return b.String()
	}
	b.WriteString("  int r = i;\n")
	adds := func(k int, coord, indent string) {
		for j, name := range names {
			if contiguous[j] || dims[k].strides[j] == 0 {
				continue
			}
			if s := dims[k].strides[j]; s == 1 {
				fmt.Fprintf(&b, "%s%s += %s;\n", indent, name, coord)
			} else {
				fmt.Fprintf(&b, "%s%s += %s * %d;\n", indent, name, coord, s)
			}
		}
	}
	for k := 0; k <= lastUsed; k++ {
		size := dims[k].size
		switch {
		case k == lastUsed && k == len(dims)-1:
			adds(k, "r", "  ")
		case k == lastUsed:
			adds(k, fmt.Sprintf("(r %% %d)", size), "  ")
		case used[k]:
			fmt.Fprintf(&b, "  {\n    const int c = r %% %d;\n    r /= %d;\n", size, size)
			adds(k, "c", "    ")
			b.WriteString("  }\n")
		default:
			fmt.Fprintf(&b, "  r /= %d;\n", size)
		}
	}
	return b.String()
}

func plusConst(n int) string {
	if n == 0 {
		return ""
	}
	return " + " + strconv.Itoa(n)
}
