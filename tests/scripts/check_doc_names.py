#!/usr/bin/env python3
"""Every rlt_*/RLT_* name that README.md and docs/*.md mention exists in the
public headers (include/ and proto/*/include/), so the docs cannot drift
from the API again (issue 14, defect 8).

    check_doc_names.py SOURCE_DIR

Names of the build system count too: a CMake function or variable the
docs tell users about (rlt_proto_library) is defined in a CMakeLists.txt
or cmake/*.in file.

Skipped on purpose: internal names (rlt__*, which ARCHITECTURE.md
discusses), families written with a wildcard (`rlt_future_*`), and names
followed by '/' that shorten a list (`rlt_acceptor_open/next/close` checks
rlt_acceptor_open only: the others are not written out).
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
docs = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
headers = sorted((root / "include").rglob("*.h")) + sorted(root.glob("proto/*/include/**/*.h"))
# The test harness's helpers (tests/rlt_test.h), which docs/RELIABILITY.md
# documents for test authors.
headers += [root / "tests" / "rlt_test.h"]
cmake = [root / "CMakeLists.txt"] + sorted(root.glob("*/CMakeLists.txt")) + sorted(root.glob("cmake/*.in"))

# Identifiers a header defines or declares: any rlt_/RLT_ word in it
# (function, type, macro, enum constant or struct field type name).
NAME = re.compile(r"\b(?:rlt|RLT)_[A-Za-z0-9_]*[A-Za-z0-9]\b")
known = set()
for h in headers + [c for c in cmake if c.exists()]:
    known.update(NAME.findall(h.read_text(errors="replace")))

# A name in the docs: not internal (rlt__), not a wildcard family (rlt_x_*
# or rlt_x_<y>), and for a/b/c lists only the first, written in full.
DOC = re.compile(r"(?<![A-Za-z0-9_])((?:rlt|RLT)_(?!_)[A-Za-z0-9_]*[A-Za-z0-9])(?![A-Za-z0-9_]*[*<])")
missing = []
for d in docs:
    for lineno, line in enumerate(d.read_text(errors="replace").splitlines(), 1):
        for m in DOC.finditer(line):
            name = m.group(1)
            if name not in known:
                missing.append(f"{d.relative_to(root)}:{lineno}: {name}")

if missing:
    print("names in the docs that no public header declares:", file=sys.stderr)
    for m in missing:
        print("  " + m, file=sys.stderr)
    sys.exit(1)
print(f"ok: every rlt_/RLT_ name in {len(docs)} documents is in {len(headers)} public headers")
