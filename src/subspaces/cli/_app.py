"""The command line's application, its consoles and error handling, and reading the models
it is given (activation stores or array files)."""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from subspaces import __version__
from subspaces._errors import SubspacesError

if TYPE_CHECKING:
    import torch

app = typer.Typer(
    name="subspaces",
    help="The geometry of neural networks: compare and measure the layers of models.\n\n"
    "Examples:\n\n"
    "  subspaces demo --out demo/                      # two digits MLPs, compared\n\n"
    "  subspaces extract hf MODEL_DIR texts.txt --out store/\n\n"
    "  subspaces extract torch net.py:build inputs.npy -m 'layer*' --out store/\n\n"
    "  subspaces compare storeA/ storeB/ --measure linear_cka --measure mutual_knn\n\n"
    "  subspaces measure storeA/ --json\n\n"
    "  subspaces report storeA/ storeB/ --out report/",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
extract_app = typer.Typer(
    help="Record a model's layer outputs into an activation store.\n\n"
    "The store records a fingerprint of its inputs (data, weights, options): the same "
    "command run again resumes an interrupted store or does nothing to a complete one; "
    "other inputs are refused (--restart extracts again).",
    no_args_is_help=True,
)
app.add_typer(extract_app, name="extract")


class UsageError(SubspacesError, ValueError):
    """A bad command-line argument (exit code 2).

    Examples:
        >>> from subspaces.cli import UsageError
        >>> from subspaces import SubspacesError
        >>> issubclass(UsageError, SubspacesError)
        True
    """


_state: dict[str, Any] = {"debug": False}
# markup=False: nothing printed is read as rich markup, so the square brackets of a path or
# of a hint (``pip install subspaces[hf]``) are printed as they are; styles come from Text.
out = Console(markup=False, highlight=False, soft_wrap=True)
err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def _version(value: bool) -> None:
    if value:
        out.print(f"subspaces {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """The geometry of neural networks: compare and measure the layers of models."""
    _state["debug"] = debug


def _one_line(error: BaseException) -> str:
    """The error's message on one line (:func:`subspaces.io.errors.one_line`), without a
    final period: a message that ends with a path must not seem to end the path with a dot.
    """
    from subspaces.io.errors import one_line

    return one_line(error).removesuffix(".")


def _is_bad_input(error: BaseException) -> bool:
    """Whether an error is the user's to fix (exit 2): a bad argument, a missing or
    unreadable file, a missing optional dependency, or any :class:`SubspacesError`."""
    return isinstance(
        error,
        (
            SubspacesError,
            FileNotFoundError,
            NotADirectoryError,
            IsADirectoryError,
            PermissionError,
            ImportError,  # an optional dependency to install
        ),
    )


def _say(console: Console, label: str, style: str, message: str) -> None:
    """``label: message`` on one line, the label styled, the message printed as it is."""
    console.print(Text.assemble((f"{label}:", style), " ", message))


def _run(job: Callable[[], None]) -> None:
    """Run a command body; turn errors into one line and an exit code (unless --debug)."""
    try:
        job()
    except typer.Exit:
        raise
    except Exception as error:
        if _state["debug"]:
            raise
        if _is_bad_input(error):
            _say(err, "error", "red", _one_line(error))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        _say(
            err,
            "error",
            "red",
            f"{type(error).__name__}: {_one_line(error)} "
            "(run again with --debug for the traceback)",
        )
        raise typer.Exit(EXIT_FAILURE) from None


def _device(name: str | None) -> torch.device | None:
    if name is None:
        return None
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {name!r} is not a device; give cpu, cuda, cuda:1 ...") from None
    if device.type == "meta":
        raise UsageError(
            "--device meta holds no data, so nothing can be measured there; give cpu or cuda"
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was given but no CUDA device is available")
    return device


# the options of every command that reads or writes activations
Device = Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ...")]
Names = Annotated[
    list[str] | None,
    typer.Option(
        "--name", help="The models' names, one per input, in order (default: from the paths)."
    ),
]

# the option of every command that reads activation stores
NoVerify = Annotated[
    bool,
    typer.Option(
        "--no-verify",
        help="Read stores without checking their checksums (faster; only for stores you "
        "trust: a damaged shard then gives wrong numbers instead of an error).",
    ),
]


class _Model:
    """One input of a command: its layers (name -> (n, d) tensor), labels, and where it came
    from (``source``: path, model, pooling, data, dtype, for the results' ``meta.sources``).
    """

    def __init__(
        self, path: Path, layers: dict[str, torch.Tensor], labels: Any, source: dict[str, str]
    ) -> None:
        self.path, self.layers, self.labels, self.source = path, layers, labels, source


def _load_model(path: Path, device: torch.device | None, *, verify: bool = True) -> _Model:
    """A store folder or an array file: its layers, labels and source; a store's reads are
    checked against its checksums unless ``verify=False``."""
    if not path.exists():
        raise UsageError(
            f"'{path}' does not exist{_near(path)}; give an activation store folder or an "
            "array file (.npz, .safetensors, .pt)"
        )
    if path.name == "manifest.json" and path.is_file():
        raise UsageError(
            f"'{path}' is the manifest of a store; give the store's folder '{path.parent}'"
        )
    from subspaces.io import ActivationStore, read_array

    if path.is_dir():
        store = ActivationStore.open(path, verify=verify)
        layers = {name: store.load(name, device=device) for name in store.layers}
        return _Model(path, layers, store.labels, _source(path, store.metadata, layers))
    arrays = read_array(path)
    labels = arrays.pop("__labels__", None)
    if labels is None:
        labels = arrays.pop("labels", None)
    layers = {name: (t if device is None else t.to(device)) for name, t in arrays.items()}
    return _Model(path, layers, labels, _source(path, {}, layers))


def _near(path: Path) -> str:
    """`` (did you mean 'X'?)`` naming the entries beside a missing ``path`` whose names are
    close to its name (a typo, a trailing dot); "" when none is."""
    try:
        siblings = [p.name for p in path.parent.iterdir()]
    except OSError:
        return ""
    close = difflib.get_close_matches(path.name, siblings, n=2, cutoff=0.75)
    if not close:
        return ""
    return f" (did you mean {' or '.join(repr(str(path.parent / c)) for c in close)}?)"


def _source(path: Path, metadata: Mapping[str, Any], layers: Mapping[str, Any]) -> dict[str, str]:
    """Where a model's layers came from, as the extraction recorded it in the store's
    metadata: ``{"path", "model", "pooling", "data", "dtype"}``, the keys it does not know
    left out."""
    source = {"path": str(path)}
    if isinstance(metadata.get("model"), str):
        source["model"] = metadata["model"]
    extraction = metadata.get("extraction")
    if isinstance(extraction, Mapping) and "pooling" in extraction:
        pooling = extraction["pooling"]
        source["pooling"] = "none" if pooling is None else str(pooling)
    data = metadata.get("data")
    if isinstance(data, str):
        source["data"] = data
    elif isinstance(data, Mapping):
        described = [str(data["kind"])] if "kind" in data else []
        if "n_samples" in data:
            described.append(f"{data['n_samples']} samples")
        if isinstance(data.get("sha256"), str):
            described.append(f"sha256 {data['sha256'][:12]}")
        if described:
            source["data"] = ", ".join(described)
    dtypes = dict.fromkeys(
        str(getattr(x, "dtype", "?")).removeprefix("torch.") for x in layers.values()
    )
    if dtypes:
        source["dtype"] = ", ".join(dtypes)
    return source


def _check_rows(models: Mapping[str, _Model]) -> None:
    """Every layer of every model holds the same inputs: refuse different row counts,
    naming both models (and their paths) and layers."""
    first: tuple[str, _Model, str, int] | None = None
    for name, model in models.items():
        for layer, x in model.layers.items():
            rows = int(x.shape[0]) if getattr(x, "ndim", 0) else 0
            if first is None:
                first = (name, model, layer, rows)
            elif rows != first[3]:
                raise UsageError(
                    "every layer of every model must hold the same samples, in the same order: "
                    f"layer {layer!r} of {_named(name, model)} has {rows} rows but layer "
                    f"{first[2]!r} of {_named(first[0], first[1])} has {first[3]} rows"
                )


def _named(name: str, model: _Model) -> str:
    """``'B/store' ('runs/B/store')``: a model's name, and its path where that differs."""
    return repr(name) if str(model.path) == name else f"{name!r} ('{model.path}')"


def _check_measure_names(names: Sequence[str], known: Mapping[str, Any]) -> list[str]:
    """The measures named, each once; an unknown name is refused with the closest known
    names ("did you mean 'linear_cka'?", :func:`subspaces.similarity.closest_measures`)."""
    from subspaces.similarity import closest_measures

    for name in names:
        if name not in known:
            close = closest_measures(name)
            hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
            raise UsageError(
                f"unknown measure {name!r}{hint}; known: {', '.join(sorted(known))}; "
                "subspaces compare --list describes them"
            )
    return list(dict.fromkeys(names))


def _compute(models: Mapping[str, _Model], *, labels: bool, **options: Any) -> dict[str, Any]:
    """:func:`subspaces.report.compute_results` on the models' layers, with their sources
    (and their labels with ``labels=True``)."""
    from subspaces.report import compute_results

    return compute_results(
        {name: model.layers for name, model in models.items()},
        labels={name: model.labels for name, model in models.items()} if labels else None,
        sources={name: model.source for name, model in models.items()},
        **options,
    )


def _path_parts(path: Path, *, stem: bool) -> list[str]:
    """The folders of a resolved path, root left out, then its name (or a file's stem)."""
    return [*path.parent.parts[1:], path.stem if stem and path.is_file() else path.name]


def _shortest_suffixes(parts: list[list[str]], keys: list[Path]) -> list[str | None]:
    """Per path, its fewest last parts that no other path (another key) ends with; or None."""
    out: list[str | None] = []
    for i, mine in enumerate(parts):
        rivals = [parts[j] for j in range(len(parts)) if keys[j] != keys[i]]
        out.append(
            next(
                (
                    "/".join(mine[-k:])
                    for k in range(1, len(mine) + 1)
                    if all(rival[-k:] != mine[-k:] for rival in rivals)
                ),
                None,
            )
        )
    return out


def _model_names(paths: list[Path]) -> list[str]:
    """A name per model from its path: the shortest path suffix that tells it from the rest.

    A folder gives its name and a file its stem (``runs/a/store`` -> ``store``); paths
    whose names clash get as many parent folders as it takes (``A/store``, ``B/store``),
    then the file's suffix (``m.npz``, ``m.pt``), then the whole resolved path. Paths are
    resolved first, so the same file or folder, however spelled, gets the same name.
    """
    keys = [path.resolve() for path in paths]
    by_stem = _shortest_suffixes([_path_parts(k, stem=True) for k in keys], keys)
    by_name = _shortest_suffixes([_path_parts(k, stem=False) for k in keys], keys)
    names = [s or n or str(k) for s, n, k in zip(by_stem, by_name, keys, strict=True)]
    clash = {
        names[i]
        for i in range(len(keys))
        for j in range(len(keys))
        if keys[i] != keys[j] and names[i] == names[j]
    }
    return [str(k) if name in clash else name for name, k in zip(names, keys, strict=True)]


def _names_for(paths: list[Path], names: list[str] | None) -> list[str]:
    """The models' names: from ``--name`` (one per input, distinct) or from their paths."""
    if not names:
        return _model_names(paths)
    if len(names) != len(paths):
        raise UsageError(
            f"{len(paths)} inputs but {len(names)} --name; give one --name per input, in order"
        )
    for name in names:
        if not name.strip():
            raise UsageError(f"--name must not be empty, got {name!r}; name every model")
        if names.count(name) > 1:
            raise UsageError(f"--name {name!r} is given twice; give each model its own name")
    return list(names)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, allow_nan=False) + "\n")
