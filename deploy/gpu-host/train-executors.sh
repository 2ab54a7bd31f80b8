#!/usr/bin/env bash
# deploy/gpu-host/train-executors.sh EXECUTORS GPUS [TrainJob flags ...]
#
# The training job (org.mambaspark.jobs.TrainJob) on local-cluster[EXECUTORS,EXECUTOR_CORES,EXECUTOR_MB]: an
# in-process standalone master and EXECUTORS workers on this host, each launching its own executor JVM, whose one
# task at a time has all EXECUTOR_CORES (default 1) cores for the engine's threads. With GPUS = 1,
# Spark's resource scheduling gives every executor one GPU found by deploy/gpu-discovery.sh (one task at a
# time per executor), and each executor binds its kernels to the OpenCL device of its address (logged);
# workers on one host all discover the same list, so with one GPU the executors share it. GPUS = 0: no GPU
# resources (the engine then picks its backend itself, -Dmamba.backend=auto|cpu|gpu).
#
# Needs the bundle of deploy/gpu-host/bundle.sh (or a JAVA_HOME and MAMBA_CP of your own). Example:
#   deploy/gpu-host/train-executors.sh 2 1 --init models/x --input in.jsonl --output out --steps 3 ...
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ $# -ge 2 ] || { sed -n '2,13p' "$0"; exit 2; }
executors=$1 gpus=$2
shift 2
if [ -z "${MAMBA_CP:-}" ]; then
  # shellcheck disable=SC1091
  source "$root/${BUNDLE_DIR:-.bundle}/env.sh"
fi
# shellcheck source=bin/jvm-options.sh
source "$root/bin/jvm-options.sh"
resources=()
if [ "$gpus" != 0 ]; then
  resources=(
    -Dspark.worker.resource.gpu.amount="$gpus"
    -Dspark.worker.resource.gpu.discoveryScript="$root/deploy/gpu-discovery.sh"
    -Dspark.executor.resource.gpu.amount="$gpus"
    -Dspark.task.resource.gpu.amount="$gpus"
  )
fi
# shellcheck source=bin/jvm-signals.sh
source "$root/bin/jvm-signals.sh"
# spark.testing: local-cluster executors take the driver's classpath (there is no Spark distribution here)
# shellcheck disable=SC2086
exec java ${MAMBA_JAVA_OPTS:--Xmx16g} "$MAMBA_VECTOR_MODULE" ${MAMBA_MEMORY_OPTS[@]+"${MAMBA_MEMORY_OPTS[@]}"} "${MAMBA_JAVA17_OPENS[@]}" \
  -Dlog4j2.configurationFile="$root/conf/log4j2.properties" \
  -Dspark.testing=1 -Dspark.test.home="${TMPDIR:-/tmp}" \
  -Dspark.driver.host=127.0.0.1 -Dspark.driver.bindAddress=127.0.0.1 -Dspark.ui.enabled=false \
  -Dspark.executorEnv.SPARK_SCALA_VERSION=2.12 -Dspark.executorEnv.LD_PRELOAD="${LD_PRELOAD:-}" \
  -Dspark.executor.memory="${EXECUTOR_MB:-16384}m" \
  -Dspark.executor.cores="${EXECUTOR_CORES:-1}" -Dspark.task.cpus="${EXECUTOR_CORES:-1}" \
  -Dspark.executor.extraJavaOptions="--add-modules=jdk.incubator.vector ${MAMBA_MEMORY_OPTS[*]+${MAMBA_MEMORY_OPTS[*]} }-Djdk.reflect.useDirectMethodHandle=false ${EXECUTOR_JAVA_OPTS:-}" \
  "${resources[@]}" \
  -cp "$MAMBA_CP" org.mambaspark.jobs.TrainJob \
  --master "local-cluster[$executors,${EXECUTOR_CORES:-1},${EXECUTOR_MB:-16384}]" "$@"
