#!/usr/bin/env bash
# deploy/gpu-host/kernel-bench.sh "BENCH ARGS" ["BENCH ARGS" ...]: org.mambaspark.kernel.KernelBench on a GPU host,
# one JVM per argument, from the engine-only classpath that deploy/gpu-host/prepare.sh puts in .gpu/ (see
# CONTRIBUTING.md), e.g.
#   deploy/gpu-host/kernel-bench.sh "all runs=20 check=false" "forward runs=6" "scan-sweep B=1 L=16384"
# (JAVA_OPTS reaches each JVM, e.g. JAVA_OPTS=-Dmamba.gpu.modelScan=16x16)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ $# -ge 1 ] || { sed -n '2,5p' "$0"; exit 2; }
# env.sh is prepare.sh's, written for interactive shells (its probes may fail): source it without -e
set +eo pipefail
# shellcheck disable=SC1091
source "$root/.gpu/env.sh"
set -eo pipefail
# shellcheck source=bin/jvm-signals.sh
source "$root/bin/jvm-signals.sh"
for a in "$@"; do
  echo "=== $a"
  # shellcheck disable=SC2086
  java ${JAVA_OPTS:-} -cp "$root/.gpu/lib/*" org.mambaspark.kernel.KernelBench $a 2>&1 | grep -v '^WARNING' || true
done
