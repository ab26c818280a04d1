package runtime

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// PlaceBuffers is the memory planner's placement, shared by the compiler (for sizes fixed
// at compile time) and generated code (for sizes chosen at run time, once per distinct
// set): buffer i of sizes[i] elements is alive from op first[i] to op last[i]; each gets
// the lowest offset, a multiple of align, that no buffer alive at the same time overlaps,
// taking the buffers largest first (ties: the earliest first, then the order given). The
// offsets go into offsets; the result is the arena's length, a multiple of align. A size
// or offset beyond an int is an error.
func PlaceBuffers(sizes, first, last []int, align int, offsets []int) (int, error) {
	n := len(sizes)
	if len(first) != n || len(last) != n || len(offsets) != n || align < 1 {
		return 0, errors.New("runtime: PlaceBuffers: inconsistent tables")
	}
	alignUp := func(x int) (int, error) {
		if x > math.MaxInt-(align-1) {
			return 0, fmt.Errorf("an offset of %d overflows an int", x)
		}
		return (x + align - 1) / align * align, nil
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
		if sizes[i] < 0 {
			return 0, fmt.Errorf("runtime: PlaceBuffers: buffer %d has the negative size %d", i, sizes[i])
		}
	}
	sort.SliceStable(order, func(a, b int) bool {
		i, j := order[a], order[b]
		if sizes[i] != sizes[j] {
			return sizes[i] > sizes[j]
		}
		return first[i] < first[j]
	})
	arena := 0
	placed := make([]int, 0, n)
	type span struct{ lo, hi int }
	var busy []span
	for _, b := range order {
		busy = busy[:0]
		for _, o := range placed {
			if first[o] <= last[b] && first[b] <= last[o] {
				busy = append(busy, span{offsets[o], offsets[o] + sizes[o]})
			}
		}
		sort.Slice(busy, func(x, y int) bool { return busy[x].lo < busy[y].lo })
		offset := 0
		for _, r := range busy {
			if offset <= math.MaxInt-sizes[b] && offset+sizes[b] <= r.lo {
				break
			}
			up, err := alignUp(r.hi)
			if err != nil {
				return 0, err
			}
			offset = max(offset, up)
		}
		offsets[b] = offset
		placed = append(placed, b)
		if offset > math.MaxInt-sizes[b] {
			return 0, fmt.Errorf("a buffer of %d at offset %d overflows an int: the arena is too large", sizes[b], offset)
		}
		up, err := alignUp(offset + sizes[b])
		if err != nil {
			return 0, err
		}
		arena = max(arena, up)
	}
	return arena, nil
}

// SizeCalc computes sizes in generated code with overflow checks: the first overflow
// sticks in Err and later results are meaningless, so a plan checks Err once.
type SizeCalc struct{ Err error }

var errSizeOverflow = errors.New("a size overflows an int")

// Add is a + b.
func (c *SizeCalc) Add(a, b int) int {
	r := a + b
	if (r > a) != (b > 0) {
		c.Err = errSizeOverflow
	}
	return r
}

// Mul is a · b.
func (c *SizeCalc) Mul(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	r := a * b
	if r/b != a || (a == -1 && b == math.MinInt) || (b == -1 && a == math.MinInt) {
		c.Err = errSizeOverflow
	}
	return r
}

// Div is floor(a / k) for k ≥ 1, as Python's //.
func (c *SizeCalc) Div(a, k int) int {
	if k < 1 {
		c.Err = errors.New("a size divided by a non-positive number")
		return 0
	}
	q := a / k
	if a%k != 0 && a < 0 {
		q--
	}
	return q
}

// SizeNames describes the sizes a generated package reads from its inputs' shapes (the
// sizes chosen at run time): the key of a memory plan holds them in this order. Its
// methods are what every such package's plans share: the messages naming a set of sizes,
// the check that each is at least 1, and the arena grown for a larger set.
type SizeNames struct {
	Package string   // the generated package: its errors start "Package: Forward: "
	Model   string   // the model, as the memory check names it
	Names   []string // the sizes (batch, height, …)
	From    []string // where Forward reads each ("dim 0 of input x")
}

// Format names the sizes of key and where Forward read them, for errors:
// "height=64 (dim 2 of input x), width=48 (dim 3 of input x)".
func (s *SizeNames) Format(key []int) string {
	var b strings.Builder
	for k, name := range s.Names {
		if k > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%d (%s)", name, key[k], s.From[k])
	}
	return b.String()
}

// Errorf is an error of Forward at the sizes of key: "Package: Forward: " and the sizes
// (Format), then ": " and the message.
func (s *SizeNames) Errorf(key []int, format string, args ...any) error {
	return fmt.Errorf("%s: Forward: %s: %s", s.Package, s.Format(key), fmt.Sprintf(format, args...))
}

// Check refuses a key that holds a size below 1 (kernels divide by sizes), naming the
// first such size and where Forward read it.
func (s *SizeNames) Check(key []int) error {
	for k, name := range s.Names {
		if key[k] < 1 {
			return fmt.Errorf("%s: Forward: %s is %d (%s): sizes must be at least 1", s.Package, name, key[k], s.From[k])
		}
	}
	return nil
}

// GrowArena makes a hold n float32 elements when it holds fewer: the plan of a larger set
// of sizes (key). The new size is checked against overflow and against the memory available
// (CheckMemory) first; on error the arena is unchanged. Slices cut from the arena before
// keep the old memory: the caller cuts its buffers again.
func (s *SizeNames) GrowArena(a *Arena, n int, key []int) error {
	if n <= a.Size() {
		return nil
	}
	if int64(n) > math.MaxInt64/4 {
		return s.Errorf(key, "the arena of %d float32 elements overflows a byte count", n)
	}
	if err := CheckMemory("model "+s.Model+" at "+s.Format(key), int64(n)*4); err != nil {
		return err
	}
	a.slab = make([]float32, n)
	return nil
}
