"""Run a torch model over data and record chosen modules' outputs into an activation store.

How outputs become rows (per recorded module, per batch of ``b`` samples):

* the module's output, or its first tensor if it returns a tuple / list, or its first tensor
  value if it returns a mapping (e.g. a Hugging Face ``ModelOutput``: ``last_hidden_state``);
  a module that runs several times in one forward pass is recorded at its last call;
* ``(b,)`` becomes ``(b, 1)``; ``(b, d)`` is kept;
* ``(b, t, d)`` with ``pooling`` set is treated as (batch, tokens, features) and pooled by
  :func:`pool_tokens`: ``"mean"`` over tokens (over the attention mask when the batch is a
  dict with ``attention_mask``), ``"last"`` (last unmasked token), ``"first"`` (first
  unmasked token), or ``"all"`` (keep every token: the layer is stored as ``(n, t, d)``
  with masked positions set to 0; ``t`` must be the same in every batch, so pad inputs
  to a fixed length; ``ActivationStore.load(layer, flatten=True)`` gives ``(n, t * d)``);
* any other output with more than two dimensions (conv maps ``(b, c, h, w)``, or
  ``(b, t, d)`` when ``pooling`` is None) is flattened to ``(b, -1)`` (``flatten=True``,
  the default) or kept as is (``flatten=False``).

Resuming: an extraction killed at any moment (even by SIGKILL) and run again with the same
arguments continues after the last complete shard and produces a store whose shards and
manifest are byte-for-byte those of an uninterrupted run. This needs the data in the same
order on every run (no shuffling, no random augmentation) and a deterministic model (eval
mode, same device, same batch size; another batch size resumes too, its rows equal to
those of the first batch size up to floating-point rounding). Batches already stored are
skipped without running the model; a batch that straddles the resume point is run whole
and its stored rows dropped, so every batch the model sees has the same composition as in
the uninterrupted run. Stopped by
Ctrl-C, an extraction raises :class:`~subspaces.io.ExtractionInterrupted` (a
``KeyboardInterrupt``) saying how many samples the store holds; with ``progress=True`` a
resumed run writes ``resuming from N of M samples`` (and a complete store
``nothing to extract``) to stderr before it starts. The loop is ``subspaces.io._engine``.

Same inputs, checked: the store's manifest records a fingerprint of the inputs (sha256 of
the data and of the model's weights, and the options that shape the rows: not the batch
size, which changes them only by rounding; see ``subspaces.io._fingerprint``). The
``metadata`` describe and are not compared: a store resumed or reused from the same
inputs keeps its first run's metadata (a path typed another way, a newer library).
A store written from other inputs is neither resumed nor returned as complete: a
:class:`~subspaces.io.StoreMismatchError` names what differs (the data, the model's
weights, an option: stored against now); ``resume=False`` extracts again from scratch.
Tensors, arrays, dicts of tensors and texts are hashed whole before the run. Data read as
a stream (a ``Dataset``, ``DataLoader`` or iterable) are hashed batch by batch as they are
read: a resumed run reads again the batches it skips (without running the model) and
compares them with the digest recorded with the stored shards, and a rerun over a complete
store reads all the data once to compare them; not covered is a change in the stored rows
of an interrupted run past its last recorded digest (taken at batch ends: fewer than one
batch).

One extraction per store: the store's writer lock (see :mod:`subspaces.io.store`) is held
from the start of an extraction to its end, so a second extraction into the same folder,
from any process, is refused with a :class:`~subspaces.io.StoreError` naming the pid that
holds it, before it touches any file; an extraction killed with SIGKILL leaves no lock held.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import (
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    default_collate,
)

from subspaces._checks import (
    DeviceMismatchError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    check_choice,
    check_labels,
    check_positive_int,
)
from subspaces.io._engine import _Batch, _run_extraction
from subspaces.io._fingerprint import (
    data_sha256,
    labels_sha256,
    model_fingerprint,
)
from subspaces.io.store import ActivationStore, StoreError

__all__ = ["DEFAULT_SHARD_SIZE", "POOLINGS", "extract", "pool_tokens", "select_modules"]

POOLINGS = ("mean", "last", "first", "all")
DEFAULT_SHARD_SIZE = 1024
LabelsArg = Tensor | np.ndarray | str | None


# --------------------------------------------------------------------------- pooling


def pool_tokens(hidden: Tensor, *, pooling: str, attention_mask: Tensor | None = None) -> Tensor:
    """Pool a ``(b, t, d)`` sequence output to ``(b, d)`` (or keep it, ``"all"``).

    With ``m`` the ``(b, t)`` attention mask (1 = real token; all ones when None):

    * ``"mean"``: ``sum_t m[i, t] h[i, t] / max(sum_t m[i, t], 1)``; accumulated in float32
      at least, returned in ``hidden``'s dtype. A row with no unmasked token gives 0.
    * ``"last"``: ``h[i, t*]`` with ``t*`` the largest ``t`` where ``m[i, t] = 1`` (right or
      left padding both work).
    * ``"first"``: ``h[i, t*]`` with ``t*`` the smallest ``t`` where ``m[i, t] = 1``.
    * ``"all"``: ``h * m[..., None]``, shape ``(b, t, d)``: every token, padding zeroed.

    Examples:
        >>> import torch
        >>> from subspaces.io import pool_tokens
        >>> h = torch.arange(12.0).reshape(1, 4, 3)  # 1 input, 4 tokens, 3 features
        >>> mask = torch.tensor([[1, 1, 0, 0]])  # the last two tokens are padding
        >>> pool_tokens(h, pooling="mean", attention_mask=mask).tolist()
        [[1.5, 2.5, 3.5]]
        >>> pool_tokens(h, pooling="last", attention_mask=mask).tolist()
        [[3.0, 4.0, 5.0]]
    """
    check_choice(pooling, name="pooling", choices=POOLINGS)
    if hidden.ndim != 3:
        raise ShapeError(
            f"pooling expects a (batch, tokens, features) output, got shape {tuple(hidden.shape)}."
        )
    b, t, _ = hidden.shape
    if attention_mask is None:
        if pooling == "mean":
            return hidden.mean(dim=1, dtype=torch.promote_types(hidden.dtype, torch.float32)).to(
                hidden.dtype
            )
        if pooling == "last":
            return hidden[:, -1]
        if pooling == "first":
            return hidden[:, 0]
        return hidden
    if tuple(attention_mask.shape) != (b, t):
        raise ShapeError(
            f"attention_mask has shape {tuple(attention_mask.shape)} but the output has "
            f"{b} samples and {t} tokens (shape {tuple(hidden.shape)}); the mask must be "
            "(batch, tokens)."
        )
    mask = (attention_mask != 0).to(hidden.device)
    if pooling == "mean":
        acc = torch.promote_types(hidden.dtype, torch.float32)
        weights = mask.to(acc)
        total = torch.einsum("btd,bt->bd", hidden.to(acc), weights)
        count = weights.sum(dim=1, keepdim=True).clamp_min(1.0)
        return (total / count).to(hidden.dtype)
    if pooling == "all":
        return hidden * mask.unsqueeze(-1).to(hidden.dtype)
    positions = torch.arange(t, device=hidden.device).expand(b, t)
    if pooling == "last":
        index = torch.where(mask, positions, -1).amax(dim=1).clamp_min(0)
    else:
        index = torch.where(mask, positions, t).amin(dim=1).clamp_max(t - 1)
    return hidden[torch.arange(b, device=hidden.device), index]


def _to_rows(
    output: Tensor,
    *,
    name: str,
    rows: int,
    pooling: str | None,
    mask: Tensor | None,
    flatten: bool,
) -> Tensor:
    if output.ndim == 0 or output.shape[0] != rows:
        raise ShapeError(
            f"the output of {name!r} has shape {tuple(output.shape)}, but the batch has {rows} "
            "samples: recorded outputs must be batch-first (samples along dimension 0)."
        )
    if output.ndim == 1:
        return output.unsqueeze(1)
    if output.ndim == 2:
        return output
    if output.ndim == 3 and pooling is not None:
        return pool_tokens(output, pooling=pooling, attention_mask=mask)
    return output.reshape(rows, -1) if flatten else output


def _first_tensor(output: Any, name: str) -> Tensor:
    if isinstance(output, Tensor):
        return output
    values: Iterable[Any] = ()
    if isinstance(output, Mapping):
        values = output.values()
    elif isinstance(output, (tuple, list)):
        values = output
    for value in values:
        if isinstance(value, Tensor):
            return value
    raise InputTypeError(
        f"module {name!r} returned {type(output).__name__} with no tensor in it; record a "
        "module whose output is a tensor (or a tuple / dict holding one)."
    )


# --------------------------------------------------------------------------- modules


def select_modules(model: nn.Module, modules: str | Sequence[str]) -> list[str]:
    """Names of the submodules of ``model`` picked by ``modules``, in ``named_modules`` order.

    Each entry is an exact name (``"encoder.layer.3"``) or an ``fnmatch`` pattern
    (``"encoder.layer.*"``, ``"*.relu"``) matched against ``model.named_modules()`` names;
    the root module (name ``""``) is never matched. As in ``fnmatch``, ``*`` also matches
    dots (``"blocks.*"`` picks ``blocks.0`` and ``blocks.0.fc``; ``"blocks.?"`` only the
    former). Every entry must match something.

    Examples:
        >>> import torch
        >>> from subspaces.io import select_modules
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> select_modules(net, "*"), select_modules(net, ["2", "0"])
        (['0', '1', '2'], ['0', '2'])
    """
    patterns = [modules] if isinstance(modules, str) else list(modules)
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise InvalidOptionError(
            f"modules must be a non-empty module name or pattern, or a list of them; got "
            f"{modules!r}."
        )
    names = [name for name, _ in model.named_modules() if name]
    chosen: set[str] = set()
    for pattern in patterns:
        hits = [n for n in names if n == pattern or fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
            raise InvalidOptionError(
                f"modules: {pattern!r} matches no submodule of {type(model).__name__}; "
                f"its submodules are: {shown or '(none)'}."
            )
        chosen.update(hits)
    return [n for n in names if n in chosen]


# --------------------------------------------------------------------------- data


def _rows_of(inputs: Any) -> int:
    if isinstance(inputs, Tensor):
        return int(inputs.shape[0])
    if isinstance(inputs, Mapping):
        for value in inputs.values():
            if isinstance(value, Tensor):
                return int(value.shape[0])
    raise InputTypeError(
        f"a batch's model input must be a tensor or a dict of tensors, got {type(inputs).__name__}."
    )


def _split(batch: Any, want_labels: bool) -> tuple[Any, Tensor | None]:
    """A batch is the model input, or a tuple/list ``(input, labels, ...)``."""
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise InputTypeError("a batch is an empty tuple; give (inputs, ...) batches.")
        if want_labels:
            if len(batch) < 2 or not isinstance(batch[1], Tensor):
                raise InputTypeError(
                    'labels="batch" takes each batch\'s second element as its labels, but a '
                    f"batch is a {type(batch).__name__} of length {len(batch)}."
                )
            return batch[0], batch[1]
        return batch[0], None
    if want_labels:
        raise InputTypeError(
            f'labels="batch" needs (inputs, labels) batches, got {type(batch).__name__}.'
        )
    return batch, None


def _n_samples(data: Any) -> int | None:
    if isinstance(data, (Tensor, np.ndarray)):
        return int(data.shape[0])
    if isinstance(data, Mapping):
        return _rows_of(data)
    if isinstance(data, DataLoader):
        dataset = data.dataset
        if isinstance(dataset, IterableDataset) or data.drop_last:
            return None
        try:
            return len(dataset)  # type: ignore[arg-type]
        except TypeError:
            return None
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        try:
            return len(data)  # type: ignore[arg-type]
        except TypeError:
            return None
    return None


def _row_slicer(data: Tensor | Mapping[str, Any], start: int, stop: int) -> Callable[[], Any]:
    def load() -> Any:
        if isinstance(data, Tensor):
            return data[start:stop]
        return {k: v[start:stop] if isinstance(v, Tensor) else v for k, v in data.items()}

    return load


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _batches(data: Any, *, batch_size: int, start: int, want_labels: bool) -> Iterator[_Batch]:
    """Batches of ``data`` in order; indexable data begins at the batch holding ``start``."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.ascontiguousarray(data))
    if isinstance(data, (Tensor, Mapping)):
        if want_labels:
            raise InputTypeError(
                'labels="batch" needs data that yields (inputs, labels) batches; pass the '
                "labels as a tensor instead."
            )
        n = _rows_of(data)
        for offset in range(start - start % batch_size, n, batch_size):
            stop = min(offset + batch_size, n)
            yield _Batch(offset, stop - offset, _row_slicer(data, offset, stop), None)
        return
    if (
        isinstance(data, Dataset)
        and not isinstance(data, IterableDataset)
        and _n_samples(data) is not None
    ):
        n = len(data)  # type: ignore[arg-type]
        for offset in range(start - start % batch_size, n, batch_size):
            stop = min(offset + batch_size, n)
            batch = default_collate([data[i] for i in range(offset, stop)])
            inputs, labels = _split(batch, want_labels)
            yield _Batch(offset, stop - offset, _constant(inputs), labels)
        return
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise InputTypeError(
            f"data must be a tensor, a dict of tensors, a Dataset, a DataLoader or an iterable "
            f"of batches; got {type(data).__name__}."
        )
    offset = 0
    for batch in data:  # DataLoader or any iterable of batches: read in order
        inputs, labels = _split(batch, want_labels)
        rows = _rows_of(inputs)
        yield _Batch(offset, rows, _constant(inputs), labels)
        offset += rows


