"""Neighborhood measures against their reference implementations.

- platonic-rep (Huh et al. 2024, ``metrics.py``): imported from a checkout whose path is in
  the environment variable ``PLATONIC_REP_DIR`` (skipped when unset). Get one with
  ``git clone https://github.com/minyoungg/platonic-rep`` or, from a bare mirror,
  ``git --git-dir=<mirror> archive HEAD | tar -x -C <dir>``. Its ``metrics.py`` imports
  torchaudio (only for ``edit_distance_knn``); a stub is installed when torchaudio is absent.
- ReSi (Klabunde et al. 2023, ``repsim/measures/nearest_neighbor.py``) is not on PyPI (the
  PyPI ``repsim`` is another package); its definitions are re-stated here with scikit-learn
  neighbors exactly as ReSi computes them (``NearestNeighbors(k + 1, metric="cosine")``,
  first column dropped).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from typing import Any

import numpy as np
import pytest
import torch

from subspaces.similarity.cknna import _cknna_terms, cknna
from subspaces.similarity.neighbors import (
    knn_jaccard,
    mutual_knn,
    rank_similarity,
    second_order_cosine_similarity,
)

pytestmark = pytest.mark.oracle


def _platonic_metrics() -> Any:
    path = os.environ.get("PLATONIC_REP_DIR")
    if not path:
        pytest.skip("set PLATONIC_REP_DIR to a checkout of minyoungg/platonic-rep")
    if "torchaudio" not in sys.modules and importlib.util.find_spec("torchaudio") is None:
        stub = types.ModuleType("torchaudio")
        stub.functional = types.ModuleType("torchaudio.functional")  # type: ignore[attr-defined]
        sys.modules["torchaudio"] = stub
        sys.modules["torchaudio.functional"] = stub.functional  # type: ignore[attr-defined]
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module("metrics")


def _pair(seed: int, n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 32, generator=g, dtype=torch.float64)
    y = torch.tanh(x @ torch.randn(32, 24, generator=g, dtype=torch.float64))
    y = y + 0.5 * torch.randn(n, 24, generator=g, dtype=torch.float64)
    return x.to(dtype), y.to(dtype)


def _normalize(t: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(t, p=2, dim=-1)


@pytest.mark.parametrize("k", [1, 10, 50], ids=lambda k: f"k{k}")
def test_mutual_knn_equals_platonic_rep_float64(k: int) -> None:
    metrics = _platonic_metrics()
    x, y = _pair(0, 300, torch.float64)
    want = metrics.AlignmentMetrics.mutual_knn(_normalize(x), _normalize(y), topk=k)
    # float64 on both sides, no near ties: the same neighbor sets; the reference averages
    # float32 masks (torch.zeros default dtype), hence the float32 tolerance on the mean
    assert float(mutual_knn(x, y, k=k, chunk_size=64)) == pytest.approx(want, abs=1e-7)


def test_mutual_knn_float32_within_one_swap_of_platonic_rep() -> None:
    metrics = _platonic_metrics()
    n, k = 500, 10
    x, y = _pair(1, n, torch.float32)
    want = metrics.AlignmentMetrics.mutual_knn(_normalize(x), _normalize(y), topk=k)
    # their float32 ranking vs our float64 re-ranking can differ on a float32 near tie:
    # each swapped neighbor moves the value by 1 / (n k)
    assert abs(float(mutual_knn(x, y, k=k)) - want) <= 1.0 / (n * k) + 1e-7


@pytest.mark.parametrize("unbiased", [True, False], ids=["unbiased", "biased"])
@pytest.mark.parametrize("k", [2, 10, 299], ids=lambda k: f"k{k}")
def test_cknna_equals_platonic_rep(k: int, unbiased: bool) -> None:
    metrics = _platonic_metrics()
    x, y = _pair(2, 300, torch.float64)
    want = metrics.AlignmentMetrics.cknna(_normalize(x), _normalize(y), topk=k, unbiased=unbiased)
    kl, kk, ll = _cknna_terms(x, y, k=k, debiased=unbiased, chunk_size=50)
    # the reference divides by sqrt(KK LL) + 1e-6; with that, float64 dense vs sparse sums
    assert float(kl / (torch.sqrt(kk * ll) + 1e-6)) == pytest.approx(want, rel=1e-9)
    # and our value is the same without the epsilon
    assert float(cknna(x, y, k=k, debiased=unbiased)) == pytest.approx(
        float(kl / torch.sqrt(kk * ll)), rel=1e-15
    )


# ---- ReSi definitions with scikit-learn neighbors ---------------------------------------


def _resi_neighbors(r: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(r)
    return nn.kneighbors(r)[1][:, 1:]


def _resi_jaccard(r: np.ndarray, rp: np.ndarray, k: int) -> float:
    a, b = _resi_neighbors(r, k), _resi_neighbors(rp, k)
    return float(
        np.mean([len(set(u) & set(v)) / len(set(u) | set(v)) for u, v in zip(a, b, strict=True)])
    )


def _resi_rank_similarity(r: np.ndarray, rp: np.ndarray, k: int) -> float:
    a, b = _resi_neighbors(r, k), _resi_neighbors(rp, k)
    scores = []
    for u, v in zip(a, b, strict=True):
        shared = set(u) & set(v)
        if not shared:
            scores.append(0.0)
            continue
        vmax = sum(1.0 / t for t in range(1, len(shared) + 1))
        total = 0.0
        for j in shared:
            ru, rv = int(np.flatnonzero(u == j)[0]) + 1, int(np.flatnonzero(v == j)[0]) + 1
            total += 2.0 / ((1 + abs(ru - rv)) * (ru + rv))
        scores.append(total / vmax)
    return float(np.mean(scores))


def _resi_socs(r: np.ndarray, rp: np.ndarray, k: int) -> float:
    from scipy.spatial.distance import cosine
    from sklearn.metrics import pairwise_distances

    a, b = _resi_neighbors(r, k), _resi_neighbors(rp, k)
    dr, drp = pairwise_distances(r, metric="cosine"), pairwise_distances(rp, metric="cosine")
    out = []
    for i, (u, v) in enumerate(zip(a, b, strict=True)):
        union = list(set(u) | set(v))
        out.append(1 - cosine(dr[i, union], drp[i, union]))
    return float(np.mean(out))


@pytest.mark.parametrize("k", [1, 10], ids=lambda k: f"k{k}")
def test_jaccard_equals_resi_definition(k: int) -> None:
    pytest.importorskip("sklearn")
    x, y = _pair(3, 200, torch.float64)
    want = _resi_jaccard(x.numpy(), y.numpy(), k)
    assert float(knn_jaccard(x, y, k=k)) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("k", [1, 10], ids=lambda k: f"k{k}")
def test_rank_similarity_equals_resi_definition(k: int) -> None:
    pytest.importorskip("sklearn")
    x, y = _pair(4, 200, torch.float64)
    want = _resi_rank_similarity(x.numpy(), y.numpy(), k)
    assert float(rank_similarity(x, y, k=k)) == pytest.approx(want, abs=1e-12)


def test_socs_distance_entries_equal_resi_definition() -> None:
    pytest.importorskip("sklearn")
    x, y = _pair(5, 200, torch.float64)
    want = _resi_socs(x.numpy(), y.numpy(), 10)
    got = second_order_cosine_similarity(x, y, k=10, method="distance")
    # float64 cosine distances from sklearn vs ours: ~1e-15 each
    assert float(got) == pytest.approx(want, abs=1e-10)
