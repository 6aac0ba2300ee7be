"""MT-bench and the Vicuna benchmark: their questions and GPT-4 reference answers from the mirror, FastChat's
sampling temperature per category, and answer files.

An answer file is FastChat's ``model_answer`` JSON Lines (``question_id``, ``answer_id``, ``model_id``,
``choices: [{index, turns}]``, ``tstamp``), so FastChat's own scripts read it, with what decided each answer
added to its row (``bench``, ``category``, the rendered ``prompts``, ``temperature``, ``max_new_tokens``,
``seed``); a ``.json`` beside it holds the run's spec and provenance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data import data_dir
from harness.errors import HarnessError

# FastChat's temperature_config (llm_judge/common.py); a category it does not list is sampled at 0.7.
TEMPERATURES = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0, "reasoning": 0.0,
                "stem": 0.1, "humanities": 0.1, "arena-hard-200": 0.0}
OTHER_TEMPERATURE = 0.7
GREEDY_BELOW = 1e-4  # FastChat samples only at a temperature of at least this
MAX_NEW_TOKENS = 1024  # gen_model_answer.py's --max-new-token default


@dataclass(frozen=True)
class ChatBench:
    """A benchmark of open questions answered in conversation and graded by a judge."""

    name: str
    label: str
    folder: str  # under the mirror

    def files(self) -> tuple[Path, Path]:
        """(questions, GPT-4 reference answers) in the mirror."""
        root = data_dir()
        if root is None:
            raise HarnessError(f"the benchmark mirror is not found, so neither are {self.label}'s questions",
                               f"set HARNESS_DATA_DIR to the mirror (it holds {self.folder}/question.jsonl)")
        return root / self.folder / "question.jsonl", root / self.folder / "reference_answer" / "gpt-4.jsonl"


BENCHES = {bench.name: bench for bench in (ChatBench("mt_bench", "MT-bench", "mt_bench"),
                                           ChatBench("vicuna_bench", "Vicuna benchmark", "mt_bench/vicuna_bench"))}


@dataclass(frozen=True)
class Question:
    """One question: its turns and, for the categories judged against one, GPT-4's reference answer."""

    question_id: int
    category: str
    turns: tuple[str, ...]
    reference: tuple[str, ...] | None = None

    @property
    def temperature(self) -> float:
        return TEMPERATURES.get(self.category, OTHER_TEMPERATURE)


def bench(name: str) -> ChatBench:
    if name not in BENCHES:
        raise HarnessError(f"--bench {name!r} is not a judged benchmark", f"use one of {', '.join(BENCHES)}")
    return BENCHES[name]


def _rows(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read {path} ({exc})",
                           "restore the mirror's file from its source (see the mirror's SOURCES.md)") from None


def load_questions(chat_bench: ChatBench) -> dict[int, Question]:
    """The benchmark's questions by id, each with its reference answer where the mirror has one."""
    questions_path, references_path = chat_bench.files()
    references = {row["question_id"]: tuple(row["choices"][0]["turns"])
                  for row in (_rows(references_path) if references_path.is_file() else [])}
    return {row["question_id"]: Question(row["question_id"], row["category"], tuple(row["turns"]),
                                         references.get(row["question_id"]))
            for row in _rows(questions_path)}


def select(questions: Mapping[int, Question], limit: int | None, ids: tuple[int, ...] = ()) -> list[Question]:
    """``ids`` (in the benchmark's order), else the first ``limit`` questions, else all."""
    unknown = [i for i in ids if i not in questions]
    if unknown:
        raise HarnessError(f"--question-ids {', '.join(map(str, unknown))} are not questions of this benchmark",
                           f"give ids between {min(questions)} and {max(questions)}")
    chosen = [q for q in questions.values() if q.question_id in ids] if ids else list(questions.values())
    return chosen[:limit] if limit is not None else chosen


@dataclass(frozen=True)
class Answers:
    """One model's answers to one benchmark, as read from an answer file."""

    model: str
    bench: ChatBench
    turns: Mapping[int, tuple[str, ...]]  # question id -> the model's answer to each turn
    path: Path
    meta: Mapping[str, Any]


FIX_ANSWERS = "give an answer file written by `harness answer` (or FastChat's gen_model_answer.py)"


def read_answers(path: Path, default_bench: str) -> Answers:
    """An answer file (JSON Lines), checked row by row; the benchmark comes from its ``.json`` or its rows."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"answer file {path} does not exist", FIX_ANSWERS)
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise HarnessError(f"{meta_path.name}, the answer file's provenance beside it, is not JSON "
                           f"({type(exc).__name__})", f"{FIX_ANSWERS}, or remove the damaged .json") from None
    if not isinstance(meta, dict):
        raise HarnessError(f"{meta_path.name}, the answer file's provenance beside it, is not a JSON object",
                           f"{FIX_ANSWERS}, or remove the damaged .json")
    turns, models, benches = {}, set(), set()
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            row = json.loads(line)
            answer = tuple(row["choices"][0]["turns"])
            question_id, model = row["question_id"], row["model_id"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise HarnessError(f"{where} is not an answer row (question_id, model_id, choices[0].turns)",
                               FIX_ANSWERS) from None
        if not isinstance(question_id, int) or not answer or not all(isinstance(t, str) for t in answer):
            raise HarnessError(f"{where}: question_id must be a number and turns a list of texts", FIX_ANSWERS)
        turns[question_id] = answer  # FastChat keeps the last answer of a question id
        models.add(model)
        benches.add(row.get("bench", meta.get("bench", default_bench)))
    if not turns:
        raise HarnessError(f"answer file {path} holds no answer", FIX_ANSWERS)
    if len(models) > 1 or len(benches) > 1:
        what = "models" if len(models) > 1 else "benchmarks"
        raise HarnessError(f"answer file {path} mixes {what} ({', '.join(sorted(map(str, models | benches)))})",
                           "give one file per model and benchmark")
    return Answers(models.pop(), bench(benches.pop()), turns, path, meta)


def check_answers(answers: Answers, questions: Mapping[int, Question]) -> None:
    """Every answer is to a question of the benchmark and answers each of its turns."""
    for question_id, turns in answers.turns.items():
        question = questions.get(question_id)
        if question is None:
            raise HarnessError(f"{answers.path.name}: question {question_id} is not a question of "
                               f"{answers.bench.label}", f"{FIX_ANSWERS}, for --bench {answers.bench.name}")
        if len(turns) != len(question.turns):
            raise HarnessError(f"{answers.path.name}: question {question_id} has {len(turns)} answer turns for "
                               f"{len(question.turns)} question turns", FIX_ANSWERS)
