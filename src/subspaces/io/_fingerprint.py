"""Fingerprints of an extraction's inputs: sha256 digests of data, model weights, tokenizers.

An extraction records ``{"data": ..., "labels": ..., "model": ..., "options": ...}`` in its
store's manifest (``fingerprint``); resuming or reusing the store with other inputs is
refused (:class:`~subspaces.io.StoreMismatchError`). What each digest covers:

* a tensor or array: its dtype, shape and bytes; a dict of tensors: each key, in sorted
  order, with its tensor's dtype, shape and bytes (other values: their ``repr``);
* texts: the exact strings, in order (UTF-8, each followed by a NUL byte);
* data read as a stream (a ``Dataset``, ``DataLoader`` or any iterable of batches):
  :class:`_BatchDigest` chains the digests of the batches as they are read (inputs and
  labels), so the digest of the first ``r`` rows is known at every batch boundary;
* a model: every entry of its ``state_dict`` and every buffer (name, dtype, shape, bytes),
  in order; about 1 GB/s on one core (a 90 MB model in about a tenth of a second);
* a ``transformers`` model also: the sha256 of its configuration where it differs from
  the defaults (``config.to_diff_dict()``, keys sorted), without the keys that begin with
  ``_`` (where it was loaded from) and ``transformers_version``;
* a tokenizer: its class, padding and truncation sides, padding token, the sha256 of
  its vocabulary (token and id pairs, sorted) and, for a fast tokenizer, of its whole
  pipeline (``backend_tokenizer.to_str()``, keys sorted: normalizer, pre-tokenizer,
  post-processor, added tokens; not its truncation and padding, which each call sets);
  not where it was loaded from, so a model folder that moved still resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

_CHUNK = 2**24  # elements copied to the host at a time from an accelerator


def _update_tensor(digest: Any, name: str, tensor: Tensor) -> None:
    """Feed a tensor's name, dtype, shape and bytes (on CPU, row-major) to ``digest``."""
    tensor = tensor.detach()
    digest.update(f"{name}\x00{tensor.dtype}\x00{tuple(tensor.shape)}\x00".encode())
    if tensor.device.type == "meta":
        return
    try:
        flat = tensor.contiguous().reshape(-1)
        # a chunk at a time: a tensor on an accelerator is never copied to the host whole
        # (on the CPU the chunks are views, nothing is copied)
        for start in range(0, flat.numel(), _CHUNK):
            part = flat[start : start + _CHUNK].to("cpu").view(torch.uint8)
            digest.update(part.numpy().data)
    except (RuntimeError, TypeError):  # sparse, quantized...: their printed values
        digest.update(repr(tensor.to("cpu")).encode())


def _update_value(digest: Any, name: str, value: Any) -> None:
    if isinstance(value, np.ndarray) and value.dtype != object:
        value = torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, Tensor):
        _update_tensor(digest, name, value)
    elif isinstance(value, Mapping):
        for key in sorted(value, key=str):
            _update_value(digest, f"{name}.{key}", value[key])
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            _update_value(digest, f"{name}.{i}", item)
    else:
        digest.update(f"{name}\x00{value!r}\x00".encode())


def data_sha256(data: Any) -> str | None:
    """sha256 of a tensor, array or dict of tensors (dtype, shape, bytes); None for data
    read as a stream (their batches are hashed as they are read)."""
    if not isinstance(data, (Tensor, np.ndarray, Mapping)):
        return None
    digest = hashlib.sha256()
    _update_value(digest, "data", data)
    return digest.hexdigest()


