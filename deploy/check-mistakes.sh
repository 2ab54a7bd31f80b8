#!/usr/bin/env bash
# A new user's mistakes, each run for real through bin/mamba (called by deploy/check.sh, which CI runs): each must
# end in one "error: ..." line naming what is wrong (no stack trace) and a non-zero exit, and a previous output
# must come through intact. Also: a relative model path on a multi-JVM master works (scoring and training), and a
# token id outside the vocabulary fails its row only.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
fail() { echo "check-mistakes: $*" >&2; exit 1; }

# A small corpus and a good output to protect.
head -n 3 data/sample.jsonl > "$work/in.jsonl"
out="$work/scores"
bin/mamba score --model models/pycode-bytes --input "$work/in.jsonl" --output "$out" --output-format json \
  --progress-interval 0 > "$work/good.log" 2>&1 || { cat "$work/good.log"; fail "the good run failed"; }
fingerprint() { (cd "$out" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
before=$(fingerprint)

# expect_error WHAT COMMAND...: one error line, no stack trace, non-zero exit, the output untouched.
expect_error() {
  local what="$1" log="$work/run.log" status=0
  shift
  "$@" > "$log" 2>&1 || status=$?
  [ "$status" -ne 0 ] || { cat "$log"; fail "$what: exit status 0"; }
  if grep -Eq '^[[:space:]]+at |Exception|Caused by' "$log"; then cat "$log"; fail "$what: a stack trace"; fi
  [ "$(grep -c '^error: ' "$log")" -eq 1 ] || { cat "$log"; fail "$what: not exactly one error line"; }
  [ "$(fingerprint)" = "$before" ] || fail "$what: the previous output changed"
  printf '%-34s exit %d: %s\n' "$what" "$status" "$(grep '^error: ' "$log" | cut -c1-220)"
}
score() { bin/mamba score --input "$work/in.jsonl" --output-format json --progress-interval 0 "$@"; }

cp -r models/pycode-bytes "$work/truncated"
truncate -s 100000 "$work/truncated/model.safetensors"
expect_error "truncated weights, --overwrite" score --model "$work/truncated" --output "$out" --overwrite

cp -r models/pycode-bytes "$work/lying"
# the header says the first tensor is longer than its bytes: same file size, offsets that lie
python3 - "$work/lying/model.safetensors" <<'PY'
import json, struct, sys
path = sys.argv[1]
data = open(path, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
name = next(k for k in header if k != "__metadata__")
shape = header[name]["shape"]
header[name]["shape"] = [shape[0] - 1] + shape[1:]  # one row fewer than its bytes hold
text = json.dumps(header, separators=(",", ":")).encode().ljust(n)  # padded with spaces, as allowed
assert len(text) == n, "header grew"
open(path, "wb").write(data[:8] + text + data[8 + n:])
PY
expect_error "header lies about a shape" score --model "$work/lying" --output "$out" --overwrite

cp -r models/pycode-bytes "$work/wrong-config"
sed -i 's/"num_hidden_layers": *[0-9]*/"num_hidden_layers": 5/' "$work/wrong-config/config.json"
expect_error "config.json disagrees" score --model "$work/wrong-config" --output "$out" --overwrite
expect_error "unknown --master" score --model models/pycode-bytes --output "$out" --overwrite --master lokal
touch "$work/a-file"
expect_error "unwritable output" score --model models/pycode-bytes --output "$work/a-file/scores"
expect_error "existing output, no --overwrite" score --model models/pycode-bytes --output "$out"
MAMBA_JAVA_OPTS=-Xmx200m expect_error "too little heap" score --model models/pycode-bytes --output "$out" --overwrite
expect_error "missing input" bin/mamba score --model models/pycode-bytes --input "$work/nothing.jsonl" \
  --output "$out" --overwrite
expect_error "misspelt flag" score --model models/pycode-bytes --output "$out" --overwrite --batch-sise 8
# training in local mode: the driver's JVM is the executor too and holds the weights and moments (12 bytes a
# parameter; on separate executors it holds neither); --overwrite deletes nothing before its first checkpoint
MAMBA_JAVA_OPTS=-Xmx600m expect_error "train: driver heap, --overwrite" bin/mamba train --preset mamba-130m \
  --input "$work/in.jsonl" --output "$out" --overwrite --steps 1 --global-batch 1 --seq-len 16

# A token id outside the vocabulary: that row gets the error, the others their scores.
printf '{"id": 1, "input_ids": [1, 2, 3]}\n{"id": 2, "input_ids": [1, 999, 3]}\n' > "$work/ids.jsonl"
bin/mamba score --model models/pycode-bytes --input "$work/ids.jsonl" --output "$work/ids-scores" --output-format json \
  --progress-interval 0 > "$work/ids.log" 2>&1 \
  || { cat "$work/ids.log"; fail "token ids: the job failed"; }
oov=$(cat "$work/ids-scores"/*.json | python3 -c '
import json, sys
rows = {r["id"]: r for r in map(json.loads, sys.stdin)}
assert rows[1]["error"] is None and rows[1]["loss"] > 0, rows[1]
assert rows[2]["loss"] is None and "outside the vocabulary" in rows[2]["error"], rows[2]
print(rows[2]["error"])')
printf '%-34s row 2 only: %s\n' "token id outside the vocabulary" "$oov"

# A relative model path on a master with separate executor JVMs: qualified on the driver, found by them.
rel_out="target/check-mistakes-$$"
score --model models/pycode-bytes --output "$rel_out" --master 'local-cluster[1,1,1024]' > "$work/lc.log" 2>&1 \
  || { cat "$work/lc.log"; fail "relative model path on local-cluster failed"; }
rows=$(cat "$rel_out"/*.json | wc -l)
rm -rf "$rel_out"
[ "$rows" -eq 3 ] || fail "local-cluster: expected 3 rows, got $rows"
printf '%-34s %s\n' "relative --model, local-cluster" "$(grep '^mamba score:' "$work/lc.log" | cut -c1-120)"
# A relative --init for training on a master with separate executor JVMs: they tokenize the text too.
bin/mamba train --init models/pycode-bytes --input "$work/in.jsonl" --output "$work/trained" --steps 1 --global-batch 2 \
  --micro-batch 1 --seq-len 64 --partitions 1 --no-chart --master 'local-cluster[1,1,1024]' > "$work/train.log" 2>&1 \
  || { cat "$work/train.log"; fail "train with a relative --init on local-cluster failed"; }
printf '%-34s %s\n' "relative --init, local-cluster" "$(grep -o 'step 1/1 .*' "$work/train.log")"
[ "$(fingerprint)" = "$before" ] || fail "the previous output changed"
echo "check-mistakes: every mistake gave one error line and a non-zero exit; the previous output is intact"
