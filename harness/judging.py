"""``harness judge``: answers graded by an LLM judge as FastChat's ``gen_judgment.py`` grades them, and the
MT-bench score computed from the grades as its ``show_result.py`` computes it.

Single-answer grading judges each turn of each answer with FastChat's prompts (:mod:`harness.judge`). A
judgment whose rating cannot be read, or lies outside 1–10, is kept with score −1 (FastChat's mark; FastChat
itself would keep an out-of-range number) and left out of the score, as FastChat leaves −1 out. The score is
the mean of every kept rating (FastChat's average over both turns), per turn and per category too, each with
a 95% interval from a seeded bootstrap over questions. The result is written in the harness's result format,
with the judge's identity (model, endpoint host, prompts' sha256) in its provenance and in its comparability
label: the published MT-bench figures were graded by GPT-4 with these prompts, so only such a judge gives
comparable numbers.

Pairwise grading judges every turn of two models' answers in both orders with ``pair-v2`` /
``pair-math-v1``; each (question, turn) becomes one battle in FastChat's format for ``harness arena``.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness import judge, provenance, runner, store
from harness.chat_bench import Answers, Question, check_answers, load_questions
from harness.core import JUDGED, SCHEMA, MetricValue, RunResult
from harness.errors import HarnessError
from harness.judge_client import JudgeEndpoint, judge_all
from harness.registry import slug

RATING_RANGE = (1.0, 10.0)
PUBLISHED_JUDGES = ("gpt-4", "gpt-4-0613", "gpt-4-0314")  # the judge of the published MT-bench figures
PUBLISHED_JUDGE_HOST = "api.openai.com"
JUDGE_CACHE_DIR = ".judge-cache"


@dataclass(frozen=True)
class Judgment:
    """One single-answer judgment, in FastChat's judgment-file fields, with the rating as read."""

    question_id: int
    model: str
    judge: tuple[str, str]  # (judge model, prompt name)
    user_prompt: str
    judgment: str
    score: float  # judge.NO_RATING when none in 1-10 was read
    turn: int
    tstamp: float
    category: str
    rating_read: float | None = None


@dataclass(frozen=True)
class _Match:
    question: Question
    turn: int
    prompt: str
    messages: list[dict[str, str]]


def _cache_path(out: Path, endpoint: JudgeEndpoint) -> Path:
    return out / JUDGE_CACHE_DIR / f"{slug(endpoint.model)}.sqlite"


def _reference(question: Question) -> tuple[str, ...] | None:
    """GPT-4's reference answer where the question's category is judged against one (refused if missing)."""
    if question.category not in judge.NEED_REFERENCE:
        return None
    if question.reference is None:
        raise HarnessError(f"question {question.question_id} ({question.category}) is judged against GPT-4's "
                           "reference answer, which the mirror lacks",
                           "restore the mirror's reference_answer/gpt-4.jsonl (see its SOURCES.md)")
    return question.reference


def _turns(question: Question) -> range:
    return range(1, len(question.turns) + 1)


def _single_matches(answers: Answers, questions: Mapping[int, Question],
                    prompts: Mapping[str, judge.JudgePrompt]) -> list[_Match]:
    matches = []
    for question_id in sorted(answers.turns):
        question = questions[question_id]
        for turn in _turns(question):
            name = judge.prompt_name(question.category, turn)
            messages = judge.single_messages(prompts[name], question.turns, answers.turns[question_id], turn,
                                             _reference(question))
            matches.append(_Match(question, turn, name, messages))
    return matches


def _rating(judgment_text: str) -> tuple[float, float | None]:
    """(score kept, rating as read): out-of-range and unreadable ratings are kept as NO_RATING."""
    read = judge.rating(judgment_text)
    if read == judge.NO_RATING:
        return judge.NO_RATING, None
    low, high = RATING_RANGE
    return (float(read) if low <= read <= high else judge.NO_RATING), float(read)


def comparability(endpoint: JudgeEndpoint, prompts_sha256: str) -> str:
    """'comparable' when the judge is the published figures' (GPT-4 at OpenAI, FastChat's prompts)."""
    from harness.data import listed_checksums

    published_prompts = listed_checksums().get("mt_bench/judge_prompts.jsonl")
    if (endpoint.model in PUBLISHED_JUDGES and endpoint.host == PUBLISHED_JUDGE_HOST
            and prompts_sha256 == published_prompts):
        return "comparable"
    return f"different judge ({endpoint.model} at {endpoint.host})"


@dataclass(frozen=True)
class Scores:
    """MT-bench scores (means of kept ratings) with 95% bootstrap intervals over questions."""

    values: dict[str, float | None]
    intervals: dict[str, tuple[float, float] | None]
    stderrs: dict[str, float | None]
    questions: int


