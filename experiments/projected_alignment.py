"""Subspace-projected alignment on real text (Hadgi et al. 2025, "Escaping Plato's Cave").

Claim: naive post-hoc alignment of two independently obtained representations performs
poorly; projecting both onto well-chosen lower-dimensional subspaces (CCA in the paper)
before aligning makes matching and retrieval markedly better.

Setup: ``--n`` Shakespeare speeches (``common.shakespeare_lines``), split into train and
test. Representation A is all-MiniLM-L6-v2's last layer (mean pooled). Representation B is
either an LSA of TF-IDF (TfidfVectorizer + TruncatedSVD, fitted on the training speeches
only) or MiniLM's embedding layer (layer 0, mean pooled). For each pair we fit, on the
training pairs only, ``ProjectedAlignment(method=..., n_components=k, translator=...)``
with method ``none``
(naive alignment in the full spaces) or ``cca`` / ``pls`` / ``pca`` at each k, and
translator ``procrustes`` or ``linear`` (affine least squares), then on the test pairs:

* retrieval: each translated test x queries all test y by cosine (top-1, top-5, MRR);
* matching: a one-to-one assignment of the test x to the test y maximizing the total
  cosine (Hungarian, ``scipy.optimize.linear_sum_assignment``); accuracy = fraction of
  rows assigned to their own pair.

Chance level is 1 / n_test for top-1 and matching. Run from the repository root:

    .venv/bin/python experiments/projected_alignment.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).parent))

import common

from subspaces.align.projected import ProjectedAlignment


def lsa(train: list[str], test: list[str], dims: int, seed: int) -> tuple[torch.Tensor, ...]:
    """TF-IDF + truncated SVD fitted on the training texts, applied to both splits."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2)
    tfidf_train = vectorizer.fit_transform(train)
    svd = TruncatedSVD(n_components=dims, random_state=seed)
    z_train = svd.fit_transform(tfidf_train)
    z_test = svd.transform(vectorizer.transform(test))
    return (
        torch.as_tensor(z_train, dtype=torch.float32),
        torch.as_tensor(z_test, dtype=torch.float32),
    )


def matching_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of rows that a max-total-cosine one-to-one assignment pairs correctly."""
    p = torch.nn.functional.normalize(pred.double(), dim=1)
    t = torch.nn.functional.normalize(target.double(), dim=1)
    rows, cols = linear_sum_assignment((p @ t.T).numpy(), maximize=True)
    return float(np.mean(cols[np.argsort(rows)] == np.arange(len(rows))))


def evaluate(
    x_tr: torch.Tensor,
    y_tr: torch.Tensor,
    x_te: torch.Tensor,
    y_te: torch.Tensor,
    *,
    dims: list[int],
    ridge: float,
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    configs: list[tuple[str, int | None]] = [("none", None)]
    limit = min(x_tr.shape[1], y_tr.shape[1])
    configs += [(m, k) for m in ("cca", "pls", "pca") for k in dims if k <= limit]
    for method, k in configs:
        for translator in ("procrustes", "linear"):
            reg = ridge if method == "cca" else 0.0
            model = ProjectedAlignment(
                method=method, n_components=k, translator=translator, ridge=reg
            )
            model.fit(x_tr, y_tr)
            pred, target = model.transform(x_te), model.transform_y(y_te)
            scores = model.score(x_te, y_te).as_dict()
            rows.append(
                {
                    "method": method,
                    "k": "full" if k is None else k,
                    "translator": translator,
                    "top1": scores["top_k"][1],
                    "top5": scores["top_k"][5],
                    "mrr": scores["mrr"],
                    "matching": matching_accuracy(pred, target),
                }
            )
    return rows


def table(title: str, rows: list[dict[str, object]]) -> str:
    lines = [
        f"\n### {title}\n",
        "| subspace | k | translator | top-1 | top-5 | MRR | matching |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['k']} | {r['translator']} | {r['top1']:.3f} | "
            f"{r['top5']:.3f} | {r['mrr']:.3f} | {r['matching']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="speeches in all")
    parser.add_argument("--n-test", type=int, default=1000, help="held-out speeches")
    parser.add_argument("--dims", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128])
    parser.add_argument("--lsa-dims", type=int, default=256)
    parser.add_argument("--pairs", nargs="+", default=["lsa", "layer0"], choices=["lsa", "layer0"])
    parser.add_argument("--cca-ridge", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--cache", type=Path, default=None, help="save / reuse the MiniLM embeddings here (.pt)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    texts = common.shakespeare_lines(args.n, seed=args.seed)
    perm = np.random.default_rng(args.seed).permutation(args.n)
    test_idx, train_idx = perm[: args.n_test], perm[args.n_test :]
    key = {"n": args.n, "seed": args.seed}
    cached = torch.load(args.cache) if args.cache and args.cache.exists() else None
    if cached is not None and cached["key"] == key:
        layers = cached["layers"]
    else:
        layers = common.minilm_embeddings(texts)
        if args.cache:
            torch.save({"key": key, "layers": layers}, args.cache)
    last = layers[-1]
    print(
        f"{args.n} speeches ({len(train_idx)} train / {len(test_idx)} test), "
        f"MiniLM embeddings in {time.perf_counter() - start:.0f} s"
    )
    x_tr, x_te = last[train_idx], last[test_idx]
    for pair in args.pairs:
        if pair == "lsa":
            y_tr, y_te = lsa(
                [texts[i] for i in train_idx],
                [texts[i] for i in test_idx],
                args.lsa_dims,
                args.seed,
            )
            title = f"MiniLM last layer (384) → LSA of TF-IDF ({args.lsa_dims})"
        else:
            y_tr, y_te = layers[0][train_idx], layers[0][test_idx]
            title = "MiniLM last layer (384) → MiniLM embedding layer 0 (384)"
        rows = evaluate(x_tr, y_tr, x_te, y_te, dims=args.dims, ridge=args.cca_ridge)
        print(table(title, rows))
    print(
        f"\nchance: top-1 and matching {1 / args.n_test:.4f}, top-5 {5 / args.n_test:.4f}; "
        f"CCA ridge {args.cca_ridge}; "
        f"total {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
