"""The PyTorch reference for `cargo xtask bench`: DifferNet the ordinary PyTorch way.

Same pipeline, weights and data as the Rust run it is compared with, written as DifferNet's
official code does it: a `DataLoader` over PIL images (Resize, RandomRotation/rotate,
ToTensor, Normalize as torchvision would), eager modules, `torch.no_grad()` for the frozen
backbone, and, in `run`, the backbone recomputed for every batch of every epoch as the
official training loop does. The modules come from the parity-golden scripts, so they are
the same code the Rust parity tests are checked against.

    .venv/bin/python bench/reference/differnet.py MODE --config JSON --out FILE.json

MODE: `extract` (backbone images/s; `way` eager, channels_last, compile or openvino, and
`precision` fp32 or bf16), `score` (test-time scoring with many rotations),
`flow` (flow training steps/s; `precision`, `fused` Adam), `run` (train + evaluate; wall time, peak memory, AUROC) or
`profile` (where EfficientNet-Lite0's forward spends its time, by kind of operation, as
PyTorch runs it and as the Rust extractor runs it: channels-last, BatchNorm folded, ReLU6
in place; the same libtorch kernels, so the profile stands for the Rust side).
Needs Pillow and OpenVINO (`cargo xtask bench` installs them into the venv).
"""
import argparse
import importlib.util
import json
import math
import pathlib
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    # Registered by name: torch.compile's tracer imports a module's classes through it.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


backbones = load_module("backbone_goldens", "crates/backbones/goldens/make_goldens.py")
flows = load_module("flow_goldens", "crates/flows/goldens/make_goldens.py")

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
LITE = ([0.498, 0.498, 0.498], [0.502, 0.502, 0.502])
LITE_STAGES = {f"stage{i + 1}": i for i in range(7)}
ALEXNET_TAPS = {"pool5": 12}


def list_images(category, split):
    """(path, label) in sorted order: test/good is 0, every other test folder 1."""
    root = pathlib.Path(category) / split
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp"}:
                out.append((f, 0 if folder.name == "good" else 1))
    return out


class Views(torch.utils.data.Dataset):
    """Every image under its rotation angles, as DifferNet's transforms make it."""

    def __init__(self, items, angles, size, norm):
        self.items, self.angles, self.size = items, angles, size
        self.mean = torch.tensor(norm[0])[:, None, None]
        self.std = torch.tensor(norm[1])[:, None, None]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        img = Image.open(self.items[i][0]).convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        views = []
        for a in self.angles[i]:
            r = img.rotate(a, resample=Image.NEAREST)
            t = torch.from_numpy(np.asarray(r).copy()).permute(2, 0, 1).float() / 255.0
            views.append((t - self.mean) / self.std)
        return torch.stack(views), self.items[i][1]


class Extractor(nn.Module):
    """Pooled multi-scale features of the frozen backbone (no attention: vanilla DifferNet)."""

    def __init__(self, cfg):
        super().__init__()
        self.kind, self.scales, self.layers = cfg["backbone"], cfg["scales"], cfg["feature_layers"]
        if self.kind == "alexnet":
            self.net = backbones.AlexNetFeatures()
            if cfg.get("weights"):
                self.net.load_state_dict(load_file(ROOT / cfg["weights"]), strict=False)
            else:
                torch.manual_seed(cfg["seed"])
        else:
            self.net = backbones.Lite0()
            self.net.load_state_dict(load_file(ROOT / cfg["weights"]))
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def one_scale(self, x):
        if self.kind == "alexnet":
            return [self.net(x).mean((2, 3))]
        _, stages = self.net(x)
        return [stages[LITE_STAGES[l]].mean((2, 3)) for l in self.layers]

    def forward(self, x):
        out = []
        for s in range(self.scales):
            xs = x if s == 0 else F.interpolate(x, scale_factor=0.5 ** s, mode="nearest")
            out += self.one_scale(xs)
        return torch.cat(out, 1)


class Flow(nn.Module):
    """DifferNet's flow from the golden script's couplings, at any dimension."""

    def __init__(self, dim, hidden, blocks, clamp):
        super().__init__()
        self.perms = []
        for k in range(blocks):
            np.random.seed(k)
            self.perms.append(torch.from_numpy(np.random.permutation(dim)))
        self.coupling = nn.ModuleList([flows.Glow(dim, hidden, clamp) for _ in range(blocks)])

    def forward(self, x):
        log_det = torch.zeros(x.shape[0])
        for perm, block in zip(self.perms, self.coupling):
            x, ld = block(x[:, perm])
            log_det = log_det + ld
        return x.clamp(-1e6, 1e6), log_det


