"""Activation stores, activation files and extraction from models.

* :class:`ActivationStore` / :class:`StoreWriter`: a folder of safetensors shards plus
  ``manifest.json``, written atomically and resumably by one writer at a time (a lock held
  for the writer's life; a second writer is refused), read whole
  (:meth:`~ActivationStore.load`) or shard by shard (:meth:`~ActivationStore.iter_batches`)
  to feed the streaming measures, every tensor checked against its sha256 as it is read
  (``ActivationStore.open(path, verify=False)`` skips the checks).
* :func:`read_array` / :func:`open_activations`: .npy, .npz, .safetensors and .pt / .pth
  files (torch files with ``weights_only=True`` only: nothing is unpickled).
* :func:`extract`: record chosen modules' outputs of any torch model with forward hooks;
  :func:`extract_hf`: hidden states of every layer of a Hugging Face model (optional
  extra ``subspaces[hf]``).

Every problem with a store or file raises :class:`StoreError` (a ``ValueError`` and a
:class:`~subspaces.SubspacesError`) saying what is wrong and what to do; a store written
from other inputs than a resumed extraction's raises its subclass
:class:`StoreMismatchError`, and Ctrl-C during an extraction raises
:class:`ExtractionInterrupted` (a ``KeyboardInterrupt``) saying how much is stored.
"""

from subspaces.io.errors import ExtractionInterrupted, StoreMismatchError
from subspaces.io.extract import DEFAULT_SHARD_SIZE, POOLINGS, extract, pool_tokens, select_modules
from subspaces.io.hf import extract_hf, hidden_state_names
from subspaces.io.readers import ARRAY_SUFFIXES, open_activations, read_array
from subspaces.io.store import (
    FORMAT,
    FORMAT_VERSION,
    LABELS_KEY,
    LOCK_NAME,
    MANIFEST_NAME,
    ActivationStore,
    StoreError,
    StoreWriter,
    shard_name,
)

__all__ = [
    "ARRAY_SUFFIXES",
    "DEFAULT_SHARD_SIZE",
    "FORMAT",
    "FORMAT_VERSION",
    "LABELS_KEY",
    "LOCK_NAME",
    "MANIFEST_NAME",
    "POOLINGS",
    "ActivationStore",
    "ExtractionInterrupted",
    "StoreError",
    "StoreMismatchError",
    "StoreWriter",
    "extract",
    "extract_hf",
    "hidden_state_names",
    "open_activations",
    "pool_tokens",
    "read_array",
    "select_modules",
    "shard_name",
]
