#!/usr/bin/env bash
# deploy/gpu-host/train-rows.sh OUT: the data-parallel training rows of the must-show table, in one run
# (rows 1 and 2 about 3 minutes on the GPU host: 16 cores, one GPU, the bundle of deploy/gpu-host/bundle.sh in .bundle;
# row 3 about 2.5 minutes under a 9-minute limit, so it takes a device call of its own: ROWS="1 2", then ROWS=3):
#
#   1. mamba-130m shape, 8 x 2048 tokens a step, P = 1 executor with the GPU and all CORES cores:
#      step_s against compute_s (bin/mamba bench-train-job; goal step_s <= 1.3 x compute_s)
#   2. tokens/s at P = 2 against P = 1 executors at equal global batch, each executor its own CORES/2 cores, on
#      the CPU (P = 2 uses twice the cores of P = 1; goal >= 1.8x): mamba-130m shape, 8 x 256 tokens a step
#   3. mamba-1.4b shape, one training step through TrainJob with the driver at -Xmx4g (DRIVER_HEAP), one CPU
#      executor with all CORES cores (GPU training refuses models that need staged weights, as 1.4b in fp32
#      does). The driver holds neither the weights nor AdamW's moments: the executor draws its slices, steps and
#      writes the checkpoint (model-0000i-of-0000n.safetensors + index, 1 GB files) from its tasks.
#
# Each row runs under its own time limit and prints its lines whatever the others do; OUT gets the logs, and for
# rows 1 and 2 Spark's event logs (OUT/events-rowN) with a line per stage from stage-times.py (OUT/rowN-stages.txt).
# Environment: CORES (16), ROWS ("1 2 3"), DRIVER_HEAP (4g), EXECUTOR_MB (row 3: 100000, of the host's 125 GB), GPUS (1; 0: row 1 on
# the CPU), SMALL=1 for a dry run on a small machine (small models, short sequences: checks the script, not the
# numbers).
# On a machine without the bundle: MAMBA_CP="$(cat jobs/target/cli-classpath.txt):$PWD/jobs/target/classes".
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ $# -ge 1 ] || { sed -n '2,20p' "$0"; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
if [ -z "${MAMBA_CP:-}" ]; then
  # shellcheck disable=SC1091
  source "$root/${BUNDLE_DIR:-.bundle}/env.sh"
fi
export MAMBA_CP SPARK_LOCAL_IP=127.0.0.1
# shellcheck source=bin/jvm-options.sh
source "$root/bin/jvm-options.sh"
# shellcheck source=bin/jvm-signals.sh
source "$root/bin/jvm-signals.sh"
cores=${CORES:-16}
half=$((cores / 2 > 0 ? cores / 2 : 1))
gpus=${GPUS:-1}
small=${SMALL:-0}
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }

