"""Builds pycode-bytes' corpus from an installed CPython 3.11 standard library (PSF License).

python3 make_corpus.py [/usr/lib/python3.11] [OUTDIR]  ->  OUTDIR/train.jsonl, heldout.jsonl, sample.jsonl
"""
import hashlib
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "/usr/lib/python3.11"
out = sys.argv[2] if len(sys.argv) > 2 else "."
skip = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "lib2to3",
        "encodings", "config-3.11-x86_64-linux-gnu"}
files = []
for d, dirs, names in os.walk(root):
    dirs[:] = sorted(x for x in dirs if x not in skip)
    for f in sorted(names):
        if f.endswith(".py"):
            b = open(os.path.join(d, f), "rb").read()
            if 200 <= len(b) <= 200_000:
                try:
                    files.append((os.path.relpath(os.path.join(d, f), root), b.decode("utf-8")))
                except UnicodeDecodeError:
                    pass
held = lambda p: int(hashlib.sha256(p.encode()).hexdigest(), 16) % 100 < 3
for name, rows in (("train.jsonl", [r for r in files if not held(r[0])]),
                   ("heldout.jsonl", [r for r in files if held(r[0])])):
    with open(os.path.join(out, name), "w") as f:
        for p, t in rows:
            f.write(json.dumps({"path": p, "text": t}) + "\n")
# the sample: top-level def/class blocks of 300..2500 bytes of the held-out files, 40, round-robin by file
blocks = {}
for p, t in files:
    if not held(p):
        continue
    cur = []
    def flush():
        s = "\n".join(cur).rstrip() + "\n"
        if 300 <= len(s.encode()) <= 2500 and s.startswith(("def ", "class ")):
            blocks.setdefault(p, []).append(s)
    for line in t.split("\n"):
        if line.startswith(("def ", "class ", "@")) and not (cur and cur[-1].startswith("@")):
            flush()
            cur = []
        cur.append(line)
    flush()
sample, i = [], 0
while len(sample) < 40 and any(i < len(v) for v in blocks.values()):
    for p in sorted(blocks):
        if i < len(blocks[p]) and len(sample) < 40:
            sample.append((p, blocks[p][i]))
    i += 1
with open(os.path.join(out, "sample.jsonl"), "w") as f:
    for n, (p, t) in enumerate(sample):
        f.write(json.dumps({"id": n, "path": "Lib/" + p, "text": t}) + "\n")
