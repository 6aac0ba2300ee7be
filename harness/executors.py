"""Running a sweep's cells: one after another in this process (the default), or as Ray tasks on a cluster.

Both executors run each cell through :func:`run_cell`, which takes the cell's lock, skips it when a
complete result already carries its key, and runs the cell's spec through the runner, as ``harness run``
does, with the cell's own request cache and key. A cell that fails records why and
the others go on; an interrupt (SIGINT/SIGTERM) marks the running cell interrupted and stops.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from harness import cells
from harness.errors import HarnessError
from harness.paths import CHECKOUT
from harness.sweep import Cell, Sweep, cell_description

GPU_MEMORY_GB = float(os.environ.get("HARNESS_GPU_MEMORY_GB", 80))  # per GPU, for Ray's GPU requests
_BYTES_PER_PARAMETER = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class CellOutcome:
    """What became of one cell in this sweep."""

    key: str
    label: str
    state: str  # computed | skipped (already done) | failed
    reason: str = ""
    result: str | None = None
    requests: dict[str, int] | None = None


class _LoadedModel:
    """The last model loaded in this process, kept for the next cell of the same model (and options)."""

    spec: Any = None
    lm: Any = None
    info: dict[str, Any] | None = None

    @classmethod
    def get(cls, spec):
        from harness.provenance import weights
        from harness.runner import load_model

        wanted = dataclasses.replace(spec, tasks=(), limit=None, num_fewshot=None, include_paths=())
        if cls.spec != wanted:
            cls.spec = cls.lm = cls.info = None  # free the previous model before loading the next
            cls.lm = load_model(wanted)
            cls.info, cls.spec = weights(wanted.model, cls.lm), wanted
        return cls.lm, cls.info


def _reason(exc: BaseException, cell: Cell, output: Path) -> str:
    from harness.runner import failure

    return str(failure(exc, cell.task, cell.spec.device, output, cells.cache_path(output, cell.key))).removeprefix(
        "error: ")


def run_cell(cell: Cell, output: Path, wait: bool = True) -> CellOutcome | None:
    """Run one cell under its lock; None when another process holds the lock and ``wait`` is False."""
    from harness.runner import evaluate

    output = Path(output)
    cells.describe(output, cell_description(cell))
    with cells.cell_lock(output, cell.key, wait) as held:
        if not held:
            return None
        finished = cells.done(output, cell.key)
        if finished is not None:
            return CellOutcome(cell.key, cell.label, "skipped", result=str(finished))
        cells.set_state(output, cell.key, "running")
        try:
            results = evaluate(cell.spec, output, loaded=_LoadedModel.get,
                               cache=cells.cache_path(output, cell.key), cell=cell_description(cell))
        except KeyboardInterrupt:
            cells.set_state(output, cell.key, "interrupted", answers_cached=cells.cached_answers(output, cell.key))
            raise
        except Exception as exc:  # a failing cell must not stop the sweep; its reason is recorded and shown
            reason = _reason(exc, cell, output)
            cells.set_state(output, cell.key, "failed", reason=reason)
            return CellOutcome(cell.key, cell.label, "failed", reason=reason)
        cells.clear_state(output, cell.key)
        return CellOutcome(cell.key, cell.label, "computed", result=str(results[0].path),
                           requests=results[0].provenance["request_cache"])


def _report(bar: tqdm, outcome: CellOutcome) -> None:
    detail = {"computed": f"→ {outcome.result} ({outcome.requests['from_cache']} answers from the cache, "
                          f"{outcome.requests['computed']} computed)" if outcome.requests else "",
              "skipped": "already done", "failed": outcome.reason}[outcome.state]
    bar.write(f"[{outcome.state}] {outcome.label}: {detail}")
    bar.update(1)


def _describe_all(sweep: Sweep) -> None:
    """Record every cell in the results folder first, so `harness status` lists the pending ones too."""
    for cell in sweep.cells:
        cells.describe(sweep.output, cell_description(cell))


def run_local(sweep: Sweep) -> list[CellOutcome]:
    """Cells in file order in this process. A cell locked by another sweep is passed over, then waited for
    at the end (and skipped if that sweep finished it), so two sweeps on one folder share the work."""
    _describe_all(sweep)
    outcomes: list[CellOutcome] = []
    with tqdm(total=len(sweep.cells), desc="Sweep (cells)", unit="cell", position=0) as bar:
        busy = []
        for cell in sweep.cells:
            outcome = run_cell(cell, sweep.output, wait=False)
            if outcome is None:
                busy.append(cell)
                continue
            outcomes.append(outcome)
            _report(bar, outcome)
        for cell in busy:
            outcomes.append(run_cell(cell, sweep.output, wait=True))
            _report(bar, outcomes[-1])
    return outcomes


def gpus_for(spec) -> int:
    """Whole GPUs a model needs: its weights at the cell's dtype plus 20% (activations, KV cache)."""
    bytes_each = _BYTES_PER_PARAMETER.get(spec.effective_dtype, 2)
    needed = (spec.model.parameters or 0) * bytes_each * 1.2 / 1e9
    return max(1, math.ceil(needed / GPU_MEMORY_GB))


def _ray_cell(cell: Cell, output: str) -> CellOutcome:
    if CHECKOUT is not None:
        os.chdir(CHECKOUT)  # as a local run: lm-eval looks up the git commit in the working directory
    return run_cell(cell, Path(output), wait=True)


def connect_ray(address: str | None):
    """Connect to the Ray cluster at ``address`` (``auto``, ``ray://host:10001``) or start a local one."""
    try:
        import ray
    except ImportError:
        raise HarnessError("--executor ray needs Ray, which is not installed",
                           "pip install 'open-llm-harness[ray]' (or run without --executor ray)") from None
    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=True, include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        problem = (str(exc).strip().splitlines() or [""])[0][:300]
        raise HarnessError(f"could not connect to the Ray cluster at {address or 'a new local instance'}: "
                           f"{type(exc).__name__}: {problem}", "start it with `ray start --head` or check --address") from None
    return ray


def cluster_has_gpus(ray) -> bool:
    return ray.cluster_resources().get("GPU", 0) > 0


def run_ray(sweep: Sweep, ray) -> list[CellOutcome]:
    """Each cell as a Ray task (1 CPU; on CUDA cells the GPUs its model needs); results are written by the
    workers into the sweep's output folder exactly as locally, and each finished cell is reported here."""
    _describe_all(sweep)
    remote = ray.remote(_ray_cell)
    pending = {
        remote.options(num_cpus=1, num_gpus=gpus_for(cell.spec) if cell.spec.device == "cuda" else 0)
        .remote(cell, str(sweep.output)): cell
        for cell in sweep.cells
    }
    outcomes: list[CellOutcome] = []
    with tqdm(total=len(sweep.cells), desc="Sweep (cells, Ray)", unit="cell", position=0) as bar:
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(ready[0])
                try:
                    outcomes.append(ray.get(ready[0]))
                except ray.exceptions.RayError as exc:  # the worker process died (run_cell catches the rest)
                    reason = _reason(exc, cell, sweep.output)
                    cells.set_state(sweep.output, cell.key, "failed", reason=reason)
                    outcomes.append(CellOutcome(cell.key, cell.label, "failed", reason=reason))
                _report(bar, outcomes[-1])
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)  # the worker's cell is marked interrupted; its cache keeps what was answered
            raise
    return outcomes
