"""Intrinsic dimension: TwoNN, MLE, GRIDE, local PCA, correlation dimension, scale sweeps.

One estimator per module (``twonn``, ``mle``, ``gride``, ``local_pca``, ``correlation``,
``scale_sweep``; shared neighbor-distance helpers in ``_common``). Every estimator is a
function (tensor in, 0-dim float64 tensor or small dataclass out) and a scikit-learn
estimator (:class:`subspaces._base.Estimator`: ``get_params``, ``set_params``, ``clone``;
``fit(x)`` returns ``self`` and sets ``dimension_``, and ``dimension_pw_`` for per-point
estimates) on the same functional core. Neighbors come from
the blocked exact k-nearest-neighbor kernel :func:`subspaces.linalg.knn.knn`: nothing
``n × n`` is allocated, and the work runs on the input's device.

The definitions follow scikit-dimension (``skdim.id``) so that values can be compared; where
they differ it is said in the docstring. All estimates are invariant to rotations,
translations, isotropic scaling and the order of the samples.

Duplicate points (a zero distance to a neighbor) make the nearest-neighbor estimators
undefined (a ratio r2 / 0). By default they raise :class:`DegenerateInputError` naming how
many points are affected; ``duplicates="drop"`` leaves those points out with a warning
(scikit-dimension drops them with a warning too). No estimate is ever a silent inf or NaN.
"""

from subspaces.geometry.intrinsic_dimension.correlation import (
    CorrelationDimension,
    correlation_dimension,
)
from subspaces.geometry.intrinsic_dimension.gride import (
    GRIDE,
    GrideScales,
    gride,
    gride_multiscale,
)
from subspaces.geometry.intrinsic_dimension.local_pca import (
    LPCA_METHODS,
    LocalPCA,
    local_pca_id,
)
from subspaces.geometry.intrinsic_dimension.mle import (
    MLE,
    MLE_AVERAGES,
    mle_id,
)
from subspaces.geometry.intrinsic_dimension.scale_sweep import (
    SWEEP_METHODS,
    ScaleSweep,
    id_scale_sweep,
)
from subspaces.geometry.intrinsic_dimension.twonn import (
    TWONN_METHODS,
    TwoNN,
    twonn,
)

__all__ = [
    "GRIDE",
    "LPCA_METHODS",
    "MLE",
    "MLE_AVERAGES",
    "SWEEP_METHODS",
    "TWONN_METHODS",
    "CorrelationDimension",
    "GrideScales",
    "LocalPCA",
    "ScaleSweep",
    "TwoNN",
    "correlation_dimension",
    "gride",
    "gride_multiscale",
    "id_scale_sweep",
    "local_pca_id",
    "mle_id",
    "twonn",
]
