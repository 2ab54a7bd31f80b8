#!/usr/bin/env bash
# deploy/gpu-host/prepare.sh: makes .gpu/ in the project root, what a bare GPU host (NVIDIA driver with OpenCL, no
# Java, no network) needs to run the engine: .gpu/jre (a jlinked Java 17), .gpu/lib (the engine module's jar and its
# runtime dependencies without Spark/Hadoop/Spark NLP, which are far too large to carry) and .gpu/env.sh (JAVA_HOME,
# PATH, and the OpenCL loader pointed at the NVIDIA driver). Run after `mvn -q package -DskipTests`; then carry .gpu
# with the tree and start commands with `source .gpu/env.sh &&` (see CONTRIBUTING.md).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
MODULES=${MODULES:-java.base,java.logging,java.management,jdk.unsupported,java.xml,java.naming,jdk.management,jdk.incubator.vector}
JDK=${JDK:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
rm -rf .gpu && mkdir -p .gpu/lib
"$JDK/bin/jlink" --add-modules "$MODULES" --strip-debug --no-man-pages --no-header-files --compress=2 --output .gpu/jre
# the JVM's symbol table is not needed to run, and the carried tree is capped in size
if command -v strip >/dev/null; then strip --strip-unneeded .gpu/jre/lib/server/libjvm.so; fi
cp mamba-udf/target/mamba-udf-*.jar .gpu/lib/
rm -f .gpu/lib/*-tests.jar .gpu/lib/*-sources.jar
# the kernel benchmarks and their harnesses are test code (src/test): their classes, without the fixtures
"$JDK/bin/jar" cf .gpu/lib/mamba-udf-kernel-bench.jar -C mamba-udf/target/test-classes org/mambaspark/kernel
(cd mamba-udf && mvn -q dependency:copy-dependencies -DincludeScope=runtime \
  -DexcludeGroupIds=org.apache.spark,org.apache.hadoop,com.johnsnowlabs.nlp,org.scala-lang,ai.djl,ai.djl.huggingface,net.java.dev.jna,com.google.code.gson,org.apache.commons \
  -DoutputDirectory="$root/.gpu/lib")
# aparapi-jni carries natives for every platform (19 MB): keep linux x86_64 only
for j in .gpu/lib/aparapi-jni-*.jar; do
  [ -f "$j" ] || continue
  t=$(mktemp -d)
  (cd "$t" && unzip -q "$root/$j" && rm -rf win osx linux/libaparapi_aarch64.so linux/libaparapi_armhf.so linux/libaparapi_x86.so \
    && rm -f "$root/$j" && zip -qr "$root/$j" .)
  rm -rf "$t"
done
cat > .gpu/env.sh <<'ENV'
# source on the GPU host, from the project root
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export JAVA_HOME="$here/jre" PATH="$here/jre/bin:$PATH"
nv=$(ls /usr/lib/libnvidia-opencl.so.1 /usr/local/nvidia/lib64/libnvidia-opencl.so.1 /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1 2>/dev/null | head -1)
mkdir -p /tmp/ocl-vendors
[ -n "$nv" ] && echo "$nv" > /tmp/ocl-vendors/nvidia.icd
cp /etc/OpenCL/vendors/*.icd /tmp/ocl-vendors/ 2>/dev/null || true
export OCL_ICD_VENDORS=/tmp/ocl-vendors
ENV
du -sh .gpu/jre .gpu/lib .gpu