def nll(z, log_det):
    return torch.mean(0.5 * torch.sum(z ** 2, 1) - log_det) / z.shape[1]


def auroc(labels, scores):
    """Mann-Whitney AUROC with ties counted one half."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels == 1
    n1, n0 = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def norm_of(cfg):
    return IMAGENET if cfg["backbone"] == "alexnet" else LITE


def loader(items, angles, cfg, shuffle=False):
    ds = Views(items, angles, cfg["image_size"], norm_of(cfg))
    return torch.utils.data.DataLoader(ds, batch_size=cfg["batch_size"], shuffle=shuffle,
                                       num_workers=cfg.get("workers", 0))


def peer(cfg, model):
    """The forward of `cfg["way"]` at `cfg["precision"]`, and whether it needs a warm-up:
    `eager` (NCHW float32, the ordinary way), `channels_last`, `compile` (torch.compile of
    the channels-last model), `openvino` (the model converted to OpenVINO's runtime, as
    anomalib deploys it). bf16 is `torch.autocast("cpu", dtype=torch.bfloat16)` for the
    PyTorch ways and OpenVINO's bf16 inference precision."""
    way, bf16 = cfg.get("way", "eager"), cfg.get("precision", "fp32") == "bf16"
    if way == "openvino":
        import openvino as ov
        size = cfg["image_size"]
        ov_model = ov.convert_model(model, example_input=torch.zeros(1, 3, size, size),
                                    input=[ov.PartialShape([-1, 3, size, size])])
        compiled = ov.Core().compile_model(ov_model, "CPU", {
            "INFERENCE_NUM_THREADS": cfg.get("threads", 1),
            "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
        })
        return (lambda x: compiled(x.numpy())[0]), True
    if way == "eager" and bf16:
        raise SystemExit("bf16 is measured channels-last (the fastest PyTorch way)")
    layout = torch.channels_last if way in ("channels_last", "compile") else torch.contiguous_format
    model = model.to(memory_format=layout)
    net = torch.compile(model) if way == "compile" else model

    def forward(x):
        x = x.contiguous(memory_format=layout)
        if bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(x).float()
        return net(x)

    return forward, way == "compile"


def extract(cfg):
    items = list_images(cfg["category"], "test")[: cfg["images"]]
    angles = [[i * 360.0 / cfg["views"] for i in range(cfg["views"])] for _ in items]
    model = Extractor(cfg)
    forward, warm_up = peer(cfg, model)
    with torch.no_grad():
        if warm_up:
            # Compilation is not timed: one batch of the same shape first.
            x, _ = next(iter(loader(items, angles, cfg)))
            forward(x.flatten(0, 1))
        start = time.perf_counter()
        n = 0
        for x, _ in loader(items, angles, cfg):
            forward(x.flatten(0, 1))
            n += x.shape[0] * x.shape[1]
    return {"forwards": n, "seconds": time.perf_counter() - start,
            "way": cfg.get("way", "eager"), "precision": cfg.get("precision", "fp32"),
            "warm_up": warm_up}


def score(cfg):
    items = list_images(cfg["category"], "test")[: cfg["images"]]
    t = cfg["views"]
    angles = [[i * 360.0 / t for i in range(t)] for _ in items]
    model = Extractor(cfg)
    torch.manual_seed(0)
    with torch.no_grad():
        dim = model(torch.zeros(1, 3, cfg["image_size"], cfg["image_size"])).shape[1]
        flow = Flow(dim, cfg["hidden"], 8, 3.0).eval()
        start = time.perf_counter()
        for x, _ in loader(items, angles, cfg):
            z, _ = flow(model(x.flatten(0, 1)))
            (z ** 2).reshape(x.shape[0], t, -1).mean((1, 2))
    return {"images": len(items), "views": t, "seconds": time.perf_counter() - start}


def flow_steps(cfg):
    """Flow training steps; `precision` bf16 runs the forward under CPU autocast, `fused`
    takes Adam's fused CPU kernel (`Adam(fused=True)`, aten `_fused_adam_`)."""
    torch.manual_seed(0)
    flow = Flow(cfg["dim"], cfg["hidden"], 8, 3.0)
    opt = torch.optim.Adam(flow.parameters(), lr=2e-4, betas=(0.8, 0.8), eps=1e-4, weight_decay=1e-5,
                           fused=cfg.get("fused", False) or None)
    bf16 = cfg.get("precision", "fp32") == "bf16"
    x = torch.randn(cfg["rows"], cfg["dim"])

    def step():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = nll(*flow(x))
        loss.float().backward()
        opt.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(cfg["steps"]):
        step()
    return {"steps": cfg["steps"], "seconds": time.perf_counter() - start,
            "precision": cfg.get("precision", "fp32"), "fused": cfg.get("fused", False)}


