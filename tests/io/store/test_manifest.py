"""The manifest: its format, and refusals of a manifest that disagrees with its shards."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from subspaces.io import (
    LABELS_KEY,
    MANIFEST_NAME,
    ActivationStore,
    StoreError,
    shard_name,
)
from tests.io.store._helpers import (
    SHARD,
    _manifest,
    _rewrite_manifest,
)


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


# --------------------------------------------------------------------------- manifest limits


@pytest.mark.parametrize("opener", ["[", '{"a":'], ids=["lists", "objects"])
def test_deeply_nested_manifest_refused(store_path: Path, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    (store_path / MANIFEST_NAME).write_text(opener * 100_000 + "1" + closer * 100_000)
    with pytest.raises(StoreError, match=r"manifest\.json is nested too deeply"):
        ActivationStore.open(store_path)


def test_oversized_manifest_refused(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subspaces.io.store.manifest as store_module

    monkeypatch.setattr(store_module, "_MAX_MANIFEST_BYTES", 100)
    with pytest.raises(
        StoreError, match=r"manifest\.json is \d+ bytes, more than .*\(100 bytes at most\)"
    ):
        ActivationStore.open(store_path)
