"""Measure one representation: spectrum, intrinsic dimension, neural collapse, coding rate.

Every function takes ``x`` (n × d), numpy or torch, samples as rows. Sums over samples
(covariance spectrum, coding rate, collapse statistics) also exist as streaming classes;
estimators with a fit step are scikit-learn estimators (``fit(x).dimension_``). One module
per idea: ``spectrum``, ``coding_rate``, ``intrinsic_dimension`` (a package, one estimator
per module), ``collapse`` (NC1-NC4), ``orthogonal_frame``, ``mixup``, ``classifier``.
Formulas and references: docs/measures.md.
"""

from subspaces.geometry.classifier import (
    ClassifierGeometry,
    ClassifierGeometryComparison,
    classifier_geometry,
    compare_classifier_geometry,
)
from subspaces.geometry.coding_rate import (
    CodingRate,
    CodingRateReduction,
    RateReduction,
    class_coding_rate,
    coding_rate,
    coding_rate_reduction,
)
from subspaces.geometry.collapse import NeuralCollapse, NeuralCollapseResult, neural_collapse
from subspaces.geometry.intrinsic_dimension import (
    GRIDE,
    LPCA_METHODS,
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
from subspaces.geometry.mixup import MixupBinStats, MixupGeometry, mixup_geometry
from subspaces.geometry.orthogonal_frame import (
    OrthogonalFrameDistances,
    orthogonal_frame_distances,
    orthogonal_frame_scales,
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
    "LPCA_METHODS",
    "MLE",
    "MLE_AVERAGES",
    "SWEEP_METHODS",
    "TWONN_METHODS",
    "ClassifierGeometry",
    "ClassifierGeometryComparison",
    "CodingRate",
    "CodingRateReduction",
    "CorrelationDimension",
    "CovarianceSpectrum",
    "GrideScales",
    "LocalPCA",
    "MixupBinStats",
    "MixupGeometry",
    "NeuralCollapse",
    "NeuralCollapseResult",
    "OrthogonalFrameDistances",
    "RateReduction",
    "ScaleSweep",
    "Spectrum",
    "TwoNN",
    "class_coding_rate",
    "classifier_geometry",
    "coding_rate",
    "coding_rate_reduction",
    "compare_classifier_geometry",
    "correlation_dimension",
    "covariance_spectrum",
    "effective_rank",
    "gride",
    "gride_multiscale",
    "id_scale_sweep",
    "local_pca_id",
    "mixup_geometry",
    "mle_id",
    "neural_collapse",
    "numerical_rank",
    "orthogonal_frame_distances",
    "orthogonal_frame_scales",
    "participation_ratio",
    "spectral_decay",
    "spectrum_from_moments",
    "stable_rank",
    "twonn",
    "von_neumann_entropy",
]
