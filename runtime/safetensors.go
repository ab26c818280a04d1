package runtime

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"

	"github.com/rfc-project/rfc/kernels"
)

// maxHeaderSize bounds the JSON header as the reference implementation does; anything
// larger is a corrupt or hostile length field, not a real checkpoint.
const maxHeaderSize = 100_000_000

// TensorInfo describes one tensor of a safetensors file.
type TensorInfo struct {
	Name       string
	DType      DType
	Shape      []int
	Begin, End int64 // byte offsets in the data section
}

// Len is the number of elements of the tensor.
func (ti TensorInfo) Len() int { return shapeLen(ti.Shape) }

// FormatError is a problem with a safetensors file: its name, the tensor key concerned (empty
// for problems with the file as a whole) and what is wrong.
type FormatError struct {
	File   string
	Tensor string
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Tensor == "" {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s: tensor %q: %s", e.File, e.Tensor, e.Msg)
}

// SafetensorsFile is a validated safetensors file: its header has been parsed and checked in
// full when it opens, so reading a tensor can fail only on I/O. Reads may run concurrently;
// Close must not run concurrently with them.
type SafetensorsFile struct {
	path      string
	mapped    []byte      // the whole file, when it is memory-mapped
	r         io.ReaderAt // otherwise
	closer    io.Closer   // closes r, if anything needs closing
	dataStart int64       // file offset of the data section
	infos     map[string]TensorInfo
	names     []string
	metadata  map[string]string
	closed    bool
	// fromFolder marks a file OpenWeights found in a folder: LocateWeights skips it when it
	// holds nothing the model still needs.
	fromFolder bool
}

// OpenSafetensors opens, memory-maps (where the platform allows; elsewhere it reads through
// ReadAt) and validates a safetensors file. Tensors read from it are copies, so they stay
// valid after Close. As with any mapping, the file must not be truncated while open.
func OpenSafetensors(path string) (*SafetensorsFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		fh.Close()
		return nil, &FormatError{File: path, Msg: "not a regular file"}
	}
	size := st.Size()
	if mapped, err := mapFile(fh, size); err == nil {
		fh.Close() // the mapping outlives the descriptor
		f, err := parseSafetensors(bytes.NewReader(mapped), size, path)
		if err != nil {
			unmapFile(mapped)
			return nil, err
		}
		f.mapped = mapped
		return f, nil
	}
	f, err := parseSafetensors(fh, size, path)
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.r, f.closer = fh, fh
	return f, nil
}

