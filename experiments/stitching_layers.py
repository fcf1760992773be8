"""Model stitching between two digits MLPs trained from different seeds (issue 5, section 7).

Claims (Bansal, Nakkiran & Barak, 2021, "Revisiting Model Stitching to Compare Neural
Representations"; Lenc & Vedaldi, 2015, "Understanding image representations by measuring
their equivariance and equivalence"): networks trained from different seeds can be stitched
at the same layer with a linear/affine stitch at little cost in accuracy ("good networks
learn similar representations"), i.e. their layers are *equivalent* up to a simple map.

Setup: scikit-learn digits (``common.digits()``), ReLU MLPs 64-128-128-128-10 trained with
``common.train_mlp`` from seeds ``2k`` (A) and ``2k + 1`` (B), ``k < --pairs``. For every
layer ``i`` of A (0 = the input pixels, 1-3 = hidden layers, post-ReLU) and hidden layer
``j`` of B, a stitch S maps A's layer i into B's layer j, and the stitched network
``B_{>j} ∘ S ∘ A_{≤i}`` is scored on the test split. Stitches: linear and affine, each

* ``ls``: closed-form least squares from A's layer i to B's layer j on the training split
  (no task training; Csiszárik et al.'s "direct matching");
* ``ls+train``: initialized by ``ls``, then trained on the task loss (cross-entropy);
* ``rand+train``: initialized at random (``nn.Linear``'s init), trained on the task loss.

Control: the same stitches from an *untrained* (randomly initialized) network A.

Run: ``.venv/bin/python experiments/stitching_layers.py`` (a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).parent))

import common

from subspaces.align.stitching import (
    StitchedModel,
    StitchingLayer,
    fit_stitch,
    stitching_score,
)

MODES = ("ls", "ls+train", "rand+train")
KINDS = ("linear", "affine")


class Front(nn.Module):
    """An MLP from its input up to hidden layer ``i`` (post-ReLU); ``i = 0`` is the input."""

    def __init__(self, net: common.MLP, i: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(net.layers[:i])

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


class Back(nn.Module):
    """An MLP from hidden layer ``j``'s activations to its logits."""

    def __init__(self, net: common.MLP, j: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(net.layers[j:])

    def forward(self, h: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))
        return self.layers[-1](h)


def stitch_accuracy(
    net_a: common.MLP,
    net_b: common.MLP,
    i: int,
    j: int,
    *,
    kind: str,
    mode: str,
    split: common.Split,
    epochs: int,
    lr: float,
    seed: int,
) -> float:
    front, back = Front(net_a, i), Back(net_b, j)
    with torch.no_grad():
        h_a, h_b = front(split.x_train), Front(net_b, j)(split.x_train)
    bias = kind == "affine"
    if mode.startswith("ls"):
        stitch = StitchingLayer.from_least_squares(h_a, h_b, bias=bias)
    else:
        gen = torch.Generator().manual_seed(seed)
        stitch = StitchingLayer(h_a.shape[1], h_b.shape[1], bias=bias, init="random", seed=gen)
    model = StitchedModel(front, stitch, back)
    if mode.endswith("train"):
        fit_stitch(model, split.x_train, split.y_train, epochs=epochs, lr=lr, seed=seed)
    score = stitching_score(model, split.x_test, split.y_test, reference=net_b)
    return float(score.accuracy)


def fmt(values: list[float]) -> str:
    t = torch.tensor(values, dtype=torch.float64)
    if len(values) == 1:
        return f"{float(t[0]):.3f}"
    return f"{float(t.mean()):.3f} ± {float(t.std()):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=3, help="seed pairs (A=2k, B=2k+1)")
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 128, 128, 10])
    parser.add_argument("--net-epochs", type=int, default=60)
    parser.add_argument("--stitch-epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()

    split = common.digits()
    n_hidden = len(args.widths) - 2
    rows_a = range(n_hidden + 1)  # 0 = input pixels
    cols_b = range(1, n_hidden + 1)
    # results[(source, kind, mode, i, j)] = list over pairs
    results: dict[tuple[str, str, str, int, int], list[float]] = {}
    base: dict[str, list[float]] = {"A": [], "B": [], "random A": []}
    for k in range(args.pairs):
        net_a = common.train_mlp(split, args.widths, seed=2 * k, epochs=args.net_epochs)
        net_b = common.train_mlp(split, args.widths, seed=2 * k + 1, epochs=args.net_epochs)
        torch.manual_seed(1000 + k)
        net_r = common.MLP(args.widths).eval()
        for name, net in (("A", net_a), ("B", net_b), ("random A", net_r)):
            base[name].append(common.accuracy(net, split.x_test, split.y_test))
        for source, net_src, rows in (("trained", net_a, rows_a), ("random", net_r, cols_b)):
            for kind in KINDS:
                for mode in MODES:
                    for i in rows:
                        for j in cols_b:
                            acc = stitch_accuracy(
                                net_src,
                                net_b,
                                i,
                                j,
                                kind=kind,
                                mode=mode,
                                split=split,
                                epochs=args.stitch_epochs,
                                lr=args.lr,
                                seed=100 * k + 10 * i + j,
                            )
                            results.setdefault((source, kind, mode, i, j), []).append(acc)
        print(f"pair {k}: done at {time.time() - start:.0f} s", file=sys.stderr)

    print(f"digits test split: {split.x_test.shape[0]} images; {args.pairs} seed pair(s); ")
    print(f"MLP {args.widths}, stitch training {args.stitch_epochs} epochs, Adam lr {args.lr}.\n")
    print("| network | test accuracy |\n|---|---|")
    for name, values in base.items():
        print(f"| {name} | {fmt(values)} |")
    print()
    for source, rows in (("trained", rows_a), ("random", cols_b)):
        label = "A trained (other seed)" if source == "trained" else "A untrained (control)"
        for kind in KINDS:
            print(f"**{label}, {kind} stitch**: test accuracy of B_>j ∘ S ∘ A_≤i\n")
            header = "| mode | layer i of A | " + " | ".join(f"j = {j}" for j in cols_b) + " |"
            print(header)
            print("|---|---|" + "---|" * len(cols_b))
            for mode in MODES:
                for i in rows:
                    cells = " | ".join(fmt(results[(source, kind, mode, i, j)]) for j in cols_b)
                    name = "input" if i == 0 else str(i)
                    print(f"| {mode} | {name} | {cells} |")
            print()
    print(
        "**Same-layer stitching penalty** (B's accuracy minus stitched, i = j, mean over pairs)\n"
    )
    print("| source | stitch | mode | " + " | ".join(f"i = j = {j}" for j in cols_b) + " |")
    print("|---|---|---|" + "---|" * len(cols_b))
    b_acc = torch.tensor(base["B"], dtype=torch.float64)
    for source in ("trained", "random"):
        for kind in KINDS:
            for mode in MODES:
                cells = []
                for j in cols_b:
                    acc = torch.tensor(results[(source, kind, mode, j, j)], dtype=torch.float64)
                    cells.append(f"{float((b_acc - acc).mean()):+.3f}")
                print(f"| {source} | {kind} | {mode} | " + " | ".join(cells) + " |")
    print(f"\nTotal time {time.time() - start:.0f} s.")


if __name__ == "__main__":
    main()
