#!/usr/bin/env bash
# deploy/gpu-host/pack-bundle.sh: packs the bundle of deploy/gpu-host/bundle.sh into .bundle-xz/part-NN, fewer and
# smaller pieces to carry to the GPU host one call at a time (the 64 MiB a call includes the ~20 MB tree, so
# PART_MB defaults to 37). Jars are deflate-compressed one by one, which leaves a whole-bundle compressor
# nothing to find; repacked stored (zip -0, same entries) under one solid xz, the 244 MB bundle becomes about
# 110 MB (three parts instead of six). On the host, after copying every part to /tmp/bp:
#   mkdir -p /tmp/bundle && cat /tmp/bp/part-* | xz -dc | tar xf - -C /tmp/bundle
#   rm -rf .bundle && ln -s /tmp/bundle .bundle
# (no xz there: python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer)'
# in its place). Takes about 12 minutes on 2 cores (XZ_LEVEL, default -9e).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
src=${BUNDLE_DIR:-.bundle}
out=${PACK_DIR:-.bundle-xz}
part_mb=${PART_MB:-37}
[ -f "$src/env.sh" ] || { echo "pack-bundle.sh: no bundle in $src (run deploy/gpu-host/bundle.sh first)" >&2; exit 2; }
grep -qx "/$out/" .git/info/exclude 2>/dev/null || echo "/$out/" >> .git/info/exclude
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -r "$src/jre" "$src/env.sh" "$stage/"
for d in "$src"/lib-*; do
  n=$(basename "$d")
  mkdir -p "$stage/$n"
  for j in "$d"/*.jar; do
    t=$(mktemp -d)
    (cd "$t" && unzip -q "$root/$j" && zip -q -0 -r -X "$stage/$n/$(basename "$j")" .)
    rm -rf "$t"
  done
done
rm -rf "$out" && mkdir -p "$out"
tar cf - -C "$stage" . | xz -T0 "${XZ_LEVEL:--9e}" | split -b "${part_mb}m" -d - "$out/part-"
du -sh "$out"/part-*
