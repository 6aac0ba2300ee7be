"""Any server that speaks OpenAI's API: vLLM, TGI, llama.cpp's server, Ollama, llama-cpp-python's server.

Log-likelihoods use ``/v1/completions`` with ``echo`` and ``logprobs`` through lm-eval's
``local-completions`` model (concurrent requests, a timeout per request, retries with exponential
backoff). Prompts are sent as text; each continuation's log-probabilities are read from the end of the
echoed prompt, so a BOS the server adds on its own does not shift them (the generated token after it is
skipped, unless the server stopped on an EOS it does not echo, as llama-cpp-python does). Generation sends plain
prompts (exactly what the other backends see) to ``/v1/completions``, and conversations rendered by
``--chat`` as messages to ``/v1/chat/completions``, where the server applies the model's template.

The API key is read from ``$HARNESS_API_KEY`` (else ``$OPENAI_API_KEY``) when each request is sent;
it is never stored on the model object's arguments, in results or in logs. When retries run out, the
run stops with one line naming the server and the cause; answers already received stay in the run's
request cache, so a rerun does not ask for them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
from collections.abc import Iterator

import aiohttp
import requests as http
from lm_eval.api.instance import Instance
from lm_eval.models.api_models import JsonChatStr
from lm_eval.models.openai_completions import LocalChatCompletion, LocalCompletionsAPI
from lm_eval.models.utils import chunks
from tenacity import retry, stop_after_attempt, wait_exponential
from tqdm import tqdm

from harness.errors import HarnessError



class MalformedAnswer(ValueError):
    """The server's JSON answer lacks a field the client reads, or holds it in another type."""


SERVER_ERRORS = (http.RequestException, aiohttp.ClientError, asyncio.TimeoutError, json.JSONDecodeError,
                 UnicodeDecodeError)


@contextlib.contextmanager
def _reading_answer() -> Iterator[None]:
    """Reading a server's JSON answer: a missing or mistyped field becomes a :class:`MalformedAnswer`."""
    try:
        yield
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedAnswer(f"malformed answer ({type(exc).__name__}: {exc})") from exc


class RenderedChat(str):
    """A conversation rendered by the model's chat template, still carrying its messages.

    Log-likelihood requests use the text; generation sends the messages to ``/v1/chat/completions``.
    """

    messages: list[dict[str, str]]


def _api_key() -> str:
    return os.environ.get("HARNESS_API_KEY") or os.environ.get("OPENAI_API_KEY", "")


def _bearer_header() -> dict:
    return {"Authorization": f"Bearer {_api_key()}"}


class _RedactKey(logging.Filter):
    """lm-eval logs failed requests with their headers: the API key is replaced before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        key = _api_key()
        if key and key in record.getMessage():
            record.msg, record.args = record.getMessage().replace(key, "<api key>"), ()
        return True


class _HoldRetryNoise(logging.Filter):
    """lm-eval logs every failed attempt, a dozen lines for one unreachable server: while a request batch
    runs they are held back, and a failure ends in the harness's own one line instead."""

    active = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.active and record.levelno >= logging.WARNING)


_RETRY_NOISE = _HoldRetryNoise()
logging.getLogger("lm_eval.models.api_models").addFilter(_RedactKey())
logging.getLogger("lm_eval.models.api_models").addFilter(_RETRY_NOISE)


class _ChatGenerations(LocalChatCompletion):
    """lm-eval's chat-completions model, with the key read from the environment per request."""

    header = property(lambda self: _bearer_header())

    def parse_generations(self, outputs, **kwargs) -> list[str]:
        with _reading_answer():
            return super().parse_generations(outputs, **kwargs)


