"""Checks of a run's settings before any work: every value refused here is refused in one line, before a
model loads or a document is read, so a bad value never turns into a complete-looking wrong result."""

from __future__ import annotations

import json
import re
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

DTYPES = ("auto", "float32", "float16", "bfloat16")
DEVICES = ("cpu", "cuda")
_BATCH_SIZE = re.compile(r"^(auto(:[1-9][0-9]*)?|[1-9][0-9]*)$")


YAML_ERRORS = (yaml.YAMLError, UnicodeDecodeError, RecursionError)


def yaml_problem(exc: BaseException) -> str:
    """What is wrong with a YAML file, in words, with the line where the parser gives one."""
    if isinstance(exc, (yaml.reader.ReaderError, UnicodeDecodeError)):
        return "it is not UTF-8 text (a binary file, or saved in another encoding)"
    if isinstance(exc, RecursionError):
        return "it is nested too deeply to read"
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark else ""
    return f"malformed YAML{where}: {getattr(exc, 'problem', None) or type(exc).__name__}"


def whole_number(value: Any, what: str, minimum: int, fix: str) -> int:
    """``value`` as an int of at least ``minimum`` (booleans and floats are refused, as YAML may give them)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise HarnessError(f"{what} is {value!r}, not a whole number ≥ {minimum}", fix)
    return value


def bootstrap_rounds(value: int) -> int:
    """Bootstrap resamples for a 95% interval: 100 or more (fewer leave the 2.5th percentile to a few draws)."""
    if value < 100:
        raise HarnessError(f"--rounds {value} is too few for a 95% interval", "give 100 or more bootstrap rounds")
    return value


def batch_size(value: Any, where: str = "--batch-size") -> str:
    text = str(value)
    if isinstance(value, bool) or not _BATCH_SIZE.match(text):
        raise HarnessError(f"{where} is {value!r}", "give a whole number ≥ 1, `auto` or `auto:N` (N retries)")
    return text


def dtype(value: str | None, where: str = "--dtype") -> str | None:
    if value is not None and value not in DTYPES:
        raise HarnessError(f"{where} {value!r} is not a dtype the backends know", f"use one of {', '.join(DTYPES)}")
    return value


def seeds(value: Any, where: str = "--seed") -> tuple[tuple[str, int | None], ...]:
    """lm-eval's ``--seed``, read by lm-eval's own parser: one integer for all four seeds (Python's ``random``,
    numpy, torch, the few-shot sampler), or three or four comma-separated integers (``None`` leaves that one
    unseeded; a missing fourth takes lm-eval's default). A YAML list is taken as those values."""
    from lm_eval._cli.utils import _int_or_none_list_arg_type

    from harness.core import SEEDS

    fix = ("give one integer (e.g. 42) or four comma-separated ones in lm-eval's order random, numpy, torch, "
           "few-shot (e.g. 0,1234,1234,1234; None leaves one unseeded)")
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    if isinstance(value, bool):
        raise HarnessError(f"{where} is {value!r}, not a seed", fix)
    try:
        values = _int_or_none_list_arg_type(3, 4, ",".join(str(seed) for _, seed in SEEDS), text)
    except ValueError as exc:
        raise HarnessError(f"{where} {text!r} is not lm-eval's seed format ({exc})", fix) from None
    if any(seed is not None and not 0 <= seed < 2**32 for seed in values):  # numpy takes no other
        raise HarnessError(f"{where} {text!r} has a seed outside 0 to 2**32 - 1", fix)
    return tuple((name, seed) for (name, _), seed in zip(SEEDS, values))


# Generation settings lm-eval's own models read themselves (the rest go to transformers' generate).
_LM_EVAL_GENERATION_KEYS = ("until", "max_gen_toks", "do_sample", "temperature")


def generation_kwargs(value: Any, backend_name: str = "harness", where: str = "--gen-kwargs") -> str | None:
    """lm-eval's ``--gen_kwargs`` (``key=value,…`` or a JSON object, read by lm-eval's own CLI parser; a YAML
    mapping as is), which overrides each generation task's ``generation_kwargs``; as canonical JSON (the run
    spec's form). Each key must be one the backend reads (a key transformers' ``generate`` does not take would
    fail after the model work; one llama.cpp's model does not read would be dropped without a word)."""
    if value is None or value == {} or value == "":
        return None
    if isinstance(value, str):
        from lm_eval._cli.utils import key_val_to_dict, try_parse_json

        parsed = try_parse_json(value)
        try:
            parsed = parsed if isinstance(parsed, dict) else key_val_to_dict(value)
        except ValueError as exc:
            raise HarnessError(f"{where} {value!r} cannot be read ({exc})",
                               "give key=value pairs separated by commas, e.g. max_gen_toks=256,temperature=0, "
                               "or a JSON object") from None
    else:
        parsed = value
    if not isinstance(parsed, dict):
        raise HarnessError(f"{where} is {value!r}, not a mapping of settings", "give e.g. max_gen_toks=256")
    from harness.backend_kinds import BACKENDS

    settings = BACKENDS[backend_name].generation_settings if backend_name in BACKENDS else None
    known = None if settings is None else settings()
    unknown = sorted(set(parsed) - set(_LM_EVAL_GENERATION_KEYS) - known) if known is not None else []
    if unknown:
        raise HarnessError(f"{where}: --backend {backend_name} reads no generation setting {', '.join(unknown)}",
                           f"use lm-eval's {', '.join(_LM_EVAL_GENERATION_KEYS)}"
                           + (", or a field of transformers' GenerationConfig (top_p, top_k, repetition_penalty, …)"
                              if known else ""))
    until = parsed.get("until")
    if until is not None and not (isinstance(until, str) or (
            isinstance(until, list) and all(isinstance(stop, str) for stop in until))):
        raise HarnessError(f"{where}: until is {until!r}",
                           'give a string or a list of strings, e.g. until=["Question:"]')
    if "max_gen_toks" in parsed:
        whole_number(parsed["max_gen_toks"], f"{where}: max_gen_toks", 1, "give the most tokens to generate, ≥ 1")
    temperature = parsed.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                    or temperature < 0):
        raise HarnessError(f"{where}: temperature is {temperature!r}", "give a number ≥ 0 (0: greedy)")
    return json.dumps(parsed, sort_keys=True, ensure_ascii=False)


