"""ActivationStore / StoreWriter: round trip, manifest, atomicity, resume, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from subspaces import SubspacesError
from subspaces._checks import InputTypeError, ShapeError
from subspaces.io import (
    LABELS_KEY,
    MANIFEST_NAME,
    ActivationStore,
    StoreError,
    StoreWriter,
    shard_name,
)

N, SHARD = 23, 5  # 4 full shards and a partial one of 3 rows


def _data(n: int = N, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "a": torch.randn(n, 4, generator=g),
        "b": torch.randn(n, 3, 2, generator=g).to(torch.float64),
    }


def _labels(n: int = N) -> torch.Tensor:
    return torch.arange(n) % 3


def _write(path: Path, *, batch: int = 4, labels: bool = True, n: int = N, **kw: object) -> None:
    data = _data(n)
    with StoreWriter(path, layers=["a", "b"], shard_size=SHARD, **kw) as writer:  # type: ignore[arg-type]
        for start in range(0, n, batch):
            rows = {k: v[start : start + batch] for k, v in data.items()}
            writer.write(rows, labels=_labels(n)[start : start + batch] if labels else None)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    _write(path, metadata={"model": "toy", "data": {"seed": 0}})
    return path


def _manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST_NAME).read_text())


def _rewrite_manifest(path: Path, manifest: dict) -> None:
    (path / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))


# --------------------------------------------------------------------------- round trip


def test_round_trip_load_equals_written(store_path: Path) -> None:
    store = ActivationStore.open(store_path)
    data = _data()
    assert store.layers == ["a", "b"]
    assert store.n_samples == N and len(store) == N
    assert store.n_shards == 5 and store.shard_sizes == [5, 5, 5, 5, 3]
    assert store.feature_shapes == {"a": (4,), "b": (3, 2)}
    assert store.dtypes == {"a": torch.float32, "b": torch.float64}
    assert store.metadata == {"model": "toy", "data": {"seed": 0}}
    torch.testing.assert_close(store.load("a"), data["a"], rtol=0, atol=0)
    torch.testing.assert_close(store.load("b"), data["b"], rtol=0, atol=0)
    torch.testing.assert_close(store.labels, _labels(), rtol=0, atol=0)


def test_load_casts_and_flattens(store_path: Path) -> None:
    store = ActivationStore.open(store_path)
    loaded = store.load("b", dtype=torch.float32, flatten=True)
    assert loaded.dtype == torch.float32 and loaded.shape == (N, 6)
    torch.testing.assert_close(loaded, _data()["b"].float().reshape(N, 6), rtol=0, atol=0)


@pytest.mark.parametrize("batch", [1, 4, 5, 7, N], ids=lambda b: f"write-batch-{b}")
def test_shards_do_not_depend_on_write_batch_size(tmp_path: Path, batch: int) -> None:
    _write(tmp_path / "ref", batch=3)
    _write(tmp_path / "other", batch=batch)
    for name in [MANIFEST_NAME, *(shard_name(i) for i in range(5))]:
        assert (tmp_path / "ref" / name).read_bytes() == (tmp_path / "other" / name).read_bytes()


def test_iter_batches_yields_shards(store_path: Path) -> None:
    store = ActivationStore.open(store_path)
    batches = list(store.iter_batches(["b", "a"], labels=True, flatten=True))
    assert [b["a"].shape[0] for b in batches] == [5, 5, 5, 5, 3]
    assert list(batches[0]) == ["b", "a", LABELS_KEY]
    torch.testing.assert_close(torch.cat([b["b"] for b in batches]), store.load("b", flatten=True))
    torch.testing.assert_close(torch.cat([b[LABELS_KEY] for b in batches]), _labels())


def test_iter_batches_one_layer_by_name(store_path: Path) -> None:
    store = ActivationStore.open(store_path)
    (first, *_) = store.iter_batches("a", dtype=torch.float64)
    assert list(first) == ["a"] and first["a"].dtype == torch.float64


def test_iter_batches_feed_a_streaming_measure_exactly(store_path: Path) -> None:
    from subspaces.similarity import LinearCKA, linear_cka

    store = ActivationStore.open(store_path)
    metric = LinearCKA()
    for batch in store.iter_batches(["a", "b"], flatten=True):
        metric.update(batch["a"], batch["b"])
    # float64 moment sums in both: agreement to rounding
    expected = linear_cka(store.load("a"), store.load("b", flatten=True))
    torch.testing.assert_close(metric.compute(), expected, rtol=1e-10, atol=1e-12)


def test_store_without_labels(tmp_path: Path) -> None:
    _write(tmp_path / "s", labels=False)
    store = ActivationStore.open(tmp_path / "s")
    assert store.labels is None and not store.has_labels
    with pytest.raises(StoreError, match="has no labels"):
        next(store.iter_batches("a", labels=True))


def test_numpy_batches_accepted(tmp_path: Path) -> None:
    with StoreWriter(tmp_path / "s", layers=["x"]) as writer:
        writer.write({"x": np.ones((3, 2), dtype=np.float32)})
    assert ActivationStore.open(tmp_path / "s").load("x").shape == (3, 2)


def test_manifest_format(store_path: Path) -> None:
    manifest = _manifest(store_path)
    assert list(manifest) == [
        "format",
        "format_version",
        "complete",
        "layers",
        "features",
        "has_labels",
        "n_samples",
        "shard_size",
        "shards",
        "metadata",
    ]
    assert manifest["format"] == "subspaces-activation-store"
    assert manifest["format_version"] == 1 and manifest["complete"] is True
    assert manifest["features"] == {
        "a": {"shape": [4], "dtype": "float32"},
        "b": {"shape": [3, 2], "dtype": "float64"},
    }
    first = manifest["shards"][0]
    assert first["file"] == "shard-00000.safetensors" and first["n_samples"] == SHARD
    assert first["bytes"] == (store_path / first["file"]).stat().st_size
    assert len(first["sha256"]) == 64


def test_verify_passes_on_a_good_store(store_path: Path) -> None:
    ActivationStore.open(store_path, verify=True).verify()


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
        ({"layers": ["a", "c"]}, r"started with layers \['a', 'b'\], this run writes"),
        ({"metadata": {"model": "other"}}, r"metadata differs.*\['data', 'model'\]"),
        ({"shard_size": 6}, "started with shard_size 5, this run asks for 6"),
    ],
    ids=["layers", "metadata", "shard-size"],
)
def test_resume_refuses_a_different_run(store_path: Path, kwargs: dict, match: str) -> None:
    options = {"layers": ["a", "b"], "metadata": {"model": "toy", "data": {"seed": 0}}}
    options.update(kwargs)
    with pytest.raises(StoreError, match=f"cannot resume.*{match}.*resume=False"):
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


# --------------------------------------------------------------------------- refusals on open


def test_truncated_shard_is_named(store_path: Path) -> None:
    shard = store_path / shard_name(2)
    shard.write_bytes(shard.read_bytes()[:-9])
    with pytest.raises(StoreError, match=r"shard-00002\.safetensors is truncated or corrupt"):
        ActivationStore.open(store_path)


def test_corrupt_header_is_named(store_path: Path) -> None:
    shard = store_path / shard_name(1)
    raw = bytearray(shard.read_bytes())
    raw[10:20] = b"@" * 10  # inside the JSON header, same length
    shard.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=r"shard-00001\.safetensors is truncated or corrupt"):
        ActivationStore.open(store_path)


def test_flipped_byte_found_by_verify(store_path: Path) -> None:
    shard = store_path / shard_name(3)
    raw = bytearray(shard.read_bytes())
    raw[-1] ^= 0xFF
    shard.write_bytes(bytes(raw))
    store = ActivationStore.open(store_path)  # sizes and headers still agree
    with pytest.raises(StoreError, match=r"shard-00003\.safetensors in .* is corrupt: its sha256"):
        store.verify()


def test_incomplete_store_refused(store_path: Path) -> None:
    manifest = _manifest(store_path)
    manifest["complete"] = False
    _rewrite_manifest(store_path, manifest)
    with pytest.raises(StoreError, match=r"incomplete.*Run the extraction again to resume"):
        ActivationStore.open(store_path)


def test_wrong_n_samples_refused(store_path: Path) -> None:
    manifest = _manifest(store_path)
    manifest["n_samples"] = 30
    _rewrite_manifest(store_path, manifest)
    with pytest.raises(
        StoreError, match=r"disagrees with its shards: it says n_samples = 30.*hold 23 rows"
    ):
        ActivationStore.open(store_path)


def test_missing_shard_refused(store_path: Path) -> None:
    (store_path / shard_name(4)).unlink()
    with pytest.raises(StoreError, match=r"shard-00004\.safetensors is listed in .* but missing"):
        ActivationStore.open(store_path)


def test_unlisted_shard_refused(store_path: Path) -> None:
    (store_path / shard_name(5)).write_bytes((store_path / shard_name(4)).read_bytes())
    with pytest.raises(StoreError, match=r"holds shard-00005\.safetensors, which .* does not list"):
        ActivationStore.open(store_path)


def test_wrong_layer_refused(store_path: Path) -> None:
    manifest = _manifest(store_path)
    manifest["layers"] = ["a", "c"]
    manifest["features"]["c"] = manifest["features"].pop("b")
    _rewrite_manifest(store_path, manifest)
    with pytest.raises(
        StoreError, match=r"disagrees with shard-00000.*lacks \['c'\].*has \['b'\] that"
    ):
        ActivationStore.open(store_path)


def test_wrong_feature_shape_refused(store_path: Path) -> None:
    manifest = _manifest(store_path)
    manifest["features"]["a"]["shape"] = [5]
    _rewrite_manifest(store_path, manifest)
    with pytest.raises(StoreError, match=r"'a' has shape \(5, 4\) .* manifest says shape \(5, 5\)"):
        ActivationStore.open(store_path)


def test_swapped_shards_refused(store_path: Path) -> None:
    manifest = _manifest(store_path)
    a, b = store_path / shard_name(0), store_path / shard_name(1)
    raw_a, raw_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(raw_b)
    b.write_bytes(raw_a)
    _rewrite_manifest(store_path, manifest)
    with pytest.raises(StoreError, match="says it is shard 1, but it sits at position 0"):
        ActivationStore.open(store_path)


def test_shard_with_wrong_row_count_refused(store_path: Path) -> None:
    shard = store_path / shard_name(0)
    save_file(
        {
            "a": torch.zeros(4, 4),
            "b": torch.zeros(4, 3, 2, dtype=torch.float64),
            LABELS_KEY: torch.zeros(4, dtype=torch.int64),
        },
        str(shard),
        metadata={"subspaces_shard": "0"},
    )
    manifest = _manifest(store_path)
    manifest["shards"][0]["bytes"] = shard.stat().st_size
    _rewrite_manifest(store_path, manifest)
    with pytest.raises(StoreError, match=r"disagrees with shard-00000.*'a' has shape \(4, 4\)"):
        ActivationStore.open(store_path)


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        ("missing-folder", "the folder does not exist"),
        ("no-manifest", "has no manifest.json"),
        ("bad-json", "is not valid JSON"),
        ("missing-key", "malformed: it has no 'shards' entry"),
        ("other-format", "has format 'something-else'"),
        ("newer-version", "format version 99, newer than"),
    ],
)
def test_unreadable_manifest_refused(store_path: Path, setup: str, match: str) -> None:
    path = store_path
    manifest = _manifest(store_path)
    if setup == "missing-folder":
        path = store_path / "nope"
    elif setup == "no-manifest":
        (store_path / MANIFEST_NAME).unlink()
    elif setup == "bad-json":
        (store_path / MANIFEST_NAME).write_text("{not json")
    elif setup == "missing-key":
        del manifest["shards"]
        _rewrite_manifest(store_path, manifest)
    elif setup == "other-format":
        manifest["format"] = "something-else"
        _rewrite_manifest(store_path, manifest)
    else:
        manifest["format_version"] = 99
        _rewrite_manifest(store_path, manifest)
    with pytest.raises(StoreError, match=match):
        ActivationStore.open(path)


def test_unknown_layer_refused(store_path: Path) -> None:
    store = ActivationStore.open(store_path)
    with pytest.raises(StoreError, match=r"layer 'zz' is not in the store.*\['a', 'b'\]"):
        store.load("zz")


def test_store_error_is_a_subspaces_value_error() -> None:
    assert issubclass(StoreError, SubspacesError) and issubclass(StoreError, ValueError)


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


# --------------------------------------------------------------------------- integrity on read


def _value_offset(shard: Path, key: str) -> int:
    """Where ``key``'s bytes start in a safetensors file."""
    raw = shard.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    begin, _ = json.loads(raw[8 : 8 + n])[key]["data_offsets"]
    return 8 + n + int(begin)


