#!/usr/bin/env bash
# Builds `adn` for this project's lent GPU machines. Their image has PyTorch 2.11.0+cu130 and
# no Rust toolchain, and a device call carries at most 64 MiB, so libtorch cannot travel:
# the binary must use the machine's own. This links a copy of the tree against the same
# libtorch (PyPI's torch 2.11.0 wheel) with tch 0.24, the tch release for 2.11, and writes
# `.gpu/adn` (stripped, about 8 MB; `.gpu/` is ignored by git and named in the call's
# carry). There, `ci/gpu-bench.sh` finds it and the machine's libtorch.
#
#   ci/gpu-build.sh      # after `cargo xtask setup` (its venv has pip and CUDA 13's libraries)
#
# Checked on the CPU here: the 2.11 build passes the smoke run (auroc_last 1.0).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/target/gpu-build
mkdir -p "$work" .gpu
nvidia=$(ls -d "$root"/.venv/lib/python3*/site-packages/nvidia 2>/dev/null | head -1)
if [[ -z "$nvidia" ]]; then
    echo "gpu-build: no .venv with CUDA libraries; run \`cargo xtask setup\` first" >&2
    exit 1
fi
if [[ ! -f "$work/torch/version.py" ]]; then
    .venv/bin/python -m pip download --quiet --no-deps torch==2.11.0 -d "$work/wheel"
    unzip -q -o "$work"/wheel/torch-2.11.0-*.whl 'torch/lib/*' 'torch/include/*' \
        'torch/share/*' 'torch/version.py' -d "$work"
    rm -rf "$work/wheel"
fi
# libtorch finds CUDA's libraries through its RPATH ../../nvidia: the venv's (CUDA 13 too).
ln -sfn "$nvidia" "$work/nvidia"
# The working tree's tracked files, with tch pinned to the 2.11 release.
rm -rf "$work/src"
mkdir -p "$work/src"
git ls-files -z | xargs -0 cp --parents -t "$work/src"
sed -i 's/^tch = .*/tch = "=0.24.0"/; s/^torch-sys = .*/torch-sys = "=0.24.0"/' "$work/src/Cargo.toml"
(
    cd "$work/src"
    LIBTORCH="$work/torch" CARGO_TARGET_DIR="$work/target" \
        cargo build --quiet --package adn-runner --bin adn
)
cp "$work/target/debug/adn" .gpu/adn
strip .gpu/adn
echo "gpu-build: .gpu/adn ($(du -h .gpu/adn | cut -f1)), built against libtorch 2.11.0"
