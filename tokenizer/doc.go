// Package tokenizer is OpenAI CLIP's text tokenizer (clip/simple_tokenizer.py), the one
// Stable Diffusion 1.5's text encoder was trained with: it turns a prompt into the 77 token
// ids the encoder reads.
//
// The steps are CLIP's, in CLIP's order:
//
//  1. Cleaning: Unicode NFC, HTML character references unescaped twice (with Python's
//     html.unescape rules), runs of Unicode white space collapsed to one space, the ends
//     stripped, then Python's str.lower.
//  2. Pre-tokenizing with CLIP's pattern, case-insensitive:
//     <|startoftext|> | <|endoftext|> | 's | 't | 're | 've | 'm | 'll | 'd |
//     letters+ | one number | runs of anything else but white space.
//  3. Byte-level BPE over each piece's UTF-8 bytes with the 48,894 bundled merges
//     (bpe_simple_vocab_16e6.txt.gz, MIT licence in LICENSE.clip), "</w>" marking the end
//     of a word: 49,408 ids.
//  4. For the text encoder: the start token 49406, the ids truncated so that the end token
//     49407 always fits, the end token, then the end token again as padding up to the
//     sequence length (77 for SD1.5 and SDXL).
//
// # Why OpenAI's and not Refiners'
//
// Refiners' CLIPTokenizer is a simplification: its pattern knows only ASCII letters and
// digits, so a letter such as 'é', 'σ' or '東' matches none of its alternatives and is
// dropped; it neither normalizes nor unescapes HTML character references (it keeps
// "&amp;" as three tokens); its BPE merges one occurrence of the best pair at a time, which
// splits long runs of one letter ("aaaaaaaa") differently; and it rejects prompts past the
// sequence length instead of truncating them. The text encoder's weights were trained on
// OpenAI's tokenization, so that is the one followed here.
//
// # Where it departs from simple_tokenizer.py
//
//   - ftfy.fix_text is replaced by Unicode NFC (ftfy's last step). ftfy also straightens
//     curly quotes, splits ligatures, narrows full-width forms, removes control characters
//     and repairs mojibake; none of that is done here, so on such prompts the ids follow
//     NFC, not ftfy.
//   - Padding uses the end token, as SD1.5's tokenizer does; clip.tokenize pads with 0.
//   - CLIP takes a str; bytes that are not UTF-8 are read as Python's
//     bytes.decode("utf-8", errors="replace") would before CLIP sees them.
//   - A decimal character reference with more than 4300 digits makes Python 3.11 raise;
//     here it is an out-of-range reference (U+FFFD).
//   - Character properties come from Go's Unicode 15.0 tables. CLIP's results depend on the
//     Unicode versions of the Python and regex module it runs with: the tests compare all
//     282,230 code points assigned in Go 1.26, Python 3.11's unicodedata (14.0) and
//     python3-regex 2026.5.9 alike, and they agree on every one. The 4,489 characters of
//     Unicode 15.0 are unknown to that Python's str.lower and NFC, and the 10,615 added
//     since 15.0 are letters or numbers to the regex module but "other" here.
//
// Rules Go's standard library does not give and this package reproduces:
//
//   - Python's html.unescape where html.UnescapeString differs: references to controls
//     and noncharacters such as &#11; are dropped; numbers past U+10FFFF give U+FFFD
//     where html.UnescapeString wraps them around in 32 bits (&#4294967361; is "A" to
//     it); &nLt; and &nGt; are known.
//   - Python's str.lower: 'İ' becomes "i̇" (two runes), and 'Σ' becomes 'ς' at the end of
//     a word, looking past case-ignorable characters as CPython does.
//   - Python's two sets of white space: \s of the regex module (White_Space) collapses,
//     str.isspace, which adds U+001C..U+001F, strips.
//   - The pattern's IGNORECASE flag: "'ſ" matches 's (and "<|ſtartoftext|>" the start
//     token's pattern, though not its id), and U+0345, whose case variants are letters,
//     belongs to no class of the pattern and is dropped like white space.
//   - Unicode NFC on runs of more than 30 combining marks: norm.NFC inserts U+034F there
//     (the Stream-Safe Text Format), Python does not.
//   - Invalid UTF-8: one U+FFFD per maximal invalid subpart, not one per byte
//     (utf8.DecodeRune) nor per run (strings.ToValidUTF8).
package tokenizer
