"""open-llm-harness: run open models through lm-eval tasks, with provenance on every figure.

Public API: the model registry (:func:`resolve_model`, :data:`REGISTRY`), the task catalogue
(:func:`catalogue`), the core types (:class:`RunSpec`, :class:`RunResult`, :class:`SampleRecord`), runs
(:func:`evaluate`), results read back (:func:`load_result`, :func:`load_samples`),
published scores (:func:`load_published`), reports (:func:`write_report`) and paired comparison
(:func:`compare_runs`).
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
    "RunResult",
    "RunSpec",
    "SampleRecord",
    "TaskInfo",
    "catalogue",
    "compare_runs",
    "load_published",
    "load_result",
    "load_samples",
    "resolve_model",
    "evaluate",
    "write_report",
]


_LAZY = {
    "RunSpec": "harness.core", "RunResult": "harness.core", "SampleRecord": "harness.core",
    "load_result": "harness.core", "load_samples": "harness.core", "evaluate": "harness.runner",
    "TaskInfo": "harness.tasks", "catalogue": "harness.tasks",
    "load_published": "harness.published", "write_report": "harness.report", "compare_runs": "harness.paired",
}


def __getattr__(name: str):
    """Heavy parts (lm-eval, torch) load on first use, so `harness models` stays fast."""
    if name not in _LAZY:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
