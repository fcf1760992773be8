"""``subspaces extract hf`` and ``subspaces extract torch``: a model's layers into a store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from subspaces.cli._app import Device, UsageError, _device, _near, _run, err, extract_app

if TYPE_CHECKING:
    import torch

# ----------------------------------------------------------------------------- extract


# the option of both extract commands
Restart = Annotated[
    bool,
    typer.Option(
        "--restart",
        help="Delete the store's files at --out (only a store's: manifest and shards) and "
        "extract from scratch, instead of resuming it.",
    ),
]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


@extract_app.command("hf")
def extract_hf_command(
    model: Annotated[
        Path,
        typer.Argument(
            metavar="MODEL_DIR", help="A local Hugging Face model folder (with config.json)."
        ),
    ],
    texts: Annotated[
        Path, typer.Argument(metavar="TEXTS", help="A UTF-8 text file, one input per line.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="The activation store to write.")],
    pooling: Annotated[str, typer.Option(help="mean, first, last or all (tokens).")] = "mean",
    batch_size: Annotated[int, typer.Option(help="Inputs per forward pass.")] = 32,
    max_length: Annotated[int, typer.Option(help="Tokens per input (truncated).")] = 128,
    labels: Annotated[
        Path | None,
        typer.Option(help="A .npy file of integer class labels, one per line of TEXTS."),
    ] = None,
    device: Device = None,
    restart: Restart = False,
) -> None:
    """Hidden states of every layer of a transformers model over the lines of a text file.

    Rerunning the same command after an interruption (Ctrl-C included) resumes from the
    last complete shard; a store written from other texts, weights or options is refused
    (--restart extracts again).

    Example: subspaces extract hf models/all-MiniLM-L6-v2 plays.txt --out minilm/
    """

    def job() -> None:
        _check_model_folder(model)
        _check_out(out_dir)
        lines = _read_lines(texts)
        from subspaces.io import extract_hf, read_array

        label_tensor = None if labels is None else next(iter(read_array(labels).values()))
        _extract_into(
            out_dir,
            lambda: extract_hf(
                str(model),
                lines,
                out=out_dir,
                pooling=pooling,
                batch_size=batch_size,
                max_length=max_length,
                device=_device(device),
                labels=label_tensor,
                metadata={"model": str(model), "data": str(texts)},
                resume=not restart,
            ),
        )

    _run(_interruptible(out_dir, job, restart=restart))


def _interruptible(
    out_dir: Path, job: Callable[[], None], *, restart: bool = False
) -> Callable[[], None]:
    """``job``, where Ctrl-C prints one line on stderr (how much of the store at ``out_dir``
    is written, and which command resumes it) and exits 130. After ``--restart`` the
    command that resumes is the same one without ``--restart`` (with it, it starts over)."""

    def run() -> None:
        try:
            job()
        except KeyboardInterrupt as stop:
            n_stored = getattr(stop, "n_stored", None)  # an ExtractionInterrupted
            again = "the same command again" + (" without --restart" if restart else "")
            if n_stored is None:
                err.print(
                    f"interrupted before this run wrote anything to {out_dir} (it is as it "
                    "was); run the same command again"
                )
            else:
                total = getattr(stop, "n_total", None)
                of = "" if total is None else f" of {total}"
                over = "" if restart else " (or add --restart to start over)"
                err.print(
                    f"interrupted: the store at {out_dir} is partial ({n_stored}{of} samples "
                    f"written); run {again} to resume it{over}"
                )
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return run


def _extract_into(out_dir: Path, extraction: Callable[[], Any]) -> None:
    """Run an extraction into ``out_dir`` and say what it did on stderr: wrote or resumed
    (extract itself says "resuming from N of M" and "nothing to extract" as it starts); a
    store written from other inputs is refused, advising --restart."""
    from subspaces.io import StoreMismatchError

    try:
        store = extraction()
    except StoreMismatchError as error:
        raise error.with_hint(
            "run the same command with --restart to extract again from scratch (this "
            "deletes the store's files), or give another --out"
        ) from None
    done, layers = store.resumed_from or 0, len(store.layers)
    if done == store.n_samples:
        return  # extract said: nothing to extract
    if done:
        err.print(
            f"wrote {store.n_samples - done} more samples × {layers} layers to {out_dir} "
            f"(resumed from {done}; {store.n_samples} in all)"
        )
    else:
        err.print(f"wrote {store.n_samples} samples × {layers} layers to {out_dir}")


def _check_model_folder(model: Path) -> None:
    """A local model folder must exist and hold a config.json; a name that is not a local
    path (``org/name``, no folder of that name here) is left to transformers (a hub name)."""
    text = str(model)
    looks_local = (
        model.is_absolute()
        or text.startswith((".", "~"))
        or text.count("/") != 1
        or model.parent.is_dir()  # models/minilm: a folder of this machine
    )
    if not model.exists():
        if looks_local:
            raise UsageError(
                f"model folder '{model}' does not exist{_near(model)}; give a local Hugging "
                "Face model folder (the one holding config.json)"
            )
        return  # a hub name: transformers loads it (or says why not)
    if not model.is_dir():
        raise UsageError(
            f"'{model}' is a file; give the Hugging Face model folder that holds config.json"
        )
    if not (model / "config.json").is_file():
        raise UsageError(
            f"'{model}' is not a Hugging Face model folder: it has no config.json (give the "
            "folder that holds config.json and the weights)"
        )


def _check_out(out_dir: Path) -> None:
    """``--out`` must be a folder or a new path (checked before a model is loaded)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(
            f"--out '{out_dir}' is a file; give a folder for the activation store (a new or "
            "empty one, or a store to resume)"
        )


