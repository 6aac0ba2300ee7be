"""``harness answer``: a chat model answers MT-bench's or the Vicuna benchmark's questions, as FastChat's
``gen_model_answer.py`` has it answer them, on any backend.

Each question's turns are one conversation through the model's chat template (turn 2 sees the model's own
turn-1 answer), sampled at FastChat's temperature for the question's category (greedy below 1e-4), up to
1,024 new tokens, stopped at the tokenizer's EOS (and the template's own stop text), special tokens removed
and the text stripped as FastChat does. Every answer is kept in the run's request cache as it arrives,
keyed by its rendered prompt and sampling settings, so a killed run resumes where it stopped; the answer
file is written once, when every question is answered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from harness import checks, provenance, runner, store
from harness.backend_kinds import backend
from harness.chat_bench import MAX_NEW_TOKENS, GREEDY_BELOW, ChatBench, Question, load_questions, select
from harness.core import RunSpec
from harness.errors import HarnessError
from harness.request_cache import RequestCache
from harness.templates import TEMPLATES, chat_messages, check_chat_options

ANSWERS_SCHEMA = "open-llm-harness/answers/v1"


def answer_path(output: Path, spec: RunSpec, chat_bench: ChatBench) -> Path:
    return Path(output) / f"{spec.model.slug}__{chat_bench.name}.answers.jsonl"


def sampling(question: Question, max_new_tokens: int, stop: Sequence[str]) -> dict[str, Any]:
    """lm-eval's generation arguments for a question: its category's temperature, greedy below 1e-4."""
    temperature = question.temperature
    return {"until": list(stop), "max_gen_toks": max_new_tokens, "do_sample": temperature >= GREEDY_BELOW,
            "temperature": temperature}


def _key(prompt: str, gen_kwargs: dict[str, Any], seed: int) -> str:
    messages = getattr(prompt, "messages", None)  # a chat server receives the conversation, not the text
    text = json.dumps({"prompt": str(prompt), "messages": messages, "gen_kwargs": gen_kwargs, "seed": seed},
                      sort_keys=True, ensure_ascii=False)
    return "chat-answer:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _clean(text: str, tokenizer) -> str:
    """FastChat's clean-up of an answer: the tokenizer's special tokens removed, whitespace stripped."""
    for token in getattr(tokenizer, "special_tokens_map", {}).values():
        for one in token if isinstance(token, list) else [token]:
            text = text.replace(one, "")
    return text.strip()


def _generate(lm, prompt: str, gen_kwargs: dict[str, Any], seed: int) -> str:
    from lm_eval.api.instance import Instance
    from transformers import set_seed

    set_seed(seed)  # a sampled answer is drawn from this seed, whatever was generated before it
    llama = getattr(lm, "llm", None)  # llama.cpp samples with its own generator
    if hasattr(llama, "set_seed"):
        llama.set_seed(seed)
    request = Instance(request_type="generate_until", doc={}, arguments=(prompt, dict(gen_kwargs)), idx=0)
    return lm.generate_until([request], disable_tqdm=True)[0]


def answer(spec: RunSpec, chat_bench: ChatBench, output: Path, limit: int | None = None,
           question_ids: tuple[int, ...] = (), max_new_tokens: int = MAX_NEW_TOKENS, seed: int = 0,
           loaded: runner.Loaded | None = None) -> Path:
    """Answer the chosen questions; returns the answer file (FastChat's format, a ``.json`` of provenance
    beside it). Everything is checked before the model loads."""
    spec = dataclasses.replace(spec, tasks=(chat_bench.name,), chat=True, limit=limit)
    checks.spec(spec)
    checks.whole_number(max_new_tokens, "--max-new-tokens", 1, "give the most tokens an answer may have, e.g. 1024")
    check_chat_options(spec.model, True, spec.system)
    every_question = load_questions(chat_bench)
    questions = select(every_question, limit, question_ids)
    output = Path(output)
    checks.writable_folder(output, "--output")
    started, clock = provenance.utc_now(), time.perf_counter()
    lm, model_info = loaded or runner.load(spec)
    template = TEMPLATES.get(spec.model.template)
    stop = template.stop if template else ()
    cache_path = runner.request_cache_path(spec, output)
    cache = RequestCache(cache_path)
    rows = []
    try:
        with tqdm(total=sum(len(q.turns) for q in questions), desc=f"Answering {chat_bench.label}",
                  unit="turn") as bar:
            for question in questions:
                gen_kwargs = sampling(question, max_new_tokens, stop)
                messages = chat_messages(question.turns[0], spec.system)
                prompts, turns = [], []
                for turn, text in enumerate(question.turns, start=1):
                    if turn > 1:
                        messages += [{"role": "assistant", "content": turns[-1]}, {"role": "user", "content": text}]
                    prompt = lm.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True)
                    turn_seed = seed * 1_000_003 + question.question_id * 10 + turn
                    key = _key(prompt, gen_kwargs, turn_seed)
                    if key in cache:
                        generated = cache[key]
                    else:
                        generated = _generate(lm, prompt, gen_kwargs, turn_seed)
                        cache[key] = generated
                    prompts.append(str(prompt))
                    turns.append(_clean(generated, lm.tokenizer))
                    bar.update()
                rows.append({
                    "question_id": question.question_id, "answer_id": key[-22:], "model_id": spec.model.name,
                    "choices": [{"index": 0, "turns": turns}], "tstamp": time.time(), "bench": chat_bench.name,
                    "category": question.category, "prompts": prompts, "temperature": gen_kwargs["temperature"],
                    "max_new_tokens": max_new_tokens, "seed": seed,
                })
        counts = cache.counts
    except (KeyboardInterrupt, HarnessError):
        raise
    except Exception as exc:  # one line naming the cause; the answers so far stay in the cache
        raise runner.failure(exc, chat_bench.name, spec.device, output, cache_path) from None
    finally:
        cache.close()
    path = answer_path(output, spec, chat_bench)
    questions_file = chat_bench.files()[0]
    store.write_json(path.with_suffix(".json"), {
        "schema": ANSWERS_SCHEMA, "bench": chat_bench.name, "model": spec.model.name, "spec": spec.to_dict(),
        "questions": {"file": str(questions_file), "sha256": provenance.sha256_file(questions_file),
                      "ids": [q.question_id for q in questions], "of": len(every_question)},
        "sampling": {"temperature_by_category": "FastChat's temperature_config (llm_judge/common.py)",
                     "temperatures": {q.category: q.temperature for q in questions},
                     "greedy_below": GREEDY_BELOW, "max_new_tokens": max_new_tokens, "seed": seed,
                     "stop": ["the tokenizer's EOS", *stop]},
        "provenance": {
            "model": model_info, "chat_template": runner.chat_provenance(spec, lm),
            "harness": {"version": runner.harness_version(), **provenance.git_commit()},
            "libraries": provenance.library_versions(), "backend": spec.backend,
            "backend_package": backend(spec.backend).installed() or None, "device": spec.device,
            "dtype": backend(spec.backend).loaded_dtype(spec, lm), "server": spec.base_url,
            "request_cache": {"file": cache_path.name, **counts}, "started": started.isoformat(),
            "finished": provenance.utc_now().isoformat(), "wall_seconds": round(time.perf_counter() - clock, 3),
        },
    })
    store.write_jsonl(path, rows)
    return path
