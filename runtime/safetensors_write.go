package runtime

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
)

// WriteSafetensors writes tensors (F32 ones as F32, I64 ones as I64) and metadata to path
// as a safetensors file, keys sorted, with WriteFileAtomic: readers never see a
// half-written file, and the folders above path are created.
func WriteSafetensors(path string, tensors map[string]*Tensor, metadata map[string]string) error {
	header, names, err := planSafetensors(tensors, metadata)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return WriteFileAtomic(path, func(w io.Writer) error { return writeSafetensors(w, header, names, tensors) })
}

// EncodeSafetensors writes tensors and metadata to w in the safetensors format, as
// WriteSafetensors does. Nothing is written if a tensor is invalid.
func EncodeSafetensors(w io.Writer, tensors map[string]*Tensor, metadata map[string]string) error {
	header, names, err := planSafetensors(tensors, metadata)
	if err != nil {
		return err
	}
	return writeSafetensors(w, header, names, tensors)
}

// planSafetensors checks the tensors and builds the header: "__metadata__" first, then the
// tensors in sorted order, packed back to back. The header is padded with spaces so that the
// data section starts 8-byte aligned, as the reference writer does.
func planSafetensors(tensors map[string]*Tensor, metadata map[string]string) ([]byte, []string, error) {
	names := make([]string, 0, len(tensors))
	for name, t := range tensors {
		if name == "__metadata__" {
			return nil, nil, errors.New(`"__metadata__" is reserved and cannot name a tensor`)
		}
		if t == nil {
			return nil, nil, fmt.Errorf("tensor %q is nil", name)
		}
		if err := t.check(); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		names = append(names, name)
	}
	sort.Strings(names)

	var h bytes.Buffer
	h.WriteByte('{')
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		h.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			writeJSONString(&h, k)
			h.WriteByte(':')
			writeJSONString(&h, metadata[k])
		}
		h.WriteByte('}')
	}
	var offset int64
	for i, name := range names {
		if i > 0 || len(metadata) > 0 {
			h.WriteByte(',')
		}
		t := tensors[name]
		size := int64(t.Len()) * int64(t.DType.Size())
		writeJSONString(&h, name)
		fmt.Fprintf(&h, `:{"dtype":"%v","shape":[`, t.DType)
		for j, d := range t.Shape {
			if j > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, offset, offset+size)
		offset += size
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	return h.Bytes(), names, nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // marshalling a string cannot fail
	b.Write(enc)
}

func writeSafetensors(w io.Writer, header []byte, names []string, tensors map[string]*Tensor) error {
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	const chunk = 1 << 13 // elements encoded per write
	buf := make([]byte, 8*chunk)
	le := binary.LittleEndian
	for _, name := range names {
		t := tensors[name]
		if t.DType == F32 {
			for lo := 0; lo < len(t.F32); lo += chunk {
				part := t.F32[lo:min(lo+chunk, len(t.F32))]
				for i, v := range part {
					le.PutUint32(buf[4*i:], math.Float32bits(v))
				}
				if _, err := w.Write(buf[:4*len(part)]); err != nil {
					return err
				}
			}
			continue
		}
		for lo := 0; lo < len(t.I64); lo += chunk {
			part := t.I64[lo:min(lo+chunk, len(t.I64))]
			for i, v := range part {
				le.PutUint64(buf[8*i:], uint64(v))
			}
			if _, err := w.Write(buf[:8*len(part)]); err != nil {
				return err
			}
		}
	}
	return nil
}
