"""The embedded GGUF through llama.cpp, and through a real llama-cpp-python server on 127.0.0.1 (the
OpenAI-compatible backend), agree with transformers on 20 ARC-Easy docs (0-shot) and 5 GSM8K docs
(5-shot, greedy generation).

transformers dequantises the file's Q4_1 weights to fp32, while llama.cpp computes on them directly
(with 8-bit activations), so the numbers differ slightly: the bar is the same log-likelihood ranking
of the choices on at least 90% of the ARC-Easy docs, and greedy generations that begin alike.

The server is started with BOS prepended to prompts. llama-cpp-python 0.3.36 pairs each echoed
prompt token with the logits *after* it, unless the prompt starts with BOS, which it then drops. For
a GGUF that adds no BOS (the embedded SmolLM2), every echoed log-probability would be off by one
position. With 5/20 ARC-Easy rankings equal, the test failed that way before the override.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

from harness.backends import LlamaCppLM, OpenAICompatibleLM, PrefixSharingLM
from harness.paths import TASKS_DIR
from harness.registry import resolve_model
from harness.templates import load_tokenizer
from tests.conftest import needs

pytest.importorskip("llama_cpp", reason="llama-cpp-python (the gguf extra) is not installed")
pytestmark = [needs("mirror"), pytest.mark.slow]

MODEL = resolve_model("smollm2-135m-instruct")
ARC_DOCS, GSM_DOCS = 20, 5


def _samples(lm, task: str, limit: int) -> list[dict]:
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    result = simple_evaluate(model=lm, tasks=[task], limit=limit, task_manager=manager, log_samples=True,
                             bootstrap_iters=0, device="cpu")
    return sorted(result["samples"][task], key=lambda sample: sample["doc_id"])


def _run_both(lm) -> dict[str, list[dict]]:
    return {"arc_easy": _samples(lm, "arc_easy", ARC_DOCS), "gsm8k": _samples(lm, "gsm8k", GSM_DOCS)}


def _ranking(samples: list[dict]) -> list[int]:
    return [int(np.argmax([response[0][0] for response in sample["resps"]])) for sample in samples]


def _generations(samples: list[dict]) -> list[str]:
    return [sample["resps"][0][0] for sample in samples if sample.get("filter") in (None, "strict-match")]


def _assert_agree(ours: dict[str, list[dict]], reference: dict[str, list[dict]]) -> None:
    ranking, expected = _ranking(ours["arc_easy"]), _ranking(reference["arc_easy"])
    assert len(ranking) == len(expected) == ARC_DOCS
    same = sum(a == b for a, b in zip(ranking, expected))
    assert same >= 0.9 * ARC_DOCS, f"same ranking on {same}/{ARC_DOCS} ARC-Easy docs"
    texts, expected_texts = _generations(ours["gsm8k"]), _generations(reference["gsm8k"])
    assert len(texts) == len(expected_texts) == GSM_DOCS
    assert all(text.strip() for text in texts), texts
    alike = sum(a.split()[:3] == b.split()[:3] for a, b in zip(texts, expected_texts))
    assert alike >= GSM_DOCS - 1, f"generations begin alike on {alike}/{GSM_DOCS} docs: {texts} vs {expected_texts}"


@pytest.fixture(scope="module")
def reference() -> dict[str, list[dict]]:
    lm = PrefixSharingLM(pretrained=str(MODEL.gguf_path.parent), gguf_file=MODEL.gguf_path.name, device="cpu",
                         dtype="float32", batch_size=8)
    return _run_both(lm)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(MODEL.gguf_path), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "4096", "--logits_all", "true", "--verbose", "false",
             "--kv_overrides", "tokenizer.ggml.add_bos_token=bool:true",
             "--n_threads", str(os.cpu_count())],
            stdout=sink, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"llama-cpp-python's server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)


def test_llama_cpp_backend_agrees_with_transformers(reference) -> None:
    lm = LlamaCppLM(pretrained=str(MODEL.gguf_path.parent), gguf_file=MODEL.gguf_path.name)
    _assert_agree(_run_both(lm), reference)


def test_openai_compatible_backend_on_a_llama_cpp_server_agrees_with_transformers(reference, llama_server) -> None:
    lm = OpenAICompatibleLM(base_url=llama_server, model=MODEL.name, tokenizer=load_tokenizer(MODEL),
                            num_concurrent=2)
    _assert_agree(_run_both(lm), reference)
