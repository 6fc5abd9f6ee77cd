"""Golden outputs of torchvision's transforms for the Rust parity test.

Run from the workspace root with the project's venv (dev-only: needs torch, torchvision
0.28 and Pillow):

    .venv/bin/python crates/datasets/goldens/make_goldens.py

It writes small inputs, torchvision's outputs and a manifest into
crates/datasets/tests/fixtures/transforms/. The Rust test (tests/transforms_parity.rs) reads
only those files. Float tensors are stored as raw little-endian float32 (C order, CHW).
"""

import json
import os

import numpy as np
import PIL
import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "transforms")
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def inputs(rng):
    # Noise with a few shapes: every pixel matters for resize and rotate.
    a = rng.randint(0, 256, size=(29, 37, 3)).astype(np.uint8)
    a[5:15, 8:20] = [250, 30, 30]
    # Smooth gradient with hard edges, 64x48 (non-square).
    yy, xx = np.mgrid[0:48, 0:64]
    b = np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=-1).clip(0, 255).astype(np.uint8)
    b[20:30, 10:50] = [0, 0, 0]
    b[::7, :] = 255
    # Gray 23x23, converted to RGB as DifferNet's loader does.
    c = (rng.rand(23, 23) * 255).astype(np.uint8)
    return {
        "a.png": Image.fromarray(a, "RGB"),
        "b.png": Image.fromarray(b, "RGB"),
        "c.png": Image.fromarray(c, "L"),
    }


def save_f32(name, t):
    arr = t.detach().cpu().numpy().astype("<f4")
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(arr.tobytes())
    return list(arr.shape)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.RandomState(0)
    imgs = inputs(rng)
    for name, im in imgs.items():
        im.save(os.path.join(OUT, name))
    rgb = {name: Image.open(os.path.join(OUT, name)).convert("RGB") for name in imgs}

    manifest = {
        "versions": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "pillow": PIL.__version__,
        },
        "resize": [],
        "rotate": [],
        "pipeline": [],
    }

    # Resize as DifferNet: transforms.Resize((h, w)) on the PIL image (bilinear, antialiased).
    for name, (w, h) in [
        ("a.png", (16, 16)), ("a.png", (24, 24)), ("a.png", (50, 50)), ("a.png", (37, 12)),
        ("b.png", (32, 32)), ("b.png", (17, 17)), ("b.png", (100, 30)), ("b.png", (60, 20)),
        ("a.png", (30, 10)), ("c.png", (16, 16)),
    ]:
        out = T.Resize((h, w))(rgb[name])
        fname = f"resize_{name[0]}_{w}x{h}.png"
        out.save(os.path.join(OUT, fname))
        manifest["resize"].append({"input": name, "width": w, "height": h, "output": fname})

    # Rotation as DifferNet: nearest, black fill, same size, about the centre.
    bases = {
        "a16": T.Resize((16, 16))(rgb["a.png"]),
        "a24": T.Resize((24, 24))(rgb["a.png"]),
        "b": rgb["b.png"],
        "c": rgb["c.png"],
    }
    for key, im in bases.items():
        im.save(os.path.join(OUT, f"base_{key}.png"))
    angles = [0.0, 5.625, 17.5, -33.0, 45.0, 90.0, 123.4, 180.0, -179.9, 270.0, 300.25, 359.0]
    for key in bases:
        for i, ang in enumerate(angles):
            out = TF.rotate(bases[key], ang, interpolation=T.InterpolationMode.NEAREST, fill=0)
            fname = f"rotate_{key}_{i:02d}.png"
            out.save(os.path.join(OUT, fname))
            manifest["rotate"].append({"input": f"base_{key}.png", "degrees": ang, "output": fname})

    # Full pipeline: Resize -> rotate -> ToTensor -> Normalize, then nearest downscales.
    for name, size, ang, norm in [
        ("a.png", 32, 16.875, "imagenet"),
        ("b.png", 32, -71.3, "imagenet"),
        ("c.png", 28, 90.0, "efficientnet_lite"),
        ("a.png", 20, 200.0, "efficientnet_lite"),
    ]:
        im = TF.rotate(T.Resize((size, size))(rgb[name]), ang,
                       interpolation=T.InterpolationMode.NEAREST, fill=0)
        x = T.ToTensor()(im)
        if norm == "imagenet":
            x = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)(x)
        else:
            x = (x * 255.0 - 127.0) / 128.0
        stem = f"pipe_{name[0]}_{size}_{norm}"
        entry = {"input": name, "size": size, "degrees": ang, "norm": norm,
                 "output": stem + ".f32", "scales": []}
        save_f32(stem + ".f32", x)
        for s in [size // 2, size // 4, 11]:
            y = F.interpolate(x.unsqueeze(0), size=(s, s))[0]
            fname = f"{stem}_nearest{s}.f32"
            save_f32(fname, y)
            entry["scales"].append({"size": s, "output": fname})
        manifest["pipeline"].append(entry)

    with open(os.path.join(OUT, "goldens.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
