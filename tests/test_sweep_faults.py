"""Faults in a sweep: bad input stops it with one line (exit 2); a failing cell records why, the others go on.

Each test asserts the message the user sees and that nothing complete-looking was written for a cell
that did not finish.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from harness import cells
from harness.errors import HarnessError
from harness.executors import _LoadedModel, run_cell
from harness.paths import TASKS_DIR
from harness.registry import resolve_model
from harness.sweep import load_sweep
from tests.conftest import MIRROR, needs, random_model, run_cli, write_sweep


def _one_line_error(done: subprocess.CompletedProcess, message: str, output: Path) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert lines[-1].startswith("error: ") and message in lines[-1] and " — " in lines[-1], lines[-1]
    assert not output.exists() or not list(output.glob("*.json"))


def _complete_results(output: Path) -> list[dict]:
    return [r for r in (json.loads(p.read_text()) for p in output.glob("*.json")) if r.get("status") == "complete"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"modles": ["smollm2-135m-instruct"], "tasks": ["arc_easy"]}, "unknown key(s) modles"),
        ({"models": [{"model": "smollm2-135m-instruct", "dtpye": "float32"}], "tasks": ["arc_easy"]},
         "models entry 1 (smollm2-135m-instruct) has unknown key(s) dtpye"),
        ({"models": ["smollm2-135m-instruct"], "tasks": ["arc_easy"], "limit": 0}, "limit is 0"),
        ({"models": ["smollm2-135m-instruct"]}, "no `tasks:` given"),
        ({"models": ["smollm2-135m-instruct"], "tasks": ["no_such_task"]}, "unknown task 'no_such_task'"),
        ({"models": ["no-such-model"], "tasks": ["arc_easy"]}, "unknown model 'no-such-model'"),
        ({"models": [{"model": "smollm2-135m-instruct", "backend": "tgi"}], "tasks": ["arc_easy"]},
         "unknown backend 'tgi'"),
        ({"models": ["smollm2-135m-instruct"], "tasks": ["arc_easy"], "seed": "forty-two"},
         "seed 'forty-two' is not lm-eval's seed format"),
        ({"models": ["smollm2-135m-instruct"], "tasks": ["arc_easy"], "gen_kwargs": {"max_tokens": 5}},
         "gen_kwargs: --backend harness reads no generation setting max_tokens"),
    ],
)
@needs("embedded_model")
def test_bad_sweep_file(tmp_path: Path, config: dict, message: str) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"output": str(tmp_path / "out"), **config}))
    _one_line_error(run_cli("sweep", str(path)), message, tmp_path / "out")


@needs("embedded_model")
def test_seed_and_gen_kwargs_reach_every_cell_and_its_key(tmp_path: Path) -> None:
    """`seed:` and `gen_kwargs:` (lm-eval's --seed and --gen_kwargs) set every cell's spec and change its key; the
    same settings written another way (a list of four seeds, `key=value` text) give the same key."""
    def cells(**settings):
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump({"models": ["smollm2-135m-instruct"], "tasks": ["arc_easy", "gsm8k"],
                                        "output": str(tmp_path / "out"), **settings}))
        return load_sweep(path).cells

    plain = cells()
    seeded = cells(seed=42, gen_kwargs={"max_gen_toks": 3, "until": ["\n"]})
    assert all(c.spec.seed_kwargs == dict.fromkeys(plain[0].spec.seed_kwargs, 42) for c in seeded)
    assert all(c.spec.generation_kwargs == {"max_gen_toks": 3, "until": ["\n"]} for c in seeded)
    assert not {c.key for c in plain} & {c.key for c in seeded}
    assert [c.key for c in cells(seed=[42, 42, 42, 42], gen_kwargs='until=["\\n"],max_gen_toks=3')] == [
        c.key for c in seeded]
    assert [c.key for c in cells(seed="0,1234,1234,1234")] == [c.key for c in plain]  # lm-eval's defaults


@needs("embedded_model")
def test_task_yaml_with_an_unknown_key_stops_the_sweep(tmp_path: Path) -> None:
    task = tmp_path / "typo.yaml"
    task.write_text("task: typo\ndataset_path: x\noutput_type: multiple_choice\ndoc_to_txt: '{{q}}'\n")
    sweep = write_sweep(tmp_path, tmp_path / "out", ["smollm2-135m-instruct"], [str(task)])
    _one_line_error(run_cli("sweep", str(sweep)), "has unknown key(s) doc_to_txt", tmp_path / "out")


def _mirror_with_broken_winogrande(folder: Path) -> tuple[Path, Path]:
    folder.mkdir()
    """A mirror whose WinoGrande dev file has a truncated line 3 (the other datasets are links to the real one)."""
    for entry in MIRROR.iterdir():
        if entry.name != "winogrande":
            (folder / entry.name).symlink_to(entry)
    shutil.copytree(MIRROR / "winogrande", folder / "winogrande")
    dev = folder / "winogrande" / "dev.jsonl"
    lines = dev.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2][: len(lines[2]) // 2] + "\n"
    dev.write_text("".join(lines), encoding="utf-8")
    return folder, dev


@pytest.mark.slow
@needs("mirror", "tokenizers", "embedded_model")
def test_failing_cells_record_why_and_the_others_go_on(tmp_path: Path) -> None:
    """Truncated weights, a model folder without tokenizer, malformed data rows, a task that raises."""
    truncated = tmp_path / "truncated.gguf"
    with resolve_model("smollm2-135m-instruct").gguf_path.open("rb") as source:
        truncated.write_bytes(source.read(2_000_000))
    no_tokenizer = random_model(tmp_path / "no-tokenizer", "llama")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (no_tokenizer / name).unlink(missing_ok=True)
    mirror, broken_file = _mirror_with_broken_winogrande(tmp_path / "mirror")
    (tmp_path / "raising.py").write_text(
        "def process_docs(dataset):\n    raise ValueError('this task has no usable documents')\n")
    (tmp_path / "raising.yaml").write_text(
        f"include: {TASKS_DIR / 'arc_easy.yaml'}\ntask: arc_easy_raising\n"
        "process_docs: !function raising.process_docs\n")
    output = tmp_path / "out"
    sweep = write_sweep(tmp_path, output, ["smollm2-135m-instruct", str(truncated), str(no_tokenizer)],
                        ["arc_easy", "winogrande", str(tmp_path / "raising.yaml")])
    done = run_cli("sweep", str(sweep), env={"HARNESS_DATA_DIR": str(mirror)})
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr

    rows = {(row.model, row.task): row for row in cells.folder_status(output)}
    assert len(rows) == 9
    assert rows[("smollm2-135m-instruct", "arc_easy")].state == "done"
    failed = {cell: row.detail for cell, row in rows.items() if row.state == "failed"}
    assert len(failed) == 8, rows
    assert f"malformed row in {broken_file} line 3" in failed[("smollm2-135m-instruct", "winogrande")]
    raising = str(tmp_path / "raising.yaml")  # a task given by path is listed by its path
    for model in ("smollm2-135m-instruct", "truncated", "no-tokenizer"):  # tasks are checked before models load
        assert "ValueError: this task has no usable documents" in failed[(model, raising)]
    for task in ("arc_easy", "winogrande"):
        assert "could not load model truncated" in failed[("truncated", task)]
        assert "has no tokenizer files" in failed[("no-tokenizer", task)]
    for reason in failed.values():
        assert "\n" not in reason and " — " in reason, reason  # one line: the problem, then the fix
    assert [r["task"] for r in _complete_results(output)] == ["arc_easy"]
    assert "8 failed" in run_cli("status", str(output)).stdout
    assert done.stderr.count("failed: ") == 8


def _tiny_cell(tmp_path: Path):
    model = random_model(tmp_path / "tiny", "llama")
    return load_sweep(write_sweep(tmp_path, tmp_path / "out", [{"model": str(model), "batch_size": 8}], ["arc_easy"], 6))


@pytest.mark.slow
@needs("mirror", "tokenizers")
def test_out_of_memory_backs_off_then_fails_the_cell_clearly(tmp_path: Path, monkeypatch) -> None:
    sweep = _tiny_cell(tmp_path)
    cell = sweep.cells[0]
    lm, _ = _LoadedModel.get(cell.spec)
    decoder = lm.model.get_decoder()  # the scorer runs the decoder, then the output layer where it reads
    forward = decoder.forward
    seen: list[tuple[int, int]] = []  # (sequences, positions) of each forward pass

    def oom_above_two_rows(*args, **kwargs):
        rows, width = (args[0] if args else kwargs["input_ids"]).shape
        seen.append((rows, width))
        if rows > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return forward(*args, **kwargs)

    monkeypatch.setattr(decoder, "forward", oom_above_two_rows)
    monkeypatch.setattr(lm, "max_pack_tokens", 1)  # one answer per sequence
    monkeypatch.setattr(lm, "max_subtree_tokens", 0)  # a doc's prefix once, then its answers: a batch of 4
    outcome = run_cell(cell, sweep.output)
    assert outcome.state == "computed", outcome.reason
    # A doc's answers are batched by length (at most 8 sequences): the first batch of more than 2 is tried once,
    # retried at half its sequences, and no later pass holds more tokens (the back-off holds for the rest of the run).
    first = next(i for i, (rows, _) in enumerate(seen) if rows > 2)
    assert seen[first + 1] == (seen[first][0] // 2, seen[first][1]), seen
    cap = seen[first][0] * seen[first][1] // 2
    assert all(rows == 1 or rows * width <= cap for rows, width in seen[first + 1 :]), seen  # one sequence always runs
    reference = load_sweep(write_sweep(tmp_path, tmp_path / "reference",
                                       [{"model": str(cell.spec.model.local_path), "batch_size": 1}], ["arc_easy"], 6))
    monkeypatch.setattr(decoder, "forward", forward)
    expected = run_cell(reference.cells[0], reference.output)
    assert json.loads(Path(outcome.result).read_text())["metrics"] == json.loads(Path(expected.result).read_text())["metrics"]

    def cpu_oom(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 21474836480 bytes")

    again = load_sweep(write_sweep(tmp_path, tmp_path / "oom", [{"model": str(cell.spec.model.local_path)}],
                                   ["arc_easy"], 6))
    monkeypatch.setattr(_LoadedModel.get(again.cells[0].spec)[0].model.get_decoder(), "forward", cpu_oom)
    failed = run_cell(again.cells[0], again.output)
    assert failed.state == "failed"
    assert failed.reason.startswith("out of memory on cpu while scoring arc_easy"), failed.reason
    assert not _complete_results(again.output)
    _LoadedModel.spec = _LoadedModel.lm = None


@pytest.mark.slow
@needs("mirror", "embedded_model", "root")
@pytest.mark.parametrize(("what_fills", "size"), [("request cache", "48k"), ("result files", "8k")])
def test_full_disk_leaves_no_complete_looking_result(tmp_path: Path, what_fills: str, size: str) -> None:
    """A tiny disk: the cell's request cache cannot grow, or (cache kept on another disk) the result cannot be
    written. Either way the cell fails with one line and no complete-looking result; the cache is kept."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"could not mount a small tmpfs as root: {mounted.stderr.strip()}"
    output = disk / "out"
    limit = 60
    try:
        output.mkdir()
        if what_fills == "result files":
            (tmp_path / "cells").mkdir()
            (output / ".cells").symlink_to(tmp_path / "cells")
        sweep = write_sweep(tmp_path, output, ["smollm2-135m-instruct"], ["arc_easy"], limit=limit)
        done = run_cli("sweep", str(sweep))
        assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        reason = done.stderr.strip().splitlines()[-1]
        assert reason.startswith(f"failed: smollm2-135m-instruct × arc_easy: the disk holding {output} is full"), reason
        assert not _complete_results(output)
        assert not list(output.rglob("*.tmp")), "a temporary file was left behind"
    finally:
        subprocess.run(["umount", str(disk)], check=False)
    if what_fills == "result files":  # with space again, the rerun takes every answer from the kept cache
        output.mkdir()
        (output / ".cells").symlink_to(tmp_path / "cells")
        assert run_cli("sweep", str(sweep)).returncode == 0
        [result] = _complete_results(output)
        assert result["provenance"]["request_cache"]["from_cache"] == 4 * limit
        assert result["provenance"]["request_cache"]["computed"] == 0


def test_atomic_write_that_fails_leaves_nothing(tmp_path: Path) -> None:
    from harness import store

    def write_then_fail(handle) -> None:
        handle.write('{"status": "complete"')
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        store._atomic_write(tmp_path / "result.json", write_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_missing_tokenizer_is_named_before_loading(tmp_path: Path) -> None:
    folder = tmp_path / "weights-only"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    from harness.core import RunSpec
    from harness.runner import load_model

    with pytest.raises(HarnessError, match="has no tokenizer files"):
        load_model(RunSpec(model=resolve_model(str(folder)), tasks=("arc_easy",)))