def _model_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    tensors = [*model.parameters(), *model.buffers()]
    if device is None:
        return tensors[0].device if tensors else torch.device("cpu")
    target = torch.device(device)
    for t in tensors:
        same = t.device.type == target.type and (
            target.index is None or t.device.index == target.index
        )
        if not same:
            raise DeviceMismatchError(
                f"device is {target} but the model has tensors on {t.device}; move the model "
                f"first (model.to({str(target)!r})): subspaces never moves it silently."
            )
    return target


def _check_labels_arg(labels: LabelsArg, n_total: int | None) -> tuple[Tensor | None, bool]:
    """-> (labels for the whole data or None, take labels from the batches)."""
    if labels is None:
        return None, False
    if isinstance(labels, str):
        if labels != "batch":
            raise InvalidOptionError(
                f'labels must be a tensor of class indices, "batch" or None; got {labels!r}.'
            )
        return None, True
    n = n_total if n_total is not None else len(labels)
    return check_labels(labels, n).to("cpu"), False


def extract(
    model: nn.Module,
    data: Any,
    *,
    modules: str | Sequence[str],
    out: str | os.PathLike[str],
    batch_size: int = 64,
    pooling: str | None = None,
    device: torch.device | str | None = None,
    labels: LabelsArg = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    metadata: Mapping[str, Any] | None = None,
    progress: bool = True,
    flatten: bool = True,
    resume: bool = True,
) -> ActivationStore:
    """Record the outputs of ``model``'s chosen modules over ``data`` into a store at ``out``.

    Forward hooks on the modules picked by ``modules`` (:func:`select_modules`: names or
    fnmatch patterns, layers stored in ``named_modules`` order) record their outputs; the
    model runs in ``torch.no_grad()`` and eval mode (every module's training flag is
    restored afterwards). Outputs become ``(n, d)`` rows as the module docstring says
    (tuples: first tensor; ``(b, t, d)``: pooled when ``pooling`` is set; others with more
    than two dimensions: flattened). Rows are written ``shard_size`` at a time, atomically.

    Args:
        model: any ``nn.Module``; called as ``model(x)`` for a tensor batch and
            ``model(**x)`` for a dict batch (e.g. ``input_ids`` + ``attention_mask``).
        data: a tensor or numpy array (batched along dimension 0), a dict of tensors
            (batched row-wise, passed as keyword arguments), a map-style ``Dataset`` (e.g.
            ``TensorDataset``; items collated with ``default_collate``), a ``DataLoader``, or
            any iterable of batches. A batch that is a tuple / list is ``(inputs, ...)``: the
            model gets ``inputs``. Batching by ``batch_size`` applies to the first three; a
            ``DataLoader`` or iterable keeps its own batches. The order must be deterministic
            for resuming (no shuffling).
        modules: a module name or fnmatch pattern, or a list of them.
        out: the store folder.
        batch_size: samples per forward pass (tensors, dicts and Datasets).
        pooling: None, ``"mean"``, ``"last"``, ``"first"`` or ``"all"``; see :func:`pool_tokens`.
            The mask is the batch's ``attention_mask`` when the batch is a dict holding one.
        device: where to run; the inputs are moved there, the model must already be there
            (default: the model's device).
        labels: ``(n,)`` class indices in data order, or ``"batch"`` to take each batch's
            second element (``(inputs, labels)`` batches, e.g. ``TensorDataset(x, y)``), or
            None. Stored in the shards as ``__labels__``.
        shard_size: rows per shard.
        metadata: JSON dict merged over the recorded metadata (``model``: class name;
            ``data``: kind, size and, for tensors, sha256; ``extraction``: the options).
            The fingerprint of the inputs that resuming checks is recorded apart from it
            (the manifest's ``fingerprint``), so metadata cannot hide a change of data; a
            store resumed or reused from the same inputs keeps its stored metadata.
        progress: show a progress bar (tqdm).
        flatten: flatten outputs with more than two dimensions that are not pooled.
        resume: continue an interrupted extraction into ``out`` (see the module docstring);
            an already complete store written from the same inputs is returned without
            running the model. A store written from other inputs (data, weights, options)
            is refused. False deletes an existing store's files at ``out`` and starts over.

    Returns:
        The finished :class:`~subspaces.io.ActivationStore`; its ``resumed_from`` is how
        many samples the store held before the call.

    Raises:
        StoreMismatchError: the store at ``out`` was written from other inputs; the message
            names what differs.
        ExtractionInterrupted: Ctrl-C stopped the run (a ``KeyboardInterrupt``); the store
            is partial and the same call resumes it.
        StoreError: among others, when another writer (another extraction, in this process
            or another) holds the store at ``out``.

    Examples:
        >>> import tempfile, torch
        >>> from subspaces.io import extract
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> x = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     store = extract(net, x, modules=["1", "2"], out=folder, progress=False)
        ...     print(store.layers, store.n_samples, tuple(store.load("1").shape))
        ['1', '2'] 10 (10, 8)
    """
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    batch_size = check_positive_int(batch_size, name="batch_size")
    shard_size = check_positive_int(shard_size, name="shard_size")
    if pooling is not None:
        check_choice(pooling, name="pooling", choices=POOLINGS)
    if isinstance(data, DataLoader) and isinstance(data.sampler, RandomSampler):
        raise InvalidOptionError(
            "data is a DataLoader with shuffle=True: its order changes from run to run, so "
            "stores of two models would not hold the same inputs row by row and an "
            "interrupted extraction could not resume; pass a DataLoader with shuffle=False."
        )
    names = select_modules(model, modules)
    run_device = _model_device(model, device)
    n_total = _n_samples(data)
    label_tensor, labels_from_batches = _check_labels_arg(labels, n_total)
    from subspaces import __version__

    data_digest = data_sha256(data)
    fingerprint: dict[str, Any] = {
        # streamed data are compared batch by batch as they are read (their kind and length
        # are not: the same batches from a DataLoader or from a generator are the same data)
        "data": (
            {"streamed": True}
            if data_digest is None
            else {"n_samples": n_total, "sha256": data_digest}
        ),
        "labels": labels_sha256("batch" if labels_from_batches else label_tensor),
        "model": model_fingerprint(model),
        "options": {
            "modules": names,
            "pooling": pooling,
            "flatten": flatten,
        },
    }
    recorded: dict[str, Any] = {
        "model": f"{type(model).__module__}.{type(model).__qualname__}",
        "data": {"kind": type(data).__name__, "n_samples": n_total, "sha256": data_digest},
        "extraction": {
            "function": "subspaces.io.extract",
            "modules": names,
            "pooling": pooling,
            "flatten": flatten,
            "batch_size": batch_size,
            "subspaces_version": __version__,
        },
    }
    recorded.update(metadata or {})

    lookup = dict(model.named_modules())
    captured: dict[str, Tensor] = {}

    def make_hook(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            captured[name] = _first_tensor(output, name)

        return hook

    def forward(inputs: Any) -> Mapping[str, Tensor]:
        captured.clear()
        if isinstance(inputs, Mapping):
            model(**inputs)
        else:
            model(inputs)
        missing = [n for n in names if n not in captured]
        if missing:
            raise StoreError(
                f"modules {missing} did not run in the forward pass, so they have no output "
                "to record; choose modules that the model calls."
            )
        return dict(captured)

    handles = [lookup[name].register_forward_hook(make_hook(name)) for name in names]
    try:
        return _run_extraction(
            model=model,
            batches=lambda start: _batches(
                data, batch_size=batch_size, start=start, want_labels=labels_from_batches
            ),
            forward=forward,
            names=names,
            out=out,
            pooling=pooling,
            flatten=flatten,
            device=run_device,
            labels=label_tensor,
            n_total=n_total,
            shard_size=shard_size,
            metadata=recorded,
            fingerprint=fingerprint,
            stream=data_digest is None,
            progress=progress,
            resume=resume,
        )
    finally:
        for handle in handles:
            handle.remove()
        captured.clear()
