"""subspaces.align: maps between representation spaces.

Fitted on paired samples and applied to new ones, in the scikit-learn style (``fit``,
``partial_fit``, ``transform``, attributes ending in ``_``) over a functional core:

* :mod:`~subspaces.align.translators`: orthogonal Procrustes (optional centering and
  isotropic scaling), least-squares linear / affine maps with ridge, and
  :func:`translation_scores` (MSE, cosine, retrieval top-k, MRR) on held-out pairs;
* :mod:`~subspaces.align.projected`: alignment after projecting both spaces onto CCA, PLS or
  PCA subspaces ("Escaping Plato's Cave");
* :mod:`~subspaces.align.relative`: relative projections onto anchors and zero-shot stitching
  (Moschella et al., 2023);
* :mod:`~subspaces.align.matching`: neuron matching one-to-one, one-to-many (lasso) and
  many-to-many (spectral clustering) (Li et al., "Convergent Learning", 2016);
* :mod:`~subspaces.align.oca`: backward-compatible representations through an orthogonal
  extension layer (Ricci et al., 2024);
* :mod:`~subspaces.align.merging`: functionally equivalent features and Iterative Feature
  Merging (Chen et al., 2023);
* :mod:`~subspaces.align.stitching`: trainable linear / affine stitching layers and the
  stitching penalty as a functional similarity (Lenc & Vedaldi, 2015; Bansal et al., 2021).
"""

from subspaces.align.matching import (
    JointCorrelation,
    MatchingCurves,
    SparsePrediction,
    UnitClusters,
    UnitCorrelation,
    UnitMatching,
    joint_correlation,
    joint_correlation_from_moments,
    match_units,
    matched_correlation_curves,
    matched_correlation_curves_from_correlation,
    sparse_prediction,
    sparse_prediction_from_moments,
    spectral_unit_clusters,
    spectral_unit_clusters_from_correlation,
    unit_correlation,
    unit_correlation_from_moments,
    unit_matching,
    unit_matching_from_correlation,
)
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
    ClassRetrieval,
    OCAHead,
    OCALosses,
    OrthogonalExtension,
    class_retrieval,
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
    TranslationScores,
    linear_map,
    linear_map_from_moments,
    procrustes_map,
    procrustes_map_from_moments,
    translation_scores,
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