class OpenAICompatibleLM(LocalCompletionsAPI):
    """lm-eval's LM interface on an OpenAI-compatible server (``harness run --backend openai-compatible``)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        tokenizer,
        max_length: int = 4096,
        num_concurrent: int = 4,
        max_retries: int = 4,
        timeout: int = 120,
        max_gen_toks: int = 256,
        seed: int = 1234,
    ) -> None:
        root = base_url.rstrip("/")
        options = {"model": model, "num_concurrent": num_concurrent, "max_retries": max_retries,
                   "timeout": timeout, "max_gen_toks": max_gen_toks, "seed": seed, "max_length": max_length}
        super().__init__(base_url=f"{root}/completions", tokenizer_backend="none", **options)
        self.tokenizer = tokenizer  # ours (used for context lengths); prompts still go out as text
        self.tokenizer_backend = "huggingface"
        self.server = root
        self._chat = _ChatGenerations(base_url=f"{root}/chat/completions", **options)

    header = property(lambda self: _bearer_header())

    async def get_batched_requests(self, requests_, cache_keys, *, generate=True, ctxlens=None, **kwargs):
        """lm-eval's concurrent requests (each retried with exponential backoff), except that the first request
        to run out of retries cancels the rest and is raised only once every other request has finished or
        been cancelled: every answer received is cached, and no request is left running behind the error."""
        ctxlens = ctxlens or [None] * len(requests_)
        semaphore = asyncio.Semaphore(self._concurrent)
        connector = aiohttp.TCPConnector(limit=self._concurrent)
        call = retry(stop=stop_after_attempt(self.max_retries), wait=wait_exponential(multiplier=0.5, min=1, max=10),
                     reraise=True)(self.amodel_call)
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
            with tqdm(total=len(requests_), desc="Requesting API") as bar:

                async def one(messages, keys, lengths):
                    answers = await call(session=session, sem=semaphore, messages=messages, cache_keys=keys,
                                         generate=generate, ctxlens=lengths, **kwargs)
                    bar.update(len(messages))
                    return answers

                n = self._batch_size
                tasks = [asyncio.create_task(one(*batch)) for batch in
                         zip(chunks(requests_, n=n), chunks(cache_keys, n=n), chunks(ctxlens, n=n), strict=True)]
                _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION) if tasks else ((), ())
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        failures = [task.exception() for task in tasks if task.done() and not task.cancelled() and task.exception()]
        if failures:
            raise failures[0]
        return [task.result() for task in tasks]

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        rendered = RenderedChat(self.tokenizer.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt))
        rendered.messages = chat_history
        return rendered

    def parse_generations(self, outputs, **kwargs) -> list[str]:
        with _reading_answer():
            return super().parse_generations(outputs, **kwargs)

    def parse_logprobs(self, outputs, tokens=None, ctxlens=None, **kwargs) -> list[tuple[float, bool]]:
        """Each continuation's log-probability, read from the end of the echoed prompt."""
        answers = []
        with _reading_answer():
            choices = [c for out in (outputs if isinstance(outputs, list) else [outputs])
                       for c in sorted(out["choices"], key=lambda c: c["index"])]
            if len(choices) != len(tokens):
                raise MalformedAnswer(f"the server answered {len(choices)} choices for {len(tokens)} prompts")
            for choice, request_tokens, ctxlen in zip(choices, tokens, ctxlens, strict=True):
                n = len(request_tokens) - ctxlen
                end = len(choice["logprobs"]["token_logprobs"]) - self._generated_entries(choice, request_tokens)
                logprobs = choice["logprobs"]["token_logprobs"][end - n:end]
                top = choice["logprobs"]["top_logprobs"][end - n:end]
                if len(logprobs) != n or any(value is None for value in logprobs):
                    raise MalformedAnswer(f"the server echoed {len(logprobs)} prompt log-probabilities, expected {n}")
                greedy = all(value >= max(alternatives.values())
                             for value, alternatives in zip(logprobs, top, strict=True))
                answers.append((float(sum(logprobs)), greedy))
        return answers

    def _generated_entries(self, choice: dict, request_tokens: list[int]) -> int:
        """How many entries after the echoed prompt the answer holds: the one generated token, except when the
        server stopped on a stop token it does not echo (llama-cpp-python drops an EOS from the log-probabilities;
        vLLM keeps it): then the echoed list ends with the prompt's last token."""
        if choice.get("finish_reason") == "stop" and choice["logprobs"]["tokens"][-1] == self.tokenizer.decode(
                request_tokens[-1:]):
            return 0
        return 1

    def _server_call(self, method, requests_: list[Instance], what: str):
        _RETRY_NOISE.active = True
        try:
            return method(requests_)
        except MalformedAnswer as exc:
            raise HarnessError(
                f"the server at {self.server} answered {what} in a form this client cannot read ({exc})",
                "serve the model from an OpenAI-compatible server that echoes prompt log-probabilities "
                "(llama.cpp's or vLLM's), then rerun: answers already received are cached",
            ) from None
        except SERVER_ERRORS as exc:
            reason = f"{type(exc).__name__}: {str(exc).strip()[:200]}" if str(exc).strip() else type(exc).__name__
            raise HarnessError(
                f"the server at {self.server} failed {what} after {self.max_retries} tries ({reason})",
                "check that it is up and serving this model, then rerun: answers already received are cached",
            ) from None
        finally:
            _RETRY_NOISE.active = False

    def loglikelihood(self, requests_: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return self._server_call(lambda r: super(OpenAICompatibleLM, self).loglikelihood(r, disable_tqdm),
                                 requests_, "log-likelihood requests")

    def generate_until(self, requests_: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """Plain prompts through ``/v1/completions`` (lm-eval caches each answer as it arrives); conversations
        (``--chat``) through ``/v1/chat/completions``, a chunk at a time, each chunk cached as it finishes."""
        if not any(getattr(request.args[0], "messages", None) for request in requests_):
            return self._server_call(lambda r: super(OpenAICompatibleLM, self).generate_until(r, disable_tqdm),
                                     requests_, "generation requests")
        answers: list[str] = []
        step = max(1, self._concurrent) * 4
        for start in range(0, len(requests_), step):
            chunk = requests_[start:start + step]
            as_chat = []
            for request in chunk:
                converted = copy.copy(request)
                converted.arguments = (JsonChatStr(json.dumps(request.args[0].messages, ensure_ascii=False)),
                                       request.args[1])
                as_chat.append(converted)
            texts = self._server_call(lambda r: self._chat.generate_until(r, disable_tqdm=True), as_chat,
                                      "generation requests")
            for request, text in zip(chunk, texts, strict=True):
                self.cache_hook.add_partial("generate_until", request.args, text)
            answers.extend(texts)
        return answers
