"""A user's own lm-eval task: given by path or through --include-path, named after itself, and no work lost
when its scoring raises after every request was answered."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from harness.core import load_result
from harness.paths import PACKAGE_DIR, TASKS_DIR
from harness.provenance import sha256_file
from tests.conftest import needs, run_cli

pytestmark = [needs("embedded_model"), pytest.mark.slow]

TASK_YAML = """\
task: my_qa
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: multiple_choice
test_split: test
doc_to_text: "Question: {{{{q}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
process_results: !function hooks.score
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
HOOKS = """\
import os


def score(doc, results):
    if os.environ.get("MY_QA_BREAK"):
        raise ZeroDivisionError("my scorer divided by zero")
    lls = [ll for ll, _ in results]
    return {"acc": float(lls.index(max(lls)) == doc["label"])}
"""
DOCS = [
    {"q": "What colour is the sky on a clear day?", "choices": ["blue", "green", "red"], "label": 0},
    {"q": "How many legs does a dog have?", "choices": ["two", "four", "six"], "label": 1},
    {"q": "What is two plus two?", "choices": ["three", "four", "five"], "label": 1},
    {"q": "Which animal says moo?", "choices": ["a cow", "a cat", "a duck"], "label": 0},
]
REQUESTS = sum(len(doc["choices"]) for doc in DOCS)


@pytest.fixture
def my_task(tmp_path: Path) -> Path:
    folder = tmp_path / "my_tasks"
    folder.mkdir()
    data = folder / "qa.jsonl"
    data.write_text("".join(json.dumps(doc) + "\n" for doc in DOCS), encoding="utf-8")
    (folder / "hooks.py").write_text(HOOKS, encoding="utf-8")
    path = folder / "my_task.yaml"
    path.write_text(TASK_YAML.format(data=data), encoding="utf-8")
    return path


def _run(*tasks: str, output: Path, env: dict[str, str] | None = None):
    return run_cli("run", "--model", "smollm2-135m-instruct", "--device", "cpu", "--output", str(output),
                   *tasks, env=env)


def _only_result(output: Path):
    (path,) = output.glob("*.json")
    return load_result(path)


def test_a_task_by_path_and_by_include_path_is_named_after_itself(my_task: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    by_path = _run("--tasks", str(my_task), output=output)
    assert by_path.returncode == 0, by_path.stderr[-3000:]
    first = _only_result(output)
    assert first.path.name.startswith("smollm2-135m-instruct__my_qa__") and first.task == "my_qa"
    assert first.n == len(DOCS) and first.provenance["request_cache"]["computed"] == REQUESTS
    assert first.provenance["task_yaml"] == {str(my_task): sha256_file(my_task)}
    assert first.provenance["data"]["sources"] == ["local files"]
    first.path.unlink()

    by_name = _run("--include-path", str(my_task.parent), "--tasks", "my_qa", output=output)
    assert by_name.returncode == 0, by_name.stderr[-3000:]
    second = _only_result(output)
    assert second.task == "my_qa" and second.metrics == first.metrics
    assert second.provenance["request_cache"] == {**first.provenance["request_cache"], "from_cache": REQUESTS,
                                                  "computed": 0}
    assert second.spec["include_paths"] == [str(my_task.parent)]


def test_scoring_that_raises_after_the_model_work_costs_the_rerun_no_forward(my_task: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    broken = _run("--tasks", str(my_task), output=output, env={"MY_QA_BREAK": "1"})
    assert broken.returncode == 2, broken.stderr[-3000:]
    assert "Traceback" not in broken.stderr
    last = broken.stderr.strip().splitlines()[-1]
    assert last.startswith("error: task my_qa failed: ZeroDivisionError: my scorer divided by zero — "), last
    assert "a rerun does not recompute them" in last
    assert not list(output.glob("*.json")) and not list(output.glob("*.jsonl"))

    fixed = _run("--tasks", str(my_task), output=output)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    result = _only_result(output)
    assert result.provenance["request_cache"]["from_cache"] == REQUESTS
    assert result.provenance["request_cache"]["computed"] == 0  # no request reached the model
    assert result.metrics["acc"].value is not None


# Task-specific by nature: the mirror's readers (one per mirrored dataset) and the `!function` hooks of our tasks.
TASK_SPECIFIC_MODULES = {"data.py", "task_hooks.py"}


def _code_strings_and_names(path: Path) -> list[tuple[int, str]]:
    """Every identifier and string constant of a module's code (docstrings and comments left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.Name | ast.Attribute | ast.arg | ast.FunctionDef | ast.ClassDef):
            found.append((node.lineno, getattr(node, "id", None) or getattr(node, "attr", None)
                          or getattr(node, "arg", None) or node.name))
    return found


def test_no_task_name_in_generic_code() -> None:
    """Task knowledge lives in task YAMLs: no identifier or string of the generic modules names a benchmark."""
    names = re.compile(r"(?i)\b(mmlu|arc_challenge|arc_easy|arc-challenge|hellaswag|winogrande|truthfulqa|gsm8k"
                       r"|humaneval|(?<!--cap-)drop)")  # bubblewrap's --cap-drop is no benchmark
    modules = [path for path in PACKAGE_DIR.rglob("*.py")
               if path.name not in TASK_SPECIFIC_MODULES and not path.is_relative_to(TASKS_DIR)]
    hits = [f"{path.relative_to(PACKAGE_DIR.parent)}:{line}: {text!r}" for path in modules
            for line, text in _code_strings_and_names(path) if names.search(text)]
    assert not hits, "\n".join(hits)


def test_a_prompt_longer_than_the_context_is_reported_as_a_deviation(tmp_path: Path) -> None:
    """One doc of two is ~9,000 tokens, over the embedded model's 8,192: its result says so, per task."""
    data = tmp_path / "docs.jsonl"
    docs = [{"q": "What is two plus two?", "choices": ["four", "five"], "label": 0},
            {"q": "word " * 9000 + "Is this long?", "choices": ["yes", "no"], "label": 0}]
    data.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    task = tmp_path / "long_qa.yaml"
    task.write_text(TASK_YAML.format(data=data).replace("my_qa", "long_qa")
                    .replace("process_results: !function hooks.score\n", ""))
    done = run_cli("run", "--model", "smollm2-135m-instruct", "--tasks", str(task), "--output", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    (result,) = [load_result(path) for path in (tmp_path / "out").glob("*.json")]
    assert result.n == 2
    assert ("long_qa: 1 of 2 docs had a prompt longer than the model's context of 8192 tokens, cut from the left as "
            "lm-eval does") in result.provenance["deviations"]
