"""MT-bench end to end on 127.0.0.1: the embedded model answers three questions (both turns) through its chat
template at FastChat's settings; a real llama-cpp-python server with the embedded model is asked to judge them;
a scripted judge covers the edge cases (no rating, single brackets, out of range, HTTP 500 then success, a
dropped connection), a killed run's resume, pairwise battles, and the scores FastChat's own show_result
gives for the same judgments."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
from fastchat.llm_judge import show_result
from fastchat.llm_judge.common import load_model_answers, temperature_config

from harness import judge, runner
from harness.answers import answer
from harness.arena import read_battles
from harness.chat_bench import BENCHES, load_questions
from harness.core import RunSpec, load_result
from harness.registry import DEFAULT_MODEL, resolve_model
from harness.templates import load_tokenizer
from tests.conftest import needs, run_cli
from tests.llama_server import serve
from tests.scripted_server import ScriptedServer

QUESTION_IDS = (81, 101, 131)  # writing (sampled at 0.7), reasoning and extraction (greedy)
KEY = "sk-judge-secret-0000"


@pytest.fixture(scope="module")
def answered(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The embedded model's answers through llama.cpp, written twice (the second run resumes from the cache);
    the answer file's path, and the rows the first run wrote."""
    out = tmp_path_factory.mktemp("answers")
    args = ("answer", "--model", DEFAULT_MODEL, "--backend", "llama-cpp", "--question-ids",
            ",".join(map(str, QUESTION_IDS)), "--max-new-tokens", "96", "--output", str(out))
    first_rows = None
    for _ in range(2):
        done = run_cli(*args, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        first_rows = first_rows or _rows(next(out.glob("*.answers.jsonl")))
    return next(out.glob("*.answers.jsonl")), first_rows


@pytest.fixture(scope="module")
def server():
    scripted = ScriptedServer()
    yield scripted
    scripted.httpd.shutdown()


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _synthetic_answers(folder: Path, model: str, question_ids, text: str = "answer") -> Path:
    """An answer file as FastChat's gen_model_answer.py writes it (no harness fields)."""
    questions = load_questions(BENCHES["mt_bench"])
    path = folder / f"{model}.jsonl"
    path.write_text("".join(json.dumps({
        "question_id": q, "answer_id": f"{model}-{q}", "model_id": model, "tstamp": 0.0,
        "choices": [{"index": 0, "turns": [f"{model}'s {text} to turn {t + 1}" for t in range(len(questions[q].turns))]}],
    }) + "\n" for q in question_ids), encoding="utf-8")
    return path


@needs("mirror", "embedded_model", "llama_cpp")
def test_the_embedded_model_answers_both_turns_through_its_template_at_fastchats_settings(answered) -> None:
    path, first_rows = answered
    rows = _rows(path)
    questions = load_questions(BENCHES["mt_bench"])
    assert [row["question_id"] for row in rows] == list(QUESTION_IDS)
    tokenizer = load_tokenizer(resolve_model(DEFAULT_MODEL))
    for row in rows:
        question = questions[row["question_id"]]
        turns = row["choices"][0]["turns"]
        assert len(turns) == 2 and all(turn.strip() == turn and turn for turn in turns)
        assert row["temperature"] == temperature_config[question.category]
        conversation = [{"role": "user", "content": question.turns[0]}]
        assert row["prompts"][0] == tokenizer.apply_chat_template(conversation, tokenize=False,
                                                                  add_generation_prompt=True)
        conversation += [{"role": "assistant", "content": turns[0]}, {"role": "user", "content": question.turns[1]}]
        assert row["prompts"][1] == tokenizer.apply_chat_template(conversation, tokenize=False,
                                                                  add_generation_prompt=True)  # sees its own turn 1
    # FastChat's own reader takes the file as a model-answer file.
    fastchat = load_model_answers(str(path.parent))[path.name[:-len(".jsonl")]]
    assert {q: a["choices"][0]["turns"] for q, a in fastchat.items()} == {
        row["question_id"]: row["choices"][0]["turns"] for row in rows}
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["sampling"]["max_new_tokens"] == 96 and meta["provenance"]["backend"] == "llama-cpp"
    assert meta["provenance"]["backend_package"] == {"llama-cpp-python": metadata.version("llama-cpp-python")}
    assert meta["provenance"]["chat_template"]["sha256"] and meta["questions"]["ids"] == list(QUESTION_IDS)
    # The second run answered every turn from the request cache, and the answers are the same.
    assert meta["provenance"]["request_cache"]["computed"] == 0
    assert meta["provenance"]["request_cache"]["from_cache"] == 6
    assert [r["choices"] for r in rows] == [r["choices"] for r in first_rows]


@needs("mirror", "embedded_model", "llama_cpp")
def test_a_llama_cpp_server_as_the_judge(answered, tmp_path: Path) -> None:
    """The embedded 135M model at a real llama-cpp-python server receives all six judgments; it does not write
    FastChat's rating format, so the run ends in the one-line "no rating" refusal with no result; a rerun with the
    server gone gives the same refusal from the cache alone."""
    path, _ = answered
    out = tmp_path / "judged"
    with serve(resolve_model(DEFAULT_MODEL).gguf_path, tmp_path / "server.log") as url:
        done = run_cli("judge", str(path), "--judge-base-url", f"{url}/v1", "--judge-model", "smollm2",
                       "--out", str(out), "--parallel", "1")
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert re.search(r"error: the judge smollm2 gave no rating in 1-10 in any of 6 judgments", last), last
    assert not list(out.glob("*.json")) and not list(out.glob("*.judgments.jsonl"))
    with sqlite3.connect(out / ".judge-cache" / "smollm2.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 6
    again = run_cli("judge", str(path), "--judge-base-url", f"{url}/v1", "--judge-model", "smollm2",
                    "--out", str(out), "--retries", "1")
    assert again.returncode == 2 and again.stderr.strip().splitlines()[-1] == last


def _edge_script(index: int, messages) -> str:
    """Judgments in request order (one at a time): 81 t1, 81 t2, 101 t1, 101 t2, 131 t1, 131 t2."""
    return {0: "Good. Rating: [[8]]", 2: "Rating: [[6]]", 4: "Rating: [7]", 5: "I will not rate this.",
            6: "Rating: [[15]]", 7: "Rating: [[3]]"}[index]


@needs("mirror", "embedded_model", "llama_cpp")
def test_scripted_judge_edge_cases_and_fastchats_own_scores(answered, server, tmp_path: Path) -> None:
    path, _ = answered
    server.reset(["ok", "500", "ok", "drop"], chat=_edge_script)
    out = tmp_path / "judged"
    done = run_cli("judge", str(path), "--judge-base-url", server.url, "--judge-model", "scripted", "--out", str(out),
                   "--parallel", "1", env={"HARNESS_JUDGE_API_KEY": KEY})
    assert done.returncode == 0, done.stderr[-2000:]
    assert server.requests == 8  # six judgments, one retried after the 500, one after the dropped connection
    assert set(server.authorizations) == {f"Bearer {KEY}"}
    result = load_result(next(out.glob("*__mt_bench__*.json")))
    judgments = _rows(out / result.provenance["judgments"])
    assert [(j["question_id"], j["turn"], j["score"], j["rating_read"]) for j in judgments] == [
        (81, 1, 8, 8), (81, 2, 6, 6), (101, 1, 7, 7), (101, 2, -1, None), (131, 1, -1, 15), (131, 2, 3, 3)]
    assert [j["judge"] for j in judgments] == [["scripted", "single-v1"], ["scripted", "single-v1-multi-turn"],
                                               ["scripted", "single-math-v1"], ["scripted", "single-math-v1-multi-turn"],
                                               ["scripted", "single-v1"], ["scripted", "single-v1-multi-turn"]]
    asked = list(dict.fromkeys(c[1]["content"] for c in server.conversations))  # a retry asks the same again
    assert [j["user_prompt"] for j in judgments] == asked
    metrics = {name: value.value for name, value in result.metrics.items()}
    assert metrics == pytest.approx({"score": 6.0, "score_turn_1": 7.5, "score_turn_2": 4.5, "score_writing": 7.0,
                                     "score_reasoning": 7.0, "score_extraction": 3.0})
    low, high = result.provenance["bootstrap"]["ci95"]["score"]
    assert 3.0 <= low < 6.0 < high <= 8.0
    assert result.provenance["judgments_count"] == {"total": 6, "kept": 4, "no_rating": 1, "out_of_range": 1}
    assert result.provenance["judge"]["model"] == "scripted" and result.provenance["judge"]["host"].startswith("127.0.0.1:")
    assert result.provenance["judge"]["prompts_file"]["sha256"] == judge_prompts_sha256()
    assert result.metadata["comparability"].startswith("different judge (scripted at 127.0.0.1:")
    # FastChat's show_result.py reads our judgment file and gives the same averages.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        show_result.display_result_single(argparse.Namespace(input_file=str(out / result.provenance["judgments"]),
                                                             bench_name="mt_bench", model_list=None))
    averages = [float(x) for x in re.findall(rf"{DEFAULT_MODEL}\s+(?:\d\s+)?([\d.]+)", printed.getvalue())]
    assert averages == pytest.approx([7.5, 4.5, 6.0])
    # The key is never written.
    assert not [p for p in out.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]


