"""Zero-shot stitching through relative representations (Moschella et al., ICLR 2023).

Two digits MLPs A and B, same architecture, trained from different seeds. A linear head is
trained on B's last hidden layer and applied, with no training, to A's:

* absolute: the head sees B's raw activations, then A's (should collapse to ~chance);
* relative: the head sees B's relative representation (cosine to anchor inputs embedded by
  B), then A's relative representation (the same anchor inputs embedded by A).

Also reported: each model's own test accuracy (end-to-end), a relative head trained and
tested within one model (B→B, A→A), the mean cosine of A's and B's relative vectors of the
same test inputs (Table 1 of the paper) against that of the raw activations, and the mean
reciprocal rank of retrieving a test input's relative vector in B from its vector in A.
As a control, the relative cosine when B's anchors are shuffled against A's (the same
anchor inputs, wrongly paired): what positive ReLU activations give without correspondence.
Seeds pairs × anchor counts × anchor selection (random, farthest-point, k-means nearest
samples, chosen on B's training activations), then the similarity functions of the paper
and of Cannistraci et al. (2024).

Run: ``.venv/bin/python experiments/relative_stitching.py`` (a few minutes on 1 core).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).parent))
import common

from subspaces.align.relative import (
    RelativeProjection,
    fit_classification_head,
)
from subspaces.similarity.relative import (
    relative_retrieval,
    relative_similarity,
    select_anchors,
)


def _acc(head: torch.nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((head(x).argmax(1) == y).float().mean())


def _mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _mean_cosine(a: Tensor, b: Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=1).mean())


@dataclass(frozen=True)
class Reps:
    """Last-hidden-layer activations of models A and B, labels, and the head's settings."""

    a_train: Tensor
    a_test: Tensor
    b_train: Tensor
    b_test: Tensor
    y_train: Tensor
    y_test: Tensor
    head_epochs: int
    seed: int


