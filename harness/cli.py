"""The ``harness`` command line: ``run``, ``models``, ``tasks``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [" | ".join(value.ljust(width) for value, width in zip(row, widths)) for row in cells]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def _cmd_models(args: argparse.Namespace) -> int:
    from harness.registry import REGISTRY

    rows = [
        (s.name, s.hub_id, s.architecture, f"{s.parameters / 1e9:.2f}B" if s.parameters else "", s.context_length,
         s.dtype, s.template, "GGUF (embedded)" if s.gguf_path else "hub")
        for s in REGISTRY.values()
    ]
    print(_table(("name", "hub id", "architecture", "params", "context", "dtype", "template", "weights"), rows))
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    from harness.tasks import catalogue

    rows = [
        (t.name, t.kind, "per task" if t.kind == "suite" else t.num_fewshot, t.primary_metric, t.protocol,
         ", ".join(t.members) if t.kind == "suite" else (f"{len(t.members)} subjects" if t.members else ""),
         "yes" if t.deviations else "")
        for t in catalogue().values()
    ]
    print(_table(("name", "kind", "n-shot", "metric", "protocol", "members", "deviations"), rows))
    print("\nAny lm-eval task name (or the path of a task YAML) works with `harness run --tasks` too.")
    return 0


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.registry import resolve_model
    from harness.run import RunSpec, default_device, run

    tasks = tuple(name.strip() for name in args.tasks.split(",") if name.strip())
    if not tasks:
        raise HarnessError("no task given", "pass --tasks T1,T2 or a suite name (see `harness tasks`)")
    if args.limit is not None and args.limit < 1:
        raise HarnessError(f"--limit must be a positive number of docs, got {args.limit}", "pass --limit 1 or more")
    spec = RunSpec(
        model=resolve_model(args.model),
        tasks=tasks,
        limit=args.limit,
        num_fewshot=args.num_fewshot,
        batch_size=args.batch_size,
        device=args.device or default_device(),
        dtype=args.dtype,
    )
    outcomes = run(spec, Path(args.output))
    rows = [
        (o.task, o.num_fewshot, metric, _fmt(values["value"]), _fmt(values["stderr"]), o.n,
         "*" if metric == o.primary_metric else "")
        for o in outcomes
        for metric, values in o.metrics.items()
    ]
    print()
    print(f"model: {spec.model.name}   device: {spec.device}   dtype: {spec.effective_dtype}")
    print(_table(("task", "n-shot", "metric", "value", "stderr", "n", "primary"), rows))
    for outcome in outcomes:
        print(f"wrote {outcome.json_path} (+ {outcome.samples_path.name})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="evaluate a model on tasks or a suite")
    run.add_argument("--model", required=True, help="registry name, hub id, local HF folder or .gguf file")
    run.add_argument("--tasks", required=True, help="comma-separated task or suite names, or task YAML paths")
    run.add_argument("--limit", type=int, help="evaluate only the first N docs of each (sub)task")
    run.add_argument("--num-fewshot", type=int, help="override the task's pinned number of few-shot examples")
    run.add_argument("--batch-size", default="8", help="batch size for lm-eval's hf backend (default 8)")
    run.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when present, else cpu")
    run.add_argument("--dtype", help="override the registry's dtype (float32, bfloat16, float16, auto)")
    run.add_argument("--output", default=str(Path("results") / "runs"), help="folder for result files")
    run.set_defaults(handler=_cmd_run)

    commands.add_parser("models", help="list the model registry").set_defaults(handler=_cmd_models)
    commands.add_parser("tasks", help="list tasks and suites").set_defaults(handler=_cmd_tasks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except HarnessError as error:
        print(str(error), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted — nothing was marked complete for the task that was running", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
