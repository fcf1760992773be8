"""Hidden states of every layer of a Hugging Face ``transformers`` model.

``transformers`` is an optional dependency (``pip install subspaces[hf]``), imported only
when :func:`extract_hf` runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from subspaces._checks import (
    InputTypeError,
    InvalidOptionError,
    check_choice,
    check_positive_int,
)
from subspaces.io._engine import _Batch, _run_extraction
from subspaces.io._fingerprint import (
    labels_sha256,
    model_fingerprint,
    texts_sha256,
    tokenizer_fingerprint,
)
from subspaces.io.extract import (
    DEFAULT_SHARD_SIZE,
    POOLINGS,
    LabelsArg,
    _check_labels_arg,
    _model_device,
)
from subspaces.io.store import ActivationStore, StoreError

__all__ = ["extract_hf", "hidden_state_names"]


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ImportError(
            "extract_hf needs the optional dependency 'transformers'; install it with "
            "`pip install subspaces[hf]` (or `pip install transformers`)."
        ) from None
    return transformers


def hidden_state_names(n_layers: int) -> list[str]:
    """``["embeddings", "layer_1", ..., "layer_<n_layers>"]``: the names of the
    ``n_layers + 1`` hidden states (``hidden_states[0]`` is the embeddings' output).

    Examples:
        >>> from subspaces.io import hidden_state_names
        >>> hidden_state_names(2)
        ['embeddings', 'layer_1', 'layer_2']
    """
    return ["embeddings", *(f"layer_{i}" for i in range(1, n_layers + 1))]


def _choose_layers(layers: str | Sequence[str | int], all_names: list[str]) -> list[str]:
    if isinstance(layers, str) and layers == "all":
        return list(all_names)
    requested = [layers] if isinstance(layers, str) else list(layers)
    chosen: list[str] = []
    for item in requested:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise InvalidOptionError(f"layers entries must be names or indices, got {item!r}.")
        if isinstance(item, int):
            if not 0 <= item < len(all_names):
                raise InvalidOptionError(
                    f"layer index {item} is out of range: the model has hidden states "
                    f"0..{len(all_names) - 1} (0 = embeddings)."
                )
            item = all_names[item]
        if item not in all_names:
            raise InvalidOptionError(
                f"layer {item!r} is not a hidden state of this model; choose 'all' or names "
                f"among {all_names} (or their indices)."
            )
        if item not in chosen:
            chosen.append(item)
    if not chosen:
        raise InvalidOptionError("layers is empty; pass 'all' or at least one layer.")
    return [name for name in all_names if name in chosen]


def extract_hf(
    model_or_path: str | os.PathLike[str] | nn.Module,
    texts: Sequence[str],
    *,
    out: str | os.PathLike[str],
    layers: str | Sequence[str | int] = "all",
    pooling: str = "mean",
    batch_size: int = 32,
    max_length: int = 128,
    device: torch.device | str | None = None,
    labels: LabelsArg = None,
    metadata: Mapping[str, Any] | None = None,
    tokenizer: Any = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: bool = True,
    resume: bool = True,
) -> ActivationStore:
    """Store the hidden states of every layer of a ``transformers`` model over ``texts``.

    Runs ``model(**tokenizer(batch), output_hidden_states=True)`` in eval mode and
    ``torch.no_grad()``; ``hidden_states[0]`` (the embeddings' output) is stored as
    ``"embeddings"`` and ``hidden_states[i]`` as ``"layer_i"``. Token states are pooled
    over the attention mask (:func:`~subspaces.io.pool_tokens`), so a layer is ``(n, d)``;
    ``pooling="all"`` pads every text to ``max_length`` and stores ``(n, max_length, d)``
    with padding zeroed. Texts longer than ``max_length`` tokens are truncated. Resumable
    like :func:`~subspaces.io.extract` (same texts in the same order), and checked the
    same way: the store records the sha256 of the texts (the exact strings, in order), of
    the model's weights and of the tokenizer's vocabulary, and the options (layers,
    pooling, max_length; not batch_size); a store written from other inputs raises
    :class:`~subspaces.io.StoreMismatchError` naming what differs.

    Args:
        model_or_path: a local folder or hub name (``AutoModel.from_pretrained``; the
            tokenizer is loaded from the same place; loading is offline when
            ``HF_HUB_OFFLINE=1``), or a loaded model (its tokenizer from
            ``tokenizer`` or from ``model.name_or_path``). Encoder-only and decoder-only
            models; encoder-decoder models are not supported.
        texts: the inputs, in a fixed order.
        out: the store folder.
        layers: ``"all"`` or a list of names (``"embeddings"``, ``"layer_3"``) or indices
            (0 = embeddings).
        pooling: ``"mean"`` (default, over the mask), ``"last"``, ``"first"`` or ``"all"``.
        batch_size: texts per forward pass. max_length: tokens per text at most.
        device: where to run. A model loaded here is put there (default CPU); a given model
            must already be there (default: its device).
        labels: ``(n,)`` class indices, or None.
        metadata: JSON dict merged over the recorded one (model, data sha256, options).
        tokenizer: a tokenizer to use instead of loading one. If it has no padding token,
            its end-of-sequence token is used for padding (the attention mask excludes it).
        shard_size, progress, resume: as in :func:`~subspaces.io.extract`.

    Examples:
        A tiny random BERT and its tokenizer, built in place (skipped by the doctest run:
        importing ``transformers`` takes seconds; tests/io/test_hf.py runs a real model):

        >>> import os, tempfile, torch  # doctest: +SKIP
        >>> import transformers  # doctest: +SKIP
        >>> from subspaces.io import extract_hf  # doctest: +SKIP
        >>> with tempfile.TemporaryDirectory() as folder:  # doctest: +SKIP
        ...     vocab = os.path.join(folder, "vocab.txt")
        ...     with open(vocab, "w") as fh:
        ...         _ = fh.write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "c"]))
        ...     tokenizer = transformers.BertTokenizer(vocab)
        ...     config = transformers.BertConfig(
        ...         vocab_size=7, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
        ...         intermediate_size=16,
        ...     )
        ...     _ = torch.manual_seed(0)
        ...     model = transformers.BertModel(config)  # a tiny random BERT
        ...     store = extract_hf(model, ["a b", "b c a", "c"], out=os.path.join(folder, "store"),
        ...                        tokenizer=tokenizer, progress=False)
        ...     print(store.layers, store.n_samples, store.feature_shapes["layer_2"])
        ['embeddings', 'layer_1', 'layer_2'] 3 (8,)
    """
    transformers = _import_transformers()
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InputTypeError(
            f"texts must be a list of strings, got {type(texts).__name__}; wrap one text in a list."
        )
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise InputTypeError(
            f"texts must hold only str; entry {bad[0]} is {type(texts[bad[0]]).__name__}."
        )
    if not texts:
        raise InputTypeError("texts is empty; give at least one text.")
    check_choice(pooling, name="pooling", choices=POOLINGS)
    batch_size = check_positive_int(batch_size, name="batch_size")
    max_length = check_positive_int(max_length, name="max_length")
    shard_size = check_positive_int(shard_size, name="shard_size")

    if isinstance(model_or_path, nn.Module):
        model = model_or_path
        source = str(getattr(model, "name_or_path", "") or type(model).__qualname__)
        run_device = _model_device(model, device)
    elif isinstance(model_or_path, (str, os.PathLike)):
        source = str(model_or_path)
        model = transformers.AutoModel.from_pretrained(source)
        run_device = torch.device(device) if device is not None else torch.device("cpu")
        model.to(run_device)
    else:
        raise InputTypeError(
            f"model_or_path must be a transformers model or a path / hub name, got "
            f"{type(model_or_path).__name__}."
        )
    if tokenizer is None:
        tokenizer_source = (
            str(model_or_path)
            if not isinstance(model_or_path, nn.Module)
            else (getattr(model, "name_or_path", ""))
        )
        if not tokenizer_source:
            raise InvalidOptionError(
                "this model does not say where it was loaded from; pass tokenizer=..."
            )
        tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_source)
    if getattr(tokenizer, "pad_token", None) is None:
        if getattr(tokenizer, "eos_token", None) is None:
            raise InvalidOptionError(
                "the tokenizer has neither a padding nor an end-of-sequence token; set "
                "tokenizer.pad_token before calling extract_hf."
            )
        tokenizer.pad_token = tokenizer.eos_token

    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False):
        raise InvalidOptionError(
            f"{type(model).__name__} is an encoder-decoder model; extract_hf records encoder-"
            "only or decoder-only models (use extract with forward hooks instead)."
        )
    n_layers = getattr(config, "num_hidden_layers", None)
    if not isinstance(n_layers, int):
        raise InvalidOptionError(
            f"cannot tell how many layers {type(model).__name__} has (its config has no "
            "num_hidden_layers); use extract with forward hooks instead."
        )
    all_names = hidden_state_names(n_layers)
    names = _choose_layers(layers, all_names)
    index = {name: i for i, name in enumerate(all_names)}
    if isinstance(labels, str):
        raise InvalidOptionError(
            f"extract_hf takes labels as a tensor of class indices (one per text), got {labels!r}."
        )
    label_tensor, _ = _check_labels_arg(labels, len(texts))
    padding: bool | str = "max_length" if pooling == "all" else True

    def batches(start: int) -> Any:
        for offset in range(start - start % batch_size, len(texts), batch_size):
            chunk = list(texts[offset : offset + batch_size])

            def load(chunk: list[str] = chunk) -> dict[str, Tensor]:
                encoded = tokenizer(
                    chunk,
                    padding=padding,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                return dict(encoded)

            yield _Batch(offset, len(chunk), load, None)

    def forward(inputs: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        output = model(**inputs, output_hidden_states=True)
        hidden = getattr(output, "hidden_states", None)
        if hidden is None or len(hidden) != n_layers + 1:
            found = "none" if hidden is None else str(len(hidden))
            raise StoreError(
                f"{type(model).__name__} returned {found} hidden states, expected "
                f"{n_layers + 1} (embeddings + {n_layers} layers)."
            )
        return {name: hidden[index[name]] for name in names}

    from subspaces import __version__

    data_digest = texts_sha256(texts)
    fingerprint: dict[str, Any] = {
        "data": {"n_samples": len(texts), "sha256": data_digest},
        "labels": labels_sha256(label_tensor),
        "model": model_fingerprint(model),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "options": {
            "layers": names,
            "pooling": pooling,
            "max_length": max_length,
            "padding": padding,
        },
    }
    recorded: dict[str, Any] = {
        "model": source,
        "data": {"kind": "texts", "n_samples": len(texts), "sha256": data_digest},
        "extraction": {
            "function": "subspaces.io.extract_hf",
            "layers": names,
            "pooling": pooling,
            "batch_size": batch_size,
            "max_length": max_length,
            "padding": padding,
            "transformers_version": str(transformers.__version__),
            "subspaces_version": __version__,
        },
    }
    recorded.update(metadata or {})
    return _run_extraction(
        model=model,
        batches=batches,
        forward=forward,
        names=names,
        out=out,
        pooling=pooling,
        flatten=True,
        device=run_device,
        labels=label_tensor,
        n_total=len(texts),
        shard_size=shard_size,
        metadata=recorded,
        fingerprint=fingerprint,
        stream=False,
        progress=progress,
        resume=resume,
    )
