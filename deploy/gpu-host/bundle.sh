#!/usr/bin/env bash
# deploy/gpu-host/bundle.sh: an offline bundle of the Spark jobs for a GPU host that has the NVIDIA driver
# (OpenCL) but no Java, Maven or network, e.g. the team's H200 machine reached through the device tool:
#
#   .bundle/jre      a jlinked Java 17 with what Spark needs (java.se, jdk.unsupported, the Vector API)
#   .bundle/lib-N    the training job's runtime jars, in parts of at most PART_MB (default 60) MB, so that
#                    each part fits one 64 MiB transfer; the host joins them on one classpath
#   .bundle/env.sh   JAVA_HOME, the classpath, the OpenCL loader pointed at the NVIDIA driver
#
# Jars the training job never loads are left out (RocksDB, Spark NLP, MLlib's linear algebra, the HDFS
# mini-cluster, DJL's tokenizer natives; byte-level models need no tokenizer library), and Aparapi's
# natives are cut to linux x86_64. Run from anywhere; then ship .bundle, the scripts and the model, and run
# deploy/gpu-host/train-executors.sh there.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
out=${BUNDLE_DIR:-.bundle}
part_mb=${PART_MB:-60}
JDK=${JDK:-/usr/lib/jvm/java-17-openjdk-amd64}
grep -qx "/$out/" .git/info/exclude 2>/dev/null || echo "/$out/" >> .git/info/exclude
rm -rf "$out" && mkdir -p "$out/jars"
mvn -q -B -ntp -DskipTests package -pl jobs -am
# compile scope brings the provided ones (Spark), runtime scope the runtime-only ones (logging)
for scope in compile runtime; do
  (cd jobs && mvn -q -B -ntp dependency:copy-dependencies -DincludeScope=$scope \
    -DexcludeArtifactIds=rocksdbjni,spark-nlp_2.12,hadoop-client-minicluster,tokenizers,fastutil,breeze_2.12,spire_2.12,spire-macros_2.12,arpack_combined_all,jpmml-model,pmml-model,mamba-udf \
    -DoutputDirectory="$root/$out/jars")
done
cp mamba-udf/target/mamba-udf-*.jar jobs/target/jobs-*.jar "$out/jars/"
rm -f "$out"/jars/*-tests.jar "$out"/jars/*-sources.jar
for j in "$out"/jars/aparapi-jni-*.jar; do
  [ -f "$j" ] || continue
  t=$(mktemp -d)
  (cd "$t" && unzip -q "$root/$j" && rm -rf win osx linux/libaparapi_aarch64.so linux/libaparapi_armhf.so \
    linux/libaparapi_x86.so && rm -f "$root/$j" && zip -qr "$root/$j" .)
  rm -rf "$t"
done
# parts: jars largest first, each into the first part with room
python3 - "$out" "$part_mb" <<'PY'
import os, sys
out, limit = sys.argv[1], int(sys.argv[2]) * 1000 * 1000
jars = sorted(os.listdir(f"{out}/jars"), key=lambda j: -os.path.getsize(f"{out}/jars/{j}"))
parts = []
for j in jars:
    size = os.path.getsize(f"{out}/jars/{j}")
    if size > limit:
        sys.exit(f"{j} ({size} bytes) is larger than a part ({limit} bytes): raise PART_MB")
    for p in parts:
        if p[0] + size <= limit:
            p[0] += size; p[1].append(j); break
    else:
        parts.append([size, [j]])
for i, (size, names) in enumerate(parts, 1):
    os.makedirs(f"{out}/lib-{i}")
    for j in names:
        os.rename(f"{out}/jars/{j}", f"{out}/lib-{i}/{j}")
    print(f"{out}/lib-{i}: {len(names)} jars, {size / 1e6:.1f} MB")
os.rmdir(f"{out}/jars")
PY
"$JDK/bin/jlink" --add-modules java.se,jdk.unsupported,jdk.incubator.vector,jdk.management,jdk.security.auth,jdk.crypto.ec,jdk.zipfs \
  --strip-debug --no-man-pages --no-header-files --compress=2 --output "$out/jre"
cat > "$out/env.sh" <<'ENV'
# source on the GPU host, from the project root
bundle=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export JAVA_HOME="$bundle/jre" PATH="$bundle/jre/bin:$PATH"
MAMBA_CP=$(ls -d "$bundle"/lib-*/ | sed 's|/$|/*|' | paste -sd: -)
export MAMBA_CP
nv=$(ls /usr/lib/libnvidia-opencl.so.1 /usr/local/nvidia/lib64/libnvidia-opencl.so.1 \
  /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1 2>/dev/null | head -1 || true)
mkdir -p /tmp/ocl-vendors
[ -n "$nv" ] && echo "$nv" > /tmp/ocl-vendors/nvidia.icd
cp /etc/OpenCL/vendors/*.icd /tmp/ocl-vendors/ 2>/dev/null || true
export OCL_ICD_VENDORS=/tmp/ocl-vendors
ENV
du -sh "$out"/jre "$out"/lib-*