def _overwrite_value(shard: Path, key: str) -> None:
    """Overwrite 4 bytes inside one value of ``key`` (the file keeps its size and header)."""
    raw = bytearray(shard.read_bytes())
    at = _value_offset(shard, key) + 4
    raw[at : at + 4] = (
        b"\x00\x00\xc0\x7f" if raw[at : at + 4] != b"\x00\x00\xc0\x7f" else b"\x01" * 4
    )
    shard.write_bytes(bytes(raw))


def _strip_tensor_checksums(path: Path) -> None:
    """Make the manifest look like one written before per-tensor checksums."""
    manifest = _manifest(path)
    for shard in manifest["shards"]:
        shard.pop("tensor_sha256", None)
    _rewrite_manifest(path, manifest)


READS = {
    "load": lambda store: store.load("a"),
    "iter_batches": lambda store: list(store.iter_batches("a")),
    "labels": lambda store: store.labels,
}


@pytest.mark.parametrize("format_", ["per-tensor", "per-shard"])
@pytest.mark.parametrize("read", list(READS))
def test_changed_value_is_refused_on_read(store_path: Path, read: str, format_: str) -> None:
    if format_ == "per-shard":
        _strip_tensor_checksums(store_path)
    _overwrite_value(store_path / shard_name(2), LABELS_KEY if read == "labels" else "a")
    store = ActivationStore.open(store_path)  # sizes and headers still agree
    with pytest.raises(
        StoreError,
        match=rf"shard-00002\.safetensors in the activation store at .*{store_path.name}",
    ):
        READS[read](store)


