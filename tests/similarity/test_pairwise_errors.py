"""pairwise errors name the layers by their keys, keep their class, and solver failures are
NumericalErrors (issue 11)."""

from __future__ import annotations

import pytest
import torch

from subspaces import NumericalError
from subspaces._checks import DegenerateInputError, DeviceMismatchError, ShapeError
from subspaces.similarity import mean_cca, pairwise, pwcca

F64 = torch.float64


def _layers(n: int = 40, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g, dtype=F64)
    return {"layer_1": x, "layer_2": torch.tanh(x @ torch.randn(6, 5, generator=g, dtype=F64))}


# one measure per route of pairwise: moments, prepare + compare, function
@pytest.mark.parametrize(
    ("measure", "options"),
    [
        ("linear_cka", {}),
        ("mean_cca", {}),
        ("procrustes_distance", {}),
        ("mutual_knn", {"k": 3}),
        ("rsa", {}),
        ("rbf_cka", {}),
    ],
)
def test_a_constant_layer_is_named_by_its_key(measure: str, options: dict[str, int]) -> None:
    xs = _layers()
    ys = {"embeddings": torch.ones(40, 4, dtype=F64), **_layers(seed=1)}
    with pytest.raises(DegenerateInputError, match=r"layer 'embeddings' \(of ys\)") as info:
        pairwise(xs, ys, measure=measure, progress=False, **options)
    assert "representation" not in str(info.value)
    assert type(info.value) is DegenerateInputError  # the class of the single-pair error


def test_a_constant_layer_in_a_list_compared_with_itself_is_named_by_index() -> None:
    layers = [*_layers().values(), torch.full((40, 3), 2.0, dtype=F64)]
    with pytest.raises(DegenerateInputError, match=r"^layer 2 \(of xs\) has zero variance"):
        pairwise(layers, measure="linear_cka", progress=False)


def test_the_message_says_to_check_the_layer() -> None:
    ys = {"cls": torch.ones(40, 4, dtype=F64)}
    with pytest.raises(DegenerateInputError, match="check that the layer is not a constant"):
        pairwise(_layers(), ys, measure="linear_cka", progress=False)


def test_a_row_count_mismatch_names_both_layers() -> None:
    ys = {"pooled": torch.ones(39, 4, dtype=F64)}
    with pytest.raises(
        ShapeError, match=r"xs\['layer_1'\] has 40 rows and ys\['pooled'\] has shape \(39, 4\)"
    ):
        pairwise(_layers(), ys, progress=False)


def test_a_device_mismatch_names_the_layers() -> None:
    ys = {"meta": torch.ones(40, 4, dtype=F64)}
    xs = _layers()
    try:
        xs["layer_1"] = xs["layer_1"].to("cuda")
    except (AssertionError, RuntimeError):
        pytest.skip("needs a second device")
    with pytest.raises(DeviceMismatchError, match=r"xs\['layer_1'\]"):
        pairwise(xs, ys, progress=False)


@pytest.mark.parametrize(
    ("measure", "op"), [("mean_cca", "svdvals"), ("pwcca", "svd"), ("cca_r2", "svdvals")]
)
def test_a_solver_that_always_fails_is_a_numerical_error_naming_the_pair(
    measure: str, op: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object, **kwargs: object) -> object:
        raise torch.linalg.LinAlgError(f"linalg.{op}: failed to converge (test)")

    monkeypatch.setattr(torch.linalg, op, never)
    with pytest.raises(NumericalError) as info:
        pairwise(_layers(), {"cls": _layers(seed=2)["layer_2"]}, measure=measure, progress=False)
    message = str(info.value)
    assert message.startswith("layer 'layer_1' (of xs) × layer 'cls' (of ys): torch.linalg.")
    assert f"torch.linalg.{op} did not converge on the whitened cross-covariance" in message


@pytest.mark.parametrize("op", ["svdvals", "svd", "eigh"])
def test_a_solver_that_fails_once_is_retried_and_the_value_kept(
    op: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = _layers().values()
    want = {"mean_cca": float(mean_cca(x, y)), "pwcca": float(pwcca(x, y))}
    real = getattr(torch.linalg, op)
    calls: list[int] = []

    def once(t: torch.Tensor, *args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise torch.linalg.LinAlgError("failed to converge (test)")
        return real(t, *args, **kwargs)

    monkeypatch.setattr(torch.linalg, op, once)
    for name, function in (("mean_cca", mean_cca), ("pwcca", pwcca)):
        calls.clear()
        # the data are float64: the retry is the regularized matrix, δ = 1e-10
        assert float(function(x, y)) == pytest.approx(want[name], abs=1e-8)
        used = op != {"mean_cca": "svd", "pwcca": "svdvals"}[name]
        assert len(calls) >= (2 if used else 0)  # the failure, then the retry


def test_a_missing_required_option_is_an_invalid_option_error_naming_it() -> None:
    # eigenspace_overlap has no default n_components: a raw TypeError before
    from subspaces._checks import InvalidOptionError

    xs = _layers()
    with pytest.raises(InvalidOptionError, match=r"'eigenspace_overlap' needs the option "):
        pairwise(xs, xs, measure="eigenspace_overlap", progress=False)
    got = pairwise({"a": xs["layer_1"]}, measure="eigenspace_overlap", n_components=2)
    assert float(got[0, 0]) == pytest.approx(1.0)
