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
    with pytest.raises(StoreError, match=r"evil\.pt holds pickled Python objects, .*Payload"):
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


# --------------------------------------------------------------------------- malformed files


def _zip(path: Path, members: dict[str, bytes]) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _npy_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, _x())
    return buffer.getvalue()


def _npy_header(header: str, *, declared: int | None = None) -> bytes:
    """An .npy file of ``header`` and 16 data bytes; ``declared``: the header length it
    states (fewer bytes than the header: numpy stops inside the dict)."""
    raw = header.encode() + b"\n"
    n = len(raw) if declared is None else declared
    return b"\x93NUMPY\x01\x00" + n.to_bytes(2, "little") + raw + b"\x00" * 16


# 8 PB declared: numpy would allocate it before reading (a raw MemoryError)
ABSURD_SHAPE = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000000,), }"
# numpy's header parser meets the end inside the dict (a raw tokenize.TokenError)
CUT_HEADER = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"

MALFORMED = {
    "npy-absurd-shape": (
        "a.npy",
        lambda p: p.write_bytes(_npy_header(ABSURD_SHAPE)),
        "could not be read as a numpy file: Unable to allocate",
    ),
    "npy-header-cut-inside-dict": (
        "a.npy",
        lambda p: p.write_bytes(_npy_header(CUT_HEADER, declared=20)),
        "could not be read as a numpy file",
    ),
    "npz-member-absurd-shape": (
        "a.npz",
        lambda p: _zip(p, {"h.npy": _npy_header(ABSURD_SHAPE)}),
        r"a\.npz: array 'h' could not be read \(Unable to allocate",
    ),
    "npz-member-header-cut-inside-dict": (
        "a.npz",
        lambda p: _zip(p, {"h.npy": _npy_header(CUT_HEADER, declared=20)}),
        r"a\.npz: array 'h' could not be read",
    ),
    "npz-member-not-npy": (
        "a.npz",
        lambda p: _zip(p, {"h.npy": b"not an npy file"}),
        r"a\.npz: array 'h' is not in \.npy format",
    ),
    "npz-member-not-named-npy": (
        "a.npz",
        lambda p: _zip(p, {"notes.txt": b"hello"}),
        r"a\.npz: array 'notes\.txt' is not in \.npy format",
    ),
    "npz-member-truncated": (
        "a.npz",
        lambda p: _zip(p, {"h.npy": _npy_bytes()[:-7]}),
        r"a\.npz: array 'h' could not be read",
    ),
    "npz-member-bad-header": (
        "a.npz",
        lambda p: _zip(p, {"h.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': 'O'}  \n"}),
        r"a\.npz: array 'h' could not be read",
    ),
    "npz-no-members": ("a.npz", lambda p: np.savez(p), r"a\.npz holds no arrays"),
    "npz-empty-file": ("a.npz", lambda p: p.write_bytes(b""), "could not be read as a numpy"),
    "npy-truncated": (
        "a.npy",
        lambda p: p.write_bytes(_npy_bytes()[:-5]),
        "could not be read as a numpy file",
    ),
    "npy-header-only": (
        "a.npy",
        lambda p: p.write_bytes(_npy_bytes()[:20]),
        "could not be read as a numpy file",
    ),
    "npy-strings": (
        "a.npy",
        lambda p: np.save(p, np.array(["a", "b"])),
        "has dtype <U1, which torch cannot hold",
    ),
    "safetensors-bad-header": (
        "a.safetensors",
        lambda p: p.write_bytes((100).to_bytes(8, "little") + b"{not json" + b"x" * 100),
        "could not be read as safetensors",
    ),
    "safetensors-no-tensors": (
        "a.safetensors",
        lambda p: save_file({}, str(p)),
        r"a\.safetensors holds no arrays",
    ),
    "pt-not-a-zip": (
        "a.pt",
        lambda p: p.write_bytes(b"this is not a zip file at all" * 10),
        "could not be read as a torch file",
    ),
    "pt-truncated-zip": (
        "a.pt",
        lambda p: (torch.save({"a": torch.ones(50)}, p), p.write_bytes(p.read_bytes()[:300])),
        "could not be read as a torch file",
    ),
    "pt-empty-dict": ("a.pt", lambda p: torch.save({}, p), r"a\.pt holds no arrays"),
    "pt-empty-file": ("a.pt", lambda p: p.write_bytes(b""), "could not be read as a torch file"),
    "folder-named-like-a-file": (
        "a.npy",
        lambda p: p.mkdir(),
        "is a folder; open an activation store",
    ),
}


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_files_refused(tmp_path: Path, case: str) -> None:
    name, make, match = MALFORMED[case]
    make(tmp_path / name)
    with pytest.raises(StoreError, match=match):
        read_array(tmp_path / name)


def test_raw_pickle_message_is_one_clean_sentence(tmp_path: Path) -> None:
    (tmp_path / "raw.pt").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    with pytest.raises(StoreError) as info:
        read_array(tmp_path / "raw.pt")
    message = str(info.value)
    assert "raw.pt holds pickled Python objects, which subspaces refuses to load" in message
    assert "safetensors" in message and "torch.save" in message
    assert "Please file an issue" not in message and "\n" not in message


def test_open_activations_passes_verify_on(tmp_path: Path) -> None:
    opened = open_activations(_store(tmp_path / "s"), verify=False)
    assert isinstance(opened, ActivationStore) and not opened.verify_reads
