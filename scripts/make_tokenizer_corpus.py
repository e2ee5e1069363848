#!/usr/bin/env python3
"""Writes tests/data/tokenizer_mix.txt: a deterministic mixed corpus (> 200 KB) for the tokenizer.json
tests and benchmark: English prose, C, Python and JSON, CJK, Arabic, Devanagari, Cyrillic, Thai, emoji
(ZWJ sequences, skin tones, flags), runs of spaces, tabs and newlines ("\\r\\n" too), long digit runs,
contractions in both cases, special-token strings of several families, and odd but valid Unicode
(combining marks, U+FFFD, joiners, private use, NFC next to NFD, BOM, bidi marks, variation selectors).

Paragraphs are separated by one empty line; every line is valid UTF-8 and none holds NUL.
usage: make_tokenizer_corpus.py [OUT]   (default tests/data/tokenizer_mix.txt); same output every run."""
import random
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 210_000  # bytes

WORDS = ("the a of and to in is was for on with as by at from that this it he she they we you time "
         "people year way day thing man world life hand part child eye woman place work week case point "
         "government company number group problem fact river mountain letter morning garden kitchen window "
         "quickly slowly quietly carefully suddenly finally perhaps almost always never often "
         "walked opened carried noticed remembered explained wondered decided promised believed "
         "bright narrow ancient gentle curious heavy hollow silver wooden distant").split()
NAMES = ["Alice", "Bob", "Carol", "Dmitri", "Eun-ji", "Fatima", "Gustav", "Hiroshi", "Ines", "Jamal", "O'Brien",
         "McAllister", "DeLorean", "van der Berg", "São Paulo", "Zürich", "Kraków", "Reykjavík"]
CONTRACTIONS = ["it's", "don't", "they're", "we've", "I'm", "you'll", "she'd", "IT'S", "DON'T", "THEY'RE",
                "WE'VE", "I'M", "YOU'LL", "SHE'D", "It'S", "cAn'T", "o'clock", "rock 'n' roll", "'twas",
                "the dog's bone", "James' hat", "'quoted'", "l'homme", "y'all'd've"]
SCRIPTS = [
    "中文分词测试：今天天气很好，我们去公园散步吧。",
    "機械学習のモデルは大量のテキストで訓練されます。ひらがなとカタカナ、漢字が混ざっています。",
    "한국어 문장은 띄어쓰기를 사용합니다. 토크나이저가 잘 처리하는지 확인해 봅시다.",
    "اللغة العربية تُكتب من اليمين إلى اليسار، وفيها حروف متصلة وتشكيل مثل الفَتحة والضَمّة.",
    "हिन्दी देवनागरी लिपि में लिखी जाती है। क्या यह वाक्य सही ढंग से टोकन होगा?",
    "Русский текст: съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Українська мова: Ґанок, їжак, єнот — усі літери на місці.",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ ทำให้การตัดคำเป็นเรื่องยาก",
    "Ελληνικά: Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "עברית נכתבת מימין לשמאל, כמו ערבית.",
    "Tiếng Việt có nhiều dấu: Tôi yêu tiếng nước tôi từ khi mới ra đời.",
    "Türkçe: Pijamalı hasta yağız şoföre çabucak güvendi.",
    "বাংলা লিপিতে লেখা একটি বাক্য।", "தமிழ் ஒரு பழமையான மொழி.", "ქართული ანბანი ლამაზია.",
    "Հայերեն այբուբենը ստեղծել է Մեսրոպ Մաշտոցը։", "አማርኛ በግዕዝ ፊደል ይጻፋል።",
]
EMOJI = ["😀", "🙂", "🎉", "🚀", "❤️", "👍", "👍🏻", "👍🏽", "👍🏿", "👩‍💻", "👨‍👩‍👧‍👦", "🧑🏾‍🚀", "🏳️‍🌈", "🏴‍☠️",
         "🇯🇵", "🇺🇸", "🇧🇷", "👁️‍🗨️", "🤷🏼‍♀️", "🫶🏽", "😶‍🌫️", "❤️‍🔥", "🐕‍🦺", "1️⃣", "#️⃣", "©️", "™"]
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>",
            "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<unk>", "[INST]", "[/INST]",
            "<|reserved_special_token_5|>", "<BOS_TOKEN>", "<|START_OF_TURN_TOKEN|>", "<｜begin▁of▁sentence｜>",
            "<|im_start|>system\nYou are helpful.<|im_end|>", "<<SYS>>", "<|python_tag|>", "[TOOL_CALLS]"]
ODD = ["e\u0301", "a\u0300\u0323", "n\u0303", "\u1100\u1161\u11a8", "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d",
       "\ufffd", "x\u200dy", "a\u200cb", "\u200b", "\u2060", "\ufeff", "\ue000\ue123\uf8ff", "\U000f0000\U0010fffd",
       "\u202ertl\u202c", "\u200f\u200e", "\u00a0\u2009\u3000", "\ufe0f", "\u2028", "\u0085", "\U0001d400\U0001d7ff",
       "\u00ad", "\ufb01", "\u2126\u212b\u212a", "\u1e9b\u0323", "\u0130\u0131", "ß\u1e9e", "\u00bd\u2155"]


def sentence(r):
    words = [r.choice(WORDS) for _ in range(r.randint(4, 16))]
    if r.random() < 0.5:
        words.insert(r.randrange(len(words)), r.choice(NAMES))
    if r.random() < 0.5:
        words.insert(r.randrange(len(words)), r.choice(CONTRACTIONS))
    s = " ".join(words)
    return s[0].upper() + s[1:] + r.choice([".", ".", "!", "?", ";", "...", " —", ":"])


def prose(r):
    return " ".join(sentence(r) for _ in range(r.randint(1, 5)))


