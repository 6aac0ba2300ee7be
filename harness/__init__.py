"""open-llm-harness: run open models through lm-eval tasks, with provenance on every figure.

Public API: the model registry (:func:`resolve_model`, :data:`REGISTRY`), the task catalogue
(:func:`catalogue`), runs (:class:`RunSpec`, :func:`run`) and the results store (:func:`load_result`).
"""

from harness import paths as _paths  # noqa: F401  (points lm-eval's cache at the project before lm-eval loads)
from harness.errors import HarnessError
from harness.registry import DEFAULT_MODEL, REGISTRY, ModelSpec, resolve_model

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "REGISTRY",
    "HarnessError",
    "ModelSpec",
    "RunSpec",
    "TaskInfo",
    "TaskOutcome",
    "catalogue",
    "load_result",
    "resolve_model",
    "run",
]


def __getattr__(name: str):
    """Heavy parts (lm-eval, torch) load on first use, so `harness models` stays fast."""
    if name in {"RunSpec", "TaskOutcome", "run"}:
        from harness import run as _run

        return getattr(_run, name)
    if name in {"TaskInfo", "catalogue"}:
        from harness import tasks as _tasks

        return getattr(_tasks, name)
    if name == "load_result":
        from harness.store import load_result

        return load_result
    raise AttributeError(name)
