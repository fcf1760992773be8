"""subspaces.align: maps between representation spaces.

Fitted on paired samples and applied to new ones, in the scikit-learn style (``fit``,
``partial_fit``, ``transform``, attributes ending in ``_``) over a functional core:

* :mod:`~subspaces.align.translators`: orthogonal Procrustes (optional centering and
  isotropic scaling) and least-squares linear / affine maps with a relative ridge;
* :mod:`~subspaces.align.scores`: :func:`translation_scores` (MSE, cosine, retrieval
  top-k, MRR) on held-out pairs and :func:`class_retrieval` (CMC top-k, mAP);
* :mod:`~subspaces.align.projected`: alignment after projecting both spaces onto CCA, PLS or
  PCA subspaces ("Escaping Plato's Cave");
* :mod:`~subspaces.align.relative`: relative projections onto anchors and zero-shot stitching
  (Moschella et al., 2023);
* neuron matching (Li et al., "Convergent Learning", 2016): unit correlations
  (:mod:`~subspaces.align.unit_correlation`), one-to-one matching
  (:mod:`~subspaces.align.unit_matching`), one-to-many lasso prediction
  (:mod:`~subspaces.align.sparse_prediction`) and many-to-many spectral clustering
  (:mod:`~subspaces.align.unit_clusters`);
* :mod:`~subspaces.align.oca`: backward-compatible representations through an orthogonal
  extension layer (Ricci et al., 2024);
* :mod:`~subspaces.align.merging`: functionally equivalent features and Iterative Feature
  Merging (Chen et al., 2023);
* :mod:`~subspaces.align.stitching`: trainable linear / affine stitching layers and the
  stitching penalty as a functional similarity (Lenc & Vedaldi, 2015; Bansal et al., 2021).
"""

from subspaces.align.merging import (
    MergeReport,
    UnitMerge,
    UnitMerging,
    equivalence_distances,
    feature_complexity,
    merge_layers,
    merge_sequential,
    merge_units,
)
from subspaces.align.oca import (
    OCAHead,
    OCALosses,
    OrthogonalExtension,
    oca_step,
    old_class_prototypes,
)
from subspaces.align.projected import (
    ProjectedAlignment,
    SubspaceBases,
    SubspaceProjection,
    project_moments,
    subspace_projection,
    subspace_projection_from_moments,
)
from subspaces.align.relative import (
    RelativeProjection,
    fit_classification_head,
    relative_projection,
)
from subspaces.align.scores import (
    ClassRetrieval,
    TranslationScores,
    class_retrieval,
    translation_scores,
)
from subspaces.align.sparse_prediction import (
    SparsePrediction,
    sparse_prediction,
    sparse_prediction_from_moments,
)
from subspaces.align.stitching import (
    StitchedModel,
    StitchingLayer,
    StitchingScore,
    fit_stitch,
    stitching_score,
)
from subspaces.align.translators import (
    LinearMap,
    LinearTranslator,
    Procrustes,
    ProcrustesMap,
    linear_map,
    linear_map_from_moments,
    procrustes_map,
    procrustes_map_from_moments,
)
from subspaces.align.unit_clusters import (
    UnitClusters,
    spectral_unit_clusters,
    spectral_unit_clusters_from_correlation,
)
from subspaces.align.unit_correlation import (
    JointCorrelation,
    UnitCorrelation,
    joint_correlation,
    joint_correlation_from_moments,
    unit_correlation,
    unit_correlation_from_moments,
)
from subspaces.align.unit_matching import (
    MatchingCurves,
    UnitMatching,
    match_units,
    matched_correlation_curves,
    matched_correlation_curves_from_correlation,
    unit_matching,
    unit_matching_from_correlation,
)

__all__ = [
    "ClassRetrieval",
    "JointCorrelation",
    "LinearMap",
    "LinearTranslator",
    "MatchingCurves",
    "MergeReport",
    "OCAHead",
    "OCALosses",
    "OrthogonalExtension",
    "Procrustes",
    "ProcrustesMap",
    "ProjectedAlignment",
    "RelativeProjection",
    "SparsePrediction",
    "StitchedModel",
    "StitchingLayer",
    "StitchingScore",
    "SubspaceBases",
    "SubspaceProjection",
    "TranslationScores",
    "UnitClusters",
    "UnitCorrelation",
    "UnitMatching",
    "UnitMerge",
    "UnitMerging",
    "class_retrieval",
    "equivalence_distances",
    "feature_complexity",
    "fit_classification_head",
    "fit_stitch",
    "joint_correlation",
    "joint_correlation_from_moments",
    "linear_map",
    "linear_map_from_moments",
    "match_units",
    "matched_correlation_curves",
    "matched_correlation_curves_from_correlation",
    "merge_layers",
    "merge_sequential",
    "merge_units",
    "oca_step",
    "old_class_prototypes",
    "procrustes_map",
    "procrustes_map_from_moments",
    "project_moments",
    "relative_projection",
    "sparse_prediction",
    "sparse_prediction_from_moments",
    "spectral_unit_clusters",
    "spectral_unit_clusters_from_correlation",
    "stitching_score",
    "subspace_projection",
    "subspace_projection_from_moments",
    "translation_scores",
    "unit_correlation",
    "unit_correlation_from_moments",
    "unit_matching",
    "unit_matching_from_correlation",
]
