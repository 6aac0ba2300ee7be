"""The core types every module speaks: what a run is (:class:`RunSpec`), what it produced (:class:`RunResult`,
one per task or group, with its :class:`SampleRecord` rows), and how both are read back from disk.

A ``RunSpec`` is hashable; its :meth:`RunSpec.digest` over the spec plus what it resolved to (task files,
data files, weights, library versions) is a sweep cell's key, and :meth:`RunSpec.to_dict` is written
whole into every result it produced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backend_kinds import BACKENDS
from harness.registry import ModelSpec

SCHEMA = "open-llm-harness/run-result/v1"
JUDGED = "llm_judge"  # the output type of a result graded by an LLM judge (harness judge), not by lm-eval
SEEDS: tuple[tuple[str, int], ...] = (("random_seed", 0), ("numpy_random_seed", 1234), ("torch_random_seed", 1234),
                                      ("fewshot_random_seed", 1234))
# Settings that never change a number (tested): left out of the digest, so an OOM back-off keeps a cell's key.
# Whether programs may run without the OS-level container is a safety choice (the result records which ran).
_NOT_IN_DIGEST = ("batch_size", "allow_unsandboxed_code_execution")


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's numbers: the model, the tasks and every setting."""

    model: ModelSpec
    tasks: tuple[str, ...]
    limit: int | None = None
    num_fewshot: int | None = None
    batch_size: str = "8"
    device: str = "cpu"
    backend: str = "harness"
    dtype: str | None = None
    chat: bool = False
    system: str | None = None
    base_url: str | None = None
    tokenizer: Path | None = None
    allow_code_execution: bool = False
    allow_unsandboxed_code_execution: bool = False
    include_paths: tuple[Path, ...] = ()
    seeds: tuple[tuple[str, int | None], ...] = SEEDS  # lm-eval's four, in its order; None: left unseeded
    gen_kwargs: str | None = None  # --gen-kwargs as canonical JSON (hashable): overrides generation tasks' settings

    @property
    def effective_dtype(self) -> str:
        """The weights' dtype as computed in: ``--dtype``, else the registry's, unless the backend decides
        (a GGUF file's own types for llama-cpp, the server's for openai-compatible)."""
        known = BACKENDS.get(self.backend)
        return (known.reported_dtype if known else None) or self.dtype or self.model.dtype

    @property
    def seed_kwargs(self) -> dict[str, int | None]:
        """The seeds as lm-eval's ``simple_evaluate`` keyword arguments."""
        return dict(self.seeds)

    @property
    def generation_kwargs(self) -> dict[str, Any] | None:
        """``--gen-kwargs`` as lm-eval's ``simple_evaluate`` takes them."""
        return None if self.gen_kwargs is None else json.loads(self.gen_kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The whole spec as JSON-able data (paths as strings, the model as its registry fields)."""
        data = dataclasses.asdict(self)
        data["seeds"] = self.seed_kwargs
        data["gen_kwargs"] = self.generation_kwargs
        data["effective_dtype"] = self.effective_dtype
        return json.loads(json.dumps(data, default=str))

    def digest(self, **resolved: Any) -> str:
        """A short hash of the spec's number-deciding fields and of ``resolved`` (what its names resolved to:
        task files, data files, weights, library versions). Machine-specific paths are left out."""
        spec = {key: value for key, value in self.to_dict().items() if key not in _NOT_IN_DIGEST}
        spec["model"] = {key: spec["model"][key] for key in ("name", "hub_id", "revision", "template", "dtype")}
        spec.pop("include_paths")
        if spec["gen_kwargs"] is None:  # keys from before --gen-kwargs existed stay the same
            del spec["gen_kwargs"]
        text = json.dumps({"spec": spec, **resolved}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class MetricValue:
    """One aggregated metric: its value and lm-eval's stderr (None where lm-eval gives none or NaN)."""

    value: float | None
    stderr: float | None = None


@dataclass(frozen=True)
class SampleRecord:
    """One evaluated doc (for one filter, in generation tasks): prompt, answers and per-doc verdict."""

    task: str
    doc_id: int
    doc_hash: str | None = None
    target: Any = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    correct: float | None = None  # the primary metric's per-doc value
    prompt: Any = None  # one context, or one per choice (WinoGrande)
    choices: list[str] | None = None
    loglikelihoods: list[float] | None = None
    is_greedy: list[bool] | None = None
    prediction: Any = None
    filter: str | None = None
    generation: str | None = None
    response: Any = None


