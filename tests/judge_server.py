"""A scripted OpenAI-compatible judge on 127.0.0.1 for the judge tests: each request to ``/v1/chat/completions``
is answered as a script says (a judgment text, an HTTP status, or a connection dropped without an answer), and
every request's messages are logged."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = tuple[str, object]  # ("text", judgment) | ("status", code) | ("drop", None)


def rating_reply(text: str) -> Callable[[int, list[dict]], Reply]:
    """Every request is answered with the same judgment text."""
    return lambda index, messages: ("text", text)


@dataclass
class ScriptedJudge:
    """``script(index, messages)`` decides each reply; ``delay`` seconds pass before each one."""

    script: Callable[[int, list[dict]], Reply]
    delay: float = 0.0
    requests: list[list[dict]] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)

    def __enter__(self) -> ScriptedJudge:
        judge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    index = len(judge.requests)
                    judge.requests.append(body["messages"])
                    judge.headers.append(dict(self.headers))
                time.sleep(judge.delay)
                kind, value = judge.script(index, body["messages"])
                if kind == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if kind == "status":
                    payload, code = b'{"error": "scripted failure"}', int(value)
                else:
                    payload, code = json.dumps({"id": f"j{index}", "object": "chat.completion", "model": body["model"],
                                                "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                                    "role": "assistant", "content": value}}]}).encode(), 200
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