def scores(judgments: Sequence[Judgment], rounds: int = 1000, seed: int = 0) -> Scores:
    """Overall (every kept rating), per turn and per category, as FastChat's show_result averages them; each
    interval is the 2.5 and 97.5 percentiles over ``rounds`` resamples of the questions (seeded)."""
    ids = sorted({j.question_id for j in judgments})
    row = {question_id: i for i, question_id in enumerate(ids)}
    turns = max(j.turn for j in judgments)
    table = np.full((len(ids), turns), np.nan)  # questions x turns, NaN where no rating was kept
    category = np.empty(len(ids), dtype=object)
    for j in judgments:
        category[row[j.question_id]] = j.category
        if j.score != judge.NO_RATING:
            table[row[j.question_id], j.turn - 1] = j.score
    everyone = np.ones(len(ids), dtype=bool)
    selections = {"score": (everyone, slice(None))}
    selections.update({f"score_turn_{t}": (everyone, slice(t - 1, t)) for t in range(1, turns + 1)})
    selections.update({f"score_{name}": (category == name, slice(None)) for name in sorted(set(category))})
    drawn = np.random.default_rng(seed).integers(0, len(ids), (rounds, len(ids)))
    resampled = table[drawn]  # rounds x questions x turns
    values, intervals, stderrs = {}, {}, {}
    for metric, (rows, cols) in selections.items():
        kept = table[rows][:, cols]
        kept = kept[~np.isnan(kept)]
        values[metric] = float(kept.mean()) if kept.size else None
        part = np.where(rows[drawn][:, :, None], resampled[:, :, cols], np.nan).reshape(rounds, -1)
        counted = ~np.isnan(part)
        means = np.nansum(part, axis=1)[counted.any(axis=1)] / counted.sum(axis=1)[counted.any(axis=1)]
        if kept.size < 2 or means.size < 2:
            intervals[metric] = stderrs[metric] = None
            continue
        low, high = np.percentile(means, [2.5, 97.5])
        intervals[metric], stderrs[metric] = (float(low), float(high)), float(means.std(ddof=1))
    return Scores(values, intervals, stderrs, len(ids))


def judge_single(answers: Answers, endpoint: JudgeEndpoint, out: Path, rounds: int = 1000,
                 seed: int = 0) -> RunResult:
    """Grade one model's answers; writes the judgments (FastChat's fields) and the MT-bench result."""
    started, clock = provenance.utc_now(), time.perf_counter()
    questions = load_questions(answers.bench)
    check_answers(answers, questions)
    prompts_path = judge.prompts_path()
    prompts = judge.load_prompts(prompts_path)
    matches = _single_matches(answers, questions, prompts)
    keys = [endpoint.key(m.messages) for m in matches]
    cache_path = _cache_path(out, endpoint)
    texts = judge_all(endpoint, dict(zip(keys, (m.messages for m in matches))), cache_path)
    judgments = []
    for match, key in zip(matches, keys):
        text = texts[key]
        score, read = _rating(text)
        judgments.append(Judgment(match.question.question_id, answers.model, (endpoint.model, match.prompt),
                                  match.messages[1]["content"], text, score, match.turn, time.time(),
                                  match.question.category, read))
    kept = [j for j in judgments if j.score != judge.NO_RATING]
    if not kept:
        example = judgments[0].judgment.strip().replace("\n", " ")[:120]
        raise HarnessError(f"the judge {endpoint.model} gave no rating in 1-10 in any of {len(judgments)} "
                           f"judgments (the first reads: {example!r})",
                           "use a judge model that follows FastChat's prompt (it ends with a rating as "
                           f"\"[[5]]\"); its judgments are cached in {cache_path}")
    result = _result(answers, endpoint, judgments, scores(judgments, rounds, seed), prompts, prompts_path,
                     cache_path, len(set(keys)), started, clock, rounds, seed)
    path, _ = store.result_paths(out, slug(answers.model), answers.bench.name, started.strftime("%Y%m%dT%H%M%SZ"))
    judgments_path = path.with_suffix(".judgments.jsonl")
    store.write_jsonl(judgments_path, (asdict(j) for j in judgments))
    result = dataclasses.replace(result, provenance={**result.provenance, "judgments": judgments_path.name}, path=path)
    store.write_json(path, result.to_json())
    return result