def texts_sha256(texts: Sequence[str]) -> str:
    """sha256 of the exact strings, in order (UTF-8, each followed by a NUL byte)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def labels_sha256(labels: Tensor | str | None) -> str | None:
    """sha256 of a labels tensor; ``"batch"`` and None as they are."""
    if labels is None or isinstance(labels, str):
        return labels
    digest = hashlib.sha256()
    _update_tensor(digest, "labels", labels)
    return digest.hexdigest()


def model_fingerprint(model: nn.Module) -> dict[str, Any]:
    """The model's class, its parameters' dtypes and the sha256 of every ``state_dict``
    entry and buffer (name, dtype, shape, bytes), in order; for a ``transformers`` model
    also ``config_sha256``."""
    digest = hashlib.sha256()
    state = model.state_dict(keep_vars=True)
    for name, tensor in state.items():
        if isinstance(tensor, Tensor):
            _update_tensor(digest, name, tensor)
    for name, buffer in model.named_buffers():
        if name not in state:  # non-persistent buffers
            _update_tensor(digest, name, buffer)
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
    found: dict[str, Any] = {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "dtypes": dtypes,
        "sha256": digest.hexdigest(),
    }
    config = _config_sha256(model)
    if config is not None:
        found["config_sha256"] = config
    return found


def _json_sha256(value: Any) -> str:
    """sha256 of a JSON value, keys sorted (other values: their ``str``)."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _config_sha256(model: nn.Module) -> str | None:
    """sha256 of a ``transformers`` model's configuration where it differs from the
    defaults (``config.to_diff_dict()``: ``hidden_act``, ``layer_norm_eps`` ... shape the
    outputs as much as the weights do), without where it was loaded from or the library's
    version; None for a model without one."""
    to_diff_dict = getattr(getattr(model, "config", None), "to_diff_dict", None)
    if not callable(to_diff_dict):
        return None
    try:
        entries = dict(to_diff_dict())
    except Exception:  # a config that cannot describe itself: not fingerprinted
        return None
    kept = {
        key: value
        for key, value in entries.items()
        if not key.startswith("_") and key != "transformers_version"
    }
    return _json_sha256(kept)


def tokenizer_fingerprint(tokenizer: Any) -> dict[str, Any]:
    """A tokenizer's class, padding and truncation sides, padding token and the sha256 of
    its vocabulary and (a fast tokenizer) of its pipeline."""
    digest = hashlib.sha256()
    get_vocab = getattr(tokenizer, "get_vocab", None)
    vocab = get_vocab() if callable(get_vocab) else {}
    for token, index in sorted(vocab.items(), key=lambda item: (item[1], item[0])):
        digest.update(f"{token}\x00{index}\x00".encode())
    found: dict[str, Any] = {
        "class": type(tokenizer).__qualname__,
        "padding_side": getattr(tokenizer, "padding_side", None),
        "truncation_side": getattr(tokenizer, "truncation_side", None),
        "pad_token": str(getattr(tokenizer, "pad_token", None)),
        "vocab_sha256": digest.hexdigest(),
    }
    # a fast tokenizer's whole pipeline (normalizer: lowercasing, accents; pre-tokenizer;
    # model; post-processor: special tokens; added tokens), which the vocabulary misses
    to_str = getattr(getattr(tokenizer, "backend_tokenizer", None), "to_str", None)
    if callable(to_str):
        with contextlib.suppress(TypeError, ValueError, AttributeError):  # not JSON: left out
            pipeline = json.loads(to_str())
            # truncation and padding are set by each call (max_length is an option apart)
            pipeline.pop("truncation", None)
            pipeline.pop("padding", None)
            found["pipeline_sha256"] = _json_sha256(pipeline)
    return found


class _BatchDigest:
    """A running digest of data read as a stream: after each batch, ``rows`` rows have
    been read and :meth:`hexdigest` is the digest of them (chained: the digest after a
    batch is the sha256 of the previous digest and the batch's inputs and labels)."""

    def __init__(self) -> None:
        self.rows = 0
        self._value = hashlib.sha256(b"subspaces-batches").hexdigest()

    def update(self, inputs: Any, labels: Tensor | None, rows: int) -> None:
        digest = hashlib.sha256(self._value.encode())
        _update_value(digest, "inputs", inputs)
        if labels is not None:
            _update_value(digest, "labels", labels)
        self._value = digest.hexdigest()
        self.rows += rows

    def hexdigest(self) -> str:
        return self._value
