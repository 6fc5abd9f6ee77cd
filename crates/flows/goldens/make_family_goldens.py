"""Goldens for the flow families' parity tests, made with anomalib's own modules.

    .venv/bin/pip install -c crates/flows/goldens/constraints.txt anomalib==2.7.0
    .venv/bin/python crates/flows/goldens/make_family_goldens.py

- fastflow.safetensors: FastFlow's per-scale flows and layer norms as anomalib builds them
  (`create_fast_flow_block`, `nn.LayerNorm`), on three small feature maps standing in for a
  backbone's (odd channel counts included), 4 steps per scale. The parameters are moved off
  their initial values so every term counts. Stored: every parameter (`param.<name>`,
  anomalib's names), the inputs, z and log|det J| per scale, the loss (`FastflowLoss`), the
  anomaly map (`AnomalyMapGenerator`) and image score (its maximum), and every trained
  parameter after one Adam step with FastFlow's settings (`after.<name>`).
- csflow.safetensors: CS-Flow's cross-scale flow from anomalib's own `ParallelPermute` and
  `ParallelGlowCouplingLayer` nodes in a FrEIA graph as `CrossScaleFlow` wires them (its
  304 channels made 9, so the goldens stay small), 3 blocks (3 × 3, 3 × 3, 5 × 5
  kernels), the gammas and all weights moved off their initial values. Stored as above:
  parameters (`param.<name>` by the graph's names), inputs, z per scale, log|det J|, the
  loss (`CsFlowLoss`), the anomaly map (`AnomalyMapGenerator`, mode all) and score, and one
  Adam step with CS-Flow's settings after gradient-norm clipping at 1 (`after.<name>`).
- cflow.safetensors: CFlow-AD's decoders as anomalib builds them (`cflow_head`, its
  `AllInOneBlock` with the positional condition) for two feature layers of 6 and 10
  channels, condition length 8, 3 blocks, weights moved off their start. Stored: the
  parameters, the layers' maps, the positional encodings (`positional_encoding_2d`), each
  layer's log-likelihood per dimension at every position, scored as `CflowModel` scores
  (chunks of 64 fibers, `get_logp`), the anomaly map (`AnomalyMapGenerator`) and score;
  and one training step of layer 0 on its first 64 fibers in a fixed shuffled order
  (`train.order`): z, log|det J|, the loss and every weight after Adam (lr 1e-4).
- csflow_permutations.json: `numpy.random.default_rng(seed).permutation(n)`, the permutation
  CS-Flow's blocks draw, for seeds 0–7 and a few lengths.
"""
import json
import pathlib

import anomalib
import numpy as np
import torch
from anomalib.models.image.fastflow.anomaly_map import AnomalyMapGenerator
from anomalib.models.image.fastflow.loss import FastflowLoss
from anomalib.models.image.fastflow.torch_model import create_fast_flow_block
from safetensors.torch import save_file
from torch import nn

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures"
DIMS = [(6, 8, 8), (9, 4, 4), (12, 2, 2)]
INPUT = (32, 32)
STEPS = 4
N = 3


class FastFlowHead(nn.Module):
    """The flows and norms of anomalib's FastflowModel, without its backbone."""

    def __init__(self):
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm([c, h, w], elementwise_affine=True) for c, h, w in DIMS)
        self.fast_flow_blocks = nn.ModuleList(
            create_fast_flow_block([c, h, w], conv3x3_only=False, hidden_ratio=1.0, flow_steps=STEPS)
            for c, h, w in DIMS
        )

    def forward(self, features):
        hidden, jacobians = [], []
        for feature, norm, flow in zip(features, self.norms, self.fast_flow_blocks):
            z, log_det = flow(norm(feature))
            hidden.append(z)
            jacobians.append(log_det)
        return hidden, jacobians


