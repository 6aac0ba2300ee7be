"""Whether a Hugging Face hub model's files can be had here — from this machine's hub cache, or from a hub that
answers — checked before any model work. Without it, a model that is not cached on a machine without the hub
costs five retries with their warnings (about 25 s) and a gated one (Llama 2) fails inside transformers; here
each is one line that says what to do. A cached model is never looked up online."""

from __future__ import annotations

import functools

from harness.errors import HarnessError, first_line
from harness.registry import ModelSpec

_PROBE_SECONDS = 10
_PROBED_FILE = "config.json"  # every transformers model has one; transformers reads it first


TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")  # what a tokenizer-only load may find cached


def check_available(model: ModelSpec, cached_enough: tuple[str, ...] = (_PROBED_FILE,)) -> None:
    """One line when the hub model ``model`` cannot be loaded here; nothing for local folders and GGUF files, or
    when any of ``cached_enough`` is in this machine's cache (a tokenizer may be cached without the model)."""
    if model.source == "hub":
        _check(model.hub_id, model.revision or "main", cached_enough)


@functools.cache
def _check(hub_id: str, revision: str, cached_enough: tuple[str, ...]) -> None:
    from huggingface_hub import constants, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError, RepositoryNotFoundError,
                                        RevisionNotFoundError)
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    if any(isinstance(try_to_load_from_cache(hub_id, name, revision=revision), str) for name in cached_enough):
        return
    model = f"model {hub_id}" + ("" if revision == "main" else f" at revision {revision}")
    fetch = (f"download it where the hub is reachable (hf download {hub_id}"
             + ("" if revision == "main" else f" --revision {revision}") + f") into {constants.HF_HUB_CACHE}, "
             "or pass a local model folder or .gguf file")
    if constants.HF_HUB_OFFLINE:
        raise HarnessError(f"{model} is not in this machine's Hugging Face cache ({constants.HF_HUB_CACHE}), and "
                           "HF_HUB_OFFLINE is set", f"{fetch}, or unset HF_HUB_OFFLINE")
    url = hf_hub_url(hub_id, _PROBED_FILE, revision=revision)
    try:  # one request, no retries: the hub's own download retries five times before it gives up
        hf_raise_for_status(get_session().head(url, headers=build_hf_headers(), timeout=_PROBE_SECONDS))
    except GatedRepoError:
        raise HarnessError(f"{model} is gated on the Hugging Face hub, and this machine has no access to it",
                           f"accept its licence at {constants.ENDPOINT}/{hub_id} and log in here (hf auth login, "
                           "or set HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise HarnessError(f"the Hugging Face hub has no model {hub_id} (or it is private)",
                           "check the id (organisation/name), or log in (hf auth login) for a private one") from None
    except RevisionNotFoundError:
        raise HarnessError(f"model {hub_id} has no revision {revision} on the hub",
                           "give a branch, tag or commit the model has") from None
    except EntryNotFoundError:
        raise HarnessError(f"{model} has no {_PROBED_FILE} on the hub: it is not a transformers model",
                           "pass a transformers model, or the model's .gguf file") from None
    except HfHubHTTPError as exc:
        raise HarnessError(f"the Hugging Face hub answered {first_line(exc, 200)} for {model}",
                           f"try again later, or {fetch}") from None
    except Exception as exc:  # noqa: BLE001 — the HTTP client's transport errors (DNS, refused, timeout)
        raise HarnessError(f"{model} is not in this machine's Hugging Face cache, and the hub at "
                           f"{constants.ENDPOINT} cannot be reached ({type(exc).__name__}: {first_line(exc, 200)})",
                           f"connect to it, or {fetch}") from None
