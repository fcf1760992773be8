"""The ``subspaces`` command line: extract activations, compare layers, measure, report.

Exit codes: 0 success; 1 an unexpected failure (a bug: run again with --debug for the
traceback); 2 bad usage or input (a missing file, a store that is incomplete or corrupt,
an unknown measure...). Errors are one line on stderr unless --debug.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from subspaces import __version__
from subspaces._checks import SubspacesError
from subspaces.io.errors import one_line

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
    help="Record a model's layer outputs into an activation store.", no_args_is_help=True
)
app.add_typer(extract_app, name="extract")


class UsageError(SubspacesError, ValueError):
    """A bad command-line argument."""


_state: dict[str, Any] = {"debug": False}
out = Console()
err = Console(stderr=True)

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
    """The error's message on one line (:func:`subspaces.io.errors.one_line`), safe from rich
    markup."""
    return escape(one_line(error))


def _run(job: Callable[[], None]) -> None:
    """Run a command body; turn errors into one line and an exit code (unless --debug)."""
    try:
        job()
    except typer.Exit:
        raise
    except (
        SubspacesError,
        FileNotFoundError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
    ) as error:
        if _state["debug"]:
            raise
        err.print(f"[red]error:[/red] {_one_line(error)}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except Exception as error:
        if _state["debug"]:
            raise
        err.print(
            f"[red]error:[/red] {type(error).__name__}: {_one_line(error)} "
            "(run again with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_FAILURE) from None


def _device(name: str | None) -> torch.device | None:
    if name is None:
        return None
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


# the option of every command that reads activation stores
NoVerify = Annotated[
    bool,
    typer.Option(
        "--no-verify",
        help="Read stores without checking their checksums (faster; only for stores you "
        "trust: a damaged shard then gives wrong numbers instead of an error).",
    ),
]


def _load_model_layers(
    path: Path, device: torch.device | None, *, verify: bool = True
) -> tuple[dict[str, torch.Tensor], Any]:
    """Layers (name -> (n, d) tensor) and labels of a store folder or an array file; a
    store's reads are checked against its checksums unless ``verify=False``."""
    from subspaces.io import ActivationStore, read_array

    if path.is_dir():
        store = ActivationStore.open(path, verify=verify)
        layers = {name: store.load(name, device=device) for name in store.layers}
        return layers, store.labels
    arrays = read_array(path)
    labels = arrays.pop("__labels__", None)
    if labels is None:
        labels = arrays.pop("labels", None)
    layers = {name: (t if device is None else t.to(device)) for name, t in arrays.items()}
    return layers, labels


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


# ----------------------------------------------------------------------------- extract


@extract_app.command("hf")
def extract_hf_command(
    model: Annotated[Path, typer.Argument(help="A local Hugging Face model folder.")],
    texts: Annotated[Path, typer.Argument(help="A text file, one input per line.")],
    out_dir: Annotated[Path, typer.Option("--out", help="The activation store to write.")],
    pooling: Annotated[str, typer.Option(help="mean, first, last or all (tokens).")] = "mean",
    batch_size: Annotated[int, typer.Option(help="Inputs per forward pass.")] = 32,
    max_length: Annotated[int, typer.Option(help="Tokens per input (truncated).")] = 128,
    labels: Annotated[
        Path | None, typer.Option(help="A .npy file of integer labels, one per line.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ...")] = None,
) -> None:
    """Hidden states of every layer of a transformers model over the lines of a text file.

    Rerunning the same command after an interruption resumes from the last complete shard.
    """

    def job() -> None:
        from subspaces.io import extract_hf, read_array

        lines = _read_lines(texts)
        label_tensor = None if labels is None else next(iter(read_array(labels).values()))
        store = extract_hf(
            str(model),
            lines,
            out=out_dir,
            pooling=pooling,
            batch_size=batch_size,
            max_length=max_length,
            device=_device(device),
            labels=label_tensor,
            metadata={"model": str(model), "data": str(texts)},
        )
        err.print(f"wrote {store.n_samples} samples × {len(store.layers)} layers to {out_dir}")

    _run(job)


