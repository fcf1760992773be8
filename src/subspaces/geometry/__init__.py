"""Measure one representation: spectrum, intrinsic dimension, neural collapse, coding rate.

Every function takes ``x`` (n × d), numpy or torch, samples as rows. Sums over samples
(covariance spectrum, coding rate, collapse statistics) also exist as streaming classes;
estimators with a fit step offer a scikit-learn-style class (``fit(x).dimension_``).
Formulas and references: docs/measures.md.
"""

from subspaces.geometry.coding_rate import (
    CodingRate,
    CodingRateReduction,
    RateReduction,
    class_coding_rate,
    coding_rate,
    coding_rate_reduction,
)
from subspaces.geometry.intrinsic_dimension import (
    GRIDE,
    LPCA_VERSIONS,
    MLE,
    MLE_AVERAGES,
    SWEEP_METHODS,
    TWONN_METHODS,
    CorrelationDimension,
    GrideScales,
    LocalPCA,
    ScaleSweep,
    TwoNN,
    correlation_dimension,
    gride,
    gride_multiscale,
    id_scale_sweep,
    local_pca_id,
    mle_id,
    twonn,
)
from subspaces.geometry.spectrum import (
    CovarianceSpectrum,
    Spectrum,
    covariance_spectrum,
    effective_rank,
    numerical_rank,
    participation_ratio,
    spectral_decay,
    spectrum_from_moments,
    stable_rank,
    von_neumann_entropy,
)

__all__ = [
    "GRIDE",
    "LPCA_VERSIONS",
    "MLE",
    "MLE_AVERAGES",
    "SWEEP_METHODS",
    "TWONN_METHODS",
    "CodingRate",
    "CodingRateReduction",
    "CorrelationDimension",
    "CovarianceSpectrum",
    "GrideScales",
    "LocalPCA",
    "RateReduction",
    "ScaleSweep",
    "Spectrum",
    "TwoNN",
    "class_coding_rate",
    "coding_rate",
    "coding_rate_reduction",
    "correlation_dimension",
    "covariance_spectrum",
    "effective_rank",
    "gride",
    "gride_multiscale",
    "id_scale_sweep",
    "local_pca_id",
    "mle_id",
    "numerical_rank",
    "participation_ratio",
    "spectral_decay",
    "spectrum_from_moments",
    "stable_rank",
    "twonn",
    "von_neumann_entropy",
]
