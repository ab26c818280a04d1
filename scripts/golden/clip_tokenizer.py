#!/usr/bin/python3
"""Goldens for the Go package tokenizer/: OpenAI CLIP's tokenizer, transcribed in Python.

The reference is openai/CLIP clip/simple_tokenizer.py (SimpleTokenizer) and clip/clip.py
(tokenize), the tokenizer SD1.5's text encoder was trained with. It is transcribed here with
the standard library and Debian's python3-regex (the `regex` module, which knows \\p{L} and
\\p{N}), reading the same merges file the Go package embeds.

One deliberate stand-in: CLIP's basic_clean starts with ftfy.fix_text, and ftfy is not
available here (no pip). unicodedata.normalize("NFC") stands in for it, as the project's
issue specifies. fix_text also uncurls quotes, splits ligatures, narrows full-width forms,
drops control characters and repairs mojibake: the Go package does none of these either.

Padding: clip.tokenize pads with 0; SD1.5's tokenizer pads with the end token 49407, and so
do these goldens (and the Go package).

Invalid UTF-8: prompts are bytes decoded with errors="replace" (one U+FFFD per maximal
invalid subpart), which the Go package reproduces.

Writes, run from the repository root (/usr/bin/python3 scripts/golden/clip_tokenizer.py):
  tokenizer/testdata/clip_goldens.json   prompts (hex bytes) -> Encode ids, 77 ids, Decode
  tokenizer/testdata/clip_unicode.json   per-code-point behaviour of Python's str and regex
                                         and html.unescape, to check the Go tables rune by rune
"""
import gzip
import hashlib
import html
import html.entities
import json
import os
import sys
import unicodedata

import regex

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MERGES = os.path.join(ROOT, "tokenizer", "bpe_simple_vocab_16e6.txt.gz")
OUT = os.path.join(ROOT, "tokenizer", "testdata")

START, END, CONTEXT = 49406, 49407, 77


def byte_to_unicode():
    # Printable Latin-1 bytes stand for themselves; the 68 others (controls, space, NBSP,
    # soft hyphen) are moved to U+0100 upwards so no BPE symbol is whitespace or a control.
    # The order of the table is the order of the first 512 vocabulary entries: the kept
    # bytes in byte order, then the moved ones.
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table = {b: chr(b) for b in keep}
    moved = [b for b in range(256) if b not in table]
    for extra, b in enumerate(moved):
        table[b] = chr(256 + extra)
    return table


