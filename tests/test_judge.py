"""MT-bench's judge prompts rendered by our code equal, byte for byte, the messages FastChat's own ``llm_judge``
sends (its ``run_judge_single`` / ``run_judge_pair``, with the API call captured), and judgments are read back
as FastChat reads them."""

from __future__ import annotations

import json

import pytest
from fastchat.llm_judge import common  # fschat, the oracle: a test dependency

from harness import judge
from tests.conftest import MIRROR, needs

JUDGMENTS = ("The answer is fine. Rating: [[7]]", "Rating: [8.5]", "no rating at all", "[[10]] and [3]",
             "Verdict: [[A]]", "[[B]]", "It is a tie: [[C]]", "I cannot decide.")


def _jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (MIRROR / "mt_bench" / name).read_text(encoding="utf-8").splitlines()]


class _Captured:
    """Stands in for FastChat's OpenAI call: keeps the messages it was given, answers a scripted judgment."""

    def __init__(self, judgment: str) -> None:
        self.judgment, self.messages = judgment, []

    def __call__(self, model, conv, temperature, max_tokens, api_dict=None) -> str:
        assert temperature == 0
        self.messages.append(conv.to_openai_api_messages())
        return self.judgment


def _answer(question: dict, who: str) -> dict:
    return {"choices": [{"turns": [f"{who}'s answer to turn {t + 1} of question {question['question_id']}:\n"
                                   f"{{braces}} and 'quotes' \u00e9" for t in range(len(question["turns"]))]}]}


@needs("mirror")
@pytest.mark.parametrize("judgment", JUDGMENTS)
def test_every_single_answer_prompt_is_fastchats_byte_for_byte(judgment: str, monkeypatch) -> None:
    prompts = judge.load_prompts()
    references = {r["question_id"]: r for r in _jsonl("reference_answer/gpt-4.jsonl")}
    captured = _Captured(judgment)
    monkeypatch.setattr(common, "chat_completion_openai", captured)
    used = set()
    for question in _jsonl("question.jsonl"):
        reference = references.get(question["question_id"]) if question["category"] in judge.NEED_REFERENCE else None
        answer = _answer(question, "model")
        for turn in (1, 2):
            name = judge.prompt_name(question["category"], turn)
            used.add(name)
            fastchat_judge = common.Judge("gpt-4", dict(prompts[name].__dict__), ref_based=reference is not None,
                                          multi_turn=turn == 2)
            theirs, _, _ = common.run_judge_single(question, answer, fastchat_judge, reference, multi_turn=turn == 2)
            ours = judge.single_messages(prompts[name], question["turns"], answer["choices"][0]["turns"], turn,
                                         reference["choices"][0]["turns"] if reference else None)
            assert ours == captured.messages[-1]
            assert judge.rating(judgment) == theirs
    assert used == {"single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn"}


@needs("mirror")
@pytest.mark.parametrize("judgment", JUDGMENTS)
def test_every_pairwise_prompt_is_fastchats_byte_for_byte(judgment: str, monkeypatch) -> None:
    prompts = judge.load_prompts()
    references = {r["question_id"]: r for r in _jsonl("reference_answer/gpt-4.jsonl")}
    captured = _Captured(judgment)
    monkeypatch.setattr(common, "chat_completion_openai", captured)
    for question in _jsonl("question.jsonl")[::4]:
        reference = references.get(question["question_id"]) if question["category"] in judge.NEED_REFERENCE else None
        a, b = _answer(question, "A"), _answer(question, "B")
        for turn in (1, 2):
            prompt = prompts[judge.prompt_name(question["category"], turn, pairwise=True)]
            fastchat_judge = common.Judge("gpt-4", dict(prompt.__dict__), ref_based=reference is not None,
                                          multi_turn=turn == 2)
            theirs, _, _ = common.run_judge_pair(question, a, b, fastchat_judge, reference, multi_turn=turn == 2)
            ours = judge.pair_messages(prompt, question["turns"], a["choices"][0]["turns"], b["choices"][0]["turns"],
                                       turn, reference["choices"][0]["turns"] if reference else None)
            assert ours == captured.messages[-1]
            assert judge.verdict(judgment) == theirs


@pytest.mark.parametrize(("first", "swapped", "winner"), [
    ("A", "B", "model_a"), ("B", "A", "model_b"), ("A", "A", "tie"), ("tie", "tie", "tie"), ("A", "tie", "tie"),
    ("A", "error", None), ("error", "error", None)])
def test_a_pair_judged_both_ways_becomes_a_battle_as_fastchat_counts_it(first, swapped, winner) -> None:
    assert judge.battle_winner(first, swapped) == winner