// ReadTensors reads the named tensors of the safetensors file at path (all of them when no
// name is given) into memory, as Tensor converts them, and closes the file: for inputs,
// goldens and other small files read whole.
func ReadTensors(path string, names ...string) (map[string]*Tensor, error) {
	f, err := OpenSafetensors(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if len(names) == 0 {
		names = f.Names()
	}
	out := make(map[string]*Tensor, len(names))
	for _, n := range names {
		if out[n], err = f.Tensor(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReadSafetensors validates a safetensors file of the given size read through r; name is
// used in errors. Tensor data is read from r when asked for, so r must stay readable until
// the caller is done; Close does not close it.
func ReadSafetensors(r io.ReaderAt, size int64, name string) (*SafetensorsFile, error) {
	f, err := parseSafetensors(r, size, name)
	if err != nil {
		return nil, err
	}
	f.r = r
	return f, nil
}

// Close releases the mapping or the open file. Reads after Close fail.
func (f *SafetensorsFile) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	var err error
	if f.mapped != nil {
		err = unmapFile(f.mapped)
		f.mapped = nil
	}
	if f.closer != nil {
		err = errors.Join(err, f.closer.Close())
	}
	f.r = nil
	return err
}

// Path is the path given to OpenSafetensors, or the name given to ReadSafetensors.
func (f *SafetensorsFile) Path() string { return f.path }

// Names lists the tensor keys, sorted.
func (f *SafetensorsFile) Names() []string { return slices.Clone(f.names) }

// Info describes the tensor called name.
func (f *SafetensorsFile) Info(name string) (TensorInfo, bool) {
	ti, ok := f.infos[name]
	if ok {
		ti.Shape = slices.Clone(ti.Shape)
	}
	return ti, ok
}

// Metadata is a copy of the file's __metadata__ map (empty if it has none).
func (f *SafetensorsFile) Metadata() map[string]string {
	m := make(map[string]string, len(f.metadata))
	for k, v := range f.metadata {
		m[k] = v
	}
	return m
}

// Tensor reads a tensor into memory: floating-point dtypes (F16, BF16, F32, F64, F8_*) as an
// F32 tensor, integer dtypes as an I64 tensor, BOOL as an I64 tensor of 0 and 1.
func (f *SafetensorsFile) Tensor(name string) (*Tensor, error) {
	ti, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	n := ti.Len()
	if ti.DType.IsFloat() {
		t := &Tensor{DType: F32, Shape: slices.Clone(ti.Shape), F32: make([]float32, n)}
		return t, f.readF32(ti, t.F32)
	}
	t := &Tensor{DType: I64, Shape: slices.Clone(ti.Shape), I64: make([]int64, n)}
	err = f.chunks(ti, func(src []byte, first int) error {
		dst := t.I64[first : first+len(src)/ti.DType.Size()]
		if i := decodeInt(dst, src, ti.DType); i >= 0 {
			return f.errorf(name, "U64 value %d at index %d does not fit in I64",
				binary.LittleEndian.Uint64(src[8*i:]), first+i)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// ReadF32Into converts the tensor called name into dst, which must hold exactly its element
// count; any dtype converts (integers and BOOL to their float32 value). Generated Load code
// uses it to fill planned weight buffers without an intermediate copy.
func (f *SafetensorsFile) ReadF32Into(name string, dst []float32) error {
	ti, err := f.lookup(name)
	if err != nil {
		return err
	}
	if n := ti.Len(); n != len(dst) {
		return f.errorf(name, "has %d elements (shape %s), destination holds %d", n, formatShape(ti.Shape), len(dst))
	}
	return f.readF32(ti, dst)
}

// ReadF32Shape is ReadF32Into that also requires the stored shape to equal shape, so that a
// checkpoint laid out differently is reported rather than loaded scrambled.
func (f *SafetensorsFile) ReadF32Shape(name string, dst []float32, shape ...int) error {
	ti, err := f.lookup(name)
	if err != nil {
		return err
	}
	if !slices.Equal(ti.Shape, shape) {
		return f.errorf(name, "shape %s in the file, %s expected", formatShape(ti.Shape), formatShape(shape))
	}
	return f.ReadF32Into(name, dst)
}

// release drops the pages of a tensor read from a mapped file from the resident set.
func (f *SafetensorsFile) release(name string) {
	if ti, ok := f.infos[name]; ok && f.mapped != nil && !f.closed {
		releaseMapped(f.mapped[f.dataStart+ti.Begin : f.dataStart+ti.End])
	}
}

func (f *SafetensorsFile) lookup(name string) (TensorInfo, error) {
	if f.closed {
		return TensorInfo{}, &FormatError{File: f.path, Msg: "file is closed"}
	}
	ti, ok := f.infos[name]
	if !ok {
		return TensorInfo{}, &FormatError{File: f.path, Msg: fmt.Sprintf("no tensor %q (the file has %d)", name, len(f.names))}
	}
	return ti, nil
}

func (f *SafetensorsFile) errorf(name, format string, args ...any) error {
	return &FormatError{File: f.path, Tensor: name, Msg: fmt.Sprintf(format, args...)}
}

// parallelDecodeMin is the element count above which a mapped tensor is converted by
// several goroutines; below it the goroutine start-up costs more than it saves.
const parallelDecodeMin = 1 << 18

func (f *SafetensorsFile) readF32(ti TensorInfo, dst []float32) error {
	if f.mapped != nil {
		// The converted copy is what the caller keeps: the file's pages can go.
		defer releasePages(f.mapped, f.dataStart+ti.Begin, f.dataStart+ti.End)
	}
	if f.mapped != nil && len(dst) >= parallelDecodeMin {
		src := f.mapped[f.dataStart+ti.Begin : f.dataStart+ti.End]
		size := ti.DType.Size()
		kernels.ParallelFor(len(dst), func(lo, hi int) {
			decodeFloat(dst[lo:hi], src[lo*size:hi*size], ti.DType)
		})
		return nil
	}
	return f.chunks(ti, func(src []byte, first int) error {
		decodeFloat(dst[first:first+len(src)/ti.DType.Size()], src, ti.DType)
		return nil
	})
}

// readChunk is the most bytes read through an io.ReaderAt at once, so that converting a
// large tensor does not need a second buffer of its size.
const readChunk = 1 << 20

// chunks hands the tensor's bytes to fn in pieces that hold whole elements; first is the
// index of the piece's first element.
func (f *SafetensorsFile) chunks(ti TensorInfo, fn func(src []byte, first int) error) error {
	if ti.End == ti.Begin {
		return nil
	}
	if f.mapped != nil {
		return fn(f.mapped[f.dataStart+ti.Begin:f.dataStart+ti.End], 0)
	}
	size := int64(ti.DType.Size())
	buf := make([]byte, min(ti.End-ti.Begin, readChunk/size*size))
	for off := ti.Begin; off < ti.End; {
		piece := buf[:min(int64(len(buf)), ti.End-off)]
		n, err := f.r.ReadAt(piece, f.dataStart+off)
		if n < len(piece) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return f.errorf(ti.Name, "reading data: %v", err)
		}
		if err := fn(piece, int((off-ti.Begin)/size)); err != nil {
			return err
		}
		off += int64(len(piece))
	}
	return nil
}

// decodeFloat converts little-endian elements of dtype dt in src to float32.
func decodeFloat(dst []float32, src []byte, dt DType) {
	le := binary.LittleEndian
	switch dt {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToF32(le.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToF32(le.Uint16(src[2*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	case F8E4M3:
		for i := range dst {
			dst[i] = F8E4M3ToF32(src[i])
		}
	case F8E5M2:
		for i := range dst {
			dst[i] = F8E5M2ToF32(src[i])
		}
	case U64:
		for i := range dst {
			dst[i] = float32(le.Uint64(src[8*i:]))
		}
	default:
		// Other integers and BOOL go through int64, which holds each of them exactly.
		var tmp [256]int64
		for lo := 0; lo < len(dst); lo += len(tmp) {
			hi := min(lo+len(tmp), len(dst))
			decodeInt(tmp[:hi-lo], src[lo*dt.Size():hi*dt.Size()], dt)
			for i, v := range tmp[:hi-lo] {
				dst[lo+i] = float32(v)
			}
		}
	}
}

// decodeInt converts little-endian integer or BOOL elements to int64. It gives the index of
// the first U64 value too large for int64 (stored wrapped), or -1.
func decodeInt(dst []int64, src []byte, dt DType) int {
	le := binary.LittleEndian
	bad := -1
	switch dt {
	case I64:
		for i := range dst {
			dst[i] = int64(le.Uint64(src[8*i:]))
		}
	case I32:
		for i := range dst {
			dst[i] = int64(int32(le.Uint32(src[4*i:])))
		}
	case I16:
		for i := range dst {
			dst[i] = int64(int16(le.Uint16(src[2*i:])))
		}
	case I8:
		for i := range dst {
			dst[i] = int64(int8(src[i]))
		}
	case U8:
		for i := range dst {
			dst[i] = int64(src[i])
		}
	case U16:
		for i := range dst {
			dst[i] = int64(le.Uint16(src[2*i:]))
		}
	case U32:
		for i := range dst {
			dst[i] = int64(le.Uint32(src[4*i:]))
		}
	case U64:
		for i := range dst {
			v := le.Uint64(src[8*i:])
			if v > math.MaxInt64 && bad < 0 {
				bad = i
			}
			dst[i] = int64(v)
		}
	case BOOL:
		for i := range dst {
			if src[i] != 0 {
				dst[i] = 1
			} else {
				dst[i] = 0
			}
		}
	default:
		panic("runtime: decodeInt of " + dt.String())
	}
	return bad
}

// parseSafetensors reads and checks the header: every way a header can be wrong is found
// here, so that reading a tensor later needs no checks but I/O.
func parseSafetensors(r io.ReaderAt, size int64, name string) (*SafetensorsFile, error) {
	fail := func(format string, args ...any) (*SafetensorsFile, error) {
		return nil, &FormatError{File: name, Msg: fmt.Sprintf(format, args...)}
	}
	if size < 8 {
		return fail("file is %d bytes, shorter than the 8-byte header length", max(size, 0))
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return fail("reading the header length: %v", err)
	}
	headerLen := binary.LittleEndian.Uint64(lenBuf[:])
	if headerLen > maxHeaderSize {
		return fail("header length %d is over the %d-byte limit", headerLen, maxHeaderSize)
	}
	if int64(headerLen) > size-8 {
		return fail("header length %d runs past the end of the file (%d bytes)", headerLen, size)
	}
	header := make([]byte, headerLen)
	if n, err := r.ReadAt(header, 8); n < len(header) {
		return fail("reading the header: %v", err)
	}
	f := &SafetensorsFile{
		path:      name,
		dataStart: 8 + int64(headerLen),
		infos:     map[string]TensorInfo{},
		metadata:  map[string]string{},
	}
	dataSize := size - f.dataStart
	entries, err := splitHeader(header)
	if err != nil {
		return fail("%v", err)
	}
	for _, e := range entries {
		if e.key == "__metadata__" {
			if f.metadata, err = parseMetadata(e.value); err != nil {
				return fail("__metadata__ %v", err)
			}
			continue
		}
		ti, err := parseEntry(e.key, e.value, dataSize)
		if err != nil {
			return nil, &FormatError{File: name, Tensor: e.key, Msg: err.Error()}
		}
		f.infos[e.key] = ti
		f.names = append(f.names, e.key)
	}
	sort.Strings(f.names)
	if err := checkOverlaps(f.infos); err != nil {
		return fail("%v", err)
	}
	return f, nil
}

type headerEntry struct {
	key   string
	value json.RawMessage
}

// splitHeader parses the header's top-level JSON object into its entries in file order,
// rejecting duplicate keys, which a plain map would silently merge.
func splitHeader(header []byte) ([]headerEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	jsonErr := func(err error) error {
		if err == io.EOF {
			return errors.New("header is not valid JSON: it ends early")
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("header is not valid JSON: %v (at byte %d of the header)", se, se.Offset)
		}
		return fmt.Errorf("header is not valid JSON: %v", err)
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("header is empty, not a JSON object")
		}
		return nil, jsonErr(err)
	}
	if tok != json.Delim('{') {
		return nil, errors.New("header is not a JSON object")
	}
	var entries []headerEntry
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(err)
		}
		key, ok := tok.(string)
		if !ok { // the decoder reports non-string keys as syntax errors; this is a guard
			return nil, errors.New("header is not valid JSON: object key is not a string")
		}
		if seen[key] {
			return nil, fmt.Errorf("header has key %q twice", key)
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, jsonErr(err)
		}
		entries = append(entries, headerEntry{key, value})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, jsonErr(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("header has data after its JSON object (at byte %d of the header)", dec.InputOffset())
	}
	return entries, nil
}

func parseMetadata(raw json.RawMessage) (map[string]string, error) {
	m := map[string]string{}
	if string(raw) == "null" {
		return m, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("is %s, not a map of strings", jsonKind(raw))
	}
	for k, v := range fields {
		var s string
		if firstByte(v) != '"' || json.Unmarshal(v, &s) != nil {
			return nil, fmt.Errorf("value of %q is %s, not a string", k, jsonKind(v))
		}
		m[k] = s
	}
	return m, nil
}

// firstByte is the first non-space byte of a JSON value, 0 if there is none; it tells the
// value's kind before unmarshalling, since encoding/json would take null for an empty map
// or string without complaint.
func firstByte(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// jsonKind names the kind of a JSON value for error messages.
func jsonKind(raw json.RawMessage) string {
	switch firstByte(raw) {
	case 0:
		return "empty"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// parseEntry checks one tensor entry against the data section's size.
func parseEntry(name string, raw json.RawMessage, dataSize int64) (TensorInfo, error) {
	ti := TensorInfo{Name: name}
	var fields map[string]json.RawMessage
	if firstByte(raw) != '{' || json.Unmarshal(raw, &fields) != nil {
		return ti, fmt.Errorf("entry is %s, not an object", jsonKind(raw))
	}
	dtypeRaw, ok := fields["dtype"]
	if !ok {
		return ti, errors.New("entry has no dtype")
	}
	var dtypeName string
	if firstByte(dtypeRaw) != '"' || json.Unmarshal(dtypeRaw, &dtypeName) != nil {
		return ti, fmt.Errorf("dtype is %s, not a string", jsonKind(dtypeRaw))
	}
	var err error
	if ti.DType, err = ParseDType(dtypeName); err != nil {
		return ti, err
	}

	shapeRaw, ok := fields["shape"]
	if !ok {
		return ti, errors.New("entry has no shape")
	}
	dims, err := parseInts(shapeRaw, "shape")
	if err != nil {
		return ti, err
	}
	// A zero dimension makes the count 0 whatever the others are, even if their product
	// alone would overflow.
	count := int64(1)
	overflow := false
	for _, d := range dims {
		if d < 0 {
			return ti, fmt.Errorf("shape %s has a negative dimension", formatShape(dims))
		}
		if d != 0 && count > math.MaxInt64/d {
			overflow = true
		}
		count *= d
	}
	if slices.Contains(dims, 0) {
		count = 0
	} else if overflow || count > int64(maxInt) || count > math.MaxInt64/int64(ti.DType.Size()) {
		return ti, fmt.Errorf("shape %s has too many elements", formatShape(dims))
	}
	ti.Shape = make([]int, len(dims))
	for i, d := range dims {
		if d > int64(maxInt) {
			return ti, fmt.Errorf("shape %s has a dimension too large for this platform", formatShape(dims))
		}
		ti.Shape[i] = int(d)
	}

	offRaw, ok := fields["data_offsets"]
	if !ok {
		return ti, errors.New("entry has no data_offsets")
	}
	offs, err := parseInts(offRaw, "data_offsets")
	if err != nil {
		return ti, err
	}
	if len(offs) != 2 {
		return ti, fmt.Errorf("data_offsets has %d values, not 2", len(offs))
	}
	ti.Begin, ti.End = offs[0], offs[1]
	if ti.Begin < 0 || ti.End < 0 {
		return ti, fmt.Errorf("data_offsets [%d, %d] are negative", ti.Begin, ti.End)
	}
	if ti.Begin > ti.End {
		return ti, fmt.Errorf("data_offsets [%d, %d] begin after they end", ti.Begin, ti.End)
	}
	if need := count * int64(ti.DType.Size()); need != ti.End-ti.Begin {
		return ti, fmt.Errorf("shape %s × %v needs %d bytes, data_offsets give %d", formatShape(dims), ti.DType, need, ti.End-ti.Begin)
	}
	if ti.End > dataSize {
		return ti, fmt.Errorf("data_offsets [%d, %d] run past the end of the data section (%d bytes)", ti.Begin, ti.End, dataSize)
	}
	return ti, nil
}

// parseInts reads a JSON array of integers; what names it in errors.
func parseInts(raw json.RawMessage, what string) ([]int64, error) {
	var items []json.RawMessage
	if firstByte(raw) != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, fmt.Errorf("%s is %s, not an array of integers", what, jsonKind(raw))
	}
	out := make([]int64, len(items))
	for i, item := range items {
		v, err := strconv.ParseInt(string(item), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s[%d] is %s, not an integer in range", what, i, item)
		}
		out[i] = v
	}
	return out, nil
}

// checkOverlaps rejects tensors whose byte ranges share bytes. Gaps between ranges are
// allowed: they cost nothing and some writers align tensors.
func checkOverlaps(infos map[string]TensorInfo) error {
	ranges := make([]TensorInfo, 0, len(infos))
	for _, ti := range infos {
		if ti.End > ti.Begin { // empty ranges hold no bytes to share
			ranges = append(ranges, ti)
		}
	}
	sort.Slice(ranges, func(i, j int) bool {
		if ranges[i].Begin != ranges[j].Begin {
			return ranges[i].Begin < ranges[j].Begin
		}
		return ranges[i].Name < ranges[j].Name
	})
	for i := 1; i < len(ranges); i++ {
		a, b := ranges[i-1], ranges[i]
		if b.Begin < a.End {
			return fmt.Errorf("tensors %q [%d, %d) and %q [%d, %d) overlap", a.Name, a.Begin, a.End, b.Name, b.Begin, b.End)
		}
	}
	return nil
}
