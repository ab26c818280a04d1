package sd15

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rfc-project/rfc/imaging"
	"github.com/rfc-project/rfc/runtime"
)

// samplerNames are sd-webui's names of the solvers, which its PNG Info tab and other
// tools show.
var samplerNames = map[string]string{"dpm": "DPM++ 2M", "ddim": "DDIM", "euler": "Euler", "lcm": "LCM"}

// parameters writes the request's parameters in sd-webui's infotext format
// (modules/processing.py create_infotext): the prompt, "Negative prompt: …" when there is
// one, then "Key: value" pairs joined by ", ", values JSON-quoted when they hold a comma,
// a colon or a newline.
func (p *Pipeline) parameters(r Request) string {
	type kv struct{ k, v string }
	kvs := []kv{
		{"Steps", strconv.Itoa(r.Steps)},
		{"Sampler", samplerNames[r.Solver]},
		{"CFG scale", pyFloat(r.Guidance)},
	}
	if r.Noise == nil {
		kvs = append(kvs, kv{"Seed", strconv.FormatUint(r.Seed, 10)})
	}
	kvs = append(kvs, kv{"Size", fmt.Sprintf("%dx%d", r.Width, r.Height)}, kv{"Model", p.Name})
	if r.InitImage != nil {
		kvs = append(kvs, kv{"Denoising strength", pyFloat(r.Strength)})
	}
	if len(p.loraNames) > 0 {
		kvs = append(kvs, kv{"Lora", strings.Join(p.loraNames, ", ")})
	}
	// As sd-webui's ControlNet extension names its units (T2I-Adapters among them).
	for i, c := range controlUnits(r) {
		kvs = append(kvs, kv{fmt.Sprintf("ControlNet %d", i), c})
	}
	var pairs []string
	for _, e := range kvs {
		pairs = append(pairs, e.k+": "+quote(e.v))
	}
	pairs = append(pairs, p.adapterParameters(r)...)
	text := r.Prompt
	if r.NegativePrompt != "" {
		text += "\nNegative prompt: " + r.NegativePrompt
	}
	text += "\n" + strings.Join(pairs, ", ")
	return strings.TrimSpace(text)
}

// quote is sd-webui's: a value with a comma, a newline or a colon is written as a JSON
// string as Python's json.dumps(v, ensure_ascii=False) writes it (only quotes,
// backslashes and control characters escaped).
func quote(v string) string {
	if !strings.ContainsAny(v, ",\n:") {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// pyFloat formats v as Python's repr(float) does (7.5, 7.0, 1e-05), which is what
// sd-webui writes for its float parameters.
func pyFloat(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return map[bool]string{true: "inf", false: "-inf"}[v > 0]
	}
	exp := 0 // the decimal exponent of the shortest digits
	if v != 0 {
		digits := strconv.FormatFloat(v, 'e', -1, 64)
		exp, _ = strconv.Atoi(digits[strings.IndexByte(digits, 'e')+1:])
	}
	if exp < -4 || exp >= 16 {
		s := strconv.FormatFloat(v, 'e', -1, 64) // 1e-05 in Python, 1e-05 here
		mant, e, _ := strings.Cut(s, "e")
		sign := e[0]
		e = strings.TrimLeft(e[1:], "0")
		if len(e) < 2 {
			e = strings.Repeat("0", 2-len(e)) + e
		}
		return mant + "e" + string(sign) + e
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// EncodePNG writes img as a PNG with the text parameters in a chunk named "parameters",
// right after the header, where sd-webui and other tools look for them: tEXt when the
// text is Latin-1 (the tEXt encoding), else iTXt (UTF-8), as PIL's PngInfo.add_text
// chooses.
func EncodePNG(w io.Writer, img *imaging.Image, parameters string) error {
	if img == nil || img.Channels != 3 || len(img.Pix) != img.Width*img.Height*3 {
		return errors.New("sd15: EncodePNG needs an RGB image")
	}
	rgba := image.NewNRGBA(image.Rect(0, 0, img.Width, img.Height))
	for i := 0; i < img.Width*img.Height; i++ {
		copy(rgba.Pix[i*4:], img.Pix[i*3:i*3+3])
		rgba.Pix[i*4+3] = 255
	}
	var enc bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.DefaultCompression}).Encode(&enc, rgba); err != nil {
		return err
	}
	data := enc.Bytes()
	// The signature (8 bytes), then IHDR: length (4), type (4), 13 bytes, CRC (4).
	const ihdrEnd = 8 + 4 + 4 + 13 + 4
	if len(data) < ihdrEnd || string(data[12:16]) != "IHDR" {
		return errors.New("sd15: image/png wrote no IHDR first")
	}
	if _, err := w.Write(data[:ihdrEnd]); err != nil {
		return err
	}
	if _, err := w.Write(textChunk("parameters", parameters)); err != nil {
		return err
	}
	_, err := w.Write(data[ihdrEnd:])
	return err
}

// textChunk is a tEXt chunk keyword\0text when text is Latin-1 without NUL, else an
// uncompressed iTXt chunk (keyword\0 0 0 \0 \0 UTF-8 text).
func textChunk(keyword, text string) []byte {
	var body []byte
	latin1 := make([]byte, 0, len(text))
	ok := utf8.ValidString(text)
	for _, r := range text {
		if r == 0 || r > 0xFF {
			ok = false
			break
		}
		latin1 = append(latin1, byte(r))
	}
	kind := "tEXt"
	if ok {
		body = append(append([]byte(keyword), 0), latin1...)
	} else {
		kind = "iTXt"
		body = append([]byte(keyword), 0, 0, 0, 0, 0) // keyword, no compression, no language, no translated keyword
		body = append(body, strings.ToValidUTF8(text, "\uFFFD")...)
	}
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	chunk = append(chunk, kind...)
	chunk = append(chunk, body...)
	return binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
}

// WritePNG writes the image with its parameters to path, completely or not at all
// (runtime.WriteFileAtomic).
func (r *Result) WritePNG(path string) error {
	return runtime.WriteFileAtomic(path, func(w io.Writer) error { return EncodePNG(w, r.Image, r.Parameters) })
}

// PNGParameters returns the "parameters" text of a PNG file's tEXt or iTXt chunk, and
// whether there is one.
func PNGParameters(data []byte) (string, bool, error) {
	if len(data) < 8 || string(data[:8]) != "\x89PNG\r\n\x1a\n" {
		return "", false, errors.New("not a PNG file")
	}
	for rest := data[8:]; len(rest) >= 12; {
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-12) {
			return "", false, errors.New("truncated PNG chunk")
		}
		kind, body := string(rest[4:8]), rest[8:8+n]
		if crc32.ChecksumIEEE(rest[4:8+n]) != binary.BigEndian.Uint32(rest[8+n:]) {
			return "", false, fmt.Errorf("PNG chunk %q has a wrong CRC", kind)
		}
		key, text, found := bytes.Cut(body, []byte{0})
		if found && string(key) == "parameters" {
			switch kind {
			case "tEXt":
				runes := make([]rune, len(text))
				for i, b := range text {
					runes[i] = rune(b)
				}
				return string(runes), true, nil
			case "iTXt":
				if len(text) >= 2 && text[0] == 0 {
					_, rest, ok := bytes.Cut(text[2:], []byte{0}) // language tag
					if ok {
						if _, t, ok := bytes.Cut(rest, []byte{0}); ok { // translated keyword
							return string(t), true, nil
						}
					}
				}
			}
		}
		rest = rest[12+n:]
	}
	return "", false, nil
}
