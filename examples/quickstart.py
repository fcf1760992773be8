"""Quickstart: how alike are two networks trained from different seeds, layer by layer?

Trains two small MLPs on scikit-learn's digits (shipped with scikit-learn, no download),
takes every hidden layer's activations on held-out digits, and compares the layers of the
two networks with several similarity measures. Runs in seconds on a CPU.

    python examples/quickstart.py
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from subspaces.similarity import linear_cka, pairwise

WIDTHS = (64, 128, 64, 32)


def train_mlp(x: torch.Tensor, y: torch.Tensor, seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    width_in = x.shape[1]
    for width in WIDTHS:
        layers += [torch.nn.Linear(width_in, width), torch.nn.ReLU()]
        width_in = width
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width_in, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model


def hidden_layers(model: torch.nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    out, h = {}, x
    with torch.no_grad():
        for k, module in enumerate(model):
            h = module(h)
            if isinstance(module, torch.nn.ReLU) or k == len(model) - 1:
                out[f"layer{len(out) + 1}"] = h.clone()
    return out


def main() -> None:
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.4, random_state=0
    )
    xt, yt = torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train)
    xv, yv = torch.tensor(x_test, dtype=torch.float32), torch.tensor(y_test)
    nets = [train_mlp(xt, yt, seed) for seed in (0, 1)]
    for seed, net in enumerate(nets):
        accuracy = (net(xv).argmax(1) == yv).float().mean()
        print(f"network {seed}: held-out accuracy {accuracy:.3f}")
    a, b = (hidden_layers(net, xv) for net in nets)
    names = list(a)

    print(
        f"\nlinear CKA between the layers of network 0 (rows) and network 1 (columns), n={len(xv)}"
    )
    matrix = pairwise(a, b, measure="linear_cka")
    print("        " + "".join(f"{n:>9}" for n in names))
    for name, row in zip(names, matrix, strict=True):
        print(f"{name:>8}" + "".join(f"{v:9.3f}" for v in row.tolist()))
    best = matrix.argmax(1)
    hits = sum(int(best[i]) == i for i in range(len(names)))
    print(
        f"\n{hits} of {len(names)} layers of network 0 are closest to their namesake in network 1."
    )
    print(f"input vs last layer (network 0): CKA = {float(linear_cka(xv, a[names[-1]])):.3f}")


if __name__ == "__main__":
    main()
