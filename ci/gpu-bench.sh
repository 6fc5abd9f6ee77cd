#!/usr/bin/env bash
# The paper's schedule (448 px, 3 scales, 192 epochs, 64 test rotations) on one MVTec-sized
# stand-in category on a GPU: full-run wall time and backbone images/s, written to OUT_DIR
# (default results/bench/gpu): summary.txt, gpu.txt and each variant's manifest and metrics.
#
#   ci/gpu-bench.sh [OUT_DIR]        # VARIANTS="none se" by default
#
# On this project's lent H200 machines: build `.gpu/adn` here first with `ci/gpu-build.sh`
# (their image has libtorch 2.11 and no Rust), then one device call:
#   command: ci/gpu-bench.sh $OUT/gpu      carry: [".gpu"]      timeout_s: 600
# The script then uses `.gpu/adn` with the machine's libtorch (python3's torch).
#
# The stand-in has 250 train images and 500 test images (250 good, 250 anomalous; the
# generator makes equal splits), so its test phase is heavier than MVTec's ~100 per
# category. Train rotations are redrawn each epoch from 64 cached angles (the default).
# Vanilla DifferNet and AttentDifferNet-SE (frozen) are timed in turn. Never run so far:
# no session has drawn a GPU yet.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/bench/gpu}
if [[ -z "${ADN:-}" && -x .gpu/adn ]]; then
    adn=.gpu/adn
    torch_lib=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
    export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
    adn=${ADN:-target/debug/adn}
fi
runs=$(mktemp -d)
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/gpu.txt"
if [[ ! -d data/gpu-bench/fabric ]]; then
    "$adn" data make --kind synthetic-mvtec --out data/gpu-bench --per-split 250 > /dev/null
fi
: > "$out/summary.txt"
for attention in ${VARIANTS:-none se}; do
    start=$(date +%s.%N)
    "$adn" run bench/gpu-paper.toml --device cuda --no-cache --force --quiet \
        --set model.attention="\"$attention\"" --out "$runs/$attention" | tee -a "$out/summary.txt"
    end=$(date +%s.%N)
    cp "$runs/$attention/manifest.json" "$out/manifest-$attention.json"
    cp "$runs/$attention/metrics.json" "$out/metrics-$attention.json"
    python3 - "$runs/$attention/manifest.json" "$start" "$end" >> "$out/summary.txt" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
w, c = m["wall_s"], m["feature_cache"]
forwards = c["hits"] + c["misses"]
print(f"  device {m['device']}, libtorch {m['libtorch']}, process {float(sys.argv[3]) - float(sys.argv[2]):.1f} s, "
      f"run {w['total']:.1f} s: features {w['features']:.1f} s ({forwards} views at 3 scales: "
      f"{forwards / w['features']:.0f} images/s), train {w['train']:.1f} s, eval {w['eval']:.1f} s, "
      f"peak RSS {m.get('peak_rss_mb')} MB")
PY
done
rm -rf "$runs"
cat "$out/summary.txt"
