"""Our tasks render exactly lm-eval's requests: same docs, same seed, string for string.

lm-eval's built-in task configs are loaded from lm-eval's own YAML; only where the docs come from is
replaced (they would be downloaded from the hub), so both tasks see the same documents.
"""

from __future__ import annotations

from pathlib import Path

import lm_eval
import pytest
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml

from harness.paths import TASKS_DIR
from harness.task_hooks import load_docs
from tests.conftest import needs

pytestmark = needs("mirror")

BUILTIN = Path(lm_eval.__file__).parent / "tasks"
LIMIT = 25
SEED = 1234

# task -> (our YAML, lm-eval's YAML, n-shot to compare at, few-shot pool when the mirror lacks lm-eval's)
CASES = {
    "arc_easy": ("arc_easy.yaml", "arc/arc_easy.yaml", 0, None),
    "arc_challenge": ("arc_challenge.yaml", "arc/arc_challenge.yaml", 25, None),
    "hellaswag": ("hellaswag.yaml", "hellaswag/hellaswag.yaml", 0, "validation"),
    "truthfulqa_mc2": ("truthfulqa_mc2.yaml", "truthfulqa/truthfulqa_mc2.yaml", 0, None),
    "winogrande": ("winogrande.yaml", "winogrande/default.yaml", 0, "train"),
    "gsm8k": ("gsm8k.yaml", "gsm8k/gsm8k.yaml", 5, None),
}
MMLU_SUBJECTS = sorted(p.stem.removeprefix("mmlu_") for p in (TASKS_DIR / "mmlu").glob("mmlu_*.yaml"))


def _task(config: dict, num_fewshot: int) -> ConfigurableTask:
    task = ConfigurableTask(config=config)
    task.set_config(key="num_fewshot", value=num_fewshot)
    task.set_fewshot_seed(seed=SEED)
    return task


def _requests(task: ConfigurableTask, limit: int = LIMIT) -> list[tuple]:
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    return [(inst.doc_id, inst.idx, inst.request_type, inst.arguments) for inst in task.instances]


def _pair(ours: str, builtin: str, num_fewshot: int, fewshot_pool: str | None = None) -> tuple[list, list]:
    our_config = load_yaml(TASKS_DIR / ours)
    builtin_config = load_yaml(BUILTIN / builtin)
    # Same docs for lm-eval's task: ours, in the hub schema, instead of a download.
    builtin_config["custom_dataset"] = our_config["custom_dataset"]
    builtin_config["dataset_kwargs"] = our_config["dataset_kwargs"]
    if fewshot_pool is not None:
        builtin_config["training_split"] = None if fewshot_pool == "validation" else fewshot_pool
    return _requests(_task(our_config, num_fewshot)), _requests(_task(builtin_config, num_fewshot))


@pytest.mark.parametrize("name", sorted(CASES))
def test_requests_equal_lm_eval(name: str) -> None:
    ours, builtin, shots, pool = CASES[name]
    # At 0-shot the few-shot pool is never drawn from; lm-eval's task only needs it to exist.
    mine, theirs = _pair(ours, builtin, shots, fewshot_pool=pool)
    assert len(mine) >= LIMIT
    assert mine == theirs


@pytest.mark.parametrize("name", ["hellaswag", "winogrande"])
def test_fewshot_format_equals_lm_eval_on_the_substitute_pool(name: str) -> None:
    """Where the mirror lacks lm-eval's few-shot split, our few-shot prompts are lm-eval's format drawn
    from the documented substitute pool (validation for HellaSwag, train_xs for WinoGrande)."""
    ours, builtin, _, pool = CASES[name]
    shots = {"hellaswag": 10, "winogrande": 5}[name]
    mine, theirs = _pair(ours, builtin, shots, fewshot_pool=pool)
    assert mine == theirs
    assert all(args[0].count("\n\n") >= shots for *_, args in mine if isinstance(args[0], str))


def test_mmlu_requests_equal_lm_eval_for_all_57_subjects() -> None:
    assert len(MMLU_SUBJECTS) == 57
    for subject in MMLU_SUBJECTS:
        mine, theirs = _pair(f"mmlu/mmlu_{subject}.yaml", f"mmlu/default/mmlu_{subject}.yaml", 5)
        assert len(mine) >= 4 * 3, subject
        assert mine == theirs, subject


def test_arc_challenge_25_shot_context_holds_25_examples() -> None:
    mine, _ = _pair("arc_challenge.yaml", "arc/arc_challenge.yaml", 25)
    context = mine[0][3][0]
    assert context.count("Question:") == 26 and context.endswith("Answer:")


def test_docs_keep_the_hub_schema() -> None:
    arc = load_docs("ai2_arc", "ARC-Easy")
    assert set(arc) == {"train", "validation", "test"}
    assert arc["test"].column_names == ["id", "question", "choices", "answerKey"]
    mmlu = load_docs("mmlu", "anatomy")
    assert mmlu["test"].column_names == ["question", "subject", "choices", "answer"]
    tqa = load_docs("truthful_qa")["validation"]
    assert set(tqa[0]["mc2_targets"]) == {"choices", "labels"}
