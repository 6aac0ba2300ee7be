"""The OpenAI-compatible backend against a local server that misbehaves on purpose.

A real HTTP server on 127.0.0.1 answers each request with what the test scripts: a well-formed
completion, a 500 or 429, a response slower than the client's timeout, malformed JSON, or a dropped
connection. The backend must retry, then stop with one clear line; never hang; keep the answers it
already received (a rerun asks only for the rest); and never write the API key anywhere.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance

from harness.backends import OpenAICompatibleLM
from harness.errors import HarnessError
from harness.registry import resolve_model
from harness.templates import load_tokenizer
from tests.conftest import needs, run_cli
from tests.scripted_server import ScriptedServer


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    yield scripted
    scripted.httpd.shutdown()


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model("smollm2-135m-instruct"))


def _lm(server: ScriptedServer, tokenizer, **options) -> OpenAICompatibleLM:
    return OpenAICompatibleLM(base_url=server.url, model="scripted", tokenizer=tokenizer, num_concurrent=1,
                              max_retries=3, timeout=options.pop("timeout", 2), **options)


def _loglikelihood_requests(n: int) -> list[Instance]:
    return [Instance("loglikelihood", doc={}, arguments=(f"Question {i}: 2+2=", " 4"), idx=0) for i in range(n)]


@pytest.mark.parametrize(("finish_reason", "generated"), [("length", ["\n"]), ("stop", []), ("stop", ["</s>"])])
def test_continuation_is_read_from_the_end_of_the_echoed_prompt(server, tokenizer, finish_reason: str,
                                                               generated: list[str]) -> None:
    """One generated entry after the prompt is skipped; none when the server stopped on an EOS it did not echo
    (llama-cpp-python), one when it echoed it (vLLM)."""
    context, continuation = "Question: Which gas do plants take in?\nAnswer:", " carbon dioxide"
    tokens = tokenizer.encode(context + continuation)
    ctxlen = len(tokenizer.encode(context))
    n = len(tokens) - ctxlen
    entries = [None] + [-1.0] * (ctxlen - 1) + [-0.25] * n + [-7.0] * len(generated)
    answer = {"choices": [{"index": 0, "finish_reason": finish_reason, "text": context + continuation,
                           "logprobs": {"token_logprobs": entries, "top_logprobs": [None] + [{"x": -9.0}] * (len(entries) - 1),
                                        "tokens": [tokenizer.decode([t]) for t in tokens] + generated}}]}
    assert _lm(server, tokenizer).parse_logprobs([answer], tokens=[tokens], ctxlens=[ctxlen]) == [(-0.25 * n, True)]


def test_retries_after_500_and_429_then_succeeds(server: ScriptedServer, tokenizer) -> None:
    server.reset(["500", "429"])
    answers = _lm(server, tokenizer).loglikelihood(_loglikelihood_requests(1))
    assert server.requests == 3, "two failures, then the retry that succeeded"
    assert answers[0][0] == pytest.approx(-0.5 * len(tokenizer.encode(" 4", add_special_tokens=False)))


@pytest.mark.parametrize(
    ("action", "cause"),
    [("500", "500"), ("slow", "Timeout"), ("malformed", "JSONDecodeError"), ("drop", "Connection")],
)
def test_persistent_failure_retries_then_stops_with_one_clear_line(server, tokenizer, action, cause) -> None:
    server.reset([], then=action)
    started = time.monotonic()
    with pytest.raises(HarnessError) as failure:
        _lm(server, tokenizer, timeout=1).loglikelihood(_loglikelihood_requests(2))
    elapsed = time.monotonic() - started
    message = str(failure.value)
    assert "\n" not in message and f"the server at {server.url} failed" in message and "after 3 tries" in message
    assert cause in message, message
    assert server.requests == 3, "three tries of the first request, then stop"
    assert elapsed < 60, f"gave up after {elapsed:.0f} s: no hang"


@pytest.mark.parametrize("concurrent", [1, 2])
def test_answer_without_log_probabilities_is_reported_as_unreadable(server, tokenizer, concurrent: int) -> None:
    """Valid JSON in the wrong shape is the server's answer, not a failure of ours: one line that says so
    (lm-eval retries it only on its concurrent path; the sync path reads the answer after its retries)."""
    server.reset([], then="shapeless")
    lm = OpenAICompatibleLM(base_url=server.url, model="scripted", tokenizer=tokenizer, num_concurrent=concurrent,
                            max_retries=2, timeout=2)
    with pytest.raises(HarnessError) as failure:
        lm.loglikelihood(_loglikelihood_requests(1))
    message = str(failure.value)
    assert "\n" not in message and f"the server at {server.url} answered log-likelihood requests" in message
    assert "cannot read (malformed answer (KeyError: 'logprobs'))" in message, message
    assert 1 <= server.requests <= 2


@pytest.mark.parametrize("chat", [False, True])
def test_generation_failure_keeps_earlier_chunks(server: ScriptedServer, tokenizer, chat: bool) -> None:
    """Plain prompts go to /v1/completions, --chat conversations to /v1/chat/completions; the answers received
    before a failure reach the cache hook (plain: each as it arrives; chat: a chunk of 4 at a time)."""
    kept: list[tuple] = []

    class Hook:
        def add_partial(self, method, args, result) -> None:
            kept.append((method, args, result))

    lm = _lm(server, tokenizer)
    lm.set_cache_hook(Hook())
    contexts = [lm.apply_chat_template([{"role": "user", "content": f"Q{i}"}]) if chat else f"Q{i}" for i in range(6)]
    requests = [Instance("generate_until", doc={}, arguments=(context, {"until": ["\n"], "max_gen_toks": 8}), idx=0)
                for context in contexts]
    server.reset(["ok"] * 4, then="500")  # four answers, then failures
    with pytest.raises(HarnessError, match="failed generation requests"):
        lm.generate_until(requests)
    assert set(server.paths) == {"/v1/chat/completions" if chat else "/v1/completions"}
    assert [args[0] for _, args, _ in kept] == contexts[:4]
    assert all(result == "The answer is 4." for _, _, result in kept)


@needs("mirror")
def test_run_stopped_by_a_failing_server_resumes_without_asking_again(server, tmp_path: Path) -> None:
    secret = "sk-test-secret-never-written-0451"
    args = ("run", "--model", "smollm2-135m-instruct", "--backend", "openai-compatible", "--base-url", server.url,
            "--tasks", "arc_easy", "--limit", "5", "--output", str(tmp_path))
    env = {"HARNESS_API_KEY": secret}
    server.reset(["ok"] * 7, then="500")
    failed = run_cli(*args, env=env, timeout=600)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith(f"error: the server at {server.url} failed")
    assert not list(tmp_path.glob("*.json")), "no result file for a run that failed"
    answered_first = server.answered
    assert answered_first == 7
    assert set(server.authorizations) == {f"Bearer {secret}"}, "the key is sent, read from the environment"

    server.reset([])
    done = run_cli(*args, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert server.answered == 20 - answered_first, "5 docs x 4 choices, minus the answers already received"
    assert set(server.authorizations) == {f"Bearer {secret}"}
    result = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert result["provenance"]["backend"] == "openai-compatible" and result["provenance"]["server"] == server.url
    assert result["provenance"]["backend_package"] is None  # no package: the server is what ran
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and not any(secret.encode() in p.read_bytes() for p in written)
    assert secret not in failed.stdout + failed.stderr + done.stdout + done.stderr
