"""Retrieval scores of the align family: translation scores and class retrieval."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import DegenerateInputError, InputTypeError, InvalidOptionError, ShapeError
from subspaces.align.scores import class_retrieval, translation_scores

F64 = torch.float64
FAST = settings(max_examples=25, deadline=None)
SEEDS = st.integers(0, 2**31 - 1)


def gaussian(seed: int, n: int = 40, d: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=F64) + 3.0


def orthogonal(seed: int, d: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 1)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=F64))
    return q


# ---------------------------------------------------------------------------------------
# Translation scores


def _reference_ranks(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    p = torch.nn.functional.normalize(pred, dim=1)
    t = torch.nn.functional.normalize(true, dim=1)
    s = p @ t.T
    own = s.diagonal().unsqueeze(1)
    return (s >= own).sum(1).to(F64)


@pytest.mark.parametrize("chunk_size", [1, 3, 1024], ids=["chunk1", "chunk3", "one-chunk"])
def test_translation_scores_match_a_dense_reference(chunk_size: int) -> None:
    true = gaussian(9, n=11, d=4) - 3.0
    pred = true + 0.8 * gaussian(10, n=11, d=4) - 2.4
    scores = translation_scores(pred, true, ks=(1, 2, 5), chunk_size=chunk_size)
    ranks = _reference_ranks(pred, true)
    for k in (1, 2, 5):
        assert float(scores.top_k[k]) == pytest.approx(float((ranks <= k).double().mean()))
    assert float(scores.mrr) == pytest.approx(float((1 / ranks).mean()))
    assert float(scores.mse) == pytest.approx(float(((pred - true) ** 2).mean()))
    cos = torch.nn.functional.cosine_similarity(pred, true, dim=1).mean()
    assert float(scores.cosine) == pytest.approx(float(cos))


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["float32", "float64"])
def test_perfect_translation_scores(dtype: torch.dtype) -> None:
    y = gaussian(11, n=20).to(dtype)
    s = translation_scores(y, y)
    assert float(s.cosine) <= 1.0
    d = s.as_dict()
    assert d["top_k"] == {1: 1.0, 5: 1.0}
    assert [d["mse"], d["cosine"], d["mrr"]] == pytest.approx([0.0, 1.0, 1.0])


def test_shifted_predictions_rank_last_but_one() -> None:
    # pred_i = true_{i+1}: the true match is never first; the known ranks come out.
    true = torch.eye(4, dtype=F64)
    pred = true.roll(1, dims=0) + 0.5 * true  # closest to the next row, then its own
    s = translation_scores(pred, true, ks=(1, 2))
    assert float(s.top_k[1]) == 0.0
    assert float(s.top_k[2]) == 1.0
    assert float(s.mrr) == pytest.approx(0.5)


def test_ties_count_against_the_true_match() -> None:
    true = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=F64)
    s = translation_scores(true, true, ks=(1,))
    # rows 0 and 1 are duplicates: each ties with the other, so ranks are 2, 2, 1
    assert float(s.top_k[1]) == pytest.approx(1 / 3)
    assert float(s.mrr) == pytest.approx((0.5 + 0.5 + 1.0) / 3)


@FAST
@given(seed=SEEDS)
def test_scores_invariant_to_a_common_rotation(seed: int) -> None:
    true, pred = gaussian(seed, n=15), gaussian(seed + 1, n=15)
    q = orthogonal(seed, 5)
    a, b = translation_scores(pred, true), translation_scores(pred @ q, true @ q)
    for key in ("mse", "cosine", "mrr"):
        assert float(getattr(b, key)) == pytest.approx(float(getattr(a, key)), abs=1e-9)
    assert b.as_dict()["top_k"] == pytest.approx(a.as_dict()["top_k"], abs=1e-9)


@pytest.mark.parametrize(
    "ks,match",
    [
        ((), "ks must hold at least one integer"),
        (5, "ks must be a sequence of integers"),
        ((0,), r"ks\[0\] must be at least 1"),
    ],
    ids=["empty", "scalar", "zero"],
)
def test_scores_bad_ks(ks: object, match: str) -> None:
    y = gaussian(0)
    with pytest.raises((InvalidOptionError, InputTypeError), match=match):
        translation_scores(y, y, ks=ks)  # type: ignore[arg-type]


def test_scores_width_mismatch_raises() -> None:
    with pytest.raises(ShapeError, match="same width, got 5 and 3"):
        translation_scores(gaussian(0), gaussian(1, d=3))


def test_scores_zero_row_raises() -> None:
    y = gaussian(0)
    pred = y.clone()
    pred[4] = 0.0
    with pytest.raises(DegenerateInputError, match="y_pred has 1 rows of zero norm"):
        translation_scores(pred, y)


# ---------------------------------------------------------------------------------------
# Class retrieval


def test_retrieval_scores_by_hand() -> None:
    q = torch.tensor([[1.0, 0.0]])
    gal = torch.tensor([[1.0, 0.1], [0.9, 0.5], [0.5, 0.9], [0.0, 1.0]])
    # ranking by cosine: items 0, 1, 2, 3 with classes 1, 0, 0, 1; relevant (class 0): 1, 2
    r = class_retrieval(q, gal, torch.tensor([0]), torch.tensor([1, 0, 0, 1]), ks=(1, 2))
    assert float(r.top_k[1]) == 0.0
    assert float(r.top_k[2]) == 1.0
    # AP = (1/2)(1/2 + 2/3)
    assert float(r.mean_average_precision) == pytest.approx(7 / 12)


def test_retrieval_exclude_self_drops_the_diagonal() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    y = torch.tensor([0, 1, 1])
    # without exclusion every query finds itself first
    assert float(class_retrieval(x, x, y, y).top_k[1]) == 1.0
    r = class_retrieval(x, x, y, y, exclude_self=True)
    # query 0 has no other class-0 item: skipped; query 1 → item 2 first? cos(1,2)=0.0995 vs
    # cos(1,0)=0: yes; query 2 → item 0 first (wrong class)
    assert r.n_queries == 2
    assert float(r.top_k[1]) == 0.5
    # AP: query 1 finds its one relevant item at rank 1 (AP 1), query 2 at rank 2 (AP 1/2);
    # the excluded self item must not take a rank
    assert float(r.mean_average_precision) == pytest.approx(0.75)


@pytest.mark.parametrize("exclude_self", [False, True], ids=["gallery", "leave-one-out"])
def test_retrieval_matches_a_brute_force_ranking_and_sklearn_ap(exclude_self: bool) -> None:
    from sklearn.metrics import average_precision_score

    g = torch.Generator().manual_seed(5)
    q = torch.randn(40, 3, generator=g, dtype=torch.float64)  # float64: no ties
    gal = q if exclude_self else torch.randn(33, 3, generator=g, dtype=torch.float64)
    yq = torch.randint(0, 4, (40,), generator=g)
    yg = yq if exclude_self else torch.randint(0, 4, (33,), generator=g)
    r = class_retrieval(q, gal, yq, yg, ks=(1, 3), exclude_self=exclude_self, chunk_size=7)
    sims = (F.normalize(q, dim=1) @ F.normalize(gal, dim=1).T).numpy()
    aps, top1, top3 = [], [], []
    for i in range(q.shape[0]):
        keep = np.arange(gal.shape[0]) != i if exclude_self else np.ones(gal.shape[0], bool)
        relevant = (yg.numpy() == int(yq[i]))[keep]
        if not relevant.any():
            continue
        order = np.argsort(-sims[i][keep])
        aps.append(average_precision_score(relevant, sims[i][keep]))
        top1.append(relevant[order[0]])
        top3.append(relevant[order[:3]].any())
    assert r.n_queries == len(aps)
    assert float(r.mean_average_precision) == pytest.approx(np.mean(aps), abs=1e-12)
    assert float(r.top_k[1]) == pytest.approx(np.mean(top1))
    assert float(r.top_k[3]) == pytest.approx(np.mean(top3))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_retrieval_invariant_to_row_scaling_and_common_rotation(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    q, gal = (
        torch.randn(12, 3, generator=g, dtype=torch.float64),
        torch.randn(15, 3, generator=g, dtype=torch.float64),
    )
    yq, yg = torch.randint(0, 3, (12,), generator=g), torch.randint(0, 3, (15,), generator=g)
    rot = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))[0]
    scale_q = torch.rand(12, 1, generator=g, dtype=torch.float64) + 0.5
    a = class_retrieval(q, gal, yq, yg)
    b = class_retrieval(scale_q * q @ rot, gal @ rot, yq, yg)
    torch.testing.assert_close(a.mean_average_precision, b.mean_average_precision)
    torch.testing.assert_close(a.top_k[1], b.top_k[1])


def test_retrieval_chunks_do_not_change_the_result() -> None:
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(30, 4, generator=g), torch.randint(0, 3, (30,), generator=g)
    a = class_retrieval(x, x, y, y, exclude_self=True, chunk_size=7)
    b = class_retrieval(x, x, y, y, exclude_self=True, chunk_size=100)
    torch.testing.assert_close(a.mean_average_precision, b.mean_average_precision)
    torch.testing.assert_close(a.top_k[5], b.top_k[5])


def test_retrieval_width_mismatch_raises() -> None:
    with pytest.raises(ShapeError, match=r"same width, got \(3, 5\) and \(4, 3\)"):
        class_retrieval(torch.randn(3, 5), torch.randn(4, 3), torch.zeros(3), torch.zeros(4))


def test_retrieval_exclude_self_needs_same_samples() -> None:
    with pytest.raises(ShapeError, match="3 queries and 4 gallery items"):
        class_retrieval(
            torch.randn(3, 2), torch.randn(4, 2), torch.zeros(3), torch.zeros(4), exclude_self=True
        )


def test_retrieval_without_relevant_items_raises() -> None:
    with pytest.raises(DegenerateInputError, match="no query has a gallery item of its class"):
        class_retrieval(torch.randn(3, 2), torch.randn(4, 2), torch.zeros(3), torch.ones(4))


def test_retrieval_zero_row_raises() -> None:
    q = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    with pytest.raises(DegenerateInputError, match=r"query has 1 rows of zero norm \(shape"):
        class_retrieval(q, q, torch.zeros(2), torch.zeros(2))


def test_large_gallery_caps_the_queries_per_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from subspaces.linalg.constants import rows_within_budget

    module = importlib.import_module("subspaces.align.scores")
    calls: list[tuple[int, int, int]] = []

    def three_rows(chunk_size: int, bytes_per_row: int, memory_budget: int = 0) -> int:
        rows = rows_within_budget(chunk_size, bytes_per_row, memory_budget=3 * bytes_per_row)
        calls.append((chunk_size, bytes_per_row, rows))
        return rows

    q, g = gaussian(0, n=17).float(), gaussian(1, n=30).float()
    yq = torch.arange(17) % 3
    yg = torch.arange(30) % 3
    expected = class_retrieval(q, g, yq, yg, ks=(1, 5), chunk_size=1)
    monkeypatch.setattr(module, "rows_within_budget", three_rows)
    got = class_retrieval(q, g, yq, yg, ks=(1, 5), chunk_size=64)
    assert got.top_k == expected.top_k and got.n_queries == expected.n_queries
    # the float64 sum of average precisions is grouped by chunk: equal up to rounding
    torch.testing.assert_close(
        got.mean_average_precision, expected.mean_average_precision, rtol=1e-14, atol=0
    )
    (chunk_size, per_row, rows), *_ = calls
    assert (chunk_size, rows) == (64, 3)
    # at least the float32 similarities, the int64 order and one float64 array per item
    assert per_row >= 30 * (4 + 8 + 8)
