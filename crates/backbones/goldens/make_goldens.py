"""Golden tensors for the backbone parity tests (run with the project's venv).

    .venv/bin/python crates/backbones/goldens/make_goldens.py

Builds AlexNet `features`, SE, both CBAM variants and EfficientNet-Lite0 in plain PyTorch,
independently of the Rust code, and writes their outputs to tests/fixtures/. Random-init
modules get *formula* weights (see `formula`), which the Rust tests recreate, so no weight
file needs committing. EfficientNet-Lite0 uses the real ImageNet weights converted by
`adn weights fetch` (weights/efficientnet-lite0.safetensors) and two natural images from
scikit-image (pip install scikit-image; dev-only).
"""
import copy
import json
import math
import pathlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parents[3]
FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def formula(shape, j):
    """Deterministic weights: 0.2·sin(0.37·k + 1.3·j) over the flat index k (tensor j)."""
    n = math.prod(shape)
    k = torch.arange(n, dtype=torch.float64)
    return (0.2 * torch.sin(0.37 * k + 1.3 * j)).float().reshape(shape)


def formula_input(shape):
    n = math.prod(shape)
    k = torch.arange(n, dtype=torch.float64)
    return torch.sin(0.11 * k).float().reshape(shape) * 1.5


def set_formula(module):
    """Formula weights for every parameter and buffer, tensors numbered in sorted-name order
    (BatchNorm running_var gets 1 + |formula| to stay positive)."""
    state = module.state_dict()
    names = sorted(k for k in state if not k.endswith("num_batches_tracked"))
    new = {}
    for j, name in enumerate(names):
        w = formula(state[name].shape, j)
        if name.endswith("running_var"):
            w = 1.0 + w.abs()
        new[name] = w
    module.load_state_dict(new, strict=False)
    return names


class AlexNetFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        )

    def forward(self, x):
        return self.features(x)


class SE(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.fc1 = nn.Linear(c, c // r, bias=False)
        self.fc2 = nn.Linear(c // r, c, bias=False)

    def forward(self, x):
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        return x * s[:, :, None, None]


class CBAM(nn.Module):
    def __init__(self, c, r, k, official):
        super().__init__()
        self.official = official
        self.mlp1 = nn.Conv2d(c, c // r, 1, bias=official)
        self.mlp2 = nn.Conv2d(c // r, c, 1, bias=official)
        self.spatial = nn.Conv2d(2, 1, k, padding=k // 2, bias=not official)
        if official:
            self.spatial_bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x):
        mlp = lambda t: self.mlp2(F.relu(self.mlp1(t)))
        ca = torch.sigmoid(mlp(F.adaptive_avg_pool2d(x, 1)) + mlp(F.adaptive_max_pool2d(x, 1)))
        out = x * ca
        pooled = torch.cat([out.amax(1, keepdim=True), out.mean(1, keepdim=True)], 1)
        s = self.spatial(pooled)
        if self.official:
            s = self.spatial_bn(s)
        out = out * torch.sigmoid(s)
        return out if self.official else out + x


def pad_same(x, k, s):
    def pad(n):
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        return total // 2, total - total // 2
    top, bottom = pad(x.shape[2])
    left, right = pad(x.shape[3])
    if top == bottom == left == right == 0:
        return x  # as efficientnet_pytorch's static padding: no copy when nothing pads
    return F.pad(x, (left, right, top, bottom))


class SameConv(nn.Conv2d):
    def forward(self, x):
        return F.conv2d(pad_same(x, self.kernel_size[0], self.stride[0]), self.weight, None,
                        self.stride, 0, 1, self.groups)


STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]


class MBConv(nn.Module):
    def __init__(self, cin, cout, e, k, s):
        super().__init__()
        mid = cin * e
        self.e = e
        if e != 1:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3)
        self._depthwise_conv = SameConv(mid, mid, k, stride=s, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=1e-3)
        self.skip = s == 1 and cin == cout

    def forward(self, x):
        y = x
        if self.e != 1:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class Lite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
        blocks, self.ends, cin = [], [], 32
        for e, k, s, cout, r in STAGES:
            for i in range(r):
                blocks.append(MBConv(cin, cout, e, k, s if i == 0 else 1))
                cin = cout
            self.ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=1e-3)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        stages = []
        for i, b in enumerate(self._blocks):
            x = b(x)
            if i in self.ends:
                stages.append(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3))), stages


def natural_images():
    from PIL import Image
    from skimage import data
    out = {}
    for name in ["chelsea", "coffee"]:
        img = Image.fromarray(getattr(data, name)()).convert("RGB")
        img = img.resize((224, 224), Image.BILINEAR)
        img.save(FIXTURES / f"{name}_224.png")
        out[name] = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255.0
    return out


def main():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)
    out = {}

    alex = AlexNetFeatures().eval()
    set_formula(alex)
    x = formula_input((2, 3, 128, 128))
    out["alexnet.features"] = alex(x)

    # Grad-CAM at relu2 (features.4) for score = Σ pooled², 2 scales, 128 px, in float64:
    # in float32 the map itself is only good to about 1e-3 (cancellation in Σ_c α_c·A_c).
    with torch.enable_grad():
        xg = formula_input((1, 3, 128, 128)).double()
        seq = copy.deepcopy(alex).double().features
        a = seq[:5](xg).detach().requires_grad_(True)
        f0 = seq[5:](a).mean((2, 3))
        f1 = seq(F.interpolate(xg, size=(64, 64), mode="nearest")).mean((2, 3))
        y = (torch.cat([f0, f1], 1) ** 2).sum()
        (g,) = torch.autograd.grad(y, a)
    cam = F.relu((g.mean((2, 3), keepdim=True) * a.detach()).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=(128, 128), mode="bilinear", align_corners=False)[:, 0]
    out["gradcam.relu2"] = cam / cam.amax((1, 2), keepdim=True).clamp_min(1e-12)

    xa = formula_input((2, 32, 12, 12))
    out["attention.input"] = xa
    # The Rust defaults: SE r = 2; lab CBAM r = 16, k = 49; official CBAM r = 16, k = 7.
    for name, m in [("se", SE(32, 2)), ("cbam", CBAM(32, 16, 49, False)),
                    ("cbam_official", CBAM(32, 16, 7, True))]:
        m.eval()
        set_formula(m)
        out[f"{name}.output"] = m(xa)

    lite = Lite0().eval()
    state = load_file(ROOT / "weights" / "efficientnet-lite0.safetensors")
    missing, unexpected = lite.load_state_dict(state, strict=False)
    assert not missing, missing
    assert all(k.endswith("num_batches_tracked") for k in unexpected), unexpected
    imgs = natural_images()
    batch = torch.stack([imgs["chelsea"], imgs["coffee"]]) * 255.0
    batch = (batch - 127.0) / 128.0
    logits, stages = lite(batch)
    out["lite0.logits"] = logits
    for i in (5, 6, 7):
        out[f"lite0.stage{i}_pooled"] = stages[i - 1].mean((2, 3))
    top5 = logits.softmax(1).topk(5)
    summary = {name: {"top5": idx.tolist(), "prob": p.tolist()}
               for name, idx, p in zip(["chelsea", "coffee"], top5.indices, top5.values)}
    save_file({k: v.contiguous() for k, v in out.items()}, FIXTURES / "backbones.safetensors")
    (FIXTURES / "lite0_top5.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