def device(value: str, where: str = "--device") -> str:
    if value not in DEVICES:
        raise HarnessError(f"{where} {value!r} is not a device", f"use one of {', '.join(DEVICES)}")
    if value == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise HarnessError(f"{where} cuda was asked for, and this machine's torch sees no CUDA device",
                               "run on a machine with an NVIDIA GPU and a CUDA build of torch, or use --device cpu")
    return value


def base_url(value: str | None, where: str = "--base-url") -> str | None:
    """A server's API root: http(s), a host, no credentials (a key goes in $HARNESS_API_KEY, never a URL)."""
    if value is None:
        return None
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number in range)
    except ValueError as exc:
        raise HarnessError(f"{where} {value!r} is not a URL ({exc})", "give e.g. http://127.0.0.1:8000/v1") from None
    if parts.username or parts.password:
        raise HarnessError(f"{where} carries credentials (user:password@), which would be written into every result",
                           "remove them from the URL and put the API key in $HARNESS_API_KEY")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HarnessError(f"{where} {value!r} is not an http(s) address with a host",
                           "give e.g. http://127.0.0.1:8000/v1")
    return value


def writable_folder(folder: Path, where: str) -> Path:
    """Create ``folder`` if needed and prove it writable by writing (and removing) a probe file."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise HarnessError(f"{where} {folder} is a file, not a folder", "give a folder (it is created if missing)")
    probe = folder / f".harness-write-probe-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise HarnessError(f"{where} {folder} cannot be written ({exc.strerror or exc})",
                           "choose a folder you can write to, or fix its permissions") from None
    return folder


def spec(run, here: bool = True) -> None:
    """Every setting of a :class:`~harness.core.RunSpec` that can be wrong on its own; the device's
    presence only where the run is ``here`` (a Ray sweep's cells run on the cluster's machines)."""
    if run.num_fewshot is not None:
        whole_number(run.num_fewshot, "--num-fewshot", 0, "give 0 or more examples")
    if run.limit is not None:
        whole_number(run.limit, "--limit", 1, "give a positive number of docs")
    batch_size(run.batch_size)
    dtype(run.dtype)
    if here:
        device(run.device)
    base_url(run.base_url)
    seeds(",".join(str(seed) for _, seed in run.seeds))
    generation_kwargs(run.gen_kwargs, run.backend)
