"""read_array / open_activations: numpy, safetensors and torch files; nothing unpickled."""

from __future__ import annotations

import collections
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from subspaces.io import ActivationStore, StoreError, StoreWriter, open_activations, read_array


class Payload:
    """A plain class: torch.save pickles an instance of it."""

    def __init__(self) -> None:
        self.values = [1, 2, 3]


def _x() -> np.ndarray:
    return np.arange(12, dtype=np.float32).reshape(4, 3)


def test_npy_named_after_stem(tmp_path: Path) -> None:
    np.save(tmp_path / "layer3.npy", _x())
    out = read_array(tmp_path / "layer3.npy")
    assert list(out) == ["layer3"]
    torch.testing.assert_close(out["layer3"], torch.from_numpy(_x()), rtol=0, atol=0)


def test_npy_big_endian_converted(tmp_path: Path) -> None:
    np.save(tmp_path / "be.npy", _x().astype(">f8"))
    out = read_array(tmp_path / "be.npy")["be"]
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, torch.from_numpy(_x()).double(), rtol=0, atol=0)


def test_npz_every_array(tmp_path: Path) -> None:
    np.savez(tmp_path / "acts.npz", a=_x(), b=_x()[:, :1].astype(np.float64))
    out = read_array(tmp_path / "acts.npz")
    assert sorted(out) == ["a", "b"]
    assert out["b"].shape == (4, 1) and out["b"].dtype == torch.float64


def test_safetensors_every_tensor(tmp_path: Path) -> None:
    save_file({"a": torch.ones(2, 3), "b": torch.zeros(2, 5)}, str(tmp_path / "acts.safetensors"))
    out = read_array(tmp_path / "acts.safetensors")
    assert {k: tuple(v.shape) for k, v in out.items()} == {"a": (2, 3), "b": (2, 5)}


def test_pt_tensor_named_after_stem(tmp_path: Path) -> None:
    torch.save(torch.ones(3, 2), tmp_path / "fc1.pt")
    out = read_array(tmp_path / "fc1.pt")
    assert list(out) == ["fc1"] and out["fc1"].shape == (3, 2)


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_pt_dict_of_tensors(tmp_path: Path, suffix: str) -> None:
    saved = collections.OrderedDict(a=torch.ones(3, 2), b=torch.zeros(3, 4))
    torch.save(saved, tmp_path / f"acts{suffix}")
    out = read_array(tmp_path / f"acts{suffix}")
    assert list(out) == ["a", "b"]


def test_pt_with_pickled_object_refused(tmp_path: Path) -> None:
    torch.save({"a": torch.ones(2, 2), "extra": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(StoreError, match=r"evil\.pt holds pickled Python objects .*Payload"):
        read_array(tmp_path / "evil.pt")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pt_raw_pickle_refused(tmp_path: Path) -> None:
    # a plain pickle (not a torch zip file) of an object whose loading would run code
    (tmp_path / "raw.pt").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(StoreError, match=r"pickled Python objects|could not be read"):
        read_array(tmp_path / "raw.pt")


def test_pt_unpickling_never_runs_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self) -> tuple:
            return (marker.write_text, ("pwned",))

    torch.save({"a": Exploit()}, tmp_path / "exploit.pt")
    with pytest.raises(StoreError, match="pickled Python objects"):
        read_array(tmp_path / "exploit.pt")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([torch.ones(2)], "holds a list, not a tensor or a dict of tensors"),
        ({"a": torch.ones(2), "n": 3}, r"not all str -> Tensor \(\{'n': 'int'\}\)"),
        ({1: torch.ones(2)}, r"not all str -> Tensor \(\{'1': 'Tensor'\}\)"),
        ({"nested": {"a": torch.ones(2)}}, "not all str -> Tensor"),
    ],
    ids=["list", "int-value", "int-key", "nested"],
)
def test_pt_other_structures_refused(tmp_path: Path, value: object, match: str) -> None:
    torch.save(value, tmp_path / "x.pt")
    with pytest.raises(StoreError, match=match):
        read_array(tmp_path / "x.pt")


def test_npy_object_array_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(StoreError, match="holds pickled Python objects"):
        read_array(tmp_path / "obj.npy")


def test_npz_object_array_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "obj.npz", a=_x(), b=np.array([None, 1], dtype=object))
    with pytest.raises(StoreError, match="'b' holds pickled Python objects"):
        read_array(tmp_path / "obj.npz")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("x.csv", b"1,2", r"suffix '\.csv'; subspaces reads \.npy"),
        ("bad.npy", b"garbage", "could not be read as a numpy file"),
        (
            "bad.safetensors",
            b"\x05\x00\x00\x00\x00\x00\x00\x00{}",
            "could not be read as safetensors",
        ),
        ("bad.pt", b"", "could not be read as a torch file: EOFError"),
    ],
    ids=["suffix", "npy", "safetensors", "pt"],
)
def test_unreadable_files_refused(tmp_path: Path, name: str, content: bytes, match: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(StoreError, match=match):
        read_array(tmp_path / name)


def test_missing_file_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such file"):
        read_array(tmp_path / "nope.npy")


def test_folder_refused_by_read_array(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a folder; open an activation store"):
        read_array(tmp_path)


def _store(path: Path) -> Path:
    with StoreWriter(path, layers=["a"]) as writer:
        writer.write({"a": torch.ones(3, 2)})
    return path


def test_open_activations_store_folder(tmp_path: Path) -> None:
    opened = open_activations(_store(tmp_path / "s"))
    assert isinstance(opened, ActivationStore) and opened.layers == ["a"]


def test_open_activations_manifest_path(tmp_path: Path) -> None:
    opened = open_activations(_store(tmp_path / "s") / "manifest.json")
    assert isinstance(opened, ActivationStore)


def test_open_activations_file(tmp_path: Path) -> None:
    np.save(tmp_path / "l.npy", _x())
    opened = open_activations(tmp_path / "l.npy")
    assert isinstance(opened, dict) and list(opened) == ["l"]
