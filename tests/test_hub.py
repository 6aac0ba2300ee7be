"""A hub model that cannot be had is one line before any model work: `harness run` against a hub on 127.0.0.1
that answers as the Hugging Face hub does (its status codes and ``X-Error-Code`` headers, read by
huggingface_hub's own client), against no hub at all, offline, and with the model already in the cache."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import needs, run_cli

HUB_ID = "example-org/example-model"
# How the hub answers a HEAD of a file it will not give (huggingface_hub's hf_raise_for_status reads these).
ANSWERS = {
    "gated": (401, "GatedRepo", r"model example-org/example-model is gated on the Hugging Face hub, and this "
                                r"machine has no access to it — accept its licence at http://127\.0\.0\.1:\d+/"
                                r"example-org/example-model and log in here"),
    "no such repository": (401, "RepoNotFound", r"the Hugging Face hub has no model example-org/example-model \(or "
                                                r"it is private\) — check the id"),
    "no such revision": (404, "RevisionNotFound", r"model example-org/example-model has no revision main on the hub"),
    "no config.json": (404, "EntryNotFound", r"has no config\.json on the hub: it is not a transformers model"),
    "hub failing": (503, None, r"the Hugging Face hub answered .*503.* — try again later"),
}


class _Hub:
    """Answers every request with one status code and error header; counts the requests."""

    def __init__(self) -> None:
        self.answer: tuple[int, str | None] = (200, None)
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                hub.requests.append(self.path)
                status, code = hub.answer
                self.send_response(status)
                if code:
                    self.send_header("X-Error-Code", code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def hub() -> Iterator[_Hub]:
    server = _Hub()
    yield server
    server.server.shutdown()


def _run(tmp_path: Path, env: dict[str, str]):
    started = time.monotonic()
    done = run_cli("run", "--model", HUB_ID, "--tasks", "arc_easy", "--limit", "2", "--output", str(tmp_path / "out"),
                   env={"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_CACHE": str(tmp_path / "hub-cache"), **env},
                   timeout=300)
    return done, time.monotonic() - started


def _assert_one_line(done, message: str, tmp_path: Path) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(lines) == 1, done.stderr  # no retry warnings before it
    assert re.search(message, lines[0]), lines[0]
    assert not list((tmp_path / "out").glob("*.json"))


@pytest.mark.parametrize("case", ANSWERS)
def test_a_hub_model_the_hub_will_not_give_is_one_line(case: str, hub: _Hub, tmp_path: Path) -> None:
    hub.answer, hub.requests = ANSWERS[case][:2], []
    done, _ = _run(tmp_path, {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url})
    _assert_one_line(done, ANSWERS[case][2], tmp_path)
    # One request for the model: no retries (huggingface_hub itself may also fetch its agent registry).
    assert [path for path in hub.requests if HUB_ID in path] == [f"/{HUB_ID}/resolve/main/config.json"]


def test_a_prompt_for_a_gated_model_is_one_line(hub: _Hub, tmp_path: Path) -> None:
    """`harness prompt` loads only the tokenizer: the same check, before transformers' retries."""
    hub.answer, hub.requests = (401, "GatedRepo"), []
    done = run_cli("prompt", "--model", HUB_ID, "--text", "Hi", timeout=300,
                   env={"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_CACHE": str(tmp_path / "hub-cache"),
                        "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url})
    _assert_one_line(done, ANSWERS["gated"][2], tmp_path)
    assert [path for path in hub.requests if HUB_ID in path] == [f"/{HUB_ID}/resolve/main/config.json"]
    # A tokenizer may be cached without the model: then the hub is not asked (the load goes on, and fails here
    # only because the cached file is no whole tokenizer).
    _cache(tmp_path, "tokenizer_config.json", "{}")
    hub.requests = []
    done = run_cli("prompt", "--model", HUB_ID, "--text", "Hi", timeout=300,
                   env={"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_CACHE": str(tmp_path / "hub-cache"),
                        "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": hub.url})
    assert hub.requests == [] and done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: could not load the tokenizer of {HUB_ID}")


def _cache(tmp_path: Path, name: str, text: str) -> None:
    """``name`` in the model's cached snapshot (the cache layout huggingface_hub reads)."""
    snapshot = tmp_path / "hub-cache" / f"models--{HUB_ID.replace('/', '--')}" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / name).write_text(text)
    (snapshot.parents[1] / "refs").mkdir(exist_ok=True)
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)


def test_no_hub_at_all_is_one_line_without_retries(tmp_path: Path) -> None:
    """A closed port (no DNS needed): the hub's own download would retry five times, about 25 s, warning each time."""
    done, seconds = _run(tmp_path, {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"})
    _assert_one_line(done, r"model example-org/example-model is not in this machine's Hugging Face cache, and the "
                           r"hub at http://127\.0\.0\.1:9 cannot be reached \(ConnectError: .*refused", tmp_path)
    assert seconds < 20


def test_offline_and_not_cached_is_one_line(tmp_path: Path) -> None:
    done, _ = _run(tmp_path, {"HF_HUB_OFFLINE": "1"})
    _assert_one_line(done, r"is not in this machine's Hugging Face cache \(.*hub-cache\), and HF_HUB_OFFLINE is set "
                           r"— download it where the hub is reachable \(hf download example-org/example-model\)",
                     tmp_path)


@needs("mirror")
def test_a_cached_model_is_not_looked_up_online(hub: _Hub, tmp_path: Path) -> None:
    """With the model's config.json in the cache the hub is never asked; loading then goes on (and fails here only
    because the cached snapshot holds no weights: transformers' own error, in one line)."""
    _cache(tmp_path, "config.json", '{"model_type": "llama"}')
    hub.answer, hub.requests = (401, "GatedRepo"), []
    done, _ = _run(tmp_path, {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": hub.url})
    assert hub.requests == []
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: could not load model {HUB_ID}") and "gated" not in last, last