@dataclass(frozen=True)
class RunResult:
    """What one run produced for one task or group: lm-eval's numbers and everything that decided them.

    ``metrics`` are keyed ``metric`` for lm-eval's unfiltered (``none``) values and ``metric,filter``
    otherwise; a group's are lm-eval's own aggregation. ``members`` holds a group's direct subtasks'
    metrics, ``part_of`` the group a member task was run in.
    """

    model: str
    task: str
    kind: str  # "task" | "group"
    primary_metric: str
    metrics: Mapping[str, MetricValue]
    n: int
    num_fewshot: int | None
    provenance: Mapping[str, Any]
    spec: Mapping[str, Any] = field(default_factory=dict)
    output_type: str | None = None
    subtasks: tuple[str, ...] = ()
    members: Mapping[str, Mapping[str, MetricValue]] = field(default_factory=dict)
    n_samples: Mapping[str, Any] = field(default_factory=dict)
    metric_notes: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)  # the task's or group's YAML `metadata:`
    lm_eval_config: Mapping[str, Any] = field(default_factory=dict)
    part_of: str | None = None
    cell: Mapping[str, Any] | None = None
    status: str = "complete"
    samples_file: str = ""
    path: Path | None = None  # where it was read from or written to (not stored)

    @property
    def samples_path(self) -> Path | None:
        return self.path.parent / self.samples_file if self.path is not None and self.samples_file else None

    @property
    def primary(self) -> MetricValue | None:
        return self.metrics.get(self.primary_metric)

    @property
    def finished(self) -> str:
        return str(self.provenance.get("finished", ""))

    def to_json(self) -> dict[str, Any]:
        data = {"schema": SCHEMA}
        for item in dataclasses.fields(self):
            if item.name == "path":
                continue
            value = getattr(self, item.name)
            data[item.name] = list(value) if isinstance(value, tuple) else value
        data["metrics"] = _metrics_json(self.metrics)
        data["members"] = {name: _metrics_json(metrics) for name, metrics in self.members.items()}
        return data


def _metrics_json(metrics: Mapping[str, MetricValue]) -> dict[str, dict[str, float | None]]:
    return {name: dataclasses.asdict(value) for name, value in metrics.items()}


def _metrics_from(data: Mapping[str, Any]) -> dict[str, MetricValue]:
    return {name: MetricValue(values.get("value"), values.get("stderr")) for name, values in (data or {}).items()}


def number(value: Any) -> float | None:
    """A float, or None for anything that is not a finite number (lm-eval writes NaN or "N/A")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(float(value)) else float(value)


class ResultFileError(ValueError):
    """A file that is not a readable run result (damaged JSON, another kind of file)."""


def load_result(path: Path) -> RunResult:
    """A result JSON written by ``harness run`` or a sweep (this schema or the earlier flat one)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ResultFileError(f"{path} is not a result file (not JSON: {type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or "task" not in data:
        raise ResultFileError(f"{path} is not a result file of {SCHEMA}")
    config = data.get("lm_eval_config") or {}
    earlier_members = data.get("subtasks") if isinstance(data.get("subtasks"), dict) else {}  # the flat schema's
    members = data.get("members", earlier_members) or {}
    try:
        return RunResult(
            model=data["model"], task=data["task"], kind=data.get("kind", "group" if members else "task"),
            primary_metric=data["primary_metric"], metrics=_metrics_from(data["metrics"]), n=data["n"],
            num_fewshot=data.get("num_fewshot"), provenance=data.get("provenance") or {}, spec=data.get("spec") or {},
            output_type=data.get("output_type") or config.get("output_type"),
            subtasks=tuple(data["subtasks"]) if isinstance(data.get("subtasks"), list) else tuple(members),
            members={name: _metrics_from(metrics) for name, metrics in members.items()},
            n_samples=data.get("n_samples") or {}, metric_notes=data.get("metric_notes") or {},
            metadata=data.get("metadata") or (config.get("metadata") if isinstance(config.get("metadata"), dict) else {}),
            lm_eval_config=config, part_of=data.get("part_of"), cell=data.get("cell"),
            status=data.get("status", ""), samples_file=data.get("samples_file", ""), path=path,
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ResultFileError(f"{path} is a damaged result file (missing or malformed {exc})") from None


def load_samples(path: Path) -> list[SampleRecord]:
    """The per-sample records beside a result (its ``.samples.jsonl``)."""
    known = {item.name for item in dataclasses.fields(SampleRecord)}
    records = []
    with Path(path).open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                records.append(SampleRecord(**{key: value for key, value in row.items() if key in known}))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ResultFileError(f"{path} line {line_number} is not a sample record ({exc})") from None
    return records
