package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/rfc-project/rfc/codegen"
	"github.com/rfc-project/rfc/codegen/cuda"
	"github.com/rfc-project/rfc/ir"
)

// compileCUDA writes the CUDA target's package of m into dir (rfc compile --target cuda):
// model.cu, the Go files, and model.ptx when nvcc is on PATH. Without nvcc it says so on
// stderr and removes a model.ptx left by an earlier run, which would no longer match
// model.cu: go generate in dir (where nvcc is) makes it again.
func compileCUDA(m *ir.Module, dir, pkg string, stderr io.Writer) error {
	return compileCUDAWith(m, dir, cuda.Options{Package: pkg}, stderr)
}

// compileCUDAWith is compileCUDA with every option of the target (a --f16-weights flag
// sets opts.F16Weights); opts.Source defaults to m's source as seen from dir.
func compileCUDAWith(m *ir.Module, dir string, opts cuda.Options, stderr io.Writer) error {
	if opts.Source == "" {
		opts.Source = recordedSource(m.Source, dir)
	}
	files, err := cuda.Generate(m, opts)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]codegen.File, len(names))
	for i, name := range names {
		out[i] = codegen.File{Name: name, Data: files[name]}
	}
	if _, err := codegen.Write(dir, out); err != nil {
		return err
	}
	if _, ok := files["model.ptx"]; !ok {
		stale := filepath.Join(dir, "model.ptx")
		if err := os.Remove(stale); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		fmt.Fprintf(stderr, "rfc compile: nvcc is not on PATH: wrote model.cu without model.ptx; run go generate in %s on a machine with nvcc (shapes.go holds the nvcc line)\n", dir)
	}
	return nil
}
