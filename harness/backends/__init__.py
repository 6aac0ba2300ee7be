"""Model backends, registered with lm-eval (``register_model``) beside lm-eval's own.

``harness-hf`` is lm-eval's ``hf`` model with prefix-shared scoring (:class:`PrefixSharingLM`).
lm-eval's models are imported first, so ``hf`` and ``vllm`` keep resolving.
"""

import lm_eval.models  # noqa: F401  (registers lm-eval's built-in models before ours)
from lm_eval.api.registry import get_model, register_model

from harness.backends.prefix import PrefixSharingLM, ScoringStats

register_model("harness-hf")(PrefixSharingLM)

BACKENDS = {"harness": "harness-hf", "hf": "hf"}


def backend_class(name: str):
    """The lm-eval model class behind a ``--backend`` name."""
    return get_model(BACKENDS[name])


__all__ = ["BACKENDS", "PrefixSharingLM", "ScoringStats", "backend_class"]
