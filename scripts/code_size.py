#!/usr/bin/env python3
"""Checks the size rules of ARCHITECTURE.md: no file in base/, server/, engine/ or tokenizer/ (jinja/ too) over 500 lines, no function
outside kernels/ over 60 lines. A function is counted from the line of its opening brace at column 0 to
the line of its closing brace at column 0 (how every function here is formatted), braces inside strings,
characters and comments ignored. Prints the offenders and exits 1 if there are any; -v lists the largest."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE, MAX_FUNC = 500, 60


def strip(text):
    """The text with comments, strings and character literals blanked (newlines kept)."""
    pat = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
    return pat.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def functions(path):
    """(name, first line, lines) of each top-level function body in a C file."""
    lines = strip(path.read_text()).split("\n")
    out, depth, start, name = [], 0, None, None
    for i, line in enumerate(lines):
        if depth == 0 and line.startswith("{"):
            head = " ".join(lines[max(0, i - 3):i])
            m = re.findall(r"(\w+)\s*\(", head)
            if m and not re.search(r"\b(struct|enum|union)\s+\w*\s*$", head.strip()) and ")" in head:
                start, name = i, m[0] if m[0] not in ("static", "inline") else m[-1]
        depth += line.count("{") - line.count("}")
        if depth == 0 and start is not None and line.startswith("}"):
            out.append((name, start + 1, i - start + 1))
            start = None
    return out


def main():
    verbose = "-v" in sys.argv
    bad, funcs = [], []
    for d in ("base", "server", "engine", "engine/grammar", "tokenizer", "tokenizer/jinja"):
        for f in sorted((ROOT / d).glob("*.c")):
            n = f.read_text().count("\n")
            if n > MAX_FILE:
                bad.append(f"{f.relative_to(ROOT)}: {n} lines (at most {MAX_FILE})")
            for name, line, size in functions(f):
                funcs.append((size, f"{f.relative_to(ROOT)}:{line} {name}"))
                if size > MAX_FUNC:
                    bad.append(f"{f.relative_to(ROOT)}:{line}: {name}() has {size} lines (at most {MAX_FUNC})")
    if verbose:
        for size, where in sorted(funcs, reverse=True)[:15]:
            print(f"{size:5d} {where}")
    for b in bad:
        print(b)
    print(f"code size: {len(funcs)} functions in base/, server/, engine/ (and grammar/), tokenizer/ (and jinja/); {len(bad)} over the limits")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
