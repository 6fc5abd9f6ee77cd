"""Golden values for the flow parity tests (run with the project's venv).

    .venv/bin/python crates/flows/goldens/make_goldens.py

- permutations.json: numpy.random.seed(k); numpy.random.permutation(d) for DifferNet's
  block seeds and a few dimensions.
- flow.safetensors: a small DifferNet flow (FrEIA glow_coupling_layer semantics, written
  out here in plain PyTorch) with formula weights (see `formula`; the Rust test recreates
  them), its forward pass, NLL loss, and every parameter after one Adam step with
  DifferNet's optimiser settings.
"""
import json
import math
import pathlib

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures"
DIM, HIDDEN, BLOCKS, CLAMP = 12, 16, 3, 3.0


def formula(shape, j):
    n = math.prod(shape)
    k = torch.arange(n, dtype=torch.float64)
    return (0.2 * torch.sin(0.37 * k + 1.3 * j)).float().reshape(shape)


class Subnet(nn.Module):
    def __init__(self, i, o, h):
        super().__init__()
        self.fc1, self.fc2, self.fc2b, self.fc3 = nn.Linear(i, h), nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, o)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2b(torch.relu(self.fc2(torch.relu(self.fc1(x)))))))


class Glow(nn.Module):
    def __init__(self, d, h, clamp):
        super().__init__()
        self.l1, self.l2, self.clamp = d // 2, d - d // 2, clamp
        self.s1 = Subnet(self.l1, 2 * self.l2, h)
        self.s2 = Subnet(self.l2, 2 * self.l1, h)

    def log_e(self, s):
        return self.clamp * 0.636 * torch.atan(s / self.clamp)

    def forward(self, x):
        x1, x2 = x[:, :self.l1], x[:, self.l1:]
        r2 = self.s2(x2)
        s2, t2 = r2[:, :self.l1], r2[:, self.l1:]
        y1 = torch.exp(self.log_e(s2)) * x1 + t2
        r1 = self.s1(y1)
        s1, t1 = r1[:, :self.l2], r1[:, self.l2:]
        y2 = torch.exp(self.log_e(s1)) * x2 + t1
        return torch.cat([y1, y2], 1), self.log_e(s1).sum(1) + self.log_e(s2).sum(1)


class Flow(nn.Module):
    def __init__(self):
        super().__init__()
        self.perms = []
        for k in range(BLOCKS):
            np.random.seed(k)
            self.perms.append(torch.from_numpy(np.random.permutation(DIM)))
        self.coupling = nn.ModuleList([Glow(DIM, HIDDEN, CLAMP) for _ in range(BLOCKS)])

    def forward(self, x):
        log_det = torch.zeros(x.shape[0])
        for perm, block in zip(self.perms, self.coupling):
            x, ld = block(x[:, perm])
            log_det = log_det + ld
        return x.clamp(-1e6, 1e6), log_det


def main():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    perms = {}
    for d in (10, 37, 768):
        for k in range(8):
            np.random.seed(k)
            perms[f"{k}/{d}"] = np.random.permutation(d).tolist()
    (FIXTURES / "permutations.json").write_text(json.dumps(perms) + "\n")

    flow = Flow()
    names = sorted(flow.state_dict())
    flow.load_state_dict({n: formula(flow.state_dict()[n].shape, j) for j, n in enumerate(names)})
    x = (torch.sin(0.11 * torch.arange(5 * DIM, dtype=torch.float64)) * 1.5).float().reshape(5, DIM)
    z, log_det = flow(x)
    loss = torch.mean(0.5 * torch.sum(z ** 2, 1) - log_det) / DIM
    out = {"z": z.detach(), "log_det": log_det.detach(), "loss": loss.detach().reshape(1)}
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2, betas=(0.8, 0.8), eps=1e-4, weight_decay=1e-5)
    opt.zero_grad()
    loss.backward()
    opt.step()
    for n, p in flow.named_parameters():
        out[f"after_adam.{n}"] = p.detach().clone()
    save_file({k: v.contiguous() for k, v in out.items()}, FIXTURES / "flow.safetensors")
    print("loss", loss.item())


if __name__ == "__main__":
    main()