def run(cfg):
    """DifferNet's training loop: random rotations drawn per batch, backbone every epoch."""
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    start = time.perf_counter()
    train = list_images(cfg["category"], "train")
    test = list_images(cfg["category"], "test")
    model = Extractor(cfg)
    with torch.no_grad():
        dim = model(torch.zeros(1, 3, cfg["image_size"], cfg["image_size"])).shape[1]
    flow = Flow(dim, cfg["hidden"], 8, 3.0)
    opt = torch.optim.Adam(flow.parameters(), lr=cfg["lr"], betas=(0.8, 0.8), eps=1e-4, weight_decay=1e-5)
    t_test = cfg["test_transforms"]
    test_angles = [[i * 360.0 / t_test for i in range(t_test)] for _ in test]
    labels = [l for _, l in test]
    trajectory = []
    for meta in range(cfg["meta_epochs"]):
        flow.train()
        for _ in range(cfg["sub_epochs"]):
            angles = [[90.0 * rng.integers(4) if cfg["quarter_turns"] else rng.uniform(-180, 180)
                       for _ in range(cfg["train_transforms"])] for _ in train]
            for x, _ in loader(train, angles, cfg, shuffle=True):
                with torch.no_grad():
                    f = model(x.flatten(0, 1))
                opt.zero_grad()
                loss = nll(*flow(f))
                loss.backward()
                opt.step()
        flow.eval()
        scores = []
        with torch.no_grad():
            for x, _ in loader(test, test_angles, cfg):
                z, _ = flow(model(x.flatten(0, 1)))
                scores += (z ** 2).reshape(x.shape[0], t_test, -1).mean((1, 2)).tolist()
        trajectory.append(auroc(labels, scores))
    return {
        "seconds": time.perf_counter() - start,
        "auroc_last": trajectory[-1],
        "trajectory": trajectory,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "feature_dim": dim,
    }