def _read_lines(path: Path) -> list[str]:
    """The non-empty lines of a UTF-8 text file, stripped."""
    if not path.is_file():
        raise UsageError(f"{path} is not a text file; give a file with one input per line")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); give a text "
            "file with one input per line"
        ) from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _build_model(spec: str) -> torch.nn.Module:
    """``path/to/file.py:function`` -> the module that function returns (the file is run)."""
    import importlib.util

    file, _, function = spec.rpartition(":")
    if not file or not function:
        raise UsageError(f"the model must be given as FILE.py:FUNCTION, got {spec!r}")
    path = Path(file)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    module_spec = importlib.util.spec_from_file_location(f"_subspaces_model_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise UsageError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    factory = getattr(module, function, None)
    if not callable(factory):
        raise UsageError(f"{path} has no function {function!r}")
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model


@extract_app.command("torch")
def extract_torch_command(
    model: Annotated[str, typer.Argument(help="FILE.py:FUNCTION returning the nn.Module.")],
    inputs: Annotated[Path, typer.Argument(help="Inputs: .npy, .npz, .safetensors or .pt.")],
    out_dir: Annotated[Path, typer.Option("--out", help="The activation store to write.")],
    module: Annotated[
        list[str], typer.Option("--module", "-m", help="Module name or glob; repeat.")
    ],
    weights: Annotated[
        Path | None, typer.Option(help="A state dict (.safetensors, or .pt of tensors).")
    ] = None,
    labels: Annotated[Path | None, typer.Option(help="A .npy file of integer labels.")] = None,
    pooling: Annotated[str | None, typer.Option(help="mean, first, last or all.")] = None,
    batch_size: Annotated[int, typer.Option(help="Inputs per forward pass.")] = 64,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ...")] = None,
) -> None:
    """Outputs of chosen modules of a torch model over an array of inputs.

    The model comes from a Python file you name (it is run), its weights from a state
    dict read safely (no unpickling). Rerunning after an interruption resumes.
    """

    def job() -> None:
        from subspaces.io import extract, read_array

        net = _build_model(model)
        if weights is not None:
            state = read_array(weights)
            try:
                net.load_state_dict(state)
            except RuntimeError as error:
                raise UsageError(
                    f"--weights {weights} does not fit the model {model}: {error}"
                ) from None
        dev = _device(device)
        if dev is not None:
            net.to(dev)
        arrays = read_array(inputs)
        if len(arrays) != 1:
            raise UsageError(f"{inputs} holds {len(arrays)} arrays ({', '.join(arrays)}); give one")
        (data,) = arrays.values()
        label_tensor = None if labels is None else next(iter(read_array(labels).values()))
        store = extract(
            net,
            data,
            modules=module,
            out=out_dir,
            batch_size=batch_size,
            pooling=pooling,
            device=dev,
            labels=label_tensor,
            metadata={"model": model, "data": str(inputs)},
        )
        err.print(f"wrote {store.n_samples} samples × {len(store.layers)} layers to {out_dir}")

    _run(job)


# ----------------------------------------------------------------------------- compare


@app.command()
def compare(
    a: Annotated[
        Path,
        typer.Argument(help="Activation store folder or array file (.npz, .safetensors, .pt)."),
    ],
    b: Annotated[
        Path | None, typer.Argument(help="A second model's store; omitted: A with itself.")
    ] = None,
    measure: Annotated[
        list[str] | None, typer.Option("--measure", "-m", help="Repeat for several; see --list.")
    ] = None,
    list_measures: Annotated[
        bool, typer.Option("--list", help="List the measures and exit.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the matrices as JSON.")] = False,
    given_names: Annotated[
        list[str] | None,
        typer.Option(
            "--name", help="The models' names, one per input, in order (default: from the paths)."
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ...")] = None,
    no_verify: NoVerify = False,
) -> None:
    """Layer × layer matrices of similarity measures between two models (or one with itself).

    Models are named by the shortest end of their paths that tells them apart
    (``A/store`` and ``B/store``), or by --name.
    """

    def job() -> None:
        from subspaces.similarity import MEASURES, pairwise

        if list_measures:
            _print_measures(MEASURES)
            return
        names = measure or ["linear_cka"]
        for name in names:
            if name not in MEASURES:
                raise UsageError(f"unknown measure {name!r}; known: {', '.join(sorted(MEASURES))}")
        paths = [a] if b is None else [a, b]
        model_names = _names_for(paths, given_names)
        dev = _device(device)
        xs, _ = _load_model_layers(a, dev, verify=not no_verify)
        ys = None if b is None else _load_model_layers(b, dev, verify=not no_verify)[0]
        results: dict[str, dict[str, Any]] = {}
        for name in names:
            matrix = pairwise(xs, ys, measure=name, progress=not as_json)
            results[name] = {
                "rows": list(xs),
                "cols": list(xs if ys is None else ys),
                "values": [[_finite(v) for v in row] for row in matrix.tolist()],
            }
        if as_json:
            _print_json({"a": str(a), "b": None if b is None else str(b), "measures": results})
            return
        for name, result in results.items():
            table = Table(title=f"{name}: {model_names[0]} (rows) vs {model_names[-1]} (columns)")
            table.add_column("")
            for col in result["cols"]:
                table.add_column(col, justify="right")
            for row_name, row in zip(result["rows"], result["values"], strict=True):
                table.add_row(row_name, *("-" if v is None else f"{v:.3f}" for v in row))
            out.print(table)

    _run(job)


def _print_measures(measures: Any) -> None:
    """One line per measure: its name, then its label, kind, range and which way is more
    alike, as the registry (:class:`subspaces.similarity.PairwiseMeasure`) states them."""
    width = max(len(name) for name in measures)
    for name in sorted(measures):
        m = measures[name]
        low, high = m.bounds
        where = "" if low is None and high is None else f" in [{_bound(low)}, {_bound(high)}]"
        alike = {True: ", higher is more alike", False: ", lower is more alike", None: ""}
        out.print(
            f"{name:<{width}}  {escape(m.label)}: {m.kind}{where}{alike[m.higher_is_better]}",
            highlight=False,
            soft_wrap=True,
        )


def _bound(value: float | None) -> str:
    return "?" if value is None else f"{value:.4g}"


def _finite(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None


# ----------------------------------------------------------------------------- measure


@app.command()
def measure(
    a: Annotated[Path, typer.Argument(help="Activation store folder or array file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    intrinsic_dimension: Annotated[bool, typer.Option(help="Estimate intrinsic dimension.")] = True,
    given_name: Annotated[
        str | None, typer.Option("--name", help="The model's name (default: from the path).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ...")] = None,
    no_verify: NoVerify = False,
) -> None:
    """Per-layer geometry: spectrum, effective rank, intrinsic dimension, neural collapse.

    Neural collapse is measured when the store (or file) has labels.
    """

    def job() -> None:
        from subspaces.report import compute_results

        (model_name,) = _names_for([a], None if given_name is None else [given_name])
        layers, labels = _load_model_layers(a, _device(device), verify=not no_verify)
        results = compute_results(
            {model_name: layers},
            labels=labels,
            measures=(),
            intrinsic_dimension=intrinsic_dimension,
            progress=not as_json,
        )
        if as_json:
            _print_json(results)
            return
        _print_geometry(results)

    _run(job)


def _print_geometry(results: dict[str, Any]) -> None:
    for model, layers in results.get("geometry", {}).items():
        table = Table(title=f"geometry of {model}")
        keys: list[str] = []
        for values in layers.values():
            for key, value in values.items():
                if isinstance(value, (int, float)) and key not in keys:
                    keys.append(key)
        table.add_column("layer")
        for key in keys:
            table.add_column(key.replace("_", " "), justify="right")
        for layer, values in layers.items():
            table.add_row(layer, *(_fmt(values.get(key)) for key in keys))
        out.print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- report


@app.command()
def report(
    inputs: Annotated[
        list[Path] | None, typer.Argument(help="Activation stores or array files, one per model.")
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for report.html and results.json.")
    ] = Path("subspaces-report"),
    results_file: Annotated[
        Path | None, typer.Option("--results", help="Rebuild the report from a saved results.json.")
    ] = None,
    measure: Annotated[
        list[str] | None, typer.Option("--measure", "-m", help="Repeat for several.")
    ] = None,
    title: Annotated[str | None, typer.Option(help="The report's title.")] = None,
    given_names: Annotated[
        list[str] | None,
        typer.Option(
            "--name", help="The models' names, one per input, in order (default: from the paths)."
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ...")] = None,
    no_verify: NoVerify = False,
) -> None:
    """One self-contained HTML report (and results.json) from stores or saved results.

    Every model keeps its own name: the shortest end of its path that tells it apart
    (``A/store`` and ``B/store``), or --name. Every model must hold the same inputs in the
    same order (a different number of samples is refused). Each model's neural collapse
    uses its own labels (none: not measured); labels that differ between models are
    reported as a warning, here and in the report.
    """

    def job() -> None:
        from subspaces.report import compute_results, load_results, write_report

        if results_file is not None:
            if inputs or given_names:
                raise UsageError(
                    "--results rebuilds a report from saved numbers: give it alone, or give "
                    "the stores (and --name) without --results"
                )
            results = load_results(results_file)
        else:
            if not inputs:
                raise UsageError("give activation stores (or array files), or --results FILE")
            names = _names_for(list(inputs), given_names)
            for i, path in enumerate(inputs):
                if names.index(names[i]) != i:
                    raise UsageError(
                        f"{path} is given twice (as input {names.index(names[i]) + 1} and "
                        f"{i + 1}); give each model once (every model is also compared with "
                        "itself), or name the two with --name"
                    )
            dev = _device(device)
            models, labels = {}, {}
            for model_name, path in zip(names, inputs, strict=True):
                models[model_name], labels[model_name] = _load_model_layers(
                    path, dev, verify=not no_verify
                )
            options: dict[str, Any] = {} if not measure else {"measures": tuple(measure)}
            results = compute_results(models, labels=labels, **options)
        for warning in results["meta"].get("warnings", []):
            err.print(
                f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, soft_wrap=True
            )
        path = write_report(results, out_dir, title=title)
        err.print(f"wrote {path} and {out_dir / 'results.json'}")

    _run(job)


# ----------------------------------------------------------------------------- demo


@app.command()
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the stores and the report.")
    ] = Path("subspaces-demo"),
    epochs: Annotated[int, typer.Option(help="Training epochs per network.")] = 60,
) -> None:
    """Train two MLPs on digits from different seeds, extract every layer, write the report."""

    def job() -> None:
        from subspaces.demo import accuracy, digits_split, hidden_layer_names, train_mlp
        from subspaces.io import extract
        from subspaces.report import compute_results, write_report

        data = digits_split()
        models, labels = {}, {}
        for seed in (0, 1):
            err.print(f"training network {seed} on digits ({len(data.y_train)} images)...")
            net = train_mlp(data, seed=seed, epochs=epochs)
            err.print(f"  held-out accuracy {accuracy(net, data.x_test, data.y_test):.3f}")
            names = hidden_layer_names(net)
            store = extract(
                net,
                data.x_test,
                modules=list(names),
                out=out_dir / f"seed{seed}",
                labels=data.y_test,
                metadata={"model": f"digits MLP, seed {seed}", "data": "digits held out"},
                progress=False,
            )
            models[f"seed{seed}"] = {names[m]: store.load(m) for m in store.layers}
            labels[f"seed{seed}"] = store.labels
        results = compute_results(models, labels=labels)
        path = write_report(results, out_dir, title="Two digits MLPs trained from different seeds")
        err.print(f"wrote {path} (open it in a browser) and {out_dir / 'results.json'}")

    _run(job)


if __name__ == "__main__":  # pragma: no cover
    app()
