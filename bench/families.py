"""The flow families against anomalib's modules, side by side on this machine: runs
crates/flows/examples/families_bench.rs and bench/reference/families.py in turn, ROUNDS
times each, with the same threads and shapes, and writes results/bench/families.md with
the medians and the ratios (Rust / anomalib; above 1 is faster here).

    cargo build --release -p adn-flows --example families_bench
    .venv/bin/python bench/families.py [THREADS] [ROUNDS]

anomalib comes into the venv with crates/flows/goldens/constraints.txt (see
docs/flow-families.md). Both sides start from random weights of the same shapes.
"""
import json
import pathlib
import platform
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
REPEATS = "5"


def run(command):
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return {r["family"]: r for r in (json.loads(l) for l in out.splitlines() if l.startswith("{"))}


def cpu():
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


rust_runs, ref_runs = [], []
for _ in range(ROUNDS):
    rust_runs.append(run([str(ROOT / "target/release/examples/families_bench"), str(THREADS), REPEATS]))
    ref_runs.append(run([sys.executable, str(ROOT / "bench/reference/families.py"), str(THREADS), REPEATS]))

rows = []
summary = {}
for family, label in [("fastflow", "FastFlow"), ("csflow", "CS-Flow"), ("cflow", "CFlow-AD")]:
    for key, what in [("train_steps_per_s", "training steps/s"), ("score_images_per_s", "scoring images/s")]:
        ours = statistics.median(r[family][key] for r in rust_runs)
        theirs = statistics.median(r[family][key] for r in ref_runs)
        summary[f"{family}.{key}"] = {"rust": ours, "anomalib": theirs, "ratio": ours / theirs}
        rows.append(f"| {label} | {what} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |")

text = f"""# The flow families against anomalib's modules

Written by `bench/families.py`. Each side ran {ROUNDS} times, in turn with the other, on one
machine ({cpu()}, {THREADS} threads, libtorch 2.13.0 on both sides). The numbers are medians
over rounds of medians over 5 timed repeats; ratio = Rust / anomalib, so above 1 is faster
here.

The Rust side is `crates/flows/examples/families_bench.rs` (adn-flows); the other side is
anomalib 2.7.0's own modules (`bench/reference/families.py`). Both take the same shapes from
random weights:

- FastFlow: EfficientNet-Lite0 `stage2`–`stage4` maps at 160 px, 8 steps, a batch of 24;
- CS-Flow: `stage4` at 128, 64 and 32 px, 4 blocks, hidden 64, a batch of 24, the gradients
  clipped to norm 1;
- CFlow-AD: the same maps as FastFlow, 8 blocks, a condition of 128; a training step is one
  batch of 64 fibers of the first layer; scoring takes 16 images through all three decoders in
  chunks of 64 fibers.

A training step is forward, loss, backward and an Adam step. Scoring is forward, map and image
score. The backbone is not timed: both sides take feature maps.

| family | measure | Rust | anomalib | ratio |
|---|---|---:|---:|---:|
""" + "\n".join(rows) + "\n"
(ROOT / "results/bench/families.md").write_text(text)
(ROOT / "results/bench/families.json").write_text(json.dumps({"cpu": cpu(), "threads": THREADS, "rounds": ROUNDS, **summary}, indent=2) + "\n")
print(text)
