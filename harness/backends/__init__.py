"""Model backends, registered with lm-eval (``register_model``) beside lm-eval's own.

``harness-hf`` is lm-eval's ``hf`` model with prefix-shared scoring (:class:`PrefixSharingLM`);
``harness-llama-cpp`` runs GGUF files through llama.cpp; ``harness-openai-compatible`` talks to any
OpenAI-compatible server. lm-eval's models are imported first, so ``hf`` and ``vllm`` keep resolving.
"""

import lm_eval.models  # noqa: F401  (registers lm-eval's built-in models before ours)
from lm_eval.api.registry import get_model, register_model

from harness.backend_kinds import BACKENDS, Backend
from harness.backends.llama_cpp import LlamaCppLM
from harness.backends.openai_compatible import OpenAICompatibleLM
from harness.backends.prefix import PrefixSharingLM, ScoringStats

register_model(BACKENDS["harness"].lm_eval_model)(PrefixSharingLM)
register_model(BACKENDS["llama-cpp"].lm_eval_model)(LlamaCppLM)
register_model(BACKENDS["openai-compatible"].lm_eval_model)(OpenAICompatibleLM)



def backend_class(kind: Backend):
    """The lm-eval model class of a backend (``harness.backend_kinds.BACKENDS``)."""
    return get_model(kind.lm_eval_model)


__all__ = ["LlamaCppLM", "OpenAICompatibleLM", "PrefixSharingLM", "ScoringStats", "backend_class"]