def ident(r):
    return r.choice(["buf", "len", "n_tokens", "self", "ctx", "i", "kv_cache", "x_1", "__init__", "HTTPServer"])


def c_code(r):
    a, b = ident(r), ident(r)
    return [f"static int {a}_{r.randint(0, 99)}(const char *{b}, size_t n)", "{",
            f"    for (size_t i = 0; i < n; i++) {{", f"        if ({b}[i] == '\\n' && i + 1 < n) return -{r.randint(1, 9)};",
            "\t\t/* tab-indented comment */", f"        total += {b}[i] * 0x{r.getrandbits(32):08X}u;", "    }",
            f"    return (int)(n >> {r.randint(1, 7)});", "}"]


def py_code(r):
    a = ident(r)
    return [f"def {a}(items: list[int], *, scale={r.random():.3f}) -> dict:", '    """Docstring with \'quotes\'."""',
            f"    out = {{k: v ** {r.randint(2, 5)} for k, v in enumerate(items) if v != {r.randint(0, 9)}}}",
            "    if not out:", "        raise ValueError(f\"empty: {items!r}\")", "", "    return out  # done"]


def json_lines(r):
    return ["{", f'  "id": {r.randint(0, 10**12)},', f'  "name": "{r.choice(NAMES)}",',
            f'  "tags": ["a", "b\\u00e9", "{r.choice(EMOJI)}"],', f'  "score": {r.uniform(-1e6, 1e6):.6e},',
            '  "nested": {"ok": true, "none": null, "path": "C:\\\\Users\\\\x"}', "}"]


def digits(r):
    n = r.choice([1, 2, 3, 4, 5, 7, 12, 20, 33, 64, 100])
    return "".join(r.choice("0123456789") for _ in range(n))


def mixed_line(r):
    kinds = [prose, lambda r: r.choice(SCRIPTS), lambda r: "".join(r.choice(EMOJI) for _ in range(r.randint(1, 6))),
             digits, lambda r: r.choice(SPECIALS), lambda r: r.choice(ODD),
             lambda r: " " * r.randint(1, 17), lambda r: "\t" * r.randint(1, 4),
             lambda r: r.choice(CONTRACTIONS), lambda r: unicodedata.normalize(r.choice(["NFD", "NFC", "NFKD"]),
                                                                              r.choice(SCRIPTS + NAMES))]
    parts = [r.choice(kinds)(r) for _ in range(r.randint(1, 6))]
    return r.choice(["", " ", "  "]).join(parts)


def paragraph(r):
    kind = r.randrange(8)
    if kind == 0:
        lines = c_code(r)
    elif kind == 1:
        lines = py_code(r)
    elif kind == 2:
        lines = json_lines(r)
    elif kind == 3:
        lines = [prose(r) for _ in range(r.randint(2, 6))]
    elif kind == 4:
        lines = [r.choice(SCRIPTS) + " " + r.choice(SCRIPTS) for _ in range(r.randint(1, 4))]
    else:
        lines = [mixed_line(r) for _ in range(r.randint(2, 8))]
    if r.random() < 0.25:  # Windows line ends: "\r" stays at the end of each line
        lines = [x + "\r" for x in lines]
    if r.random() < 0.15:  # runs of newlines inside a paragraph
        lines.insert(r.randrange(len(lines) + 1), "\r" * r.randint(1, 3))
    if r.random() < 0.2:
        lines.append(" " * r.randint(2, 40) + r.choice(["", "\t", "x"]))
    return "\n".join(lines)


def fixed_head():
    """Hand-written lines first: each case once, whatever the random part does."""
    return "\n".join([
        "Hello world", " Hello world", "Hello World", "HELLO WORLD", "hello   world  ", "\t\ttabs\tand spaces  \t",
        "I'm sure it's fine, they're here, we've seen it, you'll see, he'd know, that'll do.",
        "I'M SURE IT'S FINE, THEY'RE HERE, WE'VE SEEN IT, YOU'LL SEE, HE'D KNOW.",
        "3.14159265358979323846264338327950288419716939937510", "1234567890123456789012345678901234567890",
        "12,345,678.90 and 1e-9 and 0xDEADBEEF and 0b1011 and 1_000_000",
        "<|begin_of_text|>Hi<|eot_id|> <s>[INST] hi [/INST]</s> <|im_start|>user\nhey<|im_end|>",
        "<|begin_of_text|><|begin_of_text|> <|endoftext|><|endoftext|>",
        "<|begin_of_text", "begin_of_text|>", "< s>", "<s >", "<|im_start|",
        "café " + unicodedata.normalize("NFD", "café") + " Å Å Å",
        "\ufffd\ufffd replacement chars \ufffd", "zero\u200dwidth\u200cjoiners\u200b\u2060here",
        "👨‍👩‍👧‍👦 👍🏿 🏳️‍🌈 🇯🇵🇺🇸 🧑🏾‍🚀", "\ue000 private \U000f0001 use \U00100000",
        "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇", "   ", "\t", "\r", " \r", "a\rb", "x" * 300, "😀" * 50,
        "if (x) {\n\treturn y;\n}",
    ])


def build():
    r = random.Random(20260124)
    paras, size = [fixed_head()], 0
    while size < TARGET:
        p = paragraph(r)
        paras.append(p)
        size += len(p.encode()) + 2
    text = "\n\n".join(paras) + "\n"
    assert "\x00" not in text
    return text


def main(argv):
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "tests" / "data" / "tokenizer_mix.txt"
    text = build()
    out.write_bytes(text.encode("utf-8"))
    print(f"{out}: {len(text.encode())} bytes, {text.count(chr(10))} lines")


if __name__ == "__main__":
    main(sys.argv)
