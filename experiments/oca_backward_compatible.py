"""Backward-compatible representations on MNIST with OCA (Ricci et al., 2024).

An *old* model (a small MLP, d = 32, trained on digits 0-4 only, half the training images)
indexes the test set as a gallery. A *new* model (a wider MLP, d + k = 32 + 16, all ten
digits, all training images) is trained with OCA: its first d coordinates are pulled onto the
old model's class prototypes, and a new classifier reads its embedding through a learned
orthogonal map (``subspaces.align.oca.OCAHead``). The control is the same new model trained
independently (cross-entropy only), whose first d coordinates have nothing to do with the old
space; an OCA model with k = 0 extra dimensions shows what the extra dimensions buy.

Retrieval on the 10,000 test images, leave-one-out (each image queries all the others),
cosine similarity, top-1 and mAP over class labels, for query model / gallery model:
old/old, new/old (new queries against the old gallery, first d coordinates) and new/new.
The paper's compatibility criterion: M(new, old) > M(old, old), with new/new close to the
independently trained new model.

    .venv/bin/python experiments/oca_backward_compatible.py            # ~6 min on 2 cores (3 seeds)
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).parent))
import common

from subspaces.align import OCAHead, class_retrieval, oca_step, old_class_prototypes


def embedder(widths: list[int]) -> nn.Sequential:
    """ReLU MLP whose last layer (the embedding) is linear."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def batches(n: int, batch_size: int, seed: int, epochs: int) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [idx for _ in range(epochs) for idx in torch.randperm(n, generator=g).split(batch_size)]


def train_plain(
    x: Tensor, y: Tensor, widths: list[int], num_classes: int, *, seed: int, epochs: int
) -> nn.Sequential:
    """Embedding + bias-free linear classifier on the unit embedding, cross-entropy (LS 0.1)."""
    torch.manual_seed(seed)
    model = embedder(widths)
    fc = nn.Linear(widths[-1], num_classes, bias=False)
    opt = torch.optim.Adam([*model.parameters(), *fc.parameters()], lr=1e-3)
    for idx in batches(x.shape[0], 128, seed, epochs):
        opt.zero_grad()
        logits = fc(F.normalize(model(x[idx]), dim=1))
        F.cross_entropy(logits, y[idx], label_smoothing=0.1).backward()
        opt.step()
    return model.eval()


def train_oca(
    x: Tensor,
    y: Tensor,
    widths: list[int],
    prototypes: Tensor,
    extra_dim: int,
    *,
    seed: int,
    epochs: int,
) -> tuple[nn.Sequential, OCAHead]:
    torch.manual_seed(seed)
    model = embedder(widths)
    head = OCAHead(prototypes, num_classes=10, extra_dim=extra_dim)
    opt = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-3)
    for idx in batches(x.shape[0], 128, seed, epochs):
        oca_step(model, head, x[idx], y[idx], opt)
    return model.eval(), head.eval()


def scores(query: Tensor, gallery: Tensor, labels: Tensor) -> tuple[float, float]:
    r = class_retrieval(query, gallery, labels, labels, exclude_self=True)
    return float(r.top_k[1]), float(r.mean_average_precision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--old-dim", type=int, default=32)
    parser.add_argument("--extra-dim", type=int, default=16)
    parser.add_argument("--old-classes", type=int, default=5, help="old model sees 0..C-1")
    parser.add_argument("--old-fraction", type=float, default=0.5, help="of the training set")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    data = common.mnist(n_test=args.n_test)
    x, y, xt, yt = data.x_train, data.y_train, data.x_test, data.y_test
    n_old = int(args.old_fraction * x.shape[0])
    keep = y[:n_old] < args.old_classes
    x_old, y_old = x[:n_old][keep], y[:n_old][keep]
    d, k = args.old_dim, args.extra_dim
    old_widths, new_widths = [784, 128, d], [784, 512, 256, d + k]
    new_widths_k0 = [784, 512, 256, d]

    rows: dict[str, list[tuple[float, float]]] = {}

    def add(name: str, value: tuple[float, float]) -> None:
        rows.setdefault(name, []).append(value)

    for seed in args.seeds:
        old = train_plain(x_old, y_old, old_widths, args.old_classes, seed=seed, epochs=args.epochs)
        with torch.no_grad():
            protos = old_class_prototypes(old(x), y, num_classes=10)
            g_old = F.normalize(old(xt), dim=1)
        indep = train_plain(x, y, new_widths, 10, seed=seed + 100, epochs=args.epochs)
        oca, head = train_oca(x, y, new_widths, protos, k, seed=seed + 100, epochs=args.epochs)
        oca0, head0 = train_oca(x, y, new_widths_k0, protos, 0, seed=seed + 100, epochs=args.epochs)
        with torch.no_grad():
            f_ind = F.normalize(indep(xt), dim=1)
            f_oca, f_oca0 = oca(xt), oca0(xt)
            add("old / old", scores(g_old, g_old, yt))
            add("independent new / new", scores(f_ind, f_ind, yt))
            add("independent new / old (first d)", scores(f_ind[:, :d], g_old, yt))
            add(f"OCA (k={k}) new / old", scores(head.compatible_features(f_oca), g_old, yt))
            add(
                f"OCA (k={k}) new / new",
                scores(head.new_features(f_oca), head.new_features(f_oca), yt),
            )
            add("OCA (k=0) new / old", scores(head0.compatible_features(f_oca0), g_old, yt))
            add(
                "OCA (k=0) new / new",
                scores(head0.new_features(f_oca0), head0.new_features(f_oca0), yt),
            )
        print(f"seed {seed} done at {time.perf_counter() - start:.0f} s", file=sys.stderr)

    print(
        f"\nMNIST test retrieval ({args.n_test} images, leave-one-out, cosine); old: {old_widths}"
        f" on digits < {args.old_classes}, {x_old.shape[0]} images; new: {new_widths}, "
        f"{x.shape[0]} images, {args.epochs} epochs; mean ± std over seeds {args.seeds}\n"
    )
    print("| query / gallery | top-1 | mAP | top-1 per seed | mAP per seed |")
    print("|---|---|---|---|---|")
    for name, vals in rows.items():
        t = torch.tensor(vals, dtype=torch.float64)
        mean, std = t.mean(0), t.std(0) if t.shape[0] > 1 else torch.zeros(2)
        per_seed = [", ".join(f"{v:.3f}" for v in t[:, j].tolist()) for j in range(2)]
        print(
            f"| {name} | {mean[0]:.4f} ± {std[0]:.4f} | {mean[1]:.4f} ± {std[1]:.4f} "
            f"| {per_seed[0]} | {per_seed[1]} |"
        )
    m = {name: torch.tensor(v).mean(0) for name, v in rows.items()}
    oo, no = m["old / old"], m[f"OCA (k={k}) new / old"]
    nn_, ind = m[f"OCA (k={k}) new / new"], m["independent new / new"]
    print(
        f"\ncompatibility M(new, old) > M(old, old): top-1 {bool(no[0] > oo[0])}, "
        f"mAP {bool(no[1] > oo[1])}; new/new > old/old: top-1 {bool(nn_[0] > oo[0])}, "
        f"mAP {bool(nn_[1] > oo[1])}; OCA new/new − independent new/new: "
        f"top-1 {float(nn_[0] - ind[0]):+.4f}, mAP {float(nn_[1] - ind[1]):+.4f}"
    )
    print(f"total time {time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