class ClipTokenizer:
    def __init__(self, merges_path):
        self.byte_enc = byte_to_unicode()
        self.byte_dec = {v: k for k, v in self.byte_enc.items()}
        lines = gzip.open(merges_path).read().decode("utf-8").split("\n")
        # Line 0 is a version header; CLIP keeps 49152-256-2 merges.
        merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
        vocab = list(self.byte_enc.values())
        vocab += [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.vocab = vocab
        # dict(zip(...)) keeps the last index of a repeated string, as CLIP does.
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.pat = regex.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        if len(word) == 1:
            return token + "</w>"
        while len(word) > 1:
            pairs = {(word[k], word[k + 1]) for k in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, k = [], 0
            while k < len(word):
                if k < len(word) - 1 and word[k] == best[0] and word[k + 1] == best[1]:
                    merged.append(best[0] + best[1])
                    k += 2
                else:
                    merged.append(word[k])
                    k += 1
            word = tuple(merged)
        out = " ".join(word)
        self.cache[token] = out
        return out

    @staticmethod
    def clean(text):
        text = unicodedata.normalize("NFC", text)  # stands in for ftfy.fix_text
        text = html.unescape(html.unescape(text)).strip()
        text = regex.sub(r"\s+", " ", text).strip()
        return text.lower()

    def encode(self, text):
        ids = []
        for token in self.pat.findall(self.clean(text)):
            symbols = "".join(self.byte_enc[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[s] for s in self.bpe(symbols).split(" "))
        return ids

    def tokenize(self, text, context=CONTEXT):
        ids = [START] + self.encode(text) + [END]
        if len(ids) > context:
            ids = ids[:context]
            ids[-1] = END
        return ids + [END] * (context - len(ids))

    def decode(self, ids):
        text = "".join(self.vocab[i] for i in ids)
        # Every character of the vocabulary, "</w>" and the special tokens included, is a
        # byte symbol: the special tokens come back as their literal text.
        raw = bytearray(self.byte_dec[c] for c in text)
        return raw.decode("utf-8", errors="replace").replace("</w>", " ")


LONG_PROMPT = (
    "A breathtaking matte painting of an ancient city floating above the clouds at golden hour, "
    "intricate gothic towers, waterfalls pouring off the edges, flocks of white birds, volumetric "
    "light, god rays, ultra detailed, 8k resolution, octane render, unreal engine 5, cinematic "
    "composition, dramatic sky, vivid colors, by Greg Rutkowski and Alphonse Mucha, trending on "
    "ArtStation, award winning, masterpiece, sharp focus, hyperrealistic, wide angle lens, "
    "depth of field, bokeh, film grain, kodak portra 400, shot on a Hasselblad, rule of thirds")

PROMPTS = [
    ("plain", "a photo of a cat"),
    ("plain_caps_detail", "A Photograph of an Astronaut riding a horse on Mars, highly detailed, 8k"),
    ("punctuation", "Hello, world!!! What?! (yes) [no] {maybe} -- ok... #tag @user $5 100% a/b\\c ~^_`|"),
    ("contractions", "it's don't they're we've I'm you'll he'd"),
    ("contractions_upper", "IT'S DON'T THEY'RE WE'VE I'M YOU'LL HE'D"),
    ("apostrophes", "'s 'sun rock'n'roll '' ''s o'clock dogs' toys 'M 'LLAMA '"),
    ("long_s_apostrophe", "it'\u017f de'\u017fk <|\u017ftartoftext|>"),
    ("accents_nfc", "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, ni\u00f1o, se\u00f1or, \u00c5ngstr\u00f6m, na\u00efve"),
    ("accents_decomposed", "cafe\u0301 cre\u0300me nin\u0303o A\u030angstro\u0308m"),
    ("greek", "\u0397 \u03b3\u03c1\u03ae\u03b3\u03bf\u03c1\u03b7 \u03ba\u03b1\u03c6\u03ad \u03b1\u03bb\u03b5\u03c0\u03bf\u03cd \u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3"),
    ("greek_final_sigma", "\u03a3\u0391\u03a3. \u03a3 \u0391\u03a3' \u0391\u03a3\u0301 \u0391\u03a3\u0301\u0392 \u0391'\u03a3 \u03a3\u03a3\u03a3"),
    ("cyrillic", "\u0421\u044a\u0435\u0448\u044c \u0436\u0435 \u0435\u0449\u0451 \u044d\u0442\u0438\u0445 \u043c\u044f\u0433\u043a\u0438\u0445 \u0444\u0440\u0430\u043d\u0446\u0443\u0437\u0441\u043a\u0438\u0445 \u0431\u0443\u043b\u043e\u043a"),
    ("cjk", "\u4e00\u53ea\u732b\u5750\u5728\u7a97\u53f0\u4e0a\uff0c\u9633\u5149\u660e\u5a9a\u3002"),
    ("japanese_kana", "\u3072\u3089\u304c\u306a \u30ab\u30bf\u30ab\u30ca \u6771\u4eac\u30bf\u30ef\u30fc \uff76\uff80\uff76\uff85 \u30ac\u30cf\u309a"),
    ("korean", "\uace0\uc591\uc774\uac00 \ucc3d\uac00\uc5d0 \uc549\uc544 \uc788\ub2e4 \u1100\u1161\u11a8"),
    ("arabic", "\u0642\u0637\u0629 \u062a\u062c\u0644\u0633 \u0639\u0644\u0649 \u0627\u0644\u0646\u0627\u0641\u0630\u0629 \u0661\u0662\u0663"),
    ("hebrew_thai_devanagari", "\u05e9\u05dc\u05d5\u05dd \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 \u0928\u092e\u0938\u094d\u0924\u0947"),
    ("emoji", "a cat \U0001F431 with a hat \U0001F3A9\u2728 and \u2764\ufe0f"),
    ("emoji_zwj_skin", "\U0001F469\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 family, \U0001F44D\U0001F3FD thumbs, \U0001F3F3\ufe0f\u200d\U0001F308 flag, \U0001F1EB\U0001F1F7"),
    ("emoji_run", "\U0001F431\U0001F431\U0001F431\U0001F431\U0001F431\U0001F431"),
    ("tabs_newlines", "a\tcat\n\non   a\r\nmat\t\t"),
    ("runs_of_spaces", "   lots    of     spaces   "),
    ("unicode_spaces", "a\u00a0b\u2002c\u2003d\u3000e\u200bf\u2028g\u0085h\u180ei\x1cj\x1fk\ufeffl\u2029m\u202fn"),
    ("separator_controls_at_ends", "\x1c\x1d abc \x1e\x1f"),
    ("controls", "a\u200db\u200cc\x00d\x07e\x7ff\x1bg"),
    ("html_basic", "Tom &amp; Jerry &lt;3 &gt; rock &#39;n&#39; roll &quot;quoted&quot; &apos;x&apos;"),
    ("html_nbsp", "a&nbsp;b&nbsp;&nbsp;c&NonBreakingSpace;d"),
    ("html_double_escaped", "&amp;amp; &amp;lt;b&amp;gt; &amp;amp;amp; &amp;#39; &amp;quot"),
    ("html_no_semicolon", "&copy 2024 &amp &ltfoo &notit; &notin; &ampfoo &AMP; &Amp; &copy; &COPY &eacute\u00e9"),
    ("html_numeric", "&#x27;hex&#X27; &#65;&#x42;&#0; &#128; &#x80;&#150; &#1; &#11;x&#127; &#xD800; &#x110000; "
                     "&#99999999999999999999; &#xFFFE; &#x1F431; &#0000065; &#x0041"),
    ("html_edge", "&#; &#x; &; & amp; &-x &unknown; &CounterClockwiseContourIntegral; &NotNestedGreaterGreater; "
                  "&fjlig; &ThickSpace; &amp\u00e9; &\u00e9acute; &ampx&lt"),
    ("html_long_name", "&" + "a" * 40 + ";x &abcdefghijklmnopqrstuvwxyzabcdef; &copyabcdefghijklmnopqrstuvwxyzabcdefgh;"),
    ("html_whitespace", "a&#9;b&#10;c&#32;&#32;d&Tab;e&NewLine;f&#12;g&#13;h&#x3000;i"),
    ("html_contraction", "don&#39;t DON&apos;T it&rsquo;s"),
    ("html_special_tokens", "&lt;|endoftext|&gt; and &amp;lt;|startoftext|&amp;gt;"),
    ("numbers", "1234567890 3.14159 1,000,000 2024-01-01 \u00bd \u00b2 \u216b \u2460 \uff11\uff12 \u0967\u0968"),
    ("long_run_a", "aaaaaaaaaaaaaaaaaaaa"),
    ("long_runs", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz hmmmmmmmmmmmmmmm !!!!!!!!!!!!!!!!!!!! ......"),
    ("long_run_accent", "\u00e9" * 19 + " " + "\u00df" * 7),
    ("mixed_scripts", "Tokyo\u6771\u4eac\u041c\u043e\u0441\u043a\u0432\u0430 moscow123abc \u0391\u0392\u0393abc caf\u00e9\U0001F431cat"),
    ("empty", ""),
    ("whitespace_only", " \t\n  \u3000 \u00a0"),
    ("special_literal", "<|startoftext|>a photo<|endoftext|> of <|endoftext|><|endoftext|>"),
    ("special_case_and_context", "<|STARTOFTEXT|> <|EndOfText|> x<|endoftext|> !<|endoftext|> <|endoftext <|endoftext|>s"),
    ("turkish_dotted_i", "\u0130STANBUL \u0130stanbul \u0131i I"),
    ("case_specials", "5 \u212a temperature \ufb01ne \u00df \u1e9e \u01c4 \u01c5 \u0345 \u1fbc \u1fb3 a\u0345"),
    ("math_letters", "\U0001D400\U0001D401\U0001D402 \U0001D49C \u2115 \u2200x\u2208\u211d \u00b5 \u03bc"),
    ("quotes_dashes", "\u201csmart quotes\u201d \u2018single\u2019 \u2014 en\u2013dash \u2026 \u00abguillemets\u00bb don\u2019t"),
    ("fullwidth", "\uff21\uff22\uff23\u3000\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48\uff11\uff12\uff13\uff01"),
    # Past 30 marks in a row, Go's norm.NFC would insert U+034F (Stream-Safe Text Format).
    ("zalgo", "Z" + "\u0351\u0307\u0316\u0323\u0360" * 8 + "algo " + "e" + "\u0300" * 35 + " cafe" + "\u0301" * 33),
    ("zalgo_reorder_compose", "a" + "\u0316" * 31 + "\u0301 o" + "\u0308\u0323" * 20 + " \u1100\u1161" + "\u0334" * 40),
    ("long_prompt", LONG_PROMPT),
    ("long_cjk", "\u4e00\u53ea\u732b\u5750\u5728\u7a97\u53f0\u4e0a" * 30),
    ("exactly_75", "a " * 75),
    ("exactly_76", "a " * 76),
    ("exactly_74", "a " * 74),
    ("long_special_at_cut", "a " * 74 + "<|endoftext|> b c"),
]

INVALID_UTF8 = [
    ("invalid_utf8", b"caf\xe9 \xff\xfe cat \xe2\x82 \xf0\x9f\x90 end \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe0\x80 ok\x80"),
    ("invalid_utf8_truncated_end", b"cat \xf0\x9f\x90"),
]


def runs(flags):
    """[[first, last, value], ...] over code points 0..0x10FFFF with value flags[cp]."""
    out = []
    for cp, v in enumerate(flags):
        if out and out[-1][2] == v and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp, v])
    return out


def utf8_replace_hashes():
    """Per lead byte, the SHA-256 of the decodings (errors="replace") of every two-byte
    sequence and of three- and four-byte sequences whose later bytes are taken from the
    edges of the continuation ranges, each decoding followed by a NUL."""
    edges = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF]
    out = {}
    for lead in range(256):
        seqs = [bytes([lead, b]) for b in range(256)]
        seqs += [bytes([lead, b, c]) for b in range(256) for c in edges]
        seqs += [bytes([lead, b, c, d]) for b in edges for c in edges for d in edges]
        h = hashlib.sha256()
        for seq in seqs:
            h.update(seq.decode("utf-8", errors="replace").encode("utf-8") + b"\0")
        out[str(lead)] = h.hexdigest()
    return out


def unicode_tables(tok):
    n = 0x110000
    everything = "".join(chr(cp) for cp in range(n))

    def matching(pattern, flags=0):
        hit = bytearray(n)
        for m in regex.finditer(pattern, everything, flags):
            hit[ord(m.group())] = 1
        return hit

    letter = matching(r"[\p{L}]", regex.IGNORECASE)
    number = matching(r"[\p{N}]", regex.IGNORECASE)
    other = matching(r"[^\s\p{L}\p{N}]", regex.IGNORECASE)
    space = matching(r"\s")
    unassigned_regex = matching(r"\p{Cn}")
    pretok = []
    for cp in range(n):
        kinds = letter[cp] + number[cp] + other[cp]
        assert kinds <= 1, hex(cp)
        pretok.append("L" if letter[cp] else "N" if number[cp] else "O" if other[cp] else "S")

    # Python's final-sigma rule looks back and forth past case-ignorable characters for a
    # cased one: probe each code point in those contexts.
    sigma = []
    for cp in range(n):
        c = chr(cp)
        if 0xD800 <= cp <= 0xDFFF:
            sigma.append("O")
        elif (c + "\u03a3").lower()[-1] == "\u03c2":
            sigma.append("C")  # cased, not case-ignorable
        elif ("A" + c + "\u03a3").lower()[-1] == "\u03c2":
            sigma.append("I")  # case-ignorable
        else:
            sigma.append("O")

    lower = {cp: chr(cp).lower() for cp in range(n)
             if not 0xD800 <= cp <= 0xDFFF and chr(cp).lower() != chr(cp)}
    nfc = {cp: unicodedata.normalize("NFC", chr(cp)) for cp in range(n)
           if not 0xD800 <= cp <= 0xDFFF and unicodedata.normalize("NFC", chr(cp)) != chr(cp)}
    numeric = {}
    for cp in list(range(n)) + [n, 0xFFFFFFFF + 0x42]:
        got = html.unescape("&#%d;" % cp)
        if cp >= n or 0xD800 <= cp <= 0xDFFF or got != chr(cp):
            numeric[cp] = got
    # The characters of the pattern's literal alternatives, and what each matches under
    # IGNORECASE.
    literal_chars = sorted(set("<|startoftext|><|endoftext|>'s't're've'm'll'd"))
    literal_fold = {c: [m.start() for m in regex.finditer(regex.escape(c), everything, regex.IGNORECASE)]
                    for c in literal_chars}
    return {
        "literal_fold": literal_fold,
        "utf8_replace_sha256": utf8_replace_hashes(),
        "python": sys.version.split()[0],
        "unicodedata_version": unicodedata.unidata_version,
        "regex_version": regex.__version__,
        "pretokenize_class": runs(pretok),
        "whitespace_regex": runs(space),
        "isspace": runs([int(chr(cp).isspace()) for cp in range(n)]),
        "unassigned_unicodedata": runs([int(unicodedata.category(chr(cp)) == "Cn") for cp in range(n)]),
        "unassigned_regex": runs(unassigned_regex),
        "sigma_context": runs(sigma),
        "lower": {str(k): v for k, v in lower.items()},
        "nfc": {str(k): v for k, v in nfc.items()},
        "html_named": html.entities.html5,
        "html_numeric": {str(k): v for k, v in numeric.items()},
    }


def main():
    tok = ClipTokenizer(MERGES)
    assert len(tok.vocab) == 49408 and tok.encoder["<|startoftext|>"] == START
    cases = [(name, text.encode("utf-8")) for name, text in PROMPTS] + INVALID_UTF8
    goldens = []
    for name, raw in cases:
        text = raw.decode("utf-8", errors="replace")
        ids = tok.encode(text)
        goldens.append({
            "name": name,
            "hex": raw.hex(),
            "text": text,
            "encode": ids,
            "tokenize": tok.tokenize(text),
            "tokenize_8": tok.tokenize(text, 8),
            "decode": tok.decode(ids),
        })
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "clip_goldens.json"), "w", encoding="utf-8") as f:
        json.dump(goldens, f, ensure_ascii=True, indent=1)
        f.write("\n")
    print("clip_goldens.json: %d prompts, %d to %d ids" % (
        len(goldens), min(len(g["encode"]) for g in goldens), max(len(g["encode"]) for g in goldens)))
    with open(os.path.join(OUT, "clip_unicode.json"), "w", encoding="utf-8") as f:
        json.dump(unicode_tables(tok), f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    print("clip_unicode.json written")


if __name__ == "__main__":
    main()