def fastflow():
    torch.manual_seed(7)
    head = FastFlowHead()
    with torch.no_grad():
        for name, p in head.named_parameters():
            if name.endswith("global_scale"):
                p.add_(0.4 * torch.randn_like(p))
            elif name.endswith("global_offset") or name.startswith("norms"):
                p.add_(0.1 * torch.randn_like(p))
    features = [1.5 * torch.randn(N, c, h, w) + 0.3 for c, h, w in DIMS]
    out = {f"param.{k}": v.detach().clone() for k, v in head.state_dict().items()}
    out.update({f"input.{i}": f for i, f in enumerate(features)})
    hidden, jacobians = head(features)
    loss = FastflowLoss()(hidden, jacobians)
    anomaly_map = AnomalyMapGenerator(input_size=INPUT)(hidden_variables=[z.detach() for z in hidden])
    score = torch.amax(anomaly_map, dim=(1, 2, 3))
    for i, (z, j) in enumerate(zip(hidden, jacobians)):
        out[f"z.{i}"] = z.detach().clone()
        out[f"ldj.{i}"] = j.detach().clone()
    out["loss"] = loss.detach().reshape(1)
    out["map"] = anomaly_map
    out["score"] = score
    trained = [(k, p) for k, p in head.named_parameters() if p.requires_grad]
    optimiser = torch.optim.Adam([p for _, p in trained], lr=1e-3, weight_decay=1e-5)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    out.update({f"after.{k}": p.detach().clone() for k, p in trained})
    out = {k: v.contiguous() for k, v in out.items()}
    save_file(out, FIXTURES / "fastflow.safetensors", metadata={"anomalib": anomalib.__version__})
    print(f"fastflow.safetensors: {len(out)} tensors, loss {loss.item():.6f}, anomalib {anomalib.__version__}")


CS_DIMS = [(9, 8, 8), (9, 4, 4), (9, 2, 2)]
CS_HIDDEN = 5
CS_BLOCKS = 3
CS_INPUT = (64, 64)


def csflow_graph():
    from anomalib.models.image.csflow.torch_model import ParallelGlowCouplingLayer, ParallelPermute
    from FrEIA.framework import GraphINN, InputNode, Node, OutputNode

    kernels = [3] * (CS_BLOCKS - 1) + [5]
    nodes = [InputNode(c, h, w, name=f"input{i}") for i, (c, h, w) in enumerate(CS_DIMS)]
    previous = [n.out0 for n in nodes]
    for b in range(CS_BLOCKS):
        permute = Node(previous, ParallelPermute, {"seed": b}, name=f"permute_{b}")
        coupling = Node(
            [permute.out0, permute.out1, permute.out2],
            ParallelGlowCouplingLayer,
            {"clamp": 3, "subnet_args": {"channels_hidden": CS_HIDDEN, "kernel_size": kernels[b]}},
            name=f"fc1_{b}",
        )
        nodes += [permute, coupling]
        previous = [coupling.out0, coupling.out1, coupling.out2]
    nodes += [OutputNode([p], name=f"output_end{i}") for i, p in enumerate(previous)]
    return GraphINN(nodes)


def csflow():
    from anomalib.models.image.csflow.anomaly_map import AnomalyMapGenerator as CsMap
    from anomalib.models.image.csflow.loss import CsFlowLoss
    from anomalib.models.image.csflow.torch_model import CsFlowModel

    torch.manual_seed(11)
    graph = csflow_graph()
    with torch.no_grad():
        for name, p in graph.named_parameters():
            if "gamma" in name:
                p.copy_(0.5 + 0.3 * torch.randn_like(p))
            else:
                p.add_(0.05 * torch.randn_like(p))
    features = [1.2 * torch.randn(N, c, h, w) - 0.2 for c, h, w in CS_DIMS]
    out = {f"param.{k}": v.detach().clone() for k, v in graph.state_dict().items()}
    out.update({f"input.{i}": f for i, f in enumerate(features)})
    z, jac = graph(features)
    loss = CsFlowLoss()(list(z), jac)
    zd = [t.detach() for t in z]
    anomaly_map = CsMap(input_dims=(3, *CS_INPUT))(zd)
    score = CsFlowModel._compute_anomaly_scores(zd)
    for i, t in enumerate(zd):
        out[f"z.{i}"] = t.clone()
    out["ldj"] = jac.detach().clone()
    out["loss"] = loss.detach().reshape(1)
    out["map"] = anomaly_map
    out["score"] = score
    trained = [(k, p) for k, p in graph.named_parameters() if p.requires_grad]
    optimiser = torch.optim.Adam([p for _, p in trained], lr=2e-4, betas=(0.5, 0.9), eps=1e-4, weight_decay=1e-5)
    optimiser.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for _, p in trained], max_norm=1.0)
    optimiser.step()
    out.update({f"after.{k}": p.detach().clone() for k, p in trained})
    out = {k: v.contiguous() for k, v in out.items()}
    save_file(out, FIXTURES / "csflow.safetensors", metadata={"anomalib": anomalib.__version__})
    perms = {
        f"{seed}/{n}": np.random.default_rng(seed).permutation(n).tolist()
        for seed in range(8)
        for n in [1, 2, 5, 9, 64, 152, 304]
    }
    (FIXTURES / "csflow_permutations.json").write_text(json.dumps(perms, sort_keys=True))
    print(f"csflow.safetensors: {len(out)} tensors, loss {loss.item():.6f}; {len(perms)} permutations")


