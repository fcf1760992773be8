"""Read activations saved as single files: .npy, .npz, .safetensors, .pt / .pth.

Nothing here unpickles arbitrary Python objects: numpy files are read with
``allow_pickle=False`` and torch files with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from subspaces.io.errors import StoreError, one_line
from subspaces.io.store import MANIFEST_NAME, ActivationStore

__all__ = ["ARRAY_SUFFIXES", "open_activations", "read_array"]

ARRAY_SUFFIXES = (".npy", ".npz", ".safetensors", ".pt", ".pth")


def _from_numpy(array: np.ndarray, *, path: Path, key: str) -> Tensor:
    if array.dtype == object:  # unreachable with allow_pickle=False, kept as a guard
        raise StoreError(f"{path} holds an object array under {key!r}; save numeric arrays.")
    if not array.dtype.isnative:  # torch holds native byte order only
        array = array.astype(array.dtype.newbyteorder("="))
    try:
        return torch.from_numpy(np.ascontiguousarray(array))
    except TypeError as err:
        raise StoreError(
            f"{path}: array {key!r} has dtype {array.dtype}, which torch cannot hold ({err})."
        ) from None


def _read_numpy(path: Path) -> dict[str, Tensor]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as err:  # numpy meets malformed bytes with many exception types
        # (ValueError, OSError, EOFError, BadZipFile, tokenize.TokenError, MemoryError for
        # a header declaring a huge shape, ...)
        text = str(err).lower()
        if isinstance(err, ValueError) and "object arrays" in text:
            raise StoreError(
                f"{path} holds pickled Python objects (an object array), which subspaces "
                "does not unpickle; save numeric arrays (np.save(path, array.astype(np.float32)))."
            ) from None
        if isinstance(err, ValueError) and "pickle" in text:
            raise StoreError(
                f"{path} could not be read as a numpy file: it is not in .npy / .npz format "
                "(numpy would read it as a pickle, which subspaces never unpickles)."
            ) from None
        raise StoreError(f"{path} could not be read as a numpy file: {one_line(err)}.") from None
    if isinstance(loaded, np.ndarray):
        return {path.stem: _from_numpy(loaded, path=path, key=path.stem)}
    out: dict[str, Tensor] = {}
    with loaded:
        for key in loaded.files:
            try:
                array = loaded[key]
            except Exception as err:  # as for np.load above
                if isinstance(err, ValueError) and "object arrays" in str(err).lower():
                    raise StoreError(
                        f"{path}: array {key!r} holds pickled Python objects, which subspaces "
                        f"does not unpickle ({one_line(err)}); save numeric arrays."
                    ) from None
                raise StoreError(
                    f"{path}: array {key!r} could not be read ({one_line(err)}); the file "
                    "is truncated or corrupt: save it again with np.savez."
                ) from None
            if not isinstance(array, np.ndarray):  # numpy hands back a member's raw bytes
                raise StoreError(
                    f"{path}: array {key!r} is not in .npy format (an .npz holds only arrays "
                    "written by np.save); save the file with np.savez(path, name=array, ...)."
                )
            out[key] = _from_numpy(array, path=path, key=key)
    return out


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as err:  # safetensors raises its own error types
        raise StoreError(
            f"{path} could not be read as safetensors (truncated or corrupt?): {one_line(err)}."
        ) from None


def _refused_object(err: Exception) -> str:
    """`` (it refused NAME)`` for the class torch's weights-only unpickler refused, from its
    message, or nothing when the message names none."""
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    return f" (it refused {match.group(1)})" if match else ""


def _read_torch(path: Path) -> dict[str, Tensor]:
    try:
        with warnings.catch_warnings():  # torch warns about pickles it will refuse anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise StoreError(
            f"{path} holds pickled Python objects, which subspaces refuses to load: it reads "
            f"torch files with torch.load(weights_only=True){_refused_object(err)}. Save "
            "tensors only: torch.save({'layer_name': tensor, ...}, path), or a .safetensors "
            "file (safetensors.torch.save_file)."
        ) from None
    except Exception as err:  # torch.load meets malformed bytes with many exception types
        raise StoreError(
            f"{path} could not be read as a torch file: {one_line(err)}; it is truncated, "
            "corrupt or not a torch file."
        ) from None
    if isinstance(loaded, Tensor):
        return {path.stem: loaded}
    if isinstance(loaded, Mapping):
        bad = {
            str(k): type(v).__name__
            for k, v in loaded.items()
            if not isinstance(k, str) or not isinstance(v, Tensor)
        }
        if not bad:
            return dict(loaded)
        raise StoreError(
            f"{path} holds a dict whose entries are not all str -> Tensor ({bad}); save a "
            "tensor or a flat dict of tensors: torch.save({'layer_name': tensor, ...}, path)."
        )
    raise StoreError(
        f"{path} holds a {type(loaded).__name__}, not a tensor or a dict of tensors; save "
        "torch.save({'layer_name': tensor, ...}, path)."
    )


def read_array(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read activations saved in one file, as ``{name: tensor}`` (CPU tensors).

    * ``.npy``: one array, named after the file's stem (``acts/layer3.npy`` -> ``layer3``).
    * ``.npz``: every array, under its key.
    * ``.safetensors``: every tensor, under its key.
    * ``.pt`` / ``.pth``: ``torch.load(path, weights_only=True)``; a tensor (named after the
      stem) or a flat dict of str -> tensor. Anything else is refused.

    Pickled Python objects are never unpickled: object arrays and torch files holding
    other objects raise :class:`~subspaces.io.StoreError` with a message saying how to save
    plain arrays instead.

    Examples:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from subspaces.io import read_array
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "acts.npz")
        ...     np.savez(path, fc1=np.ones((5, 3), dtype=np.float32), fc2=np.zeros((5, 2)))
        ...     arrays = read_array(path)
        >>> {name: tuple(t.shape) for name, t in arrays.items()}
        {'fc1': (5, 3), 'fc2': (5, 2)}
    """
    p = Path(path)
    if not p.exists():
        raise StoreError(f"no such file: {p}.")
    if p.is_dir():
        raise StoreError(
            f"{p} is a folder; open an activation store with ActivationStore.open or "
            "open_activations."
        )
    suffix = p.suffix.lower()
    if suffix in (".npy", ".npz"):
        out = _read_numpy(p)
    elif suffix == ".safetensors":
        out = _read_safetensors(p)
    elif suffix in (".pt", ".pth"):
        out = _read_torch(p)
    else:
        raise StoreError(
            f"{p} has suffix {p.suffix!r}; subspaces reads {', '.join(ARRAY_SUFFIXES)} files "
            "and activation store folders."
        )
    if not out:
        raise StoreError(f"{p} holds no arrays; save at least one layer's activations in it.")
    return out


def open_activations(
    path: str | os.PathLike[str], *, verify: bool = True
) -> ActivationStore | dict[str, Tensor]:
    """Open activations at ``path``: an :class:`ActivationStore` for a store folder (or its
    ``manifest.json``), a ``{name: tensor}`` dict (see :func:`read_array`) for a file.
    ``verify``: check a store's reads against its checksums (see
    :meth:`ActivationStore.open`); a single file has none.

    Examples:
        >>> import os, tempfile, torch
        >>> from subspaces.io import StoreWriter, open_activations
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with StoreWriter(os.path.join(folder, "store"), layers=["a"]) as writer:
        ...         writer.write({"a": torch.ones(3, 2)})
        ...     torch.save({"a": torch.ones(3, 2)}, os.path.join(folder, "acts.pt"))
        ...     print(type(open_activations(os.path.join(folder, "store"))).__name__)
        ...     print(sorted(open_activations(os.path.join(folder, "acts.pt"))))
        ActivationStore
        ['a']
    """
    p = Path(path)
    if p.is_dir():
        return ActivationStore.open(p, verify=verify)
    if p.name == MANIFEST_NAME:
        return ActivationStore.open(p.parent, verify=verify)
    return read_array(p)
