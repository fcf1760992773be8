"""The extraction engine shared by :func:`~subspaces.io.extract` and
:func:`~subspaces.io.extract_hf`: batches -> forward -> rows -> store, resumable, checked
against the store's fingerprint, and interruptible (see :mod:`subspaces.io.extract`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from subspaces._checks import ShapeError
from subspaces.io._fingerprint import _BatchDigest
from subspaces.io.errors import ExtractionInterrupted, StoreMismatchError
from subspaces.io.store import MANIFEST_NAME, ActivationStore, StoreWriter


@dataclass
class _Batch:
    offset: int  # index of the batch's first sample
    rows: int
    load: Callable[[], Any]  # the model inputs
    labels: Tensor | None  # labels carried by the batch itself (labels="batch")


def _to_device(inputs: Any, device: torch.device) -> Any:
    if isinstance(inputs, Tensor):
        return inputs.to(device)
    if isinstance(inputs, Mapping):
        return {k: _to_device(v, device) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_to_device(v, device) for v in inputs)
    return inputs


def _stored_samples(out: str | os.PathLike[str], fallback: int) -> int:
    """Samples the manifest on disk lists (what a resumed run finds), else ``fallback``."""
    import json

    try:
        with open(os.path.join(out, MANIFEST_NAME), "rb") as fh:
            return int(json.load(fh)["n_samples"])
    except (OSError, ValueError, TypeError, KeyError):
        return fallback


def _kept_metadata(
    out: str | os.PathLike[str], fingerprint: dict[str, Any], metadata: dict[str, Any]
) -> dict[str, Any]:
    """The metadata to write with: the stored one when the store at ``out`` was written
    from the same inputs (its fingerprint is this run's), else ``metadata``.

    Metadata describe (a path as it was typed, the library's version); the fingerprint
    identifies. The same texts read from another path, or an upgraded library, resume the
    store and keep its first run's description, instead of being refused.
    """
    import json

    try:
        with open(os.path.join(out, MANIFEST_NAME), "rb") as fh:
            manifest = json.load(fh)
        stored = manifest["fingerprint"]
        kept = manifest["metadata"]
    except (OSError, ValueError, TypeError, KeyError):
        return metadata
    if isinstance(kept, dict) and stored == json.loads(json.dumps(fingerprint)):
        return kept
    return metadata


def _say(message: str, progress: bool) -> None:
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)


def _stream_mismatch(out: Any, read: dict[str, Any], rows: int, complete: bool) -> Exception:
    return StoreMismatchError(
        out,
        [
            f"the data differ: their first {read['rows']} samples, read again now, differ from "
            f"those the store was written from ({rows} samples read)"
        ],
        complete=complete,
    )


def _run_extraction(
    *,
    model: nn.Module,
    batches: Callable[[int], Iterator[_Batch]],
    forward: Callable[[Any], Mapping[str, Tensor]],
    names: list[str],
    out: str | os.PathLike[str],
    pooling: str | None,
    flatten: bool,
    device: torch.device,
    labels: Tensor | None,
    n_total: int | None,
    shard_size: int,
    metadata: dict[str, Any],
    fingerprint: dict[str, Any],
    stream: bool,
    progress: bool,
    resume: bool,
) -> ActivationStore:
    """Shared by :func:`extract` and :func:`extract_hf`: batches -> forward -> rows -> store.

    ``stream``: the data are hashed batch by batch as they are read (see the module
    docstring), so the batches run from the first one and the prefix is compared.
    """
    from tqdm.auto import tqdm

    if resume:
        metadata = _kept_metadata(out, fingerprint, metadata)
    # the writer holds the store's lock from here until it is closed: one writer per store
    writer = StoreWriter(
        out,
        layers=names,
        metadata=metadata,
        fingerprint=fingerprint,
        resume=resume,
        shard_size=shard_size,
    )
    n_done = writer.n_done
    of = "" if n_total is None else f" of {n_total}"
    if writer.complete:
        _say(
            f"nothing to extract: the store at {out} is complete ({n_done} samples) and was "
            "written from the same inputs",
            progress,
        )
    elif n_done:
        _say(f"resuming from {n_done}{of} samples (the store at {out})", progress)
    read = writer.data_read if stream else None
    modes = [(m, m.training) for m in model.modules()]
    # everything after the writer's creation runs inside its `with`, so that any exception
    # (the model's own included) releases the lock at once, not when the writer is collected
    try:
        with writer, torch.no_grad():
            if writer.complete and not stream:
                return _opened(out, n_done)
            bar = tqdm(
                total=n_total,
                initial=n_done,
                unit="sample",
                desc="extract",
                disable=not progress or writer.complete,
            )
            digest = _BatchDigest() if stream else None
            boundaries: list[tuple[int, str]] = []  # (rows read, digest) at batch ends

            def data_read_at(stored: int) -> tuple[int, str] | None:
                kept = [b for b in boundaries if b[0] <= stored]
                del boundaries[: len(kept) - 1 if kept else 0]
                return kept[-1] if kept else None

            if stream:
                writer._data_read_at = data_read_at
            try:
                model.eval()
                for batch in batches(0 if stream else n_done):
                    if digest is not None:
                        digest.update(batch.load(), batch.labels, batch.rows)
                        if read is not None and digest.rows >= read["rows"]:
                            if (digest.rows, digest.hexdigest()) != (read["rows"], read["sha256"]):
                                raise _stream_mismatch(out, read, digest.rows, writer.complete)
                            read = None  # the prefix is checked
                        boundaries.append((digest.rows, digest.hexdigest()))
                    if batch.offset + batch.rows <= n_done:
                        continue  # stored by an earlier, interrupted run
                    if writer.complete:  # the data have more samples than the store
                        raise StoreMismatchError(
                            out,
                            [f"the data have more samples than the {n_done} stored"],
                            complete=True,
                        )
                    _write_batch(
                        writer,
                        batch,
                        forward=forward,
                        names=names,
                        pooling=pooling,
                        flatten=flatten,
                        device=device,
                        labels=labels,
                        n_done=n_done,
                    )
                    bar.update(batch.rows - max(0, n_done - batch.offset))
                if read is not None:  # fewer samples than the digest recorded
                    assert digest is not None
                    raise _stream_mismatch(out, read, digest.rows, writer.complete)
                if labels is not None and writer.n_written != labels.shape[0]:
                    raise ShapeError(
                        f"labels has {labels.shape[0]} entries but the data had "
                        f"{writer.n_written} samples; pass one label per sample."
                    )
                if digest is not None and not writer.complete:
                    writer._note_data_read(digest.rows, digest.hexdigest())
            finally:
                bar.close()
                for module, training in modes:
                    module.training = training
    except KeyboardInterrupt as stop:
        if isinstance(stop, ExtractionInterrupted):
            raise
        stored = _stored_samples(out, writer.n_stored)
        raise ExtractionInterrupted(out, stored, n_total) from stop
    return _opened(out, n_done)


def _opened(out: str | os.PathLike[str], resumed_from: int) -> ActivationStore:
    store = ActivationStore.open(out)
    store.resumed_from = resumed_from
    return store


def _write_batch(
    writer: StoreWriter,
    batch: _Batch,
    *,
    forward: Callable[[Any], Mapping[str, Tensor]],
    names: list[str],
    pooling: str | None,
    flatten: bool,
    device: torch.device,
    labels: Tensor | None,
    n_done: int,
) -> None:
    """Run the model on one batch and write its rows (those past ``n_done``)."""
    from subspaces.io.extract import _to_rows  # extract imports this module

    inputs = _to_device(batch.load(), device)
    mask = inputs.get("attention_mask") if isinstance(inputs, Mapping) else None
    outputs = forward(inputs)
    skip = max(0, n_done - batch.offset)
    rows = {
        name: _to_rows(
            outputs[name], name=name, rows=batch.rows, pooling=pooling, mask=mask, flatten=flatten
        )[skip:]
        for name in names
    }
    batch_labels = batch.labels
    if labels is not None:
        batch_labels = labels[batch.offset : batch.offset + batch.rows]
        if batch_labels.shape[0] != batch.rows:
            raise ShapeError(
                f"labels has {labels.shape[0]} entries but the data has more "
                "samples; pass one label per sample."
            )
    if batch_labels is not None:
        batch_labels = batch_labels[skip:]
    writer.write(rows, labels=batch_labels)
