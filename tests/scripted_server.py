"""A scripted OpenAI-compatible server on 127.0.0.1 for the tests: each request is answered as the test says (a
completion, a chat answer, an HTTP 500 or 429, a slow answer, malformed JSON, or a dropped connection)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer:
    """An OpenAI-compatible server whose n-th request gets ``script[n]`` (then ``then`` for every later one).

    An "ok" chat request is answered with ``chat(n, messages)`` (default: "The answer is 4."); ``delay`` seconds
    pass before each answer; every chat request's messages are kept in ``conversations``.
    """

    def __init__(self) -> None:
        self.script: list[str] = []
        self.then = "ok"
        self.chat: Callable[[int, list[dict]], str] = lambda index, messages: "The answer is 4."
        self.delay = 0.0
        self.conversations: list[list[dict]] = []
        self.requests = 0
        self.answered = 0
        self.authorizations: list[str] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    index = server.requests
                    action = server.script[index] if index < len(server.script) else server.then
                    server.requests += 1
                    if "messages" in body:
                        server.conversations.append(body["messages"])
                    server.authorizations.append(self.headers.get("Authorization", ""))
                    server.paths.append(self.path)
                time.sleep(server.delay)
                if action == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if action == "slow":
                    time.sleep(4)
                if action in ("500", "429", "401"):
                    self.send_response(int(action))
                    self.end_headers()
                    self.wfile.write(b'{"error": "scripted failure"}')
                    return
                payload = {"malformed": b'{"choices": [',  # cut short: not JSON
                           "binary": b"\xff\xfe\x00\x9c binary, not UTF-8 \xc3\x28",
                           "shapeless": b'{"choices": [{"index": 0, "text": ""}]}',  # JSON without log-probabilities
                           }.get(action) or json.dumps(_answer(body, server.chat(index, body.get("messages")))).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                if action not in ("malformed", "shapeless", "binary"):
                    with server.lock:
                        server.answered += 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def reset(self, script: list[str], then: str = "ok", chat: Callable[[int, list[dict]], str] | None = None,
              delay: float = 0.0) -> None:
        self.script, self.then, self.requests, self.answered = script, then, 0, 0
        self.paths, self.authorizations, self.conversations, self.delay = [], [], [], delay
        self.chat = chat or (lambda index, messages: "The answer is 4.")


def _answer(body: dict, chat_reply: str) -> dict:
    """A completion; an echoed prompt gets log-probability -0.5 at every position (at least one per character)."""
    if "messages" in body:
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": chat_reply}}]}
    prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
    if not body.get("echo"):
        return {"choices": [{"index": i, "text": "The answer is 4."} for i in range(len(prompts))]}
    return {"choices": [
        {"index": i, "text": prompt, "logprobs": {"token_logprobs": [None] + [-0.5] * (len(prompt) + 1),
                                                  "top_logprobs": [None] + [{"x": -0.5}] * (len(prompt) + 1)}}
        for i, prompt in enumerate(prompts)
    ]}
