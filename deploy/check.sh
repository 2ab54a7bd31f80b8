#!/usr/bin/env bash
# Checks of deploy/ that can run here (called by .ci/run after the build): the DAG compiles, YAML and JSON parse,
# the notebook's cells are in order, the GPU discovery script prints valid JSON without GPUs and with a fake
# nvidia-smi, the submit wrapper runs a real score job through Spark's SparkSubmit in local mode,
# deploy/check-mistakes.sh runs a new user's mistakes, deploy/check-dag.sh the Airflow DAG's command, and
# deploy/check-standalone.sh the jobs on a real standalone cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
py=python3
$py -m py_compile deploy/airflow/mamba_dag.py
$py - <<'PY'
import json, sys
try:
    import yaml
except ImportError:
    sys.exit("deploy/check.sh: PyYAML missing (apt-get install python3-yaml)")
for f in ["deploy/k8s/train-sparkapplication.yaml", "deploy/k8s/score-scheduled.yaml"]:
    doc = yaml.safe_load(open(f))
    assert doc["kind"] in ("SparkApplication", "ScheduledSparkApplication"), f
nb = json.load(open("deploy/notebooks/mamba-pyspark.ipynb"))
heads = [c["source"].splitlines()[0] for c in nb["cells"] if c["cell_type"] == "markdown"]
want = ["# mamba-spark from PySpark", "## Register the Java UDFs", "## Score a DataFrame", "## SQL",
        "## The ML stage", "## The ML stage in a Spark NLP pipeline"]
assert heads == want, heads
for c in nb["cells"]:
    if c["cell_type"] == "code":
        compile(c["source"] if isinstance(c["source"], str) else "".join(c["source"]), "notebook cell", "exec")
print("deploy: DAG compiles, YAML and notebook parse, notebook sections in order, its code cells compile")
PY
for f in bin/mamba bin/jvm-signals.sh deploy/mamba-submit deploy/*.sh deploy/gpu-host/*.sh; do
  bash -n "$f"
done
jsig=$(unset LD_PRELOAD; source bin/jvm-signals.sh; echo "${LD_PRELOAD:-}")
[ -f "$jsig" ] || { echo "deploy/check.sh: bin/jvm-signals.sh found no libjsig.so ('$jsig')" >&2; exit 1; }
echo "deploy: shell scripts parse; JVM signal chaining preloads $jsig"
out=$(PATH=/usr/bin:/bin deploy/gpu-discovery.sh)
echo "$out" | $py -c 'import json,sys; d=json.load(sys.stdin); assert d["name"]=="gpu" and isinstance(d["addresses"], list), d'
fake=$(mktemp -d)
printf '#!/bin/sh\nprintf "0\\n1\\n"\n' > "$fake/nvidia-smi" && chmod +x "$fake/nvidia-smi"
out2=$(PATH="$fake:$PATH" deploy/gpu-discovery.sh)
echo "$out2" | $py -c 'import json,sys; d=json.load(sys.stdin); assert d=={"name":"gpu","addresses":["0","1"]}, d'
echo "deploy: discovery without GPUs: $out; with a fake nvidia-smi: $out2"
# the command docs/clusters.md shows
outdir=target/docs/submitted
deploy/mamba-submit --master 'local[2]' score --model models/pycode-bytes --input data/sample.jsonl --output target/docs/submitted --output-format json --overwrite \
  2>&1 | grep -E '^mamba-submit:|^mamba score:' | cut -c1-160
rows=$(cat "$outdir"/*.json | wc -l)
[ "$rows" -eq "$(wc -l < data/sample.jsonl)" ] || { echo "deploy: expected $(wc -l < data/sample.jsonl) rows, got $rows" >&2; exit 1; }
echo "deploy: mamba-submit ran the score job through SparkSubmit: $rows rows"
deploy/mamba-submit --help | grep -q '^set ' && { echo "deploy: mamba-submit --help prints code" >&2; exit 1; }
# a new user's mistakes: one error line each, the previous output intact
bash deploy/check-mistakes.sh
deploy/check-dag.sh
# a real standalone cluster: master, two workers, kill -9 of an executor, cluster mode
deploy/check-standalone.sh