def _read_lines(path: Path) -> list[str]:
    """The non-empty lines of a UTF-8 text file, stripped."""
    if not path.exists():
        raise UsageError(
            f"text file '{path}' does not exist{_near(path)}; give a file with one input per line"
        )
    if not path.is_file():
        raise UsageError(f"'{path}' is a folder; give a text file with one input per line")
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

    import torch

    file, _, function = spec.rpartition(":")
    if not file or not function:
        raise UsageError(f"the model must be given as FILE.py:FUNCTION, got {spec!r}")
    path = Path(file)
    if not path.is_file():
        raise FileNotFoundError(f"model file '{path}' does not exist")
    module_spec = importlib.util.spec_from_file_location(f"_subspaces_model_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise UsageError(f"cannot import '{path}' as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    factory = getattr(module, function, None)
    if not callable(factory):
        raise UsageError(f"'{path}' has no function {function!r}")
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
        list[str],
        typer.Option(
            "--module",
            "-m",
            help="A submodule's name (as in named_modules: 'encoder.layer.3') or a glob "
            "('blocks.*'); repeat for several.",
        ),
    ],
    weights: Annotated[
        Path | None, typer.Option(help="A state dict (.safetensors, or .pt of tensors).")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="A .npy file of integer class labels, one per input.")
    ] = None,
    pooling: Annotated[
        str | None,
        typer.Option(
            help="For (batch, tokens, features) outputs: mean, first, last or all (tokens "
            "kept); default: such outputs are flattened."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Inputs per forward pass.")] = 64,
    device: Device = None,
    restart: Restart = False,
) -> None:
    """Outputs of chosen modules of a torch model over an array of inputs.

    The model comes from a Python file you name (it is run), its weights from a state
    dict read safely (no unpickling). Rerunning after an interruption (Ctrl-C included)
    resumes; a store written from other inputs, weights or options is refused (--restart
    extracts again).

    Example: subspaces extract torch net.py:build inputs.npy -m 'blocks.*' --out acts/
    """

    def job() -> None:
        from subspaces.io import extract, read_array

        _check_out(out_dir)
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
        _extract_into(
            out_dir,
            lambda: extract(
                net,
                data,
                modules=module,
                out=out_dir,
                batch_size=batch_size,
                pooling=pooling,
                device=dev,
                labels=label_tensor,
                metadata={"model": model, "data": str(inputs)},
                resume=not restart,
            ),
        )

    _run(_interruptible(out_dir, job, restart=restart))


# ----------------------------------------------------------------------------- compare
