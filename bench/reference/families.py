"""anomalib 2.7.0's flow-family modules timed on the same shapes as
crates/flows/examples/families_bench.rs (see bench/families.py): a training step (forward,
loss, backward, optimiser step, CS-Flow's gradients clipped to norm 1 as Lightning does)
and scoring (forward, map, image score). Prints one JSON object per family. With `phases`,
FastFlow's and CS-Flow's training steps are timed phase by phase instead (forward and loss,
backward, clipping and optimiser step), as the Rust side does.

    .venv/bin/python bench/reference/families.py THREADS REPEATS [phases]
"""
import json
import sys
import time

import torch
from anomalib.models.image.cflow.anomaly_map import AnomalyMapGenerator as CfMap
from anomalib.models.image.cflow.utils import cflow_head, get_logp, positional_encoding_2d
from anomalib.models.image.csflow.anomaly_map import AnomalyMapGenerator as CsMap
from anomalib.models.image.csflow.loss import CsFlowLoss
from anomalib.models.image.csflow.torch_model import CsFlowModel
from anomalib.models.image.fastflow.anomaly_map import AnomalyMapGenerator as FfMap
from anomalib.models.image.fastflow.loss import FastflowLoss
from anomalib.models.image.fastflow.torch_model import create_fast_flow_block
from torch import nn

LAYERS = [(24, 40, 40), (40, 20, 20), (80, 10, 10)]
SCALES = [(80, 8, 8), (80, 4, 4), (80, 2, 2)]
BATCH, SCORED = 24, 64


