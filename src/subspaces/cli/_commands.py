"""``subspaces compare``, ``measure``, ``report`` and ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from subspaces.cli._app import (
    Device,
    Names,
    NoVerify,
    UsageError,
    _check_measure_names,
    _check_rows,
    _compute,
    _device,
    _load_model,
    _names_for,
    _print_json,
    _run,
    _say,
    app,
    err,
    out,
)
from subspaces.cli._tables import _missing_cells, _print_summary, _print_table, _table, _width

if TYPE_CHECKING:
    pass


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
        list[str] | None,
        typer.Option(
            "--measure",
            "-m",
            help="A measure (default: linear_cka); repeat for several; see --list.",
        ),
    ] = None,
    list_measures: Annotated[
        bool, typer.Option("--list", help="List the measures and exit.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the matrices and why values are undefined as JSON."),
    ] = False,
    given_names: Names = None,
    device: Device = None,
    no_verify: NoVerify = False,
) -> None:
    """Layer × layer matrices of similarity measures between two models (or one with itself).

    Models are named by the shortest end of their paths that tells them apart
    (A/store and B/store), or by --name. A value the data leave undefined (a constant
    layer...) is shown as "-" (null in --json), and a summary after the tables says why.
    Exit code 0 when any value was computed.
    """

    def job() -> None:
        from subspaces.similarity import MEASURES

        if list_measures:
            _print_measures(MEASURES)
            return
        names = _check_measure_names(measure or ["linear_cka"], MEASURES)
        paths = [a] if b is None else [a, b]
        model_names = _names_for(paths, given_names)
        if len(model_names) == 2 and model_names[0] == model_names[1]:  # one store, twice
            paths, model_names = paths[:1], model_names[:1]
        dev = _device(device)
        models = {
            name: _load_model(path, dev, verify=not no_verify)
            for name, path in zip(model_names, paths, strict=True)
        }
        _check_rows(models)
        results = _compute(
            models,
            labels=False,
            measures=names,
            geometry=False,
            intrinsic_dimension=False,
            self_comparisons=len(models) == 1,  # A × B only; one store: A × A
            bootstrap=0,
            permutations=0,
            progress=not as_json,
        )
        x_name, y_name = model_names[0], model_names[-1]
        matrices: dict[str, Any] = {}
        missing: list[tuple[str, str]] = []
        for name in names:
            index, record = next(
                (i, r)
                for i, r in enumerate(results["similarity"][name])
                if (r["x_model"], r["y_model"]) == (x_name, y_name)
            )
            cells = _missing_cells(results, ["similarity", name, index, "matrix"])
            matrices[name] = {
                "rows": record["x_layers"],
                "cols": record["y_layers"],
                "values": record["matrix"],
                "missing": [
                    {
                        "row": record["x_layers"][int(i)],
                        "col": record["y_layers"][int(j)],
                        "reason": reason,
                    }
                    for (i, j), reason in cells
                ],
            }
            missing += [(name, reason) for _, reason in cells]
        computed = any(v is not None for m in matrices.values() for row in m["values"] for v in row)
        if as_json:
            _print_json(
                {
                    "a": str(a),
                    "b": None if b is None else str(b),
                    "models": [x_name, y_name],
                    "sources": {m: models[m].source for m in dict.fromkeys([x_name, y_name])},
                    "measures": matrices,
                    "caveats": {
                        name: results["measure_info"][name].get("caveats", []) for name in names
                    },
                }
            )
        else:
            width = _width()
            for name, matrix in matrices.items():
                cells_text = [
                    ["-" if v is None else f"{v:.3f}" for v in row] for row in matrix["values"]
                ]
                _print_table(
                    f"{name}: {x_name} (rows) vs {y_name} (columns)",
                    _table(matrix["rows"], matrix["cols"], cells_text, width=width),
                )
            _print_summary(missing, results, names)
        if not computed:
            raise UsageError("no value could be computed for these stores: every one is undefined")

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
        out.print(f"{name:<{width}}  {m.label}: {m.kind}{where}{alike[m.higher_is_better]}")


def _bound(value: float | None) -> str:
    return "?" if value is None else f"{value:.4g}"


# ----------------------------------------------------------------------------- measure


@app.command()
def measure(
    a: Annotated[Path, typer.Argument(help="Activation store folder or array file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    intrinsic_dimension: Annotated[bool, typer.Option(help="Estimate intrinsic dimension.")] = True,
    given_name: Annotated[
        str | None, typer.Option("--name", help="The model's name (default: from the path).")
    ] = None,
    device: Device = None,
    no_verify: NoVerify = False,
) -> None:
    """Per-layer geometry: spectrum, effective rank, intrinsic dimension, neural collapse.

    Neural collapse is measured when the store (or file) has labels. A value the data
    leave undefined is shown as "-", and a summary after the tables says why.
    """

    def job() -> None:
        (model_name,) = _names_for([a], None if given_name is None else [given_name])
        models = {model_name: _load_model(a, _device(device), verify=not no_verify)}
        _check_rows(models)
        results = _compute(
            models,
            labels=True,
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
    width = _width()
    missing: list[tuple[str, str]] = []
    for model, layers in results.get("geometry", {}).items():
        keys: list[str] = []
        for values in layers.values():
            for key, value in values.items():
                if isinstance(value, (int, float)) and key not in keys:
                    keys.append(key)
        cells = [[_fmt(values.get(key)) for key in keys] for values in layers.values()]
        labels = [key.replace("_", " ") for key in keys]
        _print_table(
            f"geometry of {model}",
            _table(list(layers), labels, cells, width=width, shorten_columns=False),
        )
        missing += [
            (where[0], reason) for where, reason in _missing_cells(results, ["geometry", model])
        ]
    _print_summary(missing, results, [])


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
        list[str] | None,
        typer.Option(
            "--measure",
            "-m",
            help="A measure (default: the default measures that mean something for these "
            "data); repeat for several; subspaces compare --list names them.",
        ),
    ] = None,
    title: Annotated[str | None, typer.Option(help="The report's title.")] = None,
    given_names: Names = None,
    device: Device = None,
    no_verify: NoVerify = False,
) -> None:
    """One self-contained HTML report (and results.json) from stores or saved results.

    Every model keeps its own name: the shortest end of its path that tells it apart
    (A/store and B/store), or --name. Every model must hold the same inputs in the
    same order (a different number of samples is refused). Each model's neural collapse
    uses its own labels (none: not measured); labels that differ between models are
    reported as a warning, here and in the report.
    """

    def job() -> None:
        from subspaces.report import load_results, write_report

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
            options: dict[str, Any] = {}
            if measure:
                from subspaces.similarity import MEASURES

                options["measures"] = tuple(_check_measure_names(measure, MEASURES))
            names = _names_for(list(inputs), given_names)
            for i, path in enumerate(inputs):
                if names.index(names[i]) != i:
                    raise UsageError(
                        f"'{path}' is given twice (as input {names.index(names[i]) + 1} and "
                        f"{i + 1}); give each model once (every model is also compared with "
                        "itself), or name the two with --name"
                    )
            dev = _device(device)
            models = {
                name: _load_model(path, dev, verify=not no_verify)
                for name, path in zip(names, inputs, strict=True)
            }
            _check_rows(models)
            results = _compute(models, labels=True, **options)
        for warning in results["meta"].get("warnings", []):
            _say(err, "warning", "yellow", warning)
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
                resume=False,  # the demo trains anew each run: its stores are rewritten
            )
            models[f"seed{seed}"] = {names[m]: store.load(m) for m in store.layers}
            labels[f"seed{seed}"] = store.labels
        results = compute_results(models, labels=labels)
        path = write_report(results, out_dir, title="Two digits MLPs trained from different seeds")
        err.print(f"wrote {path} (open it in a browser) and {out_dir / 'results.json'}")

    _run(job)


if __name__ == "__main__":  # pragma: no cover
    app()
