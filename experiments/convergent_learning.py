"""Convergent Learning (Li et al., ICLR 2016) on two digits MLPs trained from different seeds.

For each hidden layer: unit correlations between the two networks, the one-to-one
(Hungarian) and semi-matching correlation curves against a random-assignment baseline, and
the one-to-many sparse prediction (lasso) of each unit of net B from all units of net A.

    .venv/bin/python experiments/convergent_learning.py

Dead units (zero variance over the inputs) are dropped from both networks before matching;
their counts are reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import common

from subspaces.align import (
    matched_correlation_curves,
    sparse_prediction,
    spectral_unit_clusters,
)


def _alive(acts: torch.Tensor) -> torch.Tensor:
    return acts.std(0) > 1e-6


def _quantile(values: torch.Tensor, q: float) -> float:
    return float(torch.quantile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 128, 128])
    parser.add_argument("--seeds", type=int, nargs=2, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.3, 0.1, 0.03, 0.01])
    parser.add_argument("--n-random", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    split = common.digits()
    widths = [split.x_train.shape[1], *args.widths, 10]
    nets = [common.train_mlp(split, widths, seed=s, epochs=args.epochs) for s in args.seeds]
    accs = [common.accuracy(net, split.x_test, split.y_test) for net in nets]
    inputs = torch.cat([split.x_train, split.x_test])  # all 1,797 images as samples
    acts_a, acts_b = (net.hidden(inputs) for net in nets)

    print(f"digits MLP {widths}, seeds {args.seeds}, test accuracy {accs[0]:.3f} / {accs[1]:.3f}")
    print(
        f"correlations over {inputs.shape[0]} inputs; random = the mean of "
        f"{args.n_random} random one-to-one assignments, each sorted\n"
    )
    print("### Matched correlation curves (one-to-one = Hungarian, semi = best match)\n")
    print(
        "| layer | units A/B alive | curve | top 10% | median | bottom 10% | mean "
        "| units > 0.9 | units < 0.5 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    kept = []
    for layer, (a, b) in enumerate(zip(acts_a, acts_b, strict=True), start=1):
        a, b = a[:, _alive(a)].double(), b[:, _alive(b)].double()
        kept.append((a, b))
        curves = matched_correlation_curves(
            a, b, n_random=args.n_random, seed=torch.Generator().manual_seed(0)
        )
        assert curves.baseline is not None
        one = curves.one_to_one[~torch.isnan(curves.one_to_one)]
        rows = [
            ("semi", curves.semi),
            ("one-to-one", one),
            ("random", curves.baseline),
        ]
        for name, values in rows:
            print(
                f"| {layer} | {a.shape[1]}/{b.shape[1]} | {name} | {_quantile(values, 0.9):.3f} "
                f"| {_quantile(values, 0.5):.3f} | {_quantile(values, 0.1):.3f} "
                f"| {float(values.mean()):.3f} | {int((values > 0.9).sum())} "
                f"| {int((values < 0.5).sum())} |"
            )

    print("\n### One-to-many: lasso from all units of net A to each unit of net B\n")
    print("| layer | alpha | mean predictors per unit | median predictors | mean NMSE |")
    print("|---|---|---|---|---|")
    for layer, (a, b) in enumerate(kept, start=1):
        fit = sparse_prediction(a, b, alphas=args.alphas, max_iter=5000, tol=1e-5)
        for k, alpha in enumerate(args.alphas):
            preds = fit.n_predictors[k].double()
            print(
                f"| {layer} | {alpha:g} | {float(preds.mean()):.1f} | {float(preds.median()):.0f} "
                f"| {float(fit.nmse[k].mean()):.3f} |"
            )

    print("\n### Many-to-many: spectral clusters of the joint |correlation| graph\n")
    print("| layer | clusters | mixed (units of both nets) | only A | only B |")
    print("|---|---|---|---|---|")
    for layer, (a, b) in enumerate(kept, start=1):
        k = max(2, (a.shape[1] + b.shape[1]) // 16)
        clusters = spectral_unit_clusters(a, b, n_clusters=k, seed=torch.Generator().manual_seed(0))
        in_a = set(clusters.labels_x.tolist())
        in_b = set(clusters.labels_y.tolist())
        print(f"| {layer} | {k} | {len(in_a & in_b)} | {len(in_a - in_b)} | {len(in_b - in_a)} |")


if __name__ == "__main__":
    main()
