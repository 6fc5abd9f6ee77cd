#!/usr/bin/env bash
# The paper's schedule (448 px, 3 scales, 192 epochs, 64 test rotations) on one
# MVTec-sized stand-in category on this CPU (issue #16): wall time per stage and peak
# memory of each variant × precision, written to OUT_DIR (default results/bench/cpu-paper):
# each run's summary-<variant>-<precision>.txt, manifest and metrics, and summary.txt joining
# every run's summary there (a rerun of some variants keeps the others' lines).
#
#   ci/cpu-paper.sh [OUT_DIR]    # VARIANTS="none se" PRECISIONS="bf16 fp32" THREADS=2
#
# The stand-in: 250 train images and 100 test images (50 good, 50 defective), MVTec AD's
# size for one category; the generator writes equal splits, so every fifth test image (and
# its mask) of a 250-per-split set is kept. "bf16" is model.precision and train.precision
# both. One run takes tens of minutes on 2 cores: run it alone.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/bench/cpu-paper}
adn=${ADN:-target/debug/adn}
threads=${THREADS:-2}
export OMP_NUM_THREADS=$threads
export LIBTORCH=${LIBTORCH:-$PWD/.libtorch}
data=data/cpu-paper
if [[ ! -d $data/fabric ]]; then
    rm -rf "$data.tmp"
    "$adn" --threads "$threads" data make --kind synthetic-mvtec --out "$data.tmp" --per-split 250 > /dev/null
    for cat in "$data.tmp"/*/; do
        [[ $(basename "$cat") == fabric ]] || rm -rf "$cat"
    done
    for folder in "$data.tmp"/fabric/test/*/; do
        defect=$(basename "$folder")
        i=0
        for f in $(ls "$folder" | sort); do
            if (( i % 5 != 0 )); then
                rm "$folder/$f"
                rm -f "$data.tmp/fabric/ground_truth/$defect/${f%.*}_mask.png"
            fi
            i=$((i + 1))
        done
    done
    mv "$data.tmp" "$data"
fi
runs=$(mktemp -d)
mkdir -p "$out"
for precision in ${PRECISIONS:-bf16 fp32}; do
    for attention in ${VARIANTS:-none se}; do
        name=$attention-$precision
        start=$(date +%s.%N)
        "$adn" --threads "$threads" run bench/cpu-paper.toml --device cpu --no-cache --force --quiet \
            --set model.attention="\"$attention\"" \
            --set model.precision="\"$precision\"" --set train.precision="\"$precision\"" \
            --out "$runs/$name" > "$out/summary-$name.txt"
        end=$(date +%s.%N)
        cp "$runs/$name/manifest.json" "$out/manifest-$name.json"
        cp "$runs/$name/metrics.json" "$out/metrics-$name.json"
        .venv/bin/python - "$runs/$name/manifest.json" "$start" "$end" >> "$out/summary-$name.txt" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
w, r = m["wall_s"], m
print(f"  {m['precision']} backbone, {m['flow_precision']} flow, process "
      f"{float(sys.argv[3]) - float(sys.argv[2]):.0f} s = {(float(sys.argv[3]) - float(sys.argv[2])) / 60:.1f} min: "
      f"features {w['features']:.0f} s, train {w['train']:.0f} s, eval {w['eval']:.0f} s, "
      f"peak RSS {m.get('peak_rss_mb'):.0f} MB")
PY
    done
done
rm -rf "$runs"
# Each run keeps its own summary, so a rerun of some variants leaves the others' lines.
cat "$out"/summary-*.txt > "$out/summary.txt"
cat "$out/summary.txt"