def median(repeats, f):
    f()
    t = []
    for _ in range(repeats):
        s = time.perf_counter()
        f()
        t.append(time.perf_counter() - s)
    return sorted(t)[len(t) // 2]


def maps(dims, n):
    return [torch.randn(n, c, h, w) for c, h, w in dims]


PHASES = len(sys.argv) > 3 and sys.argv[3] == "phases"


def phases(repeats, loss, params, opt, clip=None):
    """Medians over `repeats` steps (after one untimed) of the forward and loss, the
    backward, and the clipping and optimiser step (with zeroing the gradients)."""
    times = [[], [], []]
    for k in range(repeats + 1):
        s = time.perf_counter()
        value = loss()
        forward = time.perf_counter() - s
        s = time.perf_counter()
        value.backward()
        backward = time.perf_counter() - s
        s = time.perf_counter()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        opt.zero_grad()
        step = time.perf_counter() - s
        if k > 0:
            for t, v in zip(times, [forward, backward, step]):
                t.append(v)
    return [sorted(t)[len(t) // 2] for t in times]


def report_phases(family, parts):
    forward, backward, step = parts
    print(json.dumps({"family": family, "forward_s": forward, "backward_s": backward, "step_s": step}))


def report(family, step, images, score):
    print(json.dumps({"family": family, "train_steps_per_s": 1 / step, "score_images_per_s": images / score}))


def fastflow(repeats):
    norms = nn.ModuleList(nn.LayerNorm([c, h, w]) for c, h, w in LAYERS)
    flows = nn.ModuleList(create_fast_flow_block([c, h, w], False, 1.0, 8) for c, h, w in LAYERS)
    params = list(norms.parameters()) + [p for p in flows.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-5)
    x = maps(LAYERS, BATCH)

    def forward(x):
        z, j = [], []
        for f, n, m in zip(x, norms, flows):
            a, b = m(n(f))
            z.append(a)
            j.append(b)
        return z, j

    def step():
        opt.zero_grad()
        FastflowLoss()(*forward(x)).backward()
        opt.step()

    if PHASES:
        report_phases("fastflow", phases(repeats, lambda: FastflowLoss()(*forward(x)), params, opt))
        return

    y = maps(LAYERS, SCORED)
    generator = FfMap(input_size=(160, 160))

    def score():
        with torch.no_grad():
            z, _ = forward(y)
            torch.amax(generator(hidden_variables=z), dim=(-2, -1))

    report("fastflow", median(repeats, step), SCORED, median(repeats, score))


def csflow(repeats):
    # CrossScaleFlow hard-codes 304 channels: its graph, wired the same way for 80.
    from anomalib.models.image.csflow.torch_model import ParallelGlowCouplingLayer, ParallelPermute
    from FrEIA.framework import GraphINN, InputNode, Node, OutputNode

    nodes = [InputNode(c, h, w, name=f"input{i}") for i, (c, h, w) in enumerate(SCALES)]
    previous = [n.out0 for n in nodes]
    for b, k in enumerate([3, 3, 3, 5]):
        permute = Node(previous, ParallelPermute, {"seed": b})
        coupling = Node(
            [permute.out0, permute.out1, permute.out2],
            ParallelGlowCouplingLayer,
            {"clamp": 3, "subnet_args": {"channels_hidden": 64, "kernel_size": k}},
        )
        nodes += [permute, coupling]
        previous = [coupling.out0, coupling.out1, coupling.out2]
    nodes += [OutputNode([p]) for p in previous]
    graph = GraphINN(nodes)
    opt = torch.optim.Adam(graph.parameters(), lr=2e-4, weight_decay=1e-5)
    x = maps(SCALES, BATCH)

    def step():
        opt.zero_grad()
        z, jac = graph(x)
        CsFlowLoss()(list(z), jac).backward()
        torch.nn.utils.clip_grad_norm_(graph.parameters(), 1.0)
        opt.step()

    def loss():
        z, jac = graph(x)
        return CsFlowLoss()(list(z), jac)

    if PHASES:
        report_phases("csflow", phases(repeats, loss, list(graph.parameters()), opt, 1.0))
        return

    y = maps(SCALES, SCORED)
    generator = CsMap(input_dims=(3, 128, 128))

    def score():
        with torch.no_grad():
            z, _ = graph(y)
            CsFlowModel._compute_anomaly_scores(z)
            generator(list(z))

    report("csflow", median(repeats, step), SCORED, median(repeats, score))


def fibers(feature, condition=128):
    b, c, h, w = feature.shape
    encoding = positional_encoding_2d(condition, h, w)
    c_r = encoding.unsqueeze(0).repeat(b, 1, 1, 1).permute(0, 2, 3, 1).reshape(b * h * w, condition)
    e_r = feature.permute(0, 2, 3, 1).reshape(b * h * w, c)
    return e_r, c_r


def cflow(repeats):
    decoders = nn.ModuleList(cflow_head(128, 8, 1.9, c) for c, _, _ in LAYERS)
    opt = torch.optim.Adam(decoders.parameters(), lr=1e-4, weight_decay=1e-5)
    e, c = fibers(maps(LAYERS[:1], 1)[0])
    e, c = e[:64], c[:64]

    def step():
        opt.zero_grad()
        z, ljd = decoders[0](e, [c])
        (-torch.nn.functional.logsigmoid(get_logp(e.shape[1], z, ljd) / e.shape[1])).mean().backward()
        opt.step()

    scored = 16
    y = maps(LAYERS, scored)
    generator = CfMap(pool_layers=["a", "b", "c"])

    def score():
        with torch.no_grad():
            distributions = []
            for decoder, feature in zip(decoders, y):
                e_r, c_r = fibers(feature)
                chunks = []
                for start in range(0, e_r.shape[0], 64):
                    z, ljd = decoder(e_r[start:start + 64], [c_r[start:start + 64]])
                    chunks.append(get_logp(e_r.shape[1], z, ljd) / e_r.shape[1])
                distributions.append(torch.cat(chunks))
            m = generator(
                distribution=distributions,
                height=[h for _, h, _ in LAYERS],
                width=[w for _, _, w in LAYERS],
                image_size=(160, 160),
            )
            torch.amax(m, dim=(-2, -1))

    report("cflow", median(repeats, step), scored, median(repeats, score))


if __name__ == "__main__":
    threads, repeats = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    fastflow(repeats)
    csflow(repeats)
    if not PHASES:
        cflow(repeats)
