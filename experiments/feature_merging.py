"""Iterative Feature Merging on digits MLPs: parameters removed against accuracy lost.

Chen, Zhou & Yan (2023), "Going Beyond Neural Network Feature Similarity" (arXiv:2310.06756)
claim that functionally equivalent features (equal up to a transformation the next layer
absorbs) are common in trained networks, that merging them (IFM, data-free) removes
parameters without affecting performance, and that larger networks learn more redundant
features. Here: ReLU MLPs on scikit-learn's digits, merged with
``subspaces.align.merging.merge_layers`` at a sweep of thresholds (distance between unit
directions ``||v_i/|v_i| - v_j/|v_j|||``, incoming weights and bias), against a control that
drops the same number of units per layer without folding (the smallest
``||v_j|| · ||W_next[:, j]||``).

Run: ``.venv/bin/python experiments/feature_merging.py`` (about 3 minutes on 1 CPU thread).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
import common

from subspaces.align.merging import merge_layers


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def drop_smallest(model: common.MLP, removed_per_layer: list[int]) -> common.MLP:
    """Remove ``removed_per_layer[l]`` units of hidden layer l, smallest in-norm × out-norm."""
    new = copy.deepcopy(model)
    layers = list(new.layers)
    for i, k in enumerate(removed_per_layer):
        cur, nxt = layers[i], layers[i + 1]
        incoming = torch.cat([cur.weight, cur.bias[:, None]], dim=1).norm(dim=1)
        importance = incoming * nxt.weight.norm(dim=0)
        keep = torch.sort(torch.argsort(importance, descending=True)[: cur.out_features - k])[0]
        new_cur = nn.Linear(cur.in_features, keep.numel())
        new_cur.weight.copy_(cur.weight[keep])
        new_cur.bias.copy_(cur.bias[keep])
        new_nxt = nn.Linear(keep.numel(), nxt.out_features)
        new_nxt.weight.copy_(nxt.weight[:, keep])
        new_nxt.bias.copy_(nxt.bias)
        layers[i], layers[i + 1] = new_cur, new_nxt
    new.layers = nn.ModuleList(layers)
    return new


def merged_model(model: common.MLP, threshold: float) -> tuple[common.MLP, list[int], int]:
    new_layers, report = merge_layers(model.layers, threshold=threshold)
    new = copy.deepcopy(model)
    new.layers = nn.ModuleList(new_layers)
    removed = [b - a for b, a in zip(report.units_before, report.units_after, strict=True)]
    return new, list(report.units_after), removed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 256, 256, 10])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--weight-decays", type=float, nargs="+", default=[0.0, 1e-3])
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        default=[1e-5, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0],
    )
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--scan-hidden", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    parser.add_argument("--scan-threshold", type=float, default=0.6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = common.digits()

    def acc(m: nn.Module) -> float:
        return common.accuracy(m, split.x_test, split.y_test)

    print(
        f"## IFM on digits MLP {args.widths} (test n = {split.x_test.shape[0]}), "
        f"mean over seeds {args.seeds}\n"
    )
    print(
        "| weight decay | threshold | params removed | units per hidden layer | "
        "acc before | acc after IFM | Δacc IFM | Δacc drop-smallest | predictions changed |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for wd in args.weight_decays:
        models = [
            common.train_mlp(split, args.widths, seed=s, epochs=args.epochs, weight_decay=wd)
            for s in args.seeds
        ]
        base_acc = [acc(m) for m in models]
        for t in args.thresholds:
            frac, units, after, d_ifm, d_drop, changed = [], [], [], [], [], []
            for m, a0 in zip(models, base_acc, strict=True):
                new, kept, removed = merged_model(m, t)
                frac.append(1 - _n_params(new) / _n_params(m))
                units.append(kept)
                a1 = acc(new)
                after.append(a1)
                d_ifm.append(a1 - a0)
                d_drop.append(acc(drop_smallest(m, removed)) - a0)
                with torch.no_grad():
                    same = new(split.x_test).argmax(1) == m(split.x_test).argmax(1)
                changed.append(1 - float(same.float().mean()))
            mean_units = " / ".join(
                f"{statistics.mean(u[i] for u in units):.0f}" for i in range(len(units[0]))
            )
            print(
                f"| {wd:g} | {t:g} | {100 * statistics.mean(frac):.1f}% | {mean_units} | "
                f"{100 * statistics.mean(base_acc):.2f}% | {100 * statistics.mean(after):.2f}% | "
                f"{100 * statistics.mean(d_ifm):+.2f} | {100 * statistics.mean(d_drop):+.2f} | "
                f"{100 * statistics.mean(changed):.2f}% |"
            )

    print(
        f"\n## Feature complexity against width (threshold {args.scan_threshold:g}, "
        f"[64, h, h, 10], mean over seeds {args.seeds})\n"
    )
    print(
        "| weight decay | hidden width h | units kept (layer 1 / layer 2) | kept fraction | "
        "Δacc IFM |"
    )
    print("|---|---|---|---|---|")
    for wd in args.weight_decays:
        for h in args.scan_hidden:
            kept1, kept2, deltas = [], [], []
            for s in args.seeds:
                m = common.train_mlp(
                    split, [64, h, h, 10], seed=s, epochs=args.epochs, weight_decay=wd
                )
                new, kept, _ = merged_model(m, args.scan_threshold)
                kept1.append(kept[0])
                kept2.append(kept[1])
                deltas.append(acc(new) - acc(m))
            k1, k2 = statistics.mean(kept1), statistics.mean(kept2)
            print(
                f"| {wd:g} | {h} | {k1:.1f} / {k2:.1f} | {k1 / h:.2f} / {k2 / h:.2f} | "
                f"{100 * statistics.mean(deltas):+.2f} |"
            )


if __name__ == "__main__":
    main()