def rust_like(net):
    """Lite0 run as the Rust extractor runs it: each BatchNorm folded into the convolution
    before it, symmetric SAME padding done by the convolution, channels-last activations
    (ReLU6 in place: see `profile`)."""
    def fold(conv, bn):
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.data = conv.weight.data * scale[:, None, None, None]
        conv.bias = nn.Parameter(bn.bias - bn.running_mean * scale)

        def forward(x, conv=conv):
            k, st = conv.kernel_size[0], conv.stride[0]
            pads = [max((-(-n // st) - 1) * st + k - n, 0) for n in x.shape[2:]]
            if all(p % 2 == 0 for p in pads):
                return F.conv2d(x, conv.weight, conv.bias, conv.stride, [p // 2 for p in pads],
                                1, conv.groups)
            return F.conv2d(backbones.pad_same(x, k, st), conv.weight, conv.bias, conv.stride, 0,
                            1, conv.groups)
        conv.forward = forward
        return nn.Identity()

    net._bn0 = fold(net._conv_stem, net._bn0)
    net._bn1 = fold(net._conv_head, net._bn1)
    for b in net._blocks:
        if b.e != 1:
            b._bn0 = fold(b._expand_conv, b._bn0)
        b._bn1 = fold(b._depthwise_conv, b._bn1)
        b._bn2 = fold(b._project_conv, b._bn2)
    return net.to(memory_format=torch.channels_last)


def profile(cfg):
    """Time and FLOP shares of Lite0's forward by kind of operation, both ways."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    x = torch.randn(cfg["batch"], 3, cfg["image_size"], cfg["image_size"])
    out = {}
    for way in ["pytorch", "rust"]:
        net = backbones.Lite0().eval()
        net.load_state_dict(load_file(ROOT / cfg["weights"]))
        xs = x
        if way == "rust":
            net, xs = rust_like(net), x.to(memory_format=torch.channels_last)
        # The Rust extractor applies ReLU6 in place to each fresh activation.
        relu6 = F.relu6
        if way == "rust":
            F.relu6 = lambda t: t.clamp_(0.0, 6.0)
        try:
            with torch.no_grad():
                net(xs)
                with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True,
                                   with_flops=True) as prof:
                    start = time.perf_counter()
                    net(xs)
                    seconds = time.perf_counter() - start
        finally:
            F.relu6 = relu6
        kinds = {}

        def add(kind, us, flops=0):
            k = kinds.setdefault(kind, {"ms": 0.0, "gflop": 0.0})
            k["ms"] += us / 1e3
            k["gflop"] += flops / 1e9

        conv_children = {"aten::convolution", "aten::_convolution", "aten::mkldnn_convolution"}
        for e in prof.key_averages(group_by_input_shape=True):
            if e.key == "aten::conv2d":
                w = e.input_shapes[1]
                if w[1] == 1 and w[0] == e.input_shapes[0][1]:
                    kind = "depthwise convolution"
                elif w[2] == w[3] == 1:
                    kind = "1×1 convolution"
                else:
                    kind = "full convolution (stem)"
                add(kind, e.cpu_time_total, e.flops)
            elif e.key in conv_children or e.key.startswith("aten::conv"):
                continue
            elif "batch_norm" in e.key:
                add("BatchNorm", e.self_cpu_time_total)
            elif e.key in {"aten::clamp", "aten::clamp_", "aten::hardtanh", "aten::hardtanh_",
                           "aten::relu6"}:
                add("ReLU6", e.self_cpu_time_total)
            elif e.key in {"aten::fill_", "aten::copy_", "aten::constant_pad_nd", "aten::pad",
                           "aten::empty", "aten::zeros", "aten::clone"}:
                add("padding and copies", e.self_cpu_time_total)
            elif e.key == "aten::add":
                add("residual add", e.self_cpu_time_total)
            else:
                add("other", e.self_cpu_time_total)
        out[way] = {"seconds": seconds, "images": cfg["batch"], "kinds": kinds}
    return out


def profile_alexnet(cfg):
    """Where AlexNet's forward at 448 px, 3 scales spends its time, channels-last in float32
    and under bf16 autocast (the Rust extractor's layout and precisions, same oneDNN
    kernels): milliseconds and GFLOP by kind of operation (FLOPs from the profiler)."""
    from torch.profiler import ProfilerActivity, profile as torch_profile
    model = Extractor({"backbone": "alexnet", "scales": 3, "feature_layers": ["pool5"], "seed": 0})
    model = model.to(memory_format=torch.channels_last)
    size = cfg["image_size"]
    x = torch.randn(cfg["batch"], 3, size, size).contiguous(memory_format=torch.channels_last)
    out, conv_flops = {}, {}
    for way in ("fp32", "bf16"):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=way == "bf16"):
            model(x)
            start = time.perf_counter()
            model(x)
            seconds = time.perf_counter() - start
            with torch_profile(activities=[ProfilerActivity.CPU], with_flops=True,
                               record_shapes=True) as prof:
                model(x)
        # Each convolution (by input and weight shape) its own row: the kernel's time, the
        # wrapper's FLOPs (counted in float32: autocast's extra dispatch counts them twice).
        kinds = {}
        for e in prof.key_averages(group_by_input_shape=True):
            shapes = str(e.input_shapes[:2])
            if e.key == "aten::conv2d" and way == "fp32":
                conv_flops[shapes] = (e.flops or 0) / 1e9
        for e in prof.key_averages(group_by_input_shape=True):
            if e.key in {"aten::convolution", "aten::_convolution", "aten::conv2d"}:
                continue
            gflop = 0.0
            if "convolution" in e.key:
                (_, _, h, w), (co, ci, kh, kw) = e.input_shapes[0], e.input_shapes[1]
                name = f"conv {ci}→{co}, {kh}×{kw}, input {h}×{w}"
                gflop = conv_flops.get(str(e.input_shapes[:2]), 0.0)
            elif e.key in {"aten::relu", "aten::relu_", "aten::clamp_min"}:
                name = "ReLU"
            elif "max_pool" in e.key:
                name = "max pool"
            elif "upsample" in e.key or "interpolate" in e.key:
                name = "downscale (nearest)"
            elif e.key in {"aten::to", "aten::_to_copy", "aten::copy_"}:
                name = "casts and copies"
            else:
                name = "other"
            k = kinds.setdefault(name, {"ms": 0.0, "gflop": 0.0})
            k["ms"] += e.self_cpu_time_total / 1e3
            k["gflop"] += gflop
        out[way] = {"seconds": seconds, "images": cfg["batch"], "kinds": kinds}
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["extract", "score", "flow", "run", "profile", "profile_alexnet"])
    p.add_argument("--config", required=True, help="JSON object with the settings")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    cfg = json.loads(args.config)
    torch.set_num_threads(cfg.get("threads", 1))
    modes = {"extract": extract, "score": score, "flow": flow_steps, "run": run, "profile": profile,
             "profile_alexnet": profile_alexnet}
    result = modes[args.mode](cfg)
    result.update({"mode": args.mode, "config": cfg, "torch": torch.__version__,
                   "threads": torch.get_num_threads()})
    pathlib.Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