def test_changed_value_in_another_layer_does_not_block_a_read(store_path: Path) -> None:
    _overwrite_value(store_path / shard_name(2), "b")
    torch.testing.assert_close(ActivationStore.open(store_path).load("a"), _data()["a"])


def test_verify_false_reads_without_checking(store_path: Path) -> None:
    _overwrite_value(store_path / shard_name(2), "a")
    loaded = ActivationStore.open(store_path, verify=False).load("a")
    assert not torch.equal(loaded, _data()["a"])


def test_manifest_records_a_checksum_per_tensor(store_path: Path) -> None:
    shard = _manifest(store_path)["shards"][0]
    assert sorted(shard["tensor_sha256"]) == sorted(["a", "b", LABELS_KEY])
    assert all(len(digest) == 64 for digest in shard["tensor_sha256"].values())


def test_store_without_tensor_checksums_is_read(store_path: Path) -> None:
    _strip_tensor_checksums(store_path)
    store = ActivationStore.open(store_path)
    torch.testing.assert_close(store.load("b"), _data()["b"], rtol=0, atol=0)


def test_store_without_tensor_checksums_hashes_each_shard_once(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subspaces.io.store as store_module

    _strip_tensor_checksums(store_path)
    hashed: list[int] = []
    original = store_module._sha256_fd

    def counting(fd: int, *args: object) -> tuple:
        hashed.append(os.fstat(fd).st_ino)
        return original(fd, *args)

    monkeypatch.setattr(store_module, "_sha256_fd", counting)
    store = ActivationStore.open(store_path)
    store.load("a"), store.load("b"), store.labels, list(store.iter_batches())
    assert sorted(hashed) == sorted((store_path / shard_name(i)).stat().st_ino for i in range(5))


def test_shard_replaced_while_verify_hashes_it_is_checked_on_read(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subspaces.io.store as store_module

    _strip_tensor_checksums(store_path)
    shard = store_path / shard_name(2)
    original = store_module._sha256_fd

    def hash_then_replace(fd: int, *args: object) -> tuple:
        digests = original(fd, *args)
        if os.fstat(fd).st_ino == shard.stat().st_ino:  # a new file, same size, same name
            changed = store_path.parent / "changed.safetensors"
            changed.write_bytes(shard.read_bytes())
            _overwrite_value(changed, "a")
            os.replace(changed, shard)
        return digests

    store = ActivationStore.open(store_path)
    monkeypatch.setattr(store_module, "_sha256_fd", hash_then_replace)
    store.verify()  # checked the file it opened, not the one now at that name
    monkeypatch.setattr(store_module, "_sha256_fd", original)
    with pytest.raises(StoreError, match=r"shard-00002\.safetensors in .* is corrupt"):
        store.load("a")


def test_wrong_tensor_checksum_keys_refused(store_path: Path) -> None:
    manifest = _manifest(store_path)
    del manifest["shards"][1]["tensor_sha256"]["b"]
    _rewrite_manifest(store_path, manifest)
    with pytest.raises(
        StoreError,
        match=r"shard-00001\.safetensors: it records checksums for \['__labels__', 'a'\]",
    ):
        ActivationStore.open(store_path)


@pytest.mark.parametrize("target", ["outside", "inside"])
def test_symlinked_shard_refused(store_path: Path, target: str) -> None:
    shard = store_path / shard_name(1)
    if target == "outside":  # an identical copy: only the link gives it away
        other = store_path.parent / "copy.safetensors"
        other.write_bytes(shard.read_bytes())
    else:  # another file of the same size in the store
        other = store_path / shard_name(0)
    shard.unlink()
    shard.symlink_to(other)
    with pytest.raises(StoreError, match=r"shard-00001\.safetensors .*is a symbolic link"):
        ActivationStore.open(store_path)


def test_shard_swapped_for_a_symlink_after_open_refused(store_path: Path) -> None:
    store = ActivationStore.open(store_path)
    shard = store_path / shard_name(3)
    copy = store_path.parent / "copy.safetensors"
    copy.write_bytes(shard.read_bytes())
    shard.unlink()
    shard.symlink_to(copy)
    with pytest.raises(StoreError, match=r"shard-00003\.safetensors .*is a symbolic link"):
        store.load("a")


def test_symlinked_manifest_refused(store_path: Path) -> None:
    manifest = store_path / MANIFEST_NAME
    copy = store_path.parent / "manifest-copy.json"
    copy.write_bytes(manifest.read_bytes())
    manifest.unlink()
    manifest.symlink_to(copy)
    with pytest.raises(StoreError, match=r"manifest\.json .*is a symbolic link"):
        ActivationStore.open(store_path)


def test_store_reached_through_a_symlinked_folder_is_read(store_path: Path) -> None:
    link = store_path.parent / "link"
    link.symlink_to(store_path, target_is_directory=True)
    assert ActivationStore.open(link).load("a").shape == (N, 4)


def test_verify_names_a_symlinked_shard(store_path: Path) -> None:
    store = ActivationStore.open(store_path)
    shard = store_path / shard_name(4)
    copy = store_path.parent / "copy.safetensors"
    copy.write_bytes(shard.read_bytes())
    shard.unlink()
    shard.symlink_to(copy)
    with pytest.raises(StoreError, match=r"shard-00004\.safetensors .*is a symbolic link"):
        store.verify()


# --------------------------------------------------------------------------- manifest limits


@pytest.mark.parametrize("opener", ["[", '{"a":'], ids=["lists", "objects"])
def test_deeply_nested_manifest_refused(store_path: Path, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    (store_path / MANIFEST_NAME).write_text(opener * 100_000 + "1" + closer * 100_000)
    with pytest.raises(StoreError, match=r"manifest\.json is nested too deeply"):
        ActivationStore.open(store_path)


def test_oversized_manifest_refused(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subspaces.io.store as store_module

    monkeypatch.setattr(store_module, "_MAX_MANIFEST_BYTES", 100)
    with pytest.raises(
        StoreError, match=r"manifest\.json is \d+ bytes, more than .*\(100 bytes at most\)"
    ):
        ActivationStore.open(store_path)


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

    import subspaces.io.store as store_module

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
