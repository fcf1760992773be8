"""The measures :func:`subspaces.similarity.pairwise` knows by name."""

from __future__ import annotations

from subspaces.similarity.cka import linear_cka_from_moments
from subspaces.similarity.pairwise import PairwiseMeasure, register_measure

register_measure(
    PairwiseMeasure(
        "linear_cka",
        symmetric=True,
        from_moments=linear_cka_from_moments,
        row_norms=lambda options: bool(options.get("debiased", False)),
        min_samples=2,
    )
)
