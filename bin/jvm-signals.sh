# Sourced by bin/mamba and deploy/*: preload the JVM's signal-chaining library (libjsig.so).
#
# Why: the JVM raises SIGSEGV on purpose (implicit null checks, safepoint polls) and handles it itself. A
# native library loaded later may install its own SIGSEGV handler — the OpenCL loader brings in PoCL and its
# LLVM when the engine looks for a GPU — and then one of the JVM's own signals kills the process with a bare
# "Segmentation fault" and no hs_err file. Seen here: 3 of 12 runs of the score job through mamba-submit
# crashed so, 0 of 10 with libjsig preloaded. libjsig keeps the JVM's handler first and chains the others.
# Executors on a cluster need the same: spark.executorEnv.LD_PRELOAD=<their JAVA_HOME>/lib/libjsig.so.
mamba_jsig() {
  local java_home="${JAVA_HOME:-}"
  if [ -z "$java_home" ] && command -v java >/dev/null 2>&1; then
    java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  fi
  local jsig="$java_home/lib/libjsig.so"
  if [ -f "$jsig" ] && [[ ":${LD_PRELOAD:-}:" != *":$jsig:"* ]]; then
    export LD_PRELOAD="$jsig${LD_PRELOAD:+:$LD_PRELOAD}"
  fi
}
mamba_jsig