# bench ROW LIMIT_S cpu|gpu ARGS...: bench-train-job in a JVM of its own (the driver; its executors are separate
# JVMs), with Spark's event log in OUT/events-ROW
bench() {
  local events="$out/events-$1" limit=$2 gpu_opts=()
  shift 2
  rm -rf "$events" && mkdir -p "$events"
  if [ "$1" = gpu ]; then
    gpu_opts=(-Dspark.worker.resource.gpu.amount=1 -Dspark.executor.resource.gpu.amount=1
      -Dspark.task.resource.gpu.amount=1 -Dspark.worker.resource.gpu.discoveryScript="$root/deploy/gpu-discovery.sh")
  fi
  shift
  timeout "$limit" java -Xmx8g "$MAMBA_VECTOR_MODULE" ${MAMBA_MEMORY_OPTS[@]+"${MAMBA_MEMORY_OPTS[@]}"} "${MAMBA_JAVA17_OPENS[@]}" \
    -Dlog4j2.configurationFile="$root/conf/log4j2.properties" -Dspark.executorEnv.LD_PRELOAD="${LD_PRELOAD:-}" \
    -Dspark.eventLog.enabled=true -Dspark.eventLog.dir="file://$events" \
    "${gpu_opts[@]+"${gpu_opts[@]}"}" -cp "$MAMBA_CP" org.mambaspark.cli.MambaCli bench-train-job "$@"
}
# the P=... lines of a bench log, and the ratio the row is about
bench_lines() { grep -E '^(model|P=)' "$1" || { tail -20 "$1"; echo "!! no bench line: $1"; }; }
# the stages of a row's event logs, into OUT/rowN-stages.txt, and their step phases on the output
stage_lines() {
  python3 "$root/deploy/gpu-host/stage-times.py" "$out/events-row$1"/* > "$out/row$1-stages.txt" 2>&1 || true
  grep -E '^#|step [0-9]+:' "$out/row$1-stages.txt" | grep -v checkpoint || true
}
field() { grep "^P=$2 " "$1" | grep -o "$3=[0-9.]*" | cut -d= -f2; }

for row in ${ROWS:-1 2 3}; do
  case "$row" in
  1)
    if [ "$small" = 1 ]; then
      args=(--hidden-size 64 --layers 2 --global-batch 8 --seq-len 64 --micro-batch 4)
    else
      args=(--preset mamba-130m --global-batch 8 --seq-len 2048 --micro-batch 4)
    fi
    backend=cpu
    [ "$gpus" != 0 ] && backend=gpu
    stamp "row 1: ${args[*]}, P=1, $backend, executor cores $cores"
    bench row1 240 "$backend" --executors 1 --executor-cores "$cores" --steps 2 --warmup 1 \
      --executor-memory-mb $((small == 1 ? 1024 : 40000)) --executor-java-options "-Dmamba.backend=$backend" \
      "${args[@]}" > "$out/row1.log" 2>&1 || echo "!! row 1 ended with status $?"
    bench_lines "$out/row1.log"
    stage_lines 1
    s=$(field "$out/row1.log" 1 step_s) c=$(field "$out/row1.log" 1 compute_s)
    [ -n "$s" ] && [ -n "$c" ] && awk -v s="$s" -v c="$c" \
      'BEGIN { printf "row 1: step_s / compute_s = %.2f (goal <= 1.3)\n", s / c }'
    ;;
  2)
    if [ "$small" = 1 ]; then
      args=(--hidden-size 64 --layers 2 --global-batch 8 --seq-len 64 --micro-batch 2)
    else
      args=(--preset mamba-130m --global-batch 8 --seq-len 256 --micro-batch 2)
    fi
    stamp "row 2: ${args[*]}, P=1,2, CPU, $half cores an executor"
    bench row2 300 cpu --executors 1,2 --executor-cores "$half" --steps 2 --warmup 1 \
      --executor-memory-mb $((small == 1 ? 1024 : 24000)) --executor-java-options -Dmamba.backend=cpu \
      "${args[@]}" > "$out/row2.log" 2>&1 || echo "!! row 2 ended with status $?"
    bench_lines "$out/row2.log"
    stage_lines 2
    a=$(field "$out/row2.log" 1 tokens_per_s) b=$(field "$out/row2.log" 2 tokens_per_s)
    [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" \
      'BEGIN { printf "row 2: tokens/s P=2 / P=1 = %.2f (goal >= 1.8)\n", b / a }'
    ;;
  3)
    preset=mamba-1.4b V=50280 L=128 heap=${DRIVER_HEAP:-4g} mb=${EXECUTOR_MB:-100000}
    [ "$small" = 1 ] && preset=tiny V=256 L=32 heap=${DRIVER_HEAP:-512m} mb=1024
    python3 - "$out/ids.jsonl" "$V" "$L" <<'PY'
import random, sys
random.seed(3)
V, L = int(sys.argv[2]), int(sys.argv[3])
with open(sys.argv[1], "w") as f:
    for _ in range(4):
        f.write('{"input_ids": [%s]}\n' % ", ".join(str(random.randrange(V)) for _ in range(L)))
PY
    stamp "row 3: TrainJob --preset $preset, 1 step of 2 x $L tokens, driver -Xmx$heap, 1 CPU executor of $cores cores"
    rm -rf "$out/run-1.4b"
    status=0
    MAMBA_JAVA_OPTS="-Xmx$heap" EXECUTOR_MB=$mb EXECUTOR_CORES=$cores EXECUTOR_JAVA_OPTS=-Dmamba.backend=cpu \
      timeout 540 "$root/deploy/gpu-host/train-executors.sh" 1 0 --preset "$preset" --input "$out/ids.jsonl" \
      --output "$out/run-1.4b" --steps 1 --global-batch 2 --micro-batch 1 --seq-len "$L" --partitions 1 \
      --no-chart > "$out/row3.log" 2>&1 || status=$?
    grep -E 'TrainJob: step |sharded AdamW|^error:|OutOfMemory|out of memory' "$out/row3.log" | cut -c1-300 ||
      tail -20 "$out/row3.log"
    written=
    if [ -f "$out/run-1.4b/model.safetensors" ] || [ -f "$out/run-1.4b/model.safetensors.index.json" ]; then
      written=", model written ($(du -sh "$out/run-1.4b" | cut -f1) in all)"
    fi
    echo "row 3: exit status $status$written"
    ;;
  esac
done
stamp done
