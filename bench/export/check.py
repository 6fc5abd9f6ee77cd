"""Checks an `adn export` folder outside adn: loads `model.pt` with torch.jit.load, scores
the images of `check.safetensors` (inputs made by adn's loader, and adn's own scores of
them), and prints one JSON line with the largest relative difference per runtime.

With --onnx it also converts the TorchScript file to ONNX (PyTorch's TorchScript-based
exporter, opset 17) as `model.onnx` in the folder and scores the same inputs with ONNX
Runtime and OpenVINO (CPU). With --time N it times N calls of each runtime on one batch
and adds images per second; --threads N gives every runtime N threads.

    python bench/export/check.py results/smoke/<run-id>/export [--onnx] [--time 20]
"""

import argparse
import json
import sys
import time

import torch
from safetensors.torch import load_file


def batches(x, b):
    """The rows of x in batches of b, the last padded with copies of its first row."""
    for i in range(0, len(x), b):
        xb = x[i : i + b]
        n = len(xb)
        if n < b:
            xb = torch.cat([xb, xb[:1].expand(b - n, -1, -1, -1)])
        yield xb, n


def scores(run, x, b):
    out = [torch.as_tensor(run(xb)).reshape(-1)[:n] for xb, n in batches(x, b)]
    return torch.cat(out).double()


def max_rel(got, expected):
    return ((got - expected).abs() / expected.abs().clamp_min(1e-12)).max().item()


def images_per_second(run, x, b, calls):
    xb = next(batches(x, b))[0]
    run(xb)  # warm-up
    t = time.perf_counter()
    for _ in range(calls):
        run(xb)
    return calls * b / (time.perf_counter() - t)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("folder")
    p.add_argument("--onnx", action="store_true")
    p.add_argument("--time", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="0: each runtime's default")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    record = json.load(open(f"{a.folder}/export.json"))
    check = load_file(f"{a.folder}/check.safetensors")
    x, expected = check["inputs"].float(), check["scores"].double()
    b = record["input"]["shape"][0]
    torch.set_grad_enabled(False)
    module = torch.jit.load(f"{a.folder}/{record['file']}").eval()
    runtimes = {"torchscript": lambda xb: module(xb)}
    if a.onnx:
        path = f"{a.folder}/model.onnx"
        torch.onnx.export(
            module,
            (x[:b],),
            path,
            dynamo=False,
            opset_version=17,
            input_names=["images"],
            output_names=["scores"],
        )
        import onnxruntime
        import openvino

        options = onnxruntime.SessionOptions()
        if a.threads:
            options.intra_op_num_threads = a.threads
        session = onnxruntime.InferenceSession(
            path, options, providers=["CPUExecutionProvider"]
        )
        runtimes["onnxruntime"] = lambda xb: session.run(None, {"images": xb.numpy()})[0]
        # OpenVINO's CPU plugin computes in bfloat16 where the CPU has bf16 units unless
        # told otherwise (7e-3 relative here on an AMD EPYC with AVX-512 BF16).
        ov_config = {"INFERENCE_PRECISION_HINT": "f32"}
        if a.threads:
            ov_config["INFERENCE_NUM_THREADS"] = a.threads
        compiled = openvino.Core().compile_model(path, "CPU", ov_config)
        runtimes["openvino"] = lambda xb: compiled(xb.numpy())[0]
    result = {"images": len(x), "batch": b}
    for name, run in runtimes.items():
        result[f"{name}_max_rel"] = max_rel(scores(run, x, b), expected)
        if a.time:
            result[f"{name}_images_per_s"] = images_per_second(run, x, b, a.time)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
