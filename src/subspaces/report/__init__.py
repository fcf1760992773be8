"""The report: from the layers of one or more models to one self-contained HTML page.

The face of the package: it calls the families (:func:`subspaces.similarity.pairwise`,
:mod:`subspaces.geometry`) and draws what they return; it computes no measure itself.

* :func:`compute_results`: every number (layer × layer similarity per measure and pair of
  models; for each pair of models, the similarity of corresponding layers against depth
  with bootstrap intervals and a permutation null baseline; per-layer spectrum, effective
  rank, intrinsic dimension, neural collapse) as a JSON-serializable dict
  (:mod:`subspaces.report.compute`), with the options that shaped every number. A cell
  that cannot be computed (a constant layer, a solver that failed) is null with its
  reason, never the end of the report. The schema (version 2), its validation, saving and
  loading are in :mod:`subspaces.report.schema`.
* :func:`write_report`: ``report.html`` (offline, no request of any kind) and
  ``results.json`` beside it; :func:`load_results` reads ``results.json`` back.

Example::

    from subspaces.report import compute_results, write_report
    results = compute_results({"A": {"fc1": a1, "fc2": a2}, "B": {"fc1": b1, "fc2": b2}},
                              labels=y)
    write_report(results, "report/")       # report/report.html, report/results.json

Each model may have its own labels (``labels={"A": y_a, "B": y_b}``): each model's neural
collapse then uses its own, and labels that differ between models are flagged in
``results["meta"]["warnings"]`` and at the top of the report.
"""

from subspaces.report.compute import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_MEASURES,
    DEFAULT_PERMUTATIONS,
    compute_results,
)
from subspaces.report.html import render_report, write_report
from subspaces.report.schema import (
    RESULTS_SCHEMA,
    SCHEMA_VERSION,
    ResultsFormatError,
    json_pointer,
    load_results,
    save_results,
    validate_results,
)

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_MEASURES",
    "DEFAULT_PERMUTATIONS",
    "RESULTS_SCHEMA",
    "SCHEMA_VERSION",
    "ResultsFormatError",
    "compute_results",
    "json_pointer",
    "load_results",
    "render_report",
    "save_results",
    "validate_results",
    "write_report",
]
