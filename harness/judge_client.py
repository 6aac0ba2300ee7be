"""The judge's endpoint: any OpenAI-compatible chat-completions server (OpenAI's GPT-4 with the user's key, a
local vLLM or llama.cpp server), asked as FastChat asks its judge (temperature 0, up to 2,048 tokens, one
choice).

The API key is read from ``$HARNESS_JUDGE_API_KEY`` (else ``$OPENAI_API_KEY``) when each request is sent and
is never stored. A refused connection, a dropped one, a timeout, HTTP 429 or 5xx and an unreadable answer are
retried with exponential backoff (tenacity); another HTTP error (a wrong key, an unknown model) stops at once.
Every judgment is stored in a SQLite cache as it arrives, keyed by the endpoint, the judge model, the
settings and the messages, so a rerun asks only for the judgments it does not have.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from tqdm import tqdm

from harness.errors import HarnessError
from harness.request_cache import RequestCache

Messages = Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class JudgeEndpoint:
    """Where the judge is and how it is asked."""

    base_url: str
    model: str
    temperature: float = 0.0  # FastChat's judge settings (chat_completion_openai(..., temperature=0, max_tokens=2048))
    max_tokens: int = 2048
    retries: int = 5
    timeout: float = 600.0
    parallel: int = 4

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.base_url).netloc

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def identity(self) -> dict[str, object]:
        """What goes into provenance: the judge model, the endpoint's host and the settings (never the key)."""
        return {"model": self.model, "host": self.host, "path": urllib.parse.urlsplit(self.url).path,
                "temperature": self.temperature, "max_tokens": self.max_tokens}

    def key(self, messages: Messages) -> str:
        text = json.dumps({"judge": self.identity(), "messages": list(messages)}, sort_keys=True, ensure_ascii=False)
        return "judgment:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Retryable(Exception):
    """A failure worth another try: the server was busy or broken, or its answer could not be read."""


class _Refused(Exception):
    """An HTTP error that another try cannot mend (401, 403, 404, 400...)."""


def _api_key() -> str:
    return os.environ.get("HARNESS_JUDGE_API_KEY") or os.environ.get("OPENAI_API_KEY", "")


def _ask_once(endpoint: JudgeEndpoint, messages: Messages) -> str:
    key = _api_key()
    try:
        response = requests.post(endpoint.url, timeout=endpoint.timeout,
                                 headers={"Authorization": f"Bearer {key}"} if key else {},
                                 json={"model": endpoint.model, "messages": list(messages), "n": 1,
                                       "temperature": endpoint.temperature, "max_tokens": endpoint.max_tokens})
    except requests.RequestException as exc:
        raise _Retryable(f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise _Retryable(f"HTTP {response.status_code}: {response.text[:200]}")
    if response.status_code >= 400:
        raise _Refused(f"HTTP {response.status_code}: {response.text[:200].strip()}")
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise _Retryable(f"an answer without choices[0].message.content ({type(exc).__name__})") from None
    if not isinstance(content, str):
        raise _Retryable("an answer whose message content is not text")
    return content


def ask(endpoint: JudgeEndpoint, messages: Messages) -> str:
    """One judgment, retried with exponential backoff (0.5 s, 1 s, 2 s … at most 16 s between tries)."""
    retrying = Retrying(stop=stop_after_attempt(endpoint.retries), retry=retry_if_exception_type(_Retryable),
                        wait=wait_exponential(multiplier=0.5, min=0.5, max=16), reraise=True)
    return retrying(_ask_once, endpoint, messages)


def _failure(endpoint: JudgeEndpoint, exc: Exception, cache_path: Path, received: int) -> HarnessError:
    kept = f"the {received} judgments received are cached in {cache_path} and a rerun does not ask for them again"
    if isinstance(exc, _Refused):
        return HarnessError(f"the judge at {endpoint.url} refused the request for {endpoint.model} ({exc})",
                            "check --judge-model and the API key ($HARNESS_JUDGE_API_KEY or $OPENAI_API_KEY); "
                            + kept)
    return HarnessError(f"the judge at {endpoint.url} failed after {endpoint.retries} tries ({exc})",
                        f"check that it is up and serves {endpoint.model}, then rerun: {kept}")


def judge_all(endpoint: JudgeEndpoint, conversations: Mapping[str, Messages], cache_path: Path) -> dict[str, str]:
    """The judgment for each conversation (by its key), from the cache or asked for, ``parallel`` at a time.

    The first judgment asked for goes alone, so an unreachable judge fails fast with one line; after a
    failure, no new request starts and every answer still arriving is cached before the error is raised.
    """
    cache = RequestCache(cache_path)
    try:
        found = {key: cache[key] for key in conversations if key in cache}
        missing = [key for key in conversations if key not in found]
        with tqdm(total=len(conversations), initial=len(found), desc=f"Judging ({endpoint.model})",
                  unit="judgment") as bar:

            def keep(key: str, text: str) -> None:
                cache[key] = found[key] = text
                bar.update()

            if missing:
                try:
                    keep(missing[0], ask(endpoint, conversations[missing[0]]))
                except (_Retryable, _Refused) as exc:
                    raise _failure(endpoint, exc, cache_path, cache.stored) from None
            with concurrent.futures.ThreadPoolExecutor(max_workers=endpoint.parallel) as pool:
                futures = {pool.submit(ask, endpoint, conversations[key]): key for key in missing[1:]}
                error = None
                for future in concurrent.futures.as_completed(futures):
                    if future.cancelled():
                        continue
                    if future.exception() is None:
                        keep(futures[future], future.result())
                    elif error is None:
                        error = future.exception()
                        for pending in futures:
                            pending.cancel()
                if error is not None:
                    raise _failure(endpoint, error, cache_path, cache.stored)
        return found
    finally:
        cache.close()


def check_url(base_url: str) -> None:
    """``--judge-base-url`` is an http(s) address."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HarnessError(f"--judge-base-url {base_url!r} is not an http(s) address",
                           "give the judge's API root, e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1")