def _relative_run(reps: Reps, idx: Tensor, similarity: str, normalize: bool) -> dict[str, float]:
    """Heads on each model's relative space, applied within and across models."""
    opts = {"similarity": similarity, "normalize": normalize}
    proj_a = RelativeProjection(reps.a_train[idx], **opts)  # type: ignore[arg-type]
    proj_b = RelativeProjection(reps.b_train[idx], **opts)  # type: ignore[arg-type]
    ra_tr, ra_te = proj_a(reps.a_train), proj_a(reps.a_test)
    rb_tr, rb_te = proj_b(reps.b_train), proj_b(reps.b_test)
    fit = {"epochs": reps.head_epochs, "seed": reps.seed}
    head_b = fit_classification_head(rb_tr, reps.y_train, **fit)  # type: ignore[arg-type]
    head_a = fit_classification_head(ra_tr, reps.y_train, **fit)  # type: ignore[arg-type]
    anchors = {
        "anchors_x": reps.a_train[idx],
        "anchors_y": reps.b_train[idx],
        "similarity": similarity,
    }
    # Control: the same anchors in B but paired with other anchors of A (a fixed shuffle).
    shuffled = idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(reps.seed))]
    mismatched = {**anchors, "anchors_y": reps.b_train[shuffled]}
    y = reps.y_test
    return {
        "B→B": _acc(head_b, rb_te, y),
        "A→A": _acc(head_a, ra_te, y),
        "B→A": _acc(head_b, ra_te, y),
        "A→B": _acc(head_a, rb_te, y),
        "rel cos": float(relative_similarity(reps.a_test, reps.b_test, **anchors)),  # type: ignore[arg-type]
        "MRR": float(relative_retrieval(reps.a_test, reps.b_test, **anchors).mrr),  # type: ignore[arg-type]
        "cos shuffled": float(relative_similarity(reps.a_test, reps.b_test, **mismatched)),  # type: ignore[arg-type]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=3, help="seed pairs (2i, 2i+1)")
    parser.add_argument("--anchors", default="16,64,128,300", help="anchor counts")
    parser.add_argument("--methods", default="random,farthest_point,kmeans")
    parser.add_argument("--similarities", default="cosine,linear,euclidean,l1,linf")
    parser.add_argument("--widths", default="64,128,64,10", help="MLP widths")
    parser.add_argument("--epochs", type=int, default=60, help="MLP training epochs")
    parser.add_argument("--head-epochs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    split = common.digits()
    widths = [int(w) for w in args.widths.split(",")]
    counts = [int(k) for k in args.anchors.split(",")]
    methods = args.methods.split(",")
    similarities = args.similarities.split(",")
    y_tr, y_te = split.y_train, split.y_test

    model_rows = []
    rel: dict[tuple[str, int], dict[str, list[float]]] = {}
    sim: dict[tuple[str, bool], dict[str, list[float]]] = {}
    for pair in range(args.pairs):
        seed_a, seed_b = 2 * pair, 2 * pair + 1
        model_a = common.train_mlp(split, widths, seed=seed_a, epochs=args.epochs)
        model_b = common.train_mlp(split, widths, seed=seed_b, epochs=args.epochs)
        ha_tr, ha_te = model_a.hidden(split.x_train)[-1], model_a.hidden(split.x_test)[-1]
        hb_tr, hb_te = model_b.hidden(split.x_train)[-1], model_b.hidden(split.x_test)[-1]
        abs_head = fit_classification_head(hb_tr, y_tr, epochs=args.head_epochs, seed=pair)
        model_rows.append(
            {
                "pair": f"{seed_a} / {seed_b}",
                "A": common.accuracy(model_a, split.x_test, y_te),
                "B": common.accuracy(model_b, split.x_test, y_te),
                "abs B→B": _acc(abs_head, hb_te, y_te),
                "abs B→A": _acc(abs_head, ha_te, y_te),
                "abs cos": _mean_cosine(ha_te, hb_te),
            }
        )

        reps = Reps(ha_tr, ha_te, hb_tr, hb_te, y_tr, y_te, args.head_epochs, pair)
        for method in methods:
            for k in counts:
                gen = torch.Generator().manual_seed(1000 * pair + k)
                idx = select_anchors(hb_tr, n_anchors=k, method=method, seed=gen)  # type: ignore[arg-type]
                for key, value in _relative_run(reps, idx, "cosine", False).items():
                    rel.setdefault((method, k), {}).setdefault(key, []).append(value)
        idx = select_anchors(hb_tr, n_anchors=128, seed=pair)
        for similarity in similarities:
            for normalize in (False, True):
                if similarity == "cosine" and normalize:
                    continue  # cosine is scale invariant already
                for key, value in _relative_run(reps, idx, similarity, normalize).items():
                    sim.setdefault((similarity, normalize), {}).setdefault(key, []).append(value)

    print(f"digits: {len(y_tr)} train / {len(y_te)} test; MLP widths {widths}; hidden layer")
    print(f"{widths[-2]} wide (last); linear heads, Adam, {args.head_epochs} epochs.\n")
    print("Models and absolute stitching (head trained on B's activations):\n")
    print("| seeds A / B | A end-to-end | B end-to-end | abs head B→B | abs head B→A | abs cos |")
    print("|---|---|---|---|---|---|")
    for r in model_rows:
        print(
            f"| {r['pair']} | {r['A']:.3f} | {r['B']:.3f} | {r['abs B→B']:.3f} | "
            f"{r['abs B→A']:.3f} | {r['abs cos']:.3f} |"
        )
    print(f"\nRelative (cosine) stitching, mean ± sd over {args.pairs} seed pairs:\n")
    print(
        "| anchors | k | rel B→B | rel A→A | zero-shot B→A | zero-shot A→B | rel cos "
        "| rel cos, shuffled anchors | MRR |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (method, k), v in rel.items():
        print(
            f"| {method} | {k} | {_mean_sd(v['B→B'])} | {_mean_sd(v['A→A'])} | "
            f"{_mean_sd(v['B→A'])} | {_mean_sd(v['A→B'])} | {_mean_sd(v['rel cos'])} | "
            f"{_mean_sd(v['cos shuffled'])} | {_mean_sd(v['MRR'])} |"
        )
    print("\nSimilarity functions (128 random anchors):\n")
    print(
        "| similarity | normalize | rel B→B | zero-shot B→A | zero-shot A→B | rel cos "
        "| rel cos, shuffled anchors | MRR |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (similarity, normalize), v in sim.items():
        print(
            f"| {similarity} | {normalize} | {_mean_sd(v['B→B'])} | {_mean_sd(v['B→A'])} | "
            f"{_mean_sd(v['A→B'])} | {_mean_sd(v['rel cos'])} | {_mean_sd(v['cos shuffled'])} | "
            f"{_mean_sd(v['MRR'])} |"
        )
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
