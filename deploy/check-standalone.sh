#!/usr/bin/env bash
# A real Spark standalone cluster on this machine, and the jobs submitted to it the way a user does
# (deploy/mamba-submit --master spark://...). The master and two workers are separate JVMs started from the Spark
# jars Maven resolved: the workers' SPARK_HOME is a folder whose jars/ holds those jars less what the job jar
# bundles itself (our code, DJL, Aparapi, picocli, JFreeChart, Spark NLP), as on a cluster where Spark is installed
# and the application brings the rest. Loopback only, free ports; everything it started is stopped on exit.
#
# Checks: score on the bundled corpus (rows in = rows out, ids unique); train 2 steps (the driver's step lines
# name the executors that computed the gradients, never the driver); the score job on a larger copy of the corpus
# with one executor JVM killed (kill -9) mid-job: every row once, losses as in an undisturbed run; --deploy-mode
# cluster: a good run writes its rows and exits 0, a failing driver makes mamba-submit exit non-zero.
#
#   deploy/check-standalone.sh            (2 minutes on 2 cores, 4 under load; needs the build: mvn package)
#   KEEP=1 deploy/check-standalone.sh     keeps the work folder (logs of the master, workers, executors, drivers)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=bin/jvm-options.sh
source bin/jvm-options.sh
work=$(mktemp -d)
daemons=()
fail() {
  echo "check-standalone: $*" >&2
  exit 1
}
# The JVMs this script started and the executor and driver JVMs their workers started (found by their working
# folder, which is under $work), each stopped by its id.
cleanup() {
  local status=$? p pids=()
  for p in $(pgrep -f 'CoarseGrainedExecutorBackend|DriverWrapper' || true); do
    case "$(readlink "/proc/$p/cwd" 2>/dev/null)" in "$work"/*) pids+=("$p") ;; esac
  done
  for p in "${daemons[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${daemons[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ] || [ "$status" -ne 0 ]; then
    echo "check-standalone: logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

jar="$root/jobs/target/mamba-spark-0.1.0-SNAPSHOT.jar"
[ -f "$jar" ] && [ -f jobs/target/cli-classpath.txt ] || fail "build first: mvn -B -ntp -DskipTests package"

# A Spark installation from the jars Maven resolved.
spark_home="$work/spark"
mkdir -p "$spark_home/jars"
tr ":" "\n" < jobs/target/cli-classpath.txt | while read -r j || [ -n "$j" ]; do
  case "$j" in
    "$root"/* | */ai/djl/* | */com/aparapi/* | */info/picocli/* | */org/jfree/* | */com/johnsnowlabs/* | \
      */com/google/code/gson/*) ;;
    *.jar) ln -s "$j" "$spark_home/jars/" ;;
  esac
done
echo "3.5 (the Spark jars the build resolved)" > "$spark_home/RELEASE"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
master="spark://127.0.0.1:$port"
daemon() {
  local name="$1"
  shift
  SPARK_HOME="$spark_home" SPARK_SCALA_VERSION=2.12 SPARK_LOCAL_IP=127.0.0.1 \
    java -Xmx256m "${MAMBA_JAVA17_OPENS[@]}" -cp "$spark_home/jars/*" "$@" > "$work/$name.log" 2>&1 &
  daemons+=($!)
}
daemon master org.apache.spark.deploy.master.Master --host 127.0.0.1 --port "$port" --webui-port "$(free_port)"
for w in 1 2; do
  daemon "worker$w" org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --cores 2 --memory 3g \
    --webui-port "$(free_port)" --work-dir "$work/worker$w" "$master"
done
for _ in $(seq 120); do
  [ "$(grep -c 'Registering worker' "$work/master.log" || true)" -ge 2 ] && break
  for p in "${daemons[@]}"; do kill -0 "$p" 2>/dev/null || { tail -5 "$work"/*.log; fail "a daemon died"; }; done
  sleep 1
done
[ "$(grep -c 'Registering worker' "$work/master.log" || true)" -ge 2 ] || { tail -5 "$work"/*.log; fail "workers did not register"; }
echo "standalone: master $master (pid ${daemons[0]}), workers pids ${daemons[1]} ${daemons[2]}"

export SPARK_LOCAL_IP=127.0.0.1
# Two executors of one core and 1 GB, one a worker.
submit() {
  deploy/mamba-submit --master "$master" --conf spark.cores.max=2 --conf spark.executor.cores=1 \
    --conf spark.executor.memory=1g "$@"
}
# rows IN OUT [REFERENCE]: every id of IN exactly once in OUT's JSON lines; with REFERENCE, the same loss as there
# for the row whose id is the same modulo REFERENCE's row count.
rows() {
  python3 - "$@" <<'PY'
import glob, json, sys
ids_in = [json.loads(l)["id"] for l in open(sys.argv[1])]
out = [json.loads(l) for f in sorted(glob.glob(sys.argv[2] + "/*.json")) for l in open(f)]
ids_out = [r["id"] for r in out]
dup = len(ids_out) - len(set(ids_out))
missing = set(ids_in) - set(ids_out)
extra = set(ids_out) - set(ids_in)
if dup or missing or extra:
    sys.exit(f"{len(ids_out)} rows out for {len(ids_in)} in: {dup} duplicates, missing {sorted(missing)[:10]}, extra {sorted(extra)[:10]}")
worst = 0.0
if len(sys.argv) > 3:
    ref = {r["id"]: r["loss"] for f in glob.glob(sys.argv[3] + "/*.json") for r in map(json.loads, open(f))}
    worst = max(abs(r["loss"] - ref[r["id"] % len(ref)]) for r in out)
    if worst > 1e-5:
        sys.exit(f"loss differs from the undisturbed run by {worst:.2e}")
print(f"{len(ids_out)} rows out for {len(ids_in)} in, each id once" + (f"; losses within {worst:.1e} of the undisturbed run" if len(sys.argv) > 3 else ""))
PY
}
# executors APP: the executor ids that ran tasks of the application (from the workers' executor logs)
executors() {
  grep -l 'Running task' "$work"/worker*/"$1"/*/stderr 2>/dev/null | awk -F/ '{print $(NF-1)}' | sort -n | tr '\n' ' '
}
# the newest application's id (app-TIME-COUNT: they sort in submission order)
latest_app() { find "$work"/worker* -maxdepth 1 -name 'app-*' -printf '%f\n' | sort | tail -n 1; }

score_args=(--output-format json --progress-interval 0)
submit score --model models/pycode-bytes "${score_args[@]}" --input data/sample.jsonl --output "$work/scores" > "$work/score.log" 2>&1 \
  || { tail -40 "$work/score.log"; fail "score failed"; }
echo "score: $(rows data/sample.jsonl "$work/scores"); tasks on executors $(executors "$(latest_app)")"

submit train --init models/pycode-bytes --input data/sample.jsonl --output "$work/trained" --steps 2 \
  --global-batch 4 --micro-batch 2 --seq-len 64 --partitions 2 --no-chart > "$work/train.log" 2>&1 \
  || { tail -40 "$work/train.log"; fail "train failed"; }
grep 'TrainJob: step ' "$work/train.log" | sed 's/^/train: /'
[ "$(grep -c 'TrainJob: step [12]/2 .*gradients on executors [0-9]' "$work/train.log")" -eq 2 ] \
  || fail "the step lines do not name executors"
grep -q 'gradients on executors.*driver' "$work/train.log" && fail "gradients computed on the driver"
[ -f "$work/trained/model.safetensors" ] || fail "train wrote no model"

# The larger corpus: the bundled one 8 times, ids 0..319, in 16 partitions.
python3 - data/sample.jsonl "$work/big.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
with open(sys.argv[2], "w") as f:
    for k in range(8):
        for r in rows:
            f.write(json.dumps(dict(r, id=r["id"] + k * len(rows))) + "\n")
PY
submit score --model models/pycode-bytes "${score_args[@]}" --input "$work/big.jsonl" --output "$work/big-scores" --partitions 16 \
  > "$work/kill.log" 2>&1 &
job=$!
victim=""
for _ in $(seq 600); do
  # an executor that finished a scoring task (the job's output is partly written) and still has tasks to run
  for f in "$work"/worker*/app-*/*/stderr; do
    [ -f "$f" ] && grep -q 'Finished task .* in stage 1\.0' "$f" || continue
    for p in $(pgrep -f CoarseGrainedExecutorBackend || true); do
      [ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$(dirname "$f")" ] && victim=$p
    done
  done
  [ -n "$victim" ] || ! kill -0 "$job" 2>/dev/null && break
  sleep 0.2
done
[ -n "$victim" ] || { tail -40 "$work/kill.log"; fail "no executor to kill: the job ended first"; }
where=$(readlink "/proc/$victim/cwd")
kill -9 "$victim"
echo "kill -9: executor JVM $victim (${where#"$work"/}) mid-job"
wait "$job" || { tail -40 "$work/kill.log"; fail "the score job did not survive the lost executor"; }
grep -m1 -o 'Lost executor .*' "$work/kill.log" | sed 's/^/kill -9: the driver: /' || fail "the driver lost no executor"
echo "kill -9: $(rows "$work/big.jsonl" "$work/big-scores" "$work/scores")"

cluster() { deploy/mamba-submit --master "$master" --deploy-mode cluster --conf spark.cores.max=3 "$@"; }
# the driver runs on a worker, in a folder of its own: paths absolute
cluster score --model "$root/models/pycode-bytes" "${score_args[@]}" --input "$root/data/sample.jsonl" \
  --output "$work/cluster-scores" \
  > "$work/cluster.log" 2>&1 || { tail -40 "$work/cluster.log"; fail "cluster mode: a good run failed"; }
echo "cluster mode, good run: exit 0, $(rows data/sample.jsonl "$work/cluster-scores")"
status=0
cluster score --model "$root/models/pycode-bytes" "${score_args[@]}" --input "$work/no-such-input" \
  --output "$work/cluster-bad" \
  > "$work/cluster-bad.log" 2>&1 || status=$?
[ "$status" -ne 0 ] || { tail -40 "$work/cluster-bad.log"; fail "cluster mode: a failing driver exited 0"; }
[ ! -e "$work/cluster-bad" ] || fail "cluster mode: a failed run left an output"
echo "cluster mode, missing input: exit $status; $(grep -o 'State of driver.*' "$work/cluster-bad.log" | tail -n 1);" \
  "the driver's $(grep -h -m1 '^error: ' "$work"/worker*/driver-*/stderr | cut -c1-160)"
echo "check-standalone: all passed"
