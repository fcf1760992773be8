"""extract: module selection, pooling, data kinds, modes, labels, resume after an exception."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from subspaces._checks import (
    DeviceMismatchError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
)
from subspaces.io import (
    MANIFEST_NAME,
    ActivationStore,
    StoreError,
    StoreMismatchError,
    extract,
    pool_tokens,
    select_modules,
)

# --------------------------------------------------------------------------- models


class Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.act = nn.Tanh()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.fc(x))


class MLP(nn.Module):
    def __init__(self, d_in: int = 6, d: int = 5, d_out: int = 3) -> None:
        super().__init__()
        self.stem = nn.Linear(d_in, d)
        self.blocks = nn.Sequential(Block(d), Block(d))
        self.head = nn.Linear(d, d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))


class TupleOut(nn.Module):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x * 2, x * 3


class SeqModel(nn.Module):
    """HF-style: called with input_ids and attention_mask; outputs (b, t, d) sequences."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 4)
        self.proj = nn.Linear(4, 4)
        self.pair = TupleOut()

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        h = self.proj(self.embed(input_ids))
        return self.pair(h)[0]


def _model(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP()


def _x(n: int = 37) -> Tensor:
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(1))


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


# --------------------------------------------------------------------------- modules


def test_glob_selects_in_module_order() -> None:
    assert select_modules(_model(), "blocks.*.fc") == ["blocks.0.fc", "blocks.1.fc"]


def test_exact_names_and_patterns_merge_in_module_order() -> None:
    chosen = select_modules(_model(), ["head", "blocks.?.act", "stem", "blocks.0.act"])
    assert chosen == ["stem", "blocks.0.act", "blocks.1.act", "head"]


def test_star_crosses_dots_like_fnmatch() -> None:
    assert select_modules(_model(), "blocks.*") == [
        "blocks.0",
        "blocks.0.fc",
        "blocks.0.act",
        "blocks.1",
        "blocks.1.fc",
        "blocks.1.act",
    ]


def test_star_matches_every_submodule_but_not_the_root() -> None:
    assert "" not in select_modules(_model(), "*")
    assert len(select_modules(_model(), "*")) == len(list(_model().named_modules())) - 1


@pytest.mark.parametrize(
    ("modules", "match"),
    [
        ("blocks.*.conv", r"'blocks\.\*\.conv' matches no submodule of MLP.*stem, blocks"),
        ([], "must be a non-empty module name"),
        ("", "must be a non-empty module name"),
    ],
    ids=["no-match", "empty-list", "empty-name"],
)
def test_bad_module_selection_refused(modules: Any, match: str) -> None:
    with pytest.raises(InvalidOptionError, match=match):
        select_modules(_model(), modules)


def test_extract_records_selected_modules(tmp_path: Path) -> None:
    model, x = _model(), _x()
    store = extract(model, x, modules="blocks.?", out=tmp_path / "s", batch_size=8, progress=False)
    assert store.layers == ["blocks.0", "blocks.1"]
    with torch.no_grad():
        expected = model.blocks(model.stem(x))
    torch.testing.assert_close(store.load("blocks.1"), expected)


# --------------------------------------------------------------------------- pooling


H = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
MASK = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 1]])  # right-padded, then left-padded


@pytest.mark.parametrize(
    ("pooling", "expected"),
    [
        ("mean", torch.stack([H[0, :2].mean(0), H[1, 1:].mean(0)])),
        ("last", torch.stack([H[0, 1], H[1, 3]])),
        ("first", torch.stack([H[0, 0], H[1, 1]])),
        ("all", H * MASK[..., None]),
    ],
    ids=["mean", "last", "first", "all"],
)
def test_pooling_with_mask_by_hand(pooling: str, expected: Tensor) -> None:
    torch.testing.assert_close(pool_tokens(H, pooling=pooling, attention_mask=MASK), expected)


@pytest.mark.parametrize(
    ("pooling", "expected"),
    [("mean", H.mean(1)), ("last", H[:, -1]), ("first", H[:, 0]), ("all", H)],
    ids=["mean", "last", "first", "all"],
)
def test_pooling_without_mask(pooling: str, expected: Tensor) -> None:
    torch.testing.assert_close(pool_tokens(H, pooling=pooling), expected)


