#!/usr/bin/env bash
# The paper's schedule (448 px, 3 scales, 192 epochs, 64 test rotations) on one MVTec-sized
# stand-in category on the GPU: full-run wall time and backbone images/s, written to
# results/bench/gpu/. Needs a CUDA GPU and a built `adn` (cargo xtask setup; cargo build).
#
#   ci/gpu-bench.sh [OUT_DIR]
#
# The stand-in has 250 train images and 500 test images (250 good, 250 anomalous; the
# generator makes equal splits), so its test phase is heavier than MVTec's ~100 per
# category. Vanilla DifferNet and AttentDifferNet-SE (frozen) are both timed.
#
# Not yet run anywhere. On this project's lent H200 machines it cannot run as things are:
# their image has PyTorch 2.11 (cu130) and no Rust toolchain, tch 0.26 needs libtorch 2.13,
# and a call carries at most 64 MiB, so neither libtorch 2.13's CUDA libraries nor a
# toolchain can travel. It needs an adn linked against the machine's own libtorch (2.11 is
# tch 0.24's version), or a device image with libtorch 2.13.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/bench/gpu}
adn=${ADN:-target/debug/adn}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$out/gpu.txt"
if [[ ! -d data/gpu-bench/fabric ]]; then
    "$adn" data make --kind synthetic-mvtec --out data/gpu-bench --per-split 250 > /dev/null
fi
for attention in none se; do
    start=$(date +%s.%N)
    "$adn" run bench/gpu-paper.toml --device cuda --no-cache --force --quiet \
        --set model.attention="\"$attention\"" --out "$out/run-$attention" | tee "$out/run-$attention.txt"
    end=$(date +%s.%N)
    echo "$attention wall (with process start) $(echo "$end - $start" | bc) s" | tee -a "$out/summary.txt"
    python3 - "$out/run-$attention/manifest.json" >> "$out/summary.txt" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
w = m["wall_s"]
forwards = m["dataset"]["train_images"] * 4 + m["dataset"]["test_images"] * 64
print(f"  device {m['device']}, total {w['total']:.1f} s, features {w['features']:.1f} s "
      f"({forwards} forwards at 3 scales: {forwards / w['features']:.0f} images/s), "
      f"train {w['train']:.1f} s, eval {w['eval']:.1f} s, peak RSS {m.get('peak_rss_mb')} MB")
PY
done
cat "$out/summary.txt"
