package main

import (
	"fmt"
	"io"
	"slices"

	"github.com/rfc-project/rfc/codegen"
	"github.com/rfc-project/rfc/codegen/cuda"
	"github.com/rfc-project/rfc/ir"
)

// cudaFiles generates the CUDA target's package of m (rfc compile --target cuda): model.cu,
// the Go files, and model.ptx when nvcc is on PATH. Without nvcc, note says so; writing the
// package then removes a model.ptx left by an earlier run, which would no longer match
// model.cu: go generate in dir (where nvcc is) makes it again.
func cudaFiles(m *ir.Module, dir string, opts cuda.Options) (files []codegen.File, note string, err error) {
	if opts.Source == "" {
		opts.Source = recordedSource(m.Source, dir)
	}
	generated, err := cuda.Generate(m, opts)
	if err != nil {
		return nil, "", err
	}
	names := make([]string, 0, len(generated))
	for name := range generated {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		files = append(files, codegen.File{Name: name, Data: generated[name]})
	}
	if _, ok := generated["model.ptx"]; !ok {
		note = fmt.Sprintf("rfc compile: nvcc is not on PATH: wrote model.cu without model.ptx; run go generate in %s on a machine with nvcc (shapes.go holds the nvcc line)", dir)
	}
	return files, note, nil
}

// compileCUDA writes the CUDA package of m into dir, as rfc compile --target cuda does.
func compileCUDA(m *ir.Module, dir, pkg string, stderr io.Writer) error {
	files, note, err := cudaFiles(m, dir, cuda.Options{Package: pkg})
	if err != nil {
		return err
	}
	if _, _, err := writeOutputs(dir, files); err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintln(stderr, note)
	}
	return nil
}
