"""ActivationStore: round trip, reading shard by shard, integrity of every read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from subspaces.io import (
    LABELS_KEY,
    MANIFEST_NAME,
    ActivationStore,
    StoreError,
    StoreWriter,
    shard_name,
)
from tests.io.store._helpers import (
    N,
    _data,
    _labels,
    _manifest,
    _rewrite_manifest,
    _write,
)

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


def test_verify_passes_on_a_good_store(store_path: Path) -> None:
    ActivationStore.open(store_path, verify=True).verify()


def test_unknown_layer_refused(store_path: Path) -> None:
    store = ActivationStore.open(store_path)
    with pytest.raises(StoreError, match=r"layer 'zz' is not in the store.*\['a', 'b'\]"):
        store.load("zz")


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
    import subspaces.io.store.reader as store_module

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
    import subspaces.io.store.reader as store_module

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
