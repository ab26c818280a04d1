package runtime

import (
	"fmt"
	"io"

	"github.com/rfc-project/rfc/kernels"
)

// What every generated package's loaders share. A package keeps only its tables (the
// weight specs, where each weight goes) and calls these, so that the logic lives once
// here and reads the same whatever model a package was compiled from.

// OpenAndLoad opens the weight files at paths as OpenWeights does (a folder stands for the
// .safetensors files in it and its subfolders), hands them to load (a generated package's
// LoadFiles) and closes them before it returns: a generated package's Load.
func OpenAndLoad[M any](load func(...*SafetensorsFile) (M, error), paths ...string) (M, error) {
	files, err := OpenWeights(paths...)
	if err != nil {
		var none M
		return none, err
	}
	defer CloseAll(files)
	return load(files...)
}

// ReadAndLoad reads one safetensors file of size bytes through r (ReadSafetensors; name
// identifies it in errors) and hands it to load: a generated package's LoadReaderAt.
func ReadAndLoad[M any](load func(...*SafetensorsFile) (M, error), r io.ReaderAt, size int64, name string) (M, error) {
	f, err := ReadSafetensors(r, size, name)
	if err != nil {
		var none M
		return none, err
	}
	return load(f)
}

// Fill reads every weight of the set into a generated model's memory, in the order of the
// specs: weight i goes to slab[offsets[i]:], as many float32 elements as its shape holds,
// unless packs holds i; then packs[i] = {slot, out, in} says it is laid out in the GEMM
// micro-kernel's panels as the matrix [out, in] (ReadPacked, which keeps a half-precision
// checkpoint's precision) and stored in *packed[slot]. opts.Patch, when set, sees each
// weight as float32 once it is read (a packed one before it is packed), with its index.
// The first error, a read's or Patch's, stops the load and is returned as is.
//
// The tables come from the compiler; one that does not fit the specs, the slab or the
// packed slots is an error saying so, not a panic.
func (w *WeightSet) Fill(opts LoadOptions, slab []float32, offsets []int, packed []*kernels.Weights, packs map[int][3]int) error {
	if len(offsets) != len(w.specs) {
		return fmt.Errorf("runtime: Fill: %d weight offsets for %d weights (a compiler bug: the weight tables are wrong)", len(offsets), len(w.specs))
	}
	var scratch []float32 // reused by ReadPacked from weight to weight
	for i, s := range w.specs {
		n, err := checkedLen(s.Shape)
		if err != nil {
			return fmt.Errorf("runtime: Fill: weight %d (%q): %v", i, s.Key, err)
		}
		if pk, ok := packs[i]; ok {
			if pk[0] < 0 || pk[0] >= len(packed) || packed[pk[0]] == nil {
				return fmt.Errorf("runtime: Fill: weight %d (%q) goes to packed slot %d of %d (a compiler bug: the weight tables are wrong)", i, s.Key, pk[0], len(packed))
			}
			if pk[1] < 0 || pk[2] < 0 || pk[1]*pk[2] != n {
				return fmt.Errorf("runtime: Fill: weight %d (%q) of shape %s is packed as [%d, %d] (a compiler bug: the weight tables are wrong)", i, s.Key, formatShape(s.Shape), pk[1], pk[2])
			}
			pw, err := w.ReadPacked(i, &scratch, opts.Patch, pk[1], pk[2])
			if err != nil {
				return err
			}
			*packed[pk[0]] = pw
			continue
		}
		off := offsets[i]
		if off < 0 || off > len(slab)-n {
			return fmt.Errorf("runtime: Fill: weight %d (%q) of %d elements at offset %d is outside the slab of %d (a compiler bug: the weight tables are wrong)", i, s.Key, n, off, len(slab))
		}
		dst := slab[off : off+n : off+n]
		if err := w.ReadInto(i, dst); err != nil {
			return err
		}
		if opts.Patch != nil {
			if err := opts.Patch(i, dst); err != nil {
				return err
			}
		}
	}
	return nil
}