def _result(answers: Answers, endpoint: JudgeEndpoint, judgments: list[Judgment], found: Scores,
            prompts: Mapping[str, judge.JudgePrompt], prompts_path: Path, cache_path: Path, asked: int,
            started, clock: float, rounds: int, seed: int) -> RunResult:
    prompts_sha = provenance.sha256_file(prompts_path)
    label = comparability(endpoint, prompts_sha)
    out_of_range = sum(j.rating_read is not None and j.score == judge.NO_RATING for j in judgments)
    unread = sum(j.rating_read is None for j in judgments)
    all_questions = len(load_questions(answers.bench))
    deviations = [f"--limit: {found.questions} of the benchmark's {all_questions} questions were answered"] \
        if found.questions < all_questions else []
    if label != "comparable":
        deviations.append(f"judged by {endpoint.model} at {endpoint.host}, not by GPT-4 as the published figures were")
    meta = answers.meta
    return RunResult(
        model=answers.model, task=answers.bench.name, kind="task", primary_metric="score",
        metrics={name: MetricValue(value, found.stderrs[name]) for name, value in found.values.items()},
        n=found.questions, num_fewshot=None, output_type=JUDGED, status="complete",
        spec=meta.get("spec", {}),
        metadata={"benchmark": answers.bench.name, "benchmark_label": answers.bench.label, "protocol": "llm-judge",
                  "scale": "1-10", "comparability": label},
        metric_notes={"score": "mean of every kept rating over both turns (FastChat show_result.py); 95% bootstrap "
                               "interval over questions in provenance.bootstrap"},
        provenance={
            "schema": SCHEMA,
            "answers": {"file": str(answers.path), "sha256": provenance.sha256_file(answers.path),
                        "questions_of": all_questions,
                        "model": meta.get("provenance", {}).get("model"),
                        "chat_template": meta.get("provenance", {}).get("chat_template"),
                        "sampling": meta.get("sampling")},
            "judge": {**endpoint.identity(), "mode": "single",
                      "prompts": {name: provenance.sha256_text(p.system_prompt + "\n" + p.prompt_template)
                                  for name, p in sorted(prompts.items()) if p.type == "single"},
                      "prompts_file": {"file": str(prompts_path), "sha256": prompts_sha}},
            "judgments_count": {"total": len(judgments), "kept": len(judgments) - out_of_range - unread,
                                "no_rating": unread, "out_of_range": out_of_range},
            "judge_cache": {"file": cache_path.name, "requests": asked},
            "bootstrap": {"rounds": rounds, "seed": seed, "over": "questions",
                          "ci95": {name: list(ci) if ci else None for name, ci in found.intervals.items()}},
            "deviations": deviations,
            "harness": {"version": runner.harness_version(), **provenance.git_commit()},
            "started": started.isoformat(), "finished": provenance.utc_now().isoformat(),
            "wall_seconds": round(time.perf_counter() - clock, 3),
        },
    )


def judge_pairwise(answer_sets: Sequence[Answers], endpoint: JudgeEndpoint, out: Path) -> tuple[Path, list[dict]]:
    """Every pair of models on their common questions, each turn in both orders; battles in FastChat's format."""
    bench = answer_sets[0].bench
    if any(a.bench != bench for a in answer_sets) or len({a.model for a in answer_sets}) != len(answer_sets):
        raise HarnessError("pairwise judging needs answer files of different models on one benchmark",
                           "give one answer file per model, all for the same --bench")
    questions = load_questions(bench)
    for answers in answer_sets:
        check_answers(answers, questions)
    prompts = judge.load_prompts()
    games = []  # (model_1, model_2, question, turn, prompt, messages as 1-vs-2, messages as 2-vs-1)
    for first, second in itertools.combinations(answer_sets, 2):
        for question_id in sorted(set(first.turns) & set(second.turns)):
            question = questions[question_id]
            reference = _reference(question)
            for turn in _turns(question):
                name = judge.prompt_name(question.category, turn, pairwise=True)
                one = judge.pair_messages(prompts[name], question.turns, first.turns[question_id],
                                          second.turns[question_id], turn, reference)
                two = judge.pair_messages(prompts[name], question.turns, second.turns[question_id],
                                          first.turns[question_id], turn, reference)
                games.append((first.model, second.model, question, turn, name, one, two))
    if not games:
        raise HarnessError("the answer files share no question", "answer the same questions with every model")
    conversations = {endpoint.key(m): m for game in games for m in game[5:]}
    texts = judge_all(endpoint, conversations, _cache_path(out, endpoint))
    battles = []
    for model_1, model_2, question, turn, name, one, two in games:
        g1, g2 = judge.verdict(texts[endpoint.key(one)]), judge.verdict(texts[endpoint.key(two)])
        winner = judge.battle_winner(g1, g2)
        if winner is None:  # an unreadable verdict in either order: no battle, as FastChat counts
            continue
        battles.append({"model_a": model_1, "model_b": model_2, "winner": winner, "question_id": question.question_id,
                        "turn": turn, "judge": [endpoint.model, name], "g1_winner": g1, "g2_winner": g2})
    if not battles:
        raise HarnessError(f"the judge {endpoint.model} gave no verdict ([[A]], [[B]] or [[C]]) in any of "
                           f"{len(conversations)} pairwise judgments",
                           "use a judge model that follows FastChat's pairwise prompt")
    path = out / f"{bench.name}__pairwise__{slug(endpoint.model)}.battles.jsonl"
    store.write_jsonl(path, battles)
    return path, battles
