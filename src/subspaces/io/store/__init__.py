"""Activation stores: a folder of safetensors shards plus ``manifest.json``.

The package holds one idea per module: :mod:`~subspaces.io.store.manifest` (the format
below, reading and validating ``manifest.json`` against the shards),
:mod:`~subspaces.io.store.reader` (:class:`ActivationStore`: reads checked as they
happen), :mod:`~subspaces.io.store.writer` (:class:`StoreWriter`: atomic, resumable
writes), :mod:`~subspaces.io.store.lock` (one writer per store) and ``_files`` (atomic
writes, no-follow opens and hashing).

Layout of a store folder::

    manifest.json
    shard-00000.safetensors
    shard-00001.safetensors
    ...

Shard ``k`` holds rows ``[k * shard_size, (k + 1) * shard_size)`` of every layer (the last
shard may hold fewer): one tensor per layer, named after the layer, of shape
``(rows, *feature_shape)``, plus an int64 ``__labels__`` tensor of shape ``(rows,)`` when
the store has labels. Its safetensors header metadata is
``{"subspaces_shard": "<k>"}`` (one key: safetensors writes metadata keys in an
unspecified order, and a store's bytes must not depend on it).

``manifest.json`` (format version 1; keys in this order, written with ``indent=2``; it
holds no timestamp, so two runs over the same data give the same bytes)::

    {
      "format": "subspaces-activation-store",
      "format_version": 1,
      "complete": true,            # false while the extraction runs or after it was killed
      "layers": ["embeddings", "layer_1"],          # in order
      "features": {"embeddings": {"shape": [384], "dtype": "float32"}, ...},
      "has_labels": false,         # null until the first shard is written
      "n_samples": 300,            # rows in all listed shards
      "shard_size": 128,           # rows per shard (null until the first write)
      "shards": [{"file": "shard-00000.safetensors", "n_samples": 128,
                  "bytes": 393424, "sha256": "…",             # of the whole file
                  "tensor_sha256": {"embeddings": "…", ...}}, # of each tensor's bytes
                 ...],
      "metadata": {...},           # free-form JSON: the model and data it came from
      "fingerprint": {...},        # optional: what identifies the inputs (see below)
      "data_read": {"rows": 1024, "sha256": "…"}   # optional: streamed data read so far
    }

``tensor_sha256`` was added within format version 1: stores written before it lack the key
and are read as before (older versions of subspaces ignore it). So were ``fingerprint``
(written when the :class:`StoreWriter` is given one: :func:`~subspaces.io.extract` records
``{"data", "labels", "model", "options"}`` digests and values; a resumed writer compares
it with its own and refuses a difference with :class:`~subspaces.io.StoreMismatchError`)
and ``data_read`` (the digest of the first ``rows`` rows of data read as a stream, so that
a resumed extraction can check that it reads the same data again).

Integrity on read: an :class:`ActivationStore` (opened with the default ``verify=True``)
checks every tensor it reads against its ``tensor_sha256`` as it reads it, so a read costs
one pass over the bytes it returns, never a second pass over the store; a shard without
per-tensor checksums (older stores) is checked against its ``sha256`` the first time it is
read, once per opened store. A mismatch raises :class:`StoreError` naming the shard and the
store. Shards and the manifest are opened without following symbolic links: a link is
refused, so a store never reads a file outside its folder. :meth:`ActivationStore.verify`
checks everything at once.

Writes are atomic: each file is written to a temporary file in the same folder, flushed,
fsync-ed and renamed over its final name (``os.replace``); the manifest is rewritten the
same way after every shard. A process killed at any moment therefore leaves complete shards
listed in the manifest, perhaps one complete shard that the manifest does not list yet, and
perhaps temporary files: a resumed :class:`StoreWriter` deletes the last two and continues
after the last listed shard.

One writer per folder: a :class:`StoreWriter` holds an exclusive lock on ``.writer.lock`` in
the folder for its whole life (``flock``; a byte-range lock on Windows), and a second writer,
in this process or another, is refused with a :class:`StoreError` naming the holder's pid
and host. The operating system drops the lock when its process dies, so a writer killed
with SIGKILL leaves a lock file that the next writer takes over. The lock is advisory (it
binds subspaces' writers, not other programs) and needs a filesystem with working locks
(local disks do; some network filesystems do not). A store being written always has an
incomplete manifest (a rewrite marks it incomplete before deleting anything), which readers
refuse.
"""

from subspaces.io.errors import StoreError
from subspaces.io.store.manifest import (
    FORMAT,
    FORMAT_VERSION,
    LABELS_KEY,
    LOCK_NAME,
    MANIFEST_NAME,
    shard_name,
)
from subspaces.io.store.reader import ActivationStore
from subspaces.io.store.writer import StoreWriter

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LABELS_KEY",
    "LOCK_NAME",
    "MANIFEST_NAME",
    "ActivationStore",
    "StoreError",
    "StoreWriter",
    "shard_name",
]
