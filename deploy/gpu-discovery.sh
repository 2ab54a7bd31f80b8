#!/usr/bin/env bash
# Spark resource discovery for GPUs (spark.{driver,executor}.resource.gpu.discoveryScript): prints
#   {"name":"gpu","addresses":["0","1",...]}
# From nvidia-smi when present (addresses = CUDA indices), else from clinfo for any OpenCL GPU (addresses =
# OpenCL GPU ordinals across platforms, as -Dmamba.gpu.device takes them). No GPU: an empty list, exit 0.
set -u

addresses=()
if command -v nvidia-smi >/dev/null 2>&1; then
  while IFS= read -r line; do
    line="${line//[[:space:]]/}"
    [[ "$line" =~ ^[0-9]+$ ]] && addresses+=("$line")
  done < <(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null)
fi
if [ ${#addresses[@]} -eq 0 ] && command -v clinfo >/dev/null 2>&1; then
  n=$(clinfo --raw 2>/dev/null | grep -E 'CL_DEVICE_TYPE[[:space:]]' | grep -c 'CL_DEVICE_TYPE_GPU')
  for ((i = 0; i < n; i++)); do addresses+=("$i"); done
fi

json=""
for a in "${addresses[@]}"; do
  json+="${json:+,}\"$a\""
done
printf '{"name":"gpu","addresses":[%s]}\n' "$json"
