package runtime

import (
	"strings"
	"testing"

	"github.com/rfc-project/rfc/kernels"
)

func TestArena(t *testing.T) {
	a := NewArena(10)
	if a.Size() != 10 {
		t.Fatalf("Size() = %d", a.Size())
	}
	x := a.Slice(2, 3)
	y := a.Slice(5, 5)
	if len(x) != 3 || cap(x) != 3 || len(y) != 5 {
		t.Fatalf("len/cap %d/%d and %d", len(x), cap(x), len(y))
	}
	x[0] = 1
	if a.Slice(0, 10)[2] != 1 {
		t.Error("a slice does not alias the arena")
	}
	x = append(x, 42) // capacity is exhausted: append copies instead of overwriting y
	if y[0] != 0 {
		t.Error("append to one buffer overwrote its neighbour")
	}
	if len(a.Slice(10, 0)) != 0 {
		t.Error("empty slice at the end")
	}
	for _, c := range [][2]int{{-1, 2}, {8, 3}, {0, 11}, {3, -1}, {1, int(^uint(0) >> 1)}} {
		func() {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || !strings.Contains(s, "compiler bug") {
					t.Errorf("Slice(%d, %d) panic = %v, want a compiler-bug message", c[0], c[1], r)
				}
			}()
			a.Slice(c[0], c[1])
		}()
	}
}

func TestThreads(t *testing.T) {
	old := Threads()
	defer SetThreads(old)
	SetThreads(3)
	if Threads() != 3 || kernels.Workers() != 3 {
		t.Errorf("SetThreads(3): Threads() = %d, kernels.Workers() = %d", Threads(), kernels.Workers())
	}
	SetThreads(0)
	if Threads() != 1 {
		t.Errorf("SetThreads(0): Threads() = %d, want 1", Threads())
	}
}
