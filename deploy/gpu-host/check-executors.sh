#!/usr/bin/env bash
# deploy/gpu-host/check-executors.sh OUT [EXECUTOR COUNTS ...]  (default counts: 1 2)
#
# Data-parallel training on GPUs with separate executor JVMs, compared. For each count E, the training job
# on local-cluster[E,1,...] (deploy/gpu-host/train-executors.sh) with one GPU per executor and E partitions:
# 3 steps, the same global batch (G = 8 sequences of L = 2048 ids, micro-batches of 4), the same
# mamba-130m-shaped initialisation and data. Then every run's weights against the first run's
# (bin/mamba compare, tolerance 1e-5), the step times from each metrics.jsonl, and which OpenCL device each
# executor bound (from the executors' logs). On a host with one GPU the executors share it.
# Environment: PRESET (mamba-130m) or INIT (a checkpoint directory), G, L, MICRO (4), STEPS (3), GPUS (1 a
# executor; 0: no GPU resources, for a dry run on a machine without GPUs).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ $# -ge 1 ] || { sed -n '2,11p' "$0"; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
shift
counts=${*:-1 2}
# shellcheck disable=SC1091
source "$root/${BUNDLE_DIR:-.bundle}/env.sh"
G=${G:-8} L=${L:-2048} MICRO=${MICRO:-4} STEPS=${STEPS:-3}
cli() { java --add-modules=jdk.incubator.vector -cp "$MAMBA_CP" org.mambaspark.cli.MambaCli "$@"; }
init=${INIT:-$out/init}
if [ ! -f "$init/config.json" ]; then
  cli init --out "$init" --preset "${PRESET:-mamba-130m}" --tokenizer none --seed 1 2>&1 | grep -v '^WARNING'
fi
V=$(grep -o '"vocab_size": *[0-9]*' "$init/config.json" | grep -o '[0-9]*$')
RANDOM=7 # the same ids every time
{
  for ((r = 0; r < G; r++)); do
    printf '{"input_ids": ['
    sep=""
    for ((t = 0; t < L; t++)); do
      printf '%s%d' "$sep" $(((RANDOM * 32768 + RANDOM) % V))
      sep=,
    done
    printf ']}\n'
  done
} > "$out/in.jsonl"
first=""
for e in $counts; do
  rm -rf "$out/run-$e" "$out/executors-$e.log"
  t0=$(date +%s)
  EXECUTOR_JAVA_OPTS="-Dlog4j2.configurationFile=$root/deploy/gpu-host/log4j2-executor.properties \
-Dmamba.executor.log=$out/executors-$e.log" \
  "$root/deploy/gpu-host/train-executors.sh" "$e" "${GPUS:-1}" --init "$init" --input "$out/in.jsonl" \
    --output "$out/run-$e" --steps "$STEPS" --global-batch "$G" --micro-batch "$MICRO" --seq-len "$L" \
    --lr 1e-3 --warmup-steps 0 --schedule constant --weight-decay 0.1 --clip-grad 1.0 --seed 0 \
    --partitions "$e" > "$out/run-$e.log" 2>&1 || echo "!! the run with $e executor(s) failed: $out/run-$e.log"
  echo "== $e executor(s), $e partition(s): $(($(date +%s) - t0)) s wall"
  grep -E 'TrainJob: step ' "$out/run-$e.log" | sed 's/^.*TrainJob: /  /'
  sed 's/^/  /' "$out/run-$e/metrics.jsonl" | cut -c1-400
  # what each executor JVM bound
  grep -E 'backend|training model|GPU|fall' "$out/executors-$e.log" 2>/dev/null | sed 's/^/  executor: /' |
    cut -c1-300 || true
  if [ -z "$first" ]; then
    first=$e
  else
    cli compare --a "$out/run-$e" --b "$out/run-$first" --tolerance 1e-5 2>&1 | grep -v '^WARNING' || true
  fi
done
