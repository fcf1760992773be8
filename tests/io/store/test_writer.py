"""StoreWriter: shard sizes, atomicity, resume, refusals of bad writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from subspaces._checks import InputTypeError, ShapeError
from subspaces.io import (
    LABELS_KEY,
    MANIFEST_NAME,
    ActivationStore,
    StoreError,
    StoreMismatchError,
    StoreWriter,
    shard_name,
)
from tests.io.store._helpers import (
    SHARD,
    N,
    _data,
    _labels,
    _manifest,
    _write,
)


def test_default_shard_size_from_row_bytes(tmp_path: Path) -> None:
    with StoreWriter(tmp_path / "s", layers=["x"]) as writer:
        writer.write({"x": torch.zeros(2, 1024)})  # 4 KiB a row -> 256 MiB / 4 KiB rows
        assert writer.shard_size == 65536
    assert _manifest(tmp_path / "s")["shard_size"] == 65536


# --------------------------------------------------------------------------- atomicity, resume


def test_no_temporary_files_left(store_path: Path) -> None:
    assert sorted(p.name for p in store_path.iterdir()) == [
        MANIFEST_NAME,
        *(shard_name(i) for i in range(5)),
    ]


def test_manifest_is_rewritten_after_every_shard(tmp_path: Path) -> None:
    data = _data()
    writer = StoreWriter(tmp_path / "s", layers=["a", "b"], shard_size=SHARD)
    writer.write({k: v[:7] for k, v in data.items()})
    manifest = _manifest(tmp_path / "s")
    assert manifest["complete"] is False and manifest["n_samples"] == 5
    assert [s["file"] for s in manifest["shards"]] == [shard_name(0)]


def test_exception_leaves_a_resumable_incomplete_store(tmp_path: Path) -> None:
    data = _data()
    with (
        pytest.raises(RuntimeError, match="boom"),
        StoreWriter(tmp_path / "s", layers=["a", "b"], shard_size=SHARD) as writer,
    ):
        writer.write({k: v[:12] for k, v in data.items()})
        raise RuntimeError("boom")
    with pytest.raises(
        StoreError, match=r"incomplete.*after 10 samples.*Run the extraction again to resume"
    ):
        ActivationStore.open(tmp_path / "s")
    resumed = StoreWriter(tmp_path / "s", layers=["a", "b"], shard_size=SHARD)
    assert resumed.n_done == 10 and not resumed.complete


def test_resume_gives_identical_store(tmp_path: Path) -> None:
    _write(tmp_path / "ref", batch=4)
    data, labels = _data(), _labels()
    path = tmp_path / "resumed"
    with (
        pytest.raises(KeyboardInterrupt),
        StoreWriter(path, layers=["a", "b"], shard_size=SHARD) as writer,
    ):
        writer.write({k: v[:13] for k, v in data.items()}, labels=labels[:13])
        raise KeyboardInterrupt
    (path / ".shard-00002.safetensors.tmp-999").write_bytes(b"partial")  # a killed write
    with StoreWriter(path, layers=["a", "b"], shard_size=SHARD) as writer:
        assert writer.n_done == 10
        writer.write({k: v[10:] for k, v in data.items()}, labels=labels[10:])
    for name in [MANIFEST_NAME, *(shard_name(i) for i in range(5))]:
        assert (path / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()
    assert not list(path.glob(".*"))


def test_resume_deletes_a_shard_the_manifest_does_not_list(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with (
        pytest.raises(KeyboardInterrupt),
        StoreWriter(path, layers=["a", "b"], shard_size=SHARD) as writer,
    ):
        writer.write({k: v[:5] for k, v in _data().items()}, labels=_labels()[:5])
        raise KeyboardInterrupt
    (path / shard_name(1)).write_bytes(b"renamed, but killed before the manifest")
    writer = StoreWriter(path, layers=["a", "b"], shard_size=SHARD)
    assert writer.n_done == 5 and not (path / shard_name(1)).exists()


def test_resume_of_a_complete_store_keeps_it(store_path: Path) -> None:
    before = (store_path / MANIFEST_NAME).read_bytes()
    writer = StoreWriter(
        store_path,
        layers=["a", "b"],
        metadata={"model": "toy", "data": {"seed": 0}},
        shard_size=SHARD,
    )
    assert writer.complete and writer.n_done == N
    with pytest.raises(StoreError, match="already complete"):
        writer.write({k: v[:1] for k, v in _data().items()})
    writer.close()
    assert (store_path / MANIFEST_NAME).read_bytes() == before


def test_resume_false_starts_over(store_path: Path) -> None:
    with StoreWriter(store_path, layers=["z"], resume=False) as writer:
        assert writer.n_done == 0
        writer.write({"z": torch.ones(2, 1)})
    store = ActivationStore.open(store_path)
    assert store.layers == ["z"] and store.n_shards == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layers": ["a", "c"]}, r"layers \['a', 'b'\] stored, \['a', 'c'\] now"),
        ({"metadata": {"model": "other"}}, r"metadata differ in \['data', 'model'\]"),
        ({"shard_size": 6}, "shard_size 5 stored, 6 now"),
        ({"fingerprint": {"data": "x"}}, "the store records no fingerprint of its inputs"),
    ],
    ids=["layers", "metadata", "shard-size", "fingerprint"],
)
def test_resume_refuses_a_different_run(store_path: Path, kwargs: dict, match: str) -> None:
    options = {"layers": ["a", "b"], "metadata": {"model": "toy", "data": {"seed": 0}}}
    options.update(kwargs)
    with pytest.raises(
        StoreMismatchError, match=f"cannot reuse the complete store.*{match}.*resume=False"
    ):
        StoreWriter(store_path, **options)  # type: ignore[arg-type]


def test_resume_refuses_a_corrupt_shard(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with (
        pytest.raises(KeyboardInterrupt),
        StoreWriter(path, layers=["a", "b"], shard_size=SHARD) as w,
    ):
        w.write({k: v[:10] for k, v in _data().items()})
        raise KeyboardInterrupt
    raw = bytearray((path / shard_name(1)).read_bytes())
    raw[-1] ^= 0xFF
    (path / shard_name(1)).write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=r"cannot resume.*shard-00001.safetensors is corrupt"):
        StoreWriter(path, layers=["a", "b"], shard_size=SHARD)


# --------------------------------------------------------------------------- writer refusals


def test_writer_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match=r"holds files that are not a store's \(notes.txt\)"):
        StoreWriter(tmp_path, layers=["a"])


def test_writer_refuses_a_file_path(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(StoreError, match="it is a file"):
        StoreWriter(tmp_path / "f", layers=["a"])


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        ("a", "must be a list of layer names"),
        ([], "layers is empty"),
        (["a", "a"], r"distinct, got \['a'\]"),
        ([LABELS_KEY], "reserved for labels"),
        (["a", 3], "non-empty str, got 3"),
    ],
    ids=["str", "empty", "duplicate", "reserved", "not-str"],
)
def test_writer_refuses_bad_layers(tmp_path: Path, layers: object, match: str) -> None:
    with pytest.raises(InputTypeError, match=match):
        StoreWriter(tmp_path / "s", layers=layers)  # type: ignore[arg-type]


def test_writer_refuses_non_json_metadata(tmp_path: Path) -> None:
    with pytest.raises(InputTypeError, match="metadata must hold only JSON values"):
        StoreWriter(tmp_path / "s", layers=["a"], metadata={"f": object()})


@pytest.mark.parametrize(
    ("batch", "exc", "match"),
    [
        ({"a": torch.zeros(2, 4)}, ShapeError, r"missing \['b'\]"),
        (
            {"a": torch.zeros(2, 4), "b": torch.zeros(3, 3, 2, dtype=torch.float64)},
            ShapeError,
            "same number of rows",
        ),
        (
            {"a": torch.zeros(2, 5), "b": torch.zeros(2, 3, 2, dtype=torch.float64)},
            ShapeError,
            r"per-sample shape \(5,\) and dtype float32, but this store holds shape \(4,\)",
        ),
        (
            {"a": torch.zeros(2, 4), "b": torch.zeros(2, 3, 2)},
            ShapeError,
            "dtype float32, but this store holds shape .* dtype float64",
        ),
        ({"a": [1, 2], "b": torch.zeros(2, 3, 2)}, InputTypeError, "must be a tensor"),
        ({"a": torch.tensor(1.0), "b": torch.zeros(2, 3, 2)}, ShapeError, "is 0-D"),
    ],
    ids=["missing-layer", "rows", "shape", "dtype", "list", "scalar"],
)
def test_writer_refuses_bad_batches(
    tmp_path: Path, batch: dict, exc: type[Exception], match: str
) -> None:
    writer = StoreWriter(tmp_path / "s", layers=["a", "b"])
    writer.write({k: v[:1] for k, v in _data().items()})
    with pytest.raises(exc, match=match):
        writer.write(batch)


def test_writer_refuses_labels_given_only_sometimes(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path / "s", layers=["a"])
    writer.write({"a": torch.zeros(2, 1)}, labels=torch.tensor([0, 1]))
    with pytest.raises(StoreError, match="labels must be given with every write or with none"):
        writer.write({"a": torch.zeros(2, 1)})


def test_writer_refuses_labels_of_wrong_length(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path / "s", layers=["a"])
    with pytest.raises(ShapeError, match="labels has 3 entries but the representation has 2"):
        writer.write({"a": torch.zeros(2, 1)}, labels=torch.tensor([0, 1, 2]))


def test_writer_refuses_an_empty_store(tmp_path: Path) -> None:
    with (
        pytest.raises(StoreError, match="nothing was written"),
        StoreWriter(tmp_path / "s", layers=["a"]),
    ):
        pass


def test_closed_writer_refuses_writes(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path / "s", layers=["a"])
    writer.write({"a": torch.zeros(1, 1)})
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(StoreError, match="is closed"):
        writer.write({"a": torch.zeros(1, 1)})
    assert writer.open().n_samples == 1


def test_deeply_nested_metadata_refused(tmp_path: Path) -> None:
    metadata: dict = {}
    for _ in range(100_000):
        metadata = {"a": metadata}
    with pytest.raises(InputTypeError, match="metadata is nested too deeply"):
        StoreWriter(tmp_path / "s", layers=["a"], metadata=metadata)


def test_write_failure_is_a_store_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import subspaces.io.store._files as store_module

    writer = StoreWriter(tmp_path / "s", layers=["a"], shard_size=2)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", full)
    with pytest.raises(
        StoreError,
        match=r"cannot write shard-00000\.safetensors in the activation store at .*space",
    ):
        writer.write({"a": torch.ones(2, 1)})
    assert not [p for p in (tmp_path / "s").iterdir() if ".tmp-" in p.name]
