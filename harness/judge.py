"""MT-bench's LLM judge, as FastChat's ``llm_judge`` builds it: which judge prompt a question takes, the chat
messages sent to the judge (byte for byte FastChat's), and how a judgment is read back.

The eight prompts (``single-v1``, ``single-math-v1``, ``pair-v2``, ``pair-math-v1`` and their ``-multi-turn``
forms) are read from the mirror's ``mt_bench/judge_prompts.jsonl``, never rewritten here. Math, reasoning and
coding questions are judged against GPT-4's reference answer (the ``*-math-*`` prompts); turn 2 is judged
with the multi-turn prompts, which show the whole conversation. A single-answer rating is read as FastChat
does (``[[x]]``, else ``[x]``; −1 when neither is there), a pairwise verdict from ``[[A]]`` / ``[[B]]`` /
``[[C]]`` (``error`` when none is), and a pair judged in both orders that disagrees with itself is a tie.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.data import data_dir
from harness.errors import HarnessError

NEED_REFERENCE = ("math", "reasoning", "coding", "arena-hard-200")  # FastChat's NEED_REF_CATS
NO_RATING = -1  # FastChat's mark of a single-answer judgment without a readable rating
_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")


@dataclass(frozen=True)
class JudgePrompt:
    """One of FastChat's judge prompts, as its ``judge_prompts.jsonl`` gives it."""

    name: str
    type: str  # "single" or "pairwise"
    system_prompt: str
    prompt_template: str
    output_format: str


def prompts_path() -> Path:
    """The mirror's ``mt_bench/judge_prompts.jsonl``."""
    folder = data_dir()
    if folder is None:
        raise HarnessError("the benchmark mirror is not found, so neither are MT-bench's judge prompts",
                           "set HARNESS_DATA_DIR to the mirror (it holds mt_bench/judge_prompts.jsonl)")
    return folder / "mt_bench" / "judge_prompts.jsonl"


def load_prompts(path: Path | None = None) -> dict[str, JudgePrompt]:
    """The judge prompts by name, from ``path`` (default: the mirror's, :func:`prompts_path`)."""
    path = path or prompts_path()
    try:
        rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read the judge prompts {path} ({exc})",
                           "restore the file from its source (see the mirror's SOURCES.md)") from None
    return {row["name"]: JudgePrompt(row["name"], row["type"], row["system_prompt"], row["prompt_template"],
                                     row["output_format"]) for row in rows}


def prompt_name(category: str, turn: int, pairwise: bool = False) -> str:
    """The prompt FastChat's ``gen_judgment.py`` uses for a question of ``category`` at ``turn`` (1 or 2)."""
    base = ("pair-math-v1" if pairwise else "single-math-v1") if category in NEED_REFERENCE else (
        "pair-v2" if pairwise else "single-v1")
    return base + ("-multi-turn" if turn == 2 else "")


def _references(reference: Sequence[str] | None, turn: int) -> dict[str, str]:
    if reference is None:
        return {}
    return {"ref_answer_1": reference[0], **({"ref_answer_2": reference[1]} if turn == 2 else {})}


def single_messages(prompt: JudgePrompt, question: Sequence[str], answer: Sequence[str], turn: int,
                    reference: Sequence[str] | None = None) -> list[dict[str, str]]:
    """The chat messages that judge ``answer`` (the model's turns) to ``question`` (its turns) at ``turn``."""
    if turn == 2:
        user = prompt.prompt_template.format(question_1=question[0], question_2=question[1], answer_1=answer[0],
                                             answer_2=answer[1], **_references(reference, turn))
    else:
        user = prompt.prompt_template.format(question=question[0], answer=answer[0], **_references(reference, turn))
    return [{"role": "system", "content": prompt.system_prompt}, {"role": "user", "content": user}]


def pair_messages(prompt: JudgePrompt, question: Sequence[str], answer_a: Sequence[str], answer_b: Sequence[str],
                  turn: int, reference: Sequence[str] | None = None) -> list[dict[str, str]]:
    """The chat messages that ask which of two answers is better (A first; judge both orders)."""
    if turn == 2:
        user = prompt.prompt_template.format(question_1=question[0], question_2=question[1],
                                             answer_a_1=answer_a[0], answer_b_1=answer_b[0], answer_a_2=answer_a[1],
                                             answer_b_2=answer_b[1], **_references(reference, turn))
    else:
        user = prompt.prompt_template.format(question=question[0], answer_a=answer_a[0], answer_b=answer_b[0],
                                             **_references(reference, turn))
    return [{"role": "system", "content": prompt.system_prompt}, {"role": "user", "content": user}]


def rating(judgment: str) -> float:
    """The rating in a single-answer judgment: ``[[x]]``, else ``[x]``, else :data:`NO_RATING`."""
    match = _RATING.search(judgment) or _RATING_BACKUP.search(judgment)
    return ast.literal_eval(match.group(1)) if match else NO_RATING


def verdict(judgment: str) -> str:
    """A pairwise judgment's verdict: ``A``, ``B``, ``tie`` (``[[C]]``) or ``error``."""
    for mark, outcome in (("[[A]]", "A"), ("[[B]]", "B"), ("[[C]]", "tie")):
        if mark in judgment:
            return outcome
    return "error"


def battle_winner(first_order: str, swapped_order: str) -> str | None:
    """A FastChat battle's ``winner`` from the verdicts with model 1 as A, then as B, counted as FastChat's
    ``show_result.py`` counts them: a verdict that changes with the order is a tie, and a pair with an
    ``error`` in either order is no battle (``None``)."""
    if "error" in (first_order, swapped_order):
        return None
    first = {"A": "model_a", "B": "model_b"}.get(first_order, first_order)
    second = {"A": "model_b", "B": "model_a"}.get(swapped_order, swapped_order)
    return first if first == second else "tie"