CF_CHANNELS = [6, 10]
CF_SIZES = [(8, 8), (4, 4)]
CF_CONDITION = 8
CF_BLOCKS = 3
CF_IMAGE = (32, 32)


def cflow():
    from anomalib.models.image.cflow.anomaly_map import AnomalyMapGenerator as CfMap
    from anomalib.models.image.cflow.utils import cflow_head, get_logp, positional_encoding_2d

    torch.manual_seed(13)
    decoders = nn.ModuleList(
        cflow_head(CF_CONDITION, CF_BLOCKS, 1.9, c, permute_soft=False) for c in CF_CHANNELS
    )
    with torch.no_grad():
        for name, p in decoders.named_parameters():
            if name.endswith("global_scale"):
                p.add_(0.4 * torch.randn_like(p))
            elif name.endswith("global_offset"):
                p.add_(0.1 * torch.randn_like(p))
            elif p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    maps = [1.3 * torch.randn(N, c, h, w) + 0.1 for c, (h, w) in zip(CF_CHANNELS, CF_SIZES)]
    out = {f"param.decoders.{k}": v.detach().clone() for k, v in decoders.state_dict().items()}
    distributions = []
    for l, (decoder, feature) in enumerate(zip(decoders, maps)):
        b, c, h, w = feature.shape
        encoding = positional_encoding_2d(CF_CONDITION, h, w)
        out[f"input.{l}"] = feature
        out[f"encoding.{l}"] = encoding
        c_r = encoding.unsqueeze(0).repeat(b, 1, 1, 1).permute(0, 2, 3, 1).reshape(b * h * w, CF_CONDITION)
        e_r = feature.permute(0, 2, 3, 1).reshape(b * h * w, c)
        chunks = []
        for start in range(0, b * h * w, 64):
            idx = torch.arange(start, min(start + 64, b * h * w))
            with torch.no_grad():
                z, log_det = decoder(e_r[idx], [c_r[idx]])
            chunks.append(get_logp(c, z, log_det) / c)
        distribution = torch.cat(chunks)
        out[f"log_prob.{l}"] = distribution
        distributions.append(distribution)
    generator = CfMap(pool_layers=[f"layer{l}" for l in range(len(CF_CHANNELS))])
    anomaly_map = generator(
        distribution=distributions,
        height=[h for h, _ in CF_SIZES],
        width=[w for _, w in CF_SIZES],
        image_size=CF_IMAGE,
    )
    out["map"] = anomaly_map
    out["score"] = torch.amax(anomaly_map, dim=(-2, -1))
    # One training step of layer 0 on a fixed shuffle of its fibers.
    feature = maps[0]
    b, c, h, w = feature.shape
    encoding = positional_encoding_2d(CF_CONDITION, h, w)
    c_r = encoding.unsqueeze(0).repeat(b, 1, 1, 1).permute(0, 2, 3, 1).reshape(b * h * w, CF_CONDITION)
    e_r = feature.permute(0, 2, 3, 1).reshape(b * h * w, c)
    order = torch.randperm(b * h * w)[:64]
    out["train.order"] = order
    optimiser = torch.optim.Adam(decoders.parameters(), lr=1e-4)
    optimiser.zero_grad()
    z, log_det = decoders[0](e_r[order], [c_r[order]])
    log_prob = get_logp(c, z, log_det) / c
    loss = -torch.nn.functional.logsigmoid(log_prob)
    loss.mean().backward()
    optimiser.step()
    out["train.z"] = z.detach().clone()
    out["train.ldj"] = log_det.detach().clone()
    out["train.loss"] = loss.mean().detach().reshape(1)
    out.update(
        {f"after.decoders.{k}": p.detach().clone() for k, p in decoders.named_parameters() if p.requires_grad}
    )
    out = {k: v.contiguous() for k, v in out.items()}
    save_file(out, FIXTURES / "cflow.safetensors", metadata={"anomalib": anomalib.__version__})
    print(f"cflow.safetensors: {len(out)} tensors, loss {loss.mean().item():.6f}")


if __name__ == "__main__":
    fastflow()
    csflow()
    cflow()