def test_mean_pooling_of_fully_masked_row_is_zero() -> None:
    mask = torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1]])
    pooled = pool_tokens(H, pooling="mean", attention_mask=mask)
    assert bool((pooled[0] == 0).all()) and bool(torch.isfinite(pooled).all())


def test_mean_pooling_half_precision_keeps_dtype() -> None:
    pooled = pool_tokens(H.half(), pooling="mean", attention_mask=MASK)
    assert pooled.dtype == torch.float16
    torch.testing.assert_close(pooled.float(), pool_tokens(H, pooling="mean", attention_mask=MASK))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"pooling": "max"}, InvalidOptionError, "pooling must be one of 'mean', 'last'"),
        (
            {"pooling": "mean", "attention_mask": MASK[:, :3]},
            ShapeError,
            r"mask has shape \(2, 3\)",
        ),
    ],
    ids=["bad-mode", "mask-shape"],
)
def test_pooling_refusals(kwargs: dict, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        pool_tokens(H, **kwargs)


def test_pooling_needs_a_sequence() -> None:
    with pytest.raises(ShapeError, match=r"expects a \(batch, tokens, features\) output"):
        pool_tokens(H[0], pooling="mean")


def _seq_data(n: int = 9) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(1, 20, (n, 5), generator=g)
    lengths = torch.randint(1, 6, (n,), generator=g)
    mask = (torch.arange(5)[None] < lengths[:, None]).long()
    return {"input_ids": ids * mask, "attention_mask": mask}


@pytest.mark.parametrize("pooling", ["mean", "last", "first", "all"])
def test_extract_pools_dict_batches_over_their_mask(tmp_path: Path, pooling: str) -> None:
    torch.manual_seed(0)
    model, data = SeqModel(), _seq_data()
    store = extract(
        model,
        data,
        modules=["proj", "pair"],
        out=tmp_path / "s",
        batch_size=4,
        pooling=pooling,
        progress=False,
    )
    with torch.no_grad():
        h = model.proj(model.embed(data["input_ids"]))
    expected = pool_tokens(h, pooling=pooling, attention_mask=data["attention_mask"])
    torch.testing.assert_close(store.load("proj"), expected)
    # a module returning a tuple is recorded through its first tensor
    torch.testing.assert_close(store.load("pair"), expected * 2)
    if pooling == "all":
        assert store.feature_shapes["proj"] == (5, 4)
        assert store.load("proj", flatten=True).shape == (9, 20)


def test_all_tokens_need_one_sequence_length(tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = _seq_data()
    batches = [
        {k: v[:4] for k, v in data.items()},
        {k: v[4:, :3] for k, v in data.items()},  # padded to another length
    ]
    with pytest.raises(ShapeError, match="inputs padded to one fixed length"):
        extract(
            SeqModel(), batches, modules="proj", out=tmp_path / "s", pooling="all", progress=False
        )


def test_sequence_outputs_flattened_without_pooling(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, data = SeqModel(), _seq_data()
    store = extract(model, data, modules="proj", out=tmp_path / "s", progress=False)
    assert store.feature_shapes["proj"] == (20,)


def test_conv_maps_flattened_by_default(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU())
    x = torch.randn(6, 2, 4, 4)
    flat = extract(model, x, modules="0", out=tmp_path / "flat", batch_size=4, progress=False)
    kept = extract(
        model, x, modules="0", out=tmp_path / "kept", batch_size=4, progress=False, flatten=False
    )
    with torch.no_grad():
        expected = model[0](x)
    torch.testing.assert_close(flat.load("0"), expected.reshape(6, -1))
    assert kept.feature_shapes["0"] == (3, 4, 4)
    torch.testing.assert_close(kept.load("0", flatten=True), flat.load("0"))


# --------------------------------------------------------------------------- data kinds


def _load_head(store: ActivationStore) -> Tensor:
    return store.load("head")


@pytest.mark.parametrize(
    "kind", ["tensor", "numpy", "dataset", "dataloader", "list"], ids=lambda k: k
)
def test_every_data_kind_gives_the_same_rows(tmp_path: Path, kind: str) -> None:
    model, x = _model(), _x()
    data: Any = {
        "tensor": x,
        "numpy": x.numpy(),
        "dataset": TensorDataset(x),
        "dataloader": DataLoader(TensorDataset(x), batch_size=8),
        "list": [x[i : i + 8] for i in range(0, len(x), 8)],
    }[kind]
    store = extract(model, data, modules="head", out=tmp_path / "s", batch_size=8, progress=False)
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(_load_head(store), expected)
    assert store.n_samples == 37


def test_labels_from_a_tensor(tmp_path: Path) -> None:
    labels = torch.arange(37) % 4
    store = extract(
        _model(), _x(), modules="head", out=tmp_path / "s", labels=labels, progress=False
    )
    torch.testing.assert_close(store.labels, labels)


def test_labels_from_the_batches(tmp_path: Path) -> None:
    labels = torch.arange(37) % 4
    loader = DataLoader(TensorDataset(_x(), labels), batch_size=5)
    store = extract(
        _model(), loader, modules="head", out=tmp_path / "s", labels="batch", progress=False
    )
    torch.testing.assert_close(store.labels, labels)


@pytest.mark.parametrize(
    ("labels", "exc", "match"),
    [
        (torch.zeros(36, dtype=torch.long), ShapeError, "labels has 36 entries"),
        ("batch", InputTypeError, r'labels="batch" needs data that yields \(inputs, labels\)'),
        ("classes", InvalidOptionError, "labels must be a tensor of class indices"),
    ],
    ids=["length", "batch-without-labels", "bad-string"],
)
def test_bad_labels_refused(tmp_path: Path, labels: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        extract(_model(), _x(), modules="head", out=tmp_path / "s", labels=labels, progress=False)


def test_labels_longer_than_an_iterable_refused(tmp_path: Path) -> None:
    batches = [_x()[:10], _x()[10:20]]
    with pytest.raises(ShapeError, match="labels has 37 entries but the data had 20 samples"):
        extract(
            _model(),
            iter(batches),
            modules="head",
            out=tmp_path / "s",
            labels=torch.zeros(37, dtype=torch.long),
            progress=False,
        )


# --------------------------------------------------------------------------- modes and errors


def test_eval_mode_and_no_grad_then_modes_restored(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    model.train()
    model[2].eval()  # a mixed state must come back exactly
    x = _x()
    store = extract(model, x, modules="1", out=tmp_path / "s", progress=False)
    assert [m.training for m in model.modules()] == [True, True, True, False]
    with torch.no_grad():
        expected = model[0](x)  # dropout is the identity in eval mode
    torch.testing.assert_close(store.load("1"), expected)
    assert all(p.grad is None for p in model.parameters())


def test_hooks_removed_after_extract(tmp_path: Path) -> None:
    model = _model()
    extract(model, _x(), modules="*", out=tmp_path / "s", progress=False)
    assert all(not m._forward_hooks for m in model.modules())


def test_metadata_records_model_data_and_options(tmp_path: Path) -> None:
    store = extract(
        _model(),
        _x(),
        modules="head",
        out=tmp_path / "s",
        batch_size=8,
        metadata={"data": "toy set", "note": "x"},
        progress=False,
    )
    assert store.metadata["model"].endswith("MLP")
    assert store.metadata["data"] == "toy set" and store.metadata["note"] == "x"
    assert store.metadata["extraction"]["batch_size"] == 8
    assert store.metadata["extraction"]["modules"] == ["head"]


def test_model_on_another_device_refused(tmp_path: Path) -> None:
    with pytest.raises(
        DeviceMismatchError, match=r"device is meta but the model has tensors on cpu"
    ):
        extract(_model(), _x(), modules="head", out=tmp_path / "s", device="meta", progress=False)


def test_module_that_does_not_run_refused(tmp_path: Path) -> None:
    model = _model()
    model.unused = nn.Linear(2, 2)
    with pytest.raises(StoreError, match=r"modules \['unused'\] did not run in the forward pass"):
        extract(model, _x(), modules="unused", out=tmp_path / "s", progress=False)


def test_output_not_batch_first_refused(tmp_path: Path) -> None:
    class Transposed(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return x.T

    model = nn.Sequential(Transposed())
    with pytest.raises(ShapeError, match=r"output of '0' has shape \(6, 8\).*batch has 8 samples"):
        extract(model, _x(), modules="0", out=tmp_path / "s", batch_size=8, progress=False)


@pytest.mark.parametrize(
    ("data", "match"),
    [("some text", "data must be a tensor"), (3, "data must be a tensor")],
    ids=["str", "int"],
)
def test_bad_data_refused(tmp_path: Path, data: Any, match: str) -> None:
    with pytest.raises(InputTypeError, match=match):
        extract(_model(), data, modules="head", out=tmp_path / "s", progress=False)


def test_shuffled_dataloader_refused(tmp_path: Path) -> None:
    loader = DataLoader(TensorDataset(_x()), batch_size=8, shuffle=True)
    with pytest.raises(InvalidOptionError, match="shuffle=True: its order changes"):
        extract(_model(), loader, modules="head", out=tmp_path / "s", progress=False)


def test_bad_model_refused(tmp_path: Path) -> None:
    with pytest.raises(InputTypeError, match=r"model must be a torch\.nn\.Module"):
        extract(lambda x: x, _x(), modules="head", out=tmp_path / "s")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- resume


class Interrupt(Exception):
    pass


def _run(model: MLP, out: Path, **kw: Any) -> ActivationStore:
    labels = torch.arange(37) % 3
    options: dict[str, Any] = {"batch_size": 3, "shard_size": 5, "labels": labels}
    options.update(kw)
    return extract(model, _x(), modules="*", out=out, progress=False, **options)


@pytest.mark.parametrize("fail_at_batch", [1, 2, 4, 7, 11, 13], ids=lambda b: f"batch-{b}")
def test_resume_after_an_exception_is_byte_identical(tmp_path: Path, fail_at_batch: int) -> None:
    _run(_model(), tmp_path / "ref")
    model = _model()
    left = [fail_at_batch]

    def interrupt(module: nn.Module, args: Any, output: Tensor) -> None:
        left[0] -= 1
        if left[0] == 0:
            raise Interrupt

    handle = model.stem.register_forward_hook(interrupt)
    with pytest.raises(Interrupt):
        _run(model, tmp_path / "resumed")
    with pytest.raises(StoreError, match="Run the extraction again to resume"):
        ActivationStore.open(tmp_path / "resumed")
    handle.remove()
    _run(model, tmp_path / "resumed")
    assert _files(tmp_path / "resumed") == _files(tmp_path / "ref")


def test_rerun_of_a_complete_store_does_not_run_the_model(tmp_path: Path) -> None:
    _run(_model(), tmp_path / "s")
    model = _model()

    def fail(module: nn.Module, args: Any, output: Tensor) -> None:
        raise AssertionError("the model ran")

    model.stem.register_forward_hook(fail)
    store = _run(model, tmp_path / "s")
    assert store.n_samples == 37


def test_rerun_with_other_options_refused(tmp_path: Path) -> None:
    _run(_model(), tmp_path / "s")
    with pytest.raises(
        StoreMismatchError,
        match=r"cannot reuse.*option pooling: None stored, 'mean' now.*resume=False",
    ):
        _run(_model(), tmp_path / "s", pooling="mean")


def test_rerun_with_other_data_refused(tmp_path: Path) -> None:
    _run(_model(), tmp_path / "s")
    with pytest.raises(
        StoreMismatchError,
        match=r"the data differ \(sha256 [0-9a-f]{12}… stored, [0-9a-f]{12}… now\)",
    ):
        extract(
            _model(),
            _x() + 1,
            modules="*",
            out=tmp_path / "s",
            batch_size=3,
            shard_size=5,
            labels=torch.arange(37) % 3,
            progress=False,
        )


def test_resume_false_overwrites(tmp_path: Path) -> None:
    _run(_model(), tmp_path / "s")
    store = _run(_model(), tmp_path / "s", batch_size=4, resume=False)
    assert store.metadata["extraction"]["batch_size"] == 4
    assert (tmp_path / "s" / MANIFEST_NAME).is_file()


def test_numpy_labels_accepted(tmp_path: Path) -> None:
    store = _run(_model(), tmp_path / "s", labels=np.arange(37) % 3)
    assert store.labels is not None and store.labels.dtype == torch.int64