def judge_prompts_sha256() -> str:
    from harness.data import listed_checksums

    return listed_checksums()["mt_bench/judge_prompts.jsonl"]


@needs("mirror")
def test_a_killed_judge_run_resumes_asking_only_for_the_missing_judgments(server, tmp_path: Path) -> None:
    answers = _synthetic_answers(tmp_path, "model-x", range(81, 91))  # 10 questions, 20 judgments
    out = tmp_path / "judged"
    server.reset([], chat=lambda index, messages: "Rating: [[5]]", delay=0.3)
    args = [sys.executable, "-m", "harness", "judge", str(answers), "--judge-base-url", server.url,
            "--judge-model", "scripted", "--out", str(out), "--parallel", "1"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while server.requests < 8 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    first = [json.dumps(c) for c in server.conversations]
    with sqlite3.connect(out / ".judge-cache" / "scripted.sqlite") as db:
        kept = db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    assert 6 <= kept < 20 and not list(out.glob("*.json"))
    server.reset([], chat=lambda index, messages: "Rating: [[5]]")
    done = run_cli(*args[3:])
    assert done.returncode == 0, done.stderr[-2000:]
    second = [json.dumps(c) for c in server.conversations]
    assert len(second) == 20 - kept and len(set(second)) == len(second)
    assert not set(second) & set(first[:kept])  # what was kept is not asked again
    result = load_result(next(out.glob("*.json")))
    assert result.provenance["judgments_count"]["total"] == 20 and result.primary.value == 5.0


@needs("mirror")
def test_an_unreachable_or_refusing_judge_ends_in_one_line(server, tmp_path: Path) -> None:
    answers = _synthetic_answers(tmp_path, "model-x", [81])
    started = time.monotonic()
    done = run_cli("judge", str(answers), "--judge-base-url", "http://127.0.0.1:9/v1", "--judge-model", "gpt-4",
                   "--out", str(tmp_path / "a"), "--retries", "2")
    assert done.returncode == 2 and "Traceback" not in done.stderr and time.monotonic() - started < 60
    assert re.search(r"error: the judge at http://127\.0\.0\.1:9/v1/chat/completions failed after 2 tries "
                     r"\(ConnectionError: .*\) — check that it is up and serves gpt-4, then rerun",
                     done.stderr.strip().splitlines()[-1])
    server.reset(["401"], then="401")
    done = run_cli("judge", str(answers), "--judge-base-url", server.url, "--judge-model", "gpt-4",
                   "--out", str(tmp_path / "b"))
    assert done.returncode == 2 and server.requests == 1
    assert re.search(r"error: the judge at .* refused the request for gpt-4 \(HTTP 401", done.stderr.splitlines()[-1])
    for folder in (tmp_path / "a", tmp_path / "b"):
        assert not [p for p in folder.rglob("*") if p.is_file() and ".judge-cache" not in p.parts]


def _pairwise_reply(index: int, messages) -> str:
    """Prefers model-x's answers in both orders, except: question 82 always "[[A]]" (order-inconsistent: a
    tie), question 83 no verdict (an error: no battle)."""
    user = messages[1]["content"]
    if "Draft a professional email" in user:
        return "Both are fine. [[A]]"
    if "comparing two popular smartphone models" in user:
        return "I cannot tell."
    answer_a = re.split(r"\[The End of Assistant A's Answer\]|<\|The End of Assistant A's", user)[0]
    return "[[A]]" if "model-x" in answer_a else "[[B]]"


@needs("mirror")
def test_pairwise_judgments_in_both_orders_become_fastchat_battles(server, tmp_path: Path) -> None:
    files = [_synthetic_answers(tmp_path, model, [81, 82, 83]) for model in ("model-x", "model-y")]
    server.reset([], chat=_pairwise_reply)
    done = run_cli("judge", *map(str, files), "--mode", "pairwise", "--judge-base-url", server.url,
                   "--judge-model", "scripted", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert server.requests == 3 * 2 * 2  # 3 questions, 2 turns, both orders
    path = next((tmp_path / "out").glob("*.battles.jsonl"))
    battles = _rows(path)
    assert [(b["question_id"], b["turn"], b["winner"]) for b in battles] == [
        (81, 1, "model_a"), (81, 2, "model_a"), (82, 1, "tie"), (82, 2, "tie")]
    assert {b["judge"][1] for b in battles} == {"pair-v2", "pair-v2-multi-turn"}
    assert len(read_battles(path)) == 4  # harness arena reads them
    assert all(judge.battle_winner(b["g1_winner"], b["g2_winner"]) == b["winner"] for b in battles)


@needs("mirror", "reference")
def test_the_report_draws_mt_bench_beside_gpt4_and_the_arena_chart(server, tmp_path: Path) -> None:
    answers = _synthetic_answers(tmp_path, "model-x", range(81, 161))
    server.reset([], chat=lambda index, messages: f"Rating: [[{(len(messages[1]['content']) % 10) + 1}]]")
    runs = tmp_path / "runs"
    assert run_cli("judge", str(answers), "--judge-base-url", server.url, "--judge-model", "scripted",
                   "--out", str(runs), "--parallel", "8").returncode == 0
    battles = tmp_path / "battles.jsonl"
    battles.write_text("".join(json.dumps({"model_a": a, "model_b": b, "winner": w}) + "\n" for a, b, w in
                               [("model-x", "model-y", "model_a"), ("model-y", "model-x", "model_a"),
                                ("model-x", "model-y", "tie")] * 10))
    assert run_cli("arena", str(battles), "--out", str(tmp_path / "arena"), "--rounds", "100").returncode == 0
    report = tmp_path / "report"
    done = run_cli("report", "--runs", str(runs), "--arena", str(tmp_path / "arena"), "--out", str(report))
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("mt_bench", "mt_bench_radar", "arena"):
        assert all((report / f"{name}.{fmt}").stat().st_size > 1000 for fmt in ("png", "svg", "pdf"))
    table = (report / "mt_bench.csv").read_text()
    assert "openai/gpt-4,published,gpt-4 (LMSYS),8.99" in table
    assert re.search(r"model-x,measured,scripted at 127\.0\.0\.1:\d+,[\d.]+,[\d.]+,[\d.]+,80 of 80,different judge",
                     table)
    page = (report / "index.html").read_text()
    assert all(f"<figcaption>{caption}</figcaption>" in page
               for caption in ("MT-bench", "MT-bench per category", "Arena ratings"))


@needs("mirror", "embedded_model")
def test_sampled_answers_through_transformers_are_reproducible_from_their_seed(tmp_path: Path) -> None:
    """Question 81 (writing) is sampled at 0.7: the default backend answers it twice from scratch (two output
    folders, so no cache) with the same answers from the same seed."""
    spec = RunSpec(model=resolve_model(DEFAULT_MODEL), tasks=(), batch_size="1")
    loaded = runner.load(dataclasses.replace(spec, chat=True))
    texts = []
    for run in ("a", "b"):
        path = answer(spec, BENCHES["mt_bench"], tmp_path / run, question_ids=(81,), max_new_tokens=24, loaded=loaded)
        (row,) = _rows(path)
        assert row["temperature"] == 0.7 and len(row["choices"][0]["turns"]) == 2
        assert json.loads(path.with_suffix(".json").read_text())["provenance"]["request_cache"]["computed"] == 2
        texts.append(row["choices"][0]["turns"])
    assert texts[0] == texts[1]
