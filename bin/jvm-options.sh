# Sourced by bin/mamba and deploy/mamba-submit: the JVM options every mamba-spark JVM needs, in one place.
#
# MAMBA_VECTOR_MODULE: the engine's fast CPU path uses the Vector API, incubating in Java 17; without the module
#   the engine runs scalar loops (2.7x slower on the score job) and says so loudly.
# MAMBA_JAVA17_OPENS: what Spark's own launcher gives a JVM it starts on Java 17 (Spark reaches into JDK
#   internals). A JVM that Spark's launcher does not start needs them given: bin/mamba's embedded Spark, and the
#   driver of --deploy-mode cluster, which a standalone worker starts without them. The list is
#   conf/java17-opens.args (a java @-file, also the test JVMs' through the pom), read here into an array.
MAMBA_VECTOR_MODULE="--add-modules=jdk.incubator.vector"
# MAMBA_MEMORY_OPTS: transparent huge pages for the Java heap, on Linux (elsewhere the JVM does not know the flag).
#   A decode step streams every weight from memory once a token; on 4 KB pages the hardware prefetcher starts
#   over at each page, and one thread read an in_proj-shaped matrix at 9.5 GB/s where huge pages give 15.7
#   (docs/benchmarks.md). Empty where the kernel has them off; the JVM then says so once and runs as before.
MAMBA_MEMORY_OPTS=()
if [ "$(uname -s)" = Linux ]; then MAMBA_MEMORY_OPTS=(-XX:+UseTransparentHugePages); fi
MAMBA_JAVA17_OPENS=()
while read -r -a words; do
  [ "${#words[@]}" -gt 0 ] || continue
  for w in "${words[@]}"; do
    [ "${w:0:1}" = "#" ] && break
    MAMBA_JAVA17_OPENS+=("$w")
  done
done < "$(dirname "${BASH_SOURCE[0]}")/../conf/java17-opens.args"
