"""Model backends, registered with lm-eval (``register_model``) beside lm-eval's own.

``harness-hf`` is lm-eval's ``hf`` model with prefix-shared scoring (:class:`PrefixSharingLM`);
``harness-llama-cpp`` runs GGUF files through llama.cpp; ``harness-openai-compatible`` talks to any
OpenAI-compatible server. lm-eval's models are imported first, so ``hf`` and ``vllm`` keep resolving.
"""

import lm_eval.models  # noqa: F401  (registers lm-eval's built-in models before ours)
from lm_eval.api.registry import get_model, register_model

from harness.backends.llama_cpp import LlamaCppLM
from harness.backends.openai_compatible import OpenAICompatibleLM
from harness.backends.prefix import PrefixSharingLM, ScoringStats

register_model("harness-hf")(PrefixSharingLM)
register_model("harness-llama-cpp")(LlamaCppLM)
register_model("harness-openai-compatible")(OpenAICompatibleLM)

BACKENDS = {
    "harness": "harness-hf",
    "hf": "hf",
    "llama-cpp": "harness-llama-cpp",
    "openai-compatible": "harness-openai-compatible",
    "vllm": "vllm",
}


def backend_class(name: str):
    """The lm-eval model class behind a ``--backend`` name."""
    return get_model(BACKENDS[name])


__all__ = ["BACKENDS", "LlamaCppLM", "OpenAICompatibleLM", "PrefixSharingLM", "ScoringStats", "backend_class"]
