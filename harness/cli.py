"""The ``harness`` command line: ``run``, ``sweep``, ``status``, ``prompt``, ``report``, ``compare``, ``answer``,
``judge``, ``arena``, ``export``, ``models``, ``tasks``, ``data``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import traceback
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
    from harness.chat_bench import BENCHES
    from harness.tasks import catalogue, check_include_paths

    include_paths = check_include_paths(tuple(Path(folder) for folder in args.include_path or ()))
    rows = [
        (t.name, t.kind, "per task" if t.kind == "suite" else t.num_fewshot, t.primary_metric, t.protocol,
         ", ".join(t.members) if t.kind == "suite" else (f"{len(t.members)} subjects" if t.members else ""),
         "yes" if t.deviations else "")
        for t in catalogue(include_paths).values()
    ]
    print(_table(("name", "kind", "n-shot", "metric", "protocol", "members", "deviations"), rows))
    print("\nAny lm-eval task, group or tag name, the path of a task YAML, or the tasks of a folder given with "
          "--include-path DIR work with `harness run --tasks` too.")
    print("Graded by an LLM judge (`harness answer --bench B`, then `harness judge`): "
          + ", ".join(f"{b.name} ({b.label})" for b in BENCHES.values()) + ".")
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from harness import data, provenance
    from harness.tasks import catalogue, check_include_paths, leaf_configs, plan

    include_paths = check_include_paths(tuple(Path(folder) for folder in args.include_path or ()))
    mirror, configured = data.data_dir(), os.environ.get("HARNESS_DATA_DIR")
    if configured and not mirror.is_dir():
        raise HarnessError(f"HARNESS_DATA_DIR={mirror} is not a folder",
                           "point it at the benchmark mirror (the folder holding SOURCES.md), or unset it")
    names = ([name for name in args.tasks.split(",") if name.strip()] if args.tasks
             else [t.name for t in catalogue(include_paths).values() if t.kind != "suite"])
    task_plan = plan(names, include_paths)
    listed = data.listed_checksums()
    rows = []
    for name in task_plan.names:
        found = provenance.data_files(leaf_configs(task_plan.manager, task_plan.specs[name]))
        for index, (path, sha256) in enumerate(found["files"].items() or [("", "")]):
            check = "" if path not in listed else "= SOURCES.md" if listed[path] == sha256 else "DIFFERS from SOURCES.md"
            rows.append((name if index == 0 else "", ", ".join(found["sources"]) if index == 0 else "", path,
                         sha256, check))
    if mirror is not None:
        print(f"benchmark mirror: {mirror} ({'$HARNESS_DATA_DIR' if configured else '../shared/data beside the checkout'})")
    print(_table(("task", "reads from", "file (in the mirror)", "sha256", "check"), rows))
    if mirror is None:
        print("no benchmark mirror found: set HARNESS_DATA_DIR to a mirror's data folder to read local files "
              "(offline runs need one)", file=sys.stderr)
    return 0


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _model(args: argparse.Namespace):
    """The ``--model`` spec, with its chat template replaced by ``--chat-template`` when given."""
    from harness.registry import resolve_model

    model = resolve_model(args.model)
    return dataclasses.replace(model, template=args.chat_template) if args.chat_template else model


def _cmd_prompt(args: argparse.Namespace) -> int:
    from harness.templates import check_chat_options, encode_prompt, load_tokenizer, render_prompt

    model = _model(args)
    check_chat_options(model, args.chat, args.system)
    tokenizer = load_tokenizer(model, Path(args.tokenizer) if args.tokenizer else None)
    prompt = render_prompt(model, tokenizer, args.text, args.chat, args.system)
    if not args.ids:
        sys.stdout.write(prompt)
        return 0
    ids = encode_prompt(tokenizer, prompt)
    print(f"text: {json.dumps(prompt, ensure_ascii=False)}")
    print(f"ids ({len(ids)}): {json.dumps(ids)}")
    print(f"tokens: {json.dumps(tokenizer.convert_ids_to_tokens(ids), ensure_ascii=False)}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from harness import checks
    from harness.core import RunSpec
    from harness.backend_kinds import default_backend
    from harness.runner import default_device, evaluate

    tasks = tuple(name.strip() for name in args.tasks.split(",") if name.strip())
    if not tasks:
        raise HarnessError("no task given", "pass --tasks T1,T2 or a suite name (see `harness tasks`)")
    device = args.device or default_device()
    spec = RunSpec(
        model=_model(args),
        tasks=tasks,
        limit=args.limit,
        num_fewshot=args.num_fewshot,
        batch_size=args.batch_size,
        device=device,
        dtype=args.dtype,
        backend=args.backend or default_backend(device),
        chat=args.chat,
        system=args.system,
        base_url=args.base_url,
        tokenizer=Path(args.tokenizer) if args.tokenizer else None,
        allow_code_execution=args.allow_code_execution or args.allow_unsandboxed_code_execution,
        allow_unsandboxed_code_execution=args.allow_unsandboxed_code_execution,
        include_paths=tuple(Path(folder) for folder in args.include_path or ()),
        **({"seeds": checks.seeds(args.seed)} if args.seed is not None else {}),
        gen_kwargs=checks.generation_kwargs(args.gen_kwargs, args.backend or default_backend(device)),
    )
    results = evaluate(spec, Path(args.output))
    rows = [
        (r.task if r.part_of is None else f"  {r.task}", r.num_fewshot, metric, _fmt(values.value),
         _fmt(values.stderr), r.n, "*" if metric == r.primary_metric else "")
        for r in results
        for metric, values in r.metrics.items()
    ]
    print()
    loaded_dtype = results[0].provenance.get("dtype", spec.effective_dtype)  # what `auto` became, as results record
    print(f"model: {spec.model.name}   backend: {spec.backend}   device: {spec.device}   dtype: {loaded_dtype}")
    print(_table(("task", "n-shot", "metric", "value", "stderr", "n", "primary"), rows))
    for result in results:
        print(f"wrote {result.path} (+ {result.samples_file})")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from harness import checks
    from harness.leaderboard import DEFAULT_PUBLISHED
    from harness.report import write_report
    from harness.tasks import check_include_paths

    checks.writable_folder(Path(args.out), "--out")
    runs = Path(args.runs) if args.runs else None
    if runs is not None and not runs.is_dir():
        raise HarnessError(f"runs folder {runs} does not exist", "pass the folder `harness run` wrote to")
    include_paths = check_include_paths(tuple(Path(folder) for folder in args.include_path or ()))
    models = tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models else DEFAULT_PUBLISHED
    arena_dir = Path(args.arena) if args.arena else None
    if arena_dir is not None and not (arena_dir / "ratings.csv").is_file():
        raise HarnessError(f"--arena {arena_dir} holds no ratings.csv", "pass the --out folder of `harness arena`")
    files = write_report(Path(args.out), runs, models, args.suite, args.baseline, include_paths=include_paths,
                         arena_dir=arena_dir)
    print(f"wrote {len(files)} report files to {args.out} (open {Path(args.out) / 'index.html'})")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from harness.paired import compare_runs

    c = compare_runs(Path(args.run_a), Path(args.run_b), iterations=args.iterations)
    p_value = "n/a (scores are not 0/1)" if c.mcnemar_p is None else f"{c.mcnemar_p:.4g}"
    print(_table(
        ("task", "n", "A", "B", "B - A", "95% CI (paired bootstrap)", "agreement", "only A", "only B", "McNemar p"),
        [(c.task, c.n, _fmt(c.score_a), _fmt(c.score_b), f"{c.difference:+.4f}",
          f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}]", _fmt(c.agreement), c.only_a_correct, c.only_b_correct, p_value)],
    ))
    print(f"A = {c.model_a}, B = {c.model_b}")
    return 0


def _cmd_arena(args: argparse.Namespace) -> int:
    from harness import arena, checks

    anchor = arena.parse_anchor(args.anchor)
    battles = arena.read_battles(Path(args.battles))
    checks.writable_folder(Path(args.out), "--out")
    result = arena.rate(battles, rounds=args.rounds, seed=args.seed, anchor=anchor)
    files = arena.write(result, Path(args.battles), Path(args.out))
    print(_table(("model", "rating", "95% CI", "battles"),
                 [(r.model, f"{r.rating:.0f}", f"[{r.lower:.0f}, {r.upper:.0f}]", r.battles) for r in result.ratings]))
    print(f"{len(battles)} battles, {args.rounds} bootstrap rounds (seed {args.seed}); wrote "
          + ", ".join(str(f) for f in files))
    return 0


def _cmd_answer(args: argparse.Namespace) -> int:
    from harness.answers import answer
    from harness.backend_kinds import default_backend
    from harness.chat_bench import bench
    from harness.core import RunSpec
    from harness.runner import default_device

    try:
        ids = tuple(int(i) for i in args.question_ids.split(",") if i.strip()) if args.question_ids else ()
    except ValueError:
        raise HarnessError(f"--question-ids {args.question_ids!r} is not a list of numbers",
                           "give comma-separated question ids, e.g. --question-ids 81,82") from None
    device = args.device or default_device()
    spec = RunSpec(model=_model(args), tasks=(), batch_size=args.batch_size, device=device, dtype=args.dtype,
                   backend=args.backend or default_backend(device), chat=True, system=args.system, base_url=args.base_url,
                   tokenizer=Path(args.tokenizer) if args.tokenizer else None)
    path = answer(spec, bench(args.bench), Path(args.output), args.limit, ids, args.max_new_tokens, args.seed)
    print(f"wrote {path} (+ {path.with_suffix('.json').name}); judge it with `harness judge {path} --judge-base-url "
          "URL --judge-model NAME --out DIR`")
    return 0


def _cmd_judge(args: argparse.Namespace) -> int:
    from harness import checks, judging
    from harness.chat_bench import read_answers
    from harness.judge_client import JudgeEndpoint, check_url

    check_url(args.judge_base_url)
    for value, what in ((args.parallel, "--parallel"), (args.retries, "--retries")):
        checks.whole_number(value, what, 1, f"give {what} 1 or more")
    checks.bootstrap_rounds(args.rounds)
    answer_sets = [read_answers(Path(path), args.bench) for path in args.answers]
    if args.mode == "pairwise" and len(answer_sets) < 2:
        raise HarnessError("--mode pairwise needs the answer files of two or more models", "give two or more files")
    out = Path(args.out)
    checks.writable_folder(out, "--out")
    endpoint = JudgeEndpoint(args.judge_base_url, args.judge_model, retries=args.retries, parallel=args.parallel,
                             timeout=args.timeout)
    if args.mode == "pairwise":
        path, battles = judging.judge_pairwise(answer_sets, endpoint, out)
        print(f"wrote {len(battles)} battles to {path}; rate them with `harness arena {path} --out DIR`")
        return 0
    for answers in answer_sets:
        result = judging.judge_single(answers, endpoint, out, args.rounds, args.seed)
        ci = result.provenance["bootstrap"]["ci95"]
        print(_table(("model", "metric", "score", "95% CI"),
                     [(result.model, name, f"{value.value:.2f}", "" if not ci.get(name) else
                       f"[{ci[name][0]:.2f}, {ci[name][1]:.2f}]") for name, value in result.metrics.items()
                      if value.value is not None]))
        counts = result.provenance["judgments_count"]
        print(f"{result.n} questions, {counts['total']} judgments ({counts['no_rating']} without a rating, "
              f"{counts['out_of_range']} out of 1-10, left out); {result.metadata['comparability']}; "
              f"wrote {result.path}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from harness import export

    if args.push:
        export.check_can_push()
    plan = export.plan(Path(args.run_or_dir), args.model, args.allow_subset)
    for line in plan.skipped:
        print(f"note: skipped {line}", file=sys.stderr)
    files = export.write(plan, args.format, Path(args.out), export.card_name(plan, args.push))
    print(f"wrote {len(files)} file(s) for {len(plan.exports)} result(s) of {plan.model} to {args.out}:")
    for file in files:
        print(f"  {file}")
    if args.push:
        print(f"pushed to {args.push}: {export.push(args.format, files, Path(args.out), args.push)}")
    return 0


def _status_table(rows) -> str:
    counts = {state: sum(row.state == state for row in rows) for state in dict.fromkeys(row.state for row in rows)}
    table = _table(("model", "task", "state", "detail", "cell"), [(r.model, r.task, r.state, r.detail, r.key) for r in rows])
    return f"{table}\n{len(rows)} cells: " + ", ".join(f"{n} {state}" for state, n in counts.items())


def _cmd_sweep(args: argparse.Namespace) -> int:
    from harness import checks
    from harness.cells import folder_status
    from harness.executors import cluster_has_gpus, connect_ray, run_local, run_ray
    from harness.sweep import cell_description, load_sweep

    ray = connect_ray(args.address) if args.executor == "ray" and not args.dry_run else None
    device = "cuda" if ray is not None and cluster_has_gpus(ray) else None
    sweep = load_sweep(Path(args.sweep_file), default_device=device)
    if args.output:
        sweep = dataclasses.replace(sweep, output=Path(args.output).resolve())
    if args.dry_run:
        print(f"sweep {sweep.path} → {sweep.output}")
        print(_status_table(folder_status(sweep.output, [cell_description(c) for c in sweep.cells])[: len(sweep.cells)]))
        return 0
    checks.writable_folder(sweep.output, "the sweep's output folder")
    signal.signal(signal.SIGTERM, _interrupt)
    outcomes = run_ray(sweep, ray) if ray is not None else run_local(sweep)
    failed = [o for o in outcomes if o.state == "failed"]
    print(f"{len(outcomes) - len(failed)} of {len(outcomes)} cells done ({sum(o.state == 'computed' for o in outcomes)} "
          f"computed now); results in {sweep.output}")
    for outcome in failed:
        print(f"failed: {outcome.label}: {outcome.reason}", file=sys.stderr)
    return 1 if failed else 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a sweep as SIGINT does: cell marked interrupted, cache kept


def _cmd_status(args: argparse.Namespace) -> int:
    from harness.cells import folder_status

    folder = Path(args.results_dir)
    if not folder.is_dir():
        problem = "is a file, not a folder" if folder.exists() else "does not exist"
        raise HarnessError(f"results folder {folder} {problem}", "pass the output folder of a run or sweep")
    rows = folder_status(folder)
    print(_status_table(rows) if rows else f"no cells or results in {folder}")
    return 0


def _add_chat_options(parser: argparse.ArgumentParser, always: bool = False) -> None:
    from harness.templates import TEMPLATES

    if not always:
        parser.add_argument("--chat", action="store_true",
                            help="apply the model's chat template (few-shot examples become conversation turns)")
    parser.add_argument("--system", help="system prompt for --chat (default: the template's own, if any)")
    parser.add_argument("--chat-template", choices=(*TEMPLATES, "tokenizer"),
                        help="the chat template to use instead of the registry's (tokenizer: the tokenizer's own)")


def _sweep_doc() -> str:
    from harness import sweep

    return sweep.__doc__


def build_parser() -> argparse.ArgumentParser:
    from harness import checks
    from harness import export as export_formats
    from harness.backend_kinds import BACKENDS, MEASURED_FASTEST

    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help="on an unexpected error, print the whole traceback (it is always written to a log)")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], **kwargs)

    run = command("run", help="evaluate a model on tasks or a suite")
    run.add_argument("--model", required=True, help="registry name, hub id, local HF folder or .gguf file")
    run.add_argument("--tasks", required=True, help="comma-separated task, group, tag or suite names (ours, "
                                                    "lm-eval's, or of an --include-path folder), or task YAML paths")
    run.add_argument("--include-path", action="append", metavar="DIR",
                     help="a folder of task YAMLs: each becomes resolvable by its task, group or tag name "
                          "(lm-eval's --include-path; repeatable)")
    run.add_argument("--limit", type=int, help="evaluate only the first N docs of each (sub)task")
    run.add_argument("--num-fewshot", type=int, help="override the task's pinned number of few-shot examples")
    run.add_argument("--batch-size", default="8", help="batch size, or auto (default 8)")
    run.add_argument("--backend", choices=tuple(BACKENDS),
                     help="; ".join(f"{b.name}: {b.summary}" for b in BACKENDS.values())
                     + "; default: " + ", ".join(f"{name} on {device}" for device, name in MEASURED_FASTEST.items())
                     + " (the faster there in benchmarks/README.md)")
    run.add_argument("--base-url", help="for --backend openai-compatible: the server's API root, e.g. "
                                        "http://127.0.0.1:8000/v1 (API key from $HARNESS_API_KEY or $OPENAI_API_KEY)")
    run.add_argument("--tokenizer", help="a tokenizer folder or tokenizer.json to use instead of the model's")
    run.add_argument("--allow-code-execution", action="store_true",
                     help="let tasks that run code (`unsafe_code: true` in their YAML) run the model's programs, "
                          "each in a sandboxed process")
    run.add_argument("--allow-unsandboxed-code-execution", action="store_true",
                     help="as --allow-code-execution, also where the machine allows no OS-level sandbox "
                          "(bubblewrap): programs then run with process limits and in-interpreter guards only")
    run.add_argument("--device", choices=checks.DEVICES, help="default: cuda when present, else cpu")
    run.add_argument("--dtype", help="override the registry's dtype (float32, bfloat16, float16, auto)")
    run.add_argument("--seed", help="lm-eval's seeds: one integer for all four, or random,numpy,torch,few-shot "
                                    "(default 0,1234,1234,1234; None leaves one unseeded)")
    run.add_argument("--gen-kwargs", help="lm-eval's --gen_kwargs: generation settings that replace the generation "
                                          "tasks' own, e.g. max_gen_toks=256,temperature=0 or a JSON object")
    run.add_argument("--output", default=str(Path("results") / "runs"), help="folder for result files")
    _add_chat_options(run)
    run.set_defaults(handler=_cmd_run)

    prompt = command("prompt", help="print exactly the prompt (and token ids) a model will see")
    prompt.add_argument("--model", required=True, help="registry name, hub id, local HF folder or .gguf file")
    prompt.add_argument("--text", required=True, help="the user message (or plain prompt without --chat)")
    prompt.add_argument("--ids", action="store_true", help="also print the token ids and tokens")
    prompt.add_argument("--tokenizer", help="a tokenizer folder or tokenizer.json to use instead of the model's")
    _add_chat_options(prompt)
    prompt.set_defaults(handler=_cmd_prompt)

    report = command("report", help="charts, tables and an HTML page beside published scores")
    report.add_argument("--runs", help="folder of run results (default: none, published scores only)")
    report.add_argument("--models", help="comma-separated published models to show (hub ids)")
    report.add_argument("--suite", default="open_llm_leaderboard_v1",  # leaderboard.DEFAULT_SUITE (no import here)
                        help="benchmarks to show: a suite or task of `harness tasks`, a task in --runs, or a "
                             "comma-separated list of those (default: %(default)s)")
    report.add_argument("--include-path", action="append", metavar="DIR",
                        help="a folder of your own task YAMLs whose tasks and suites --suite may name (repeatable)")
    report.add_argument("--baseline", default="openai/gpt-4", help="published model the gap chart subtracts")
    report.add_argument("--arena", metavar="DIR", help="also draw the Arena ratings of `harness arena --out DIR`")
    report.add_argument("--out", required=True, help="output folder")
    report.set_defaults(handler=_cmd_report)

    export = command("export", help="results as Hugging Face model-index or .eval_results YAML")
    export.add_argument("run_or_dir", help="a result JSON written by `harness run`, or a folder of them")
    export.add_argument("--format", required=True, choices=export_formats.FORMATS,
                        help="hf-eval-results: OUT/.eval_results/*.yaml, one per result; model-index: OUT/README.md, "
                             "a model card whose front matter holds the results")
    export.add_argument("--out", default=str(Path("results") / "export"), help="output folder (default: %(default)s)")
    export.add_argument("--model", help="export only this model's results (a folder may hold several models')")
    export.add_argument("--allow-subset", action="store_true",
                        help="export --limit subsets too, labelled as such (refused otherwise)")
    export.add_argument("--push", metavar="REPO", help="also upload to this model repo (token: $HF_TOKEN)")
    export.set_defaults(handler=_cmd_export)

    compare = command("compare", help="paired comparison of two runs of one task")
    compare.add_argument("run_a", help="result JSON of run A")
    compare.add_argument("run_b", help="result JSON of run B")
    compare.add_argument("--iterations", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    compare.set_defaults(handler=_cmd_compare)

    arena = command("arena", help="Bradley-Terry (Elo-scale) ratings with bootstrap CIs from pairwise battles")
    arena.add_argument("battles", help="FastChat's battle format: a JSON list or JSON Lines of "
                                       "{model_a, model_b, winner: model_a|model_b|tie|tie (bothbad)}")
    arena.add_argument("--out", required=True, help="folder for ratings.csv, win_rates.csv, arena.json and the chart")
    arena.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds (default: %(default)s; ≥ 100)")
    arena.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    arena.add_argument("--anchor", metavar="MODEL=RATING",
                       help="shift the scale so that MODEL has RATING (e.g. its published Arena rating)")
    arena.set_defaults(handler=_cmd_arena)

    answer = command("answer", help="a chat model answers MT-bench or the Vicuna benchmark (FastChat's settings)")
    answer.add_argument("--model", required=True, help="registry name, hub id, local HF folder or .gguf file")
    answer.add_argument("--bench", default="mt_bench", choices=("mt_bench", "vicuna_bench"),
                        help="the questions to answer (default: %(default)s)")
    answer.add_argument("--limit", type=int, help="answer only the first N questions")
    answer.add_argument("--question-ids", help="answer only these questions (comma-separated ids)")
    answer.add_argument("--max-new-tokens", type=int, default=1024, help="tokens per answer turn (default: %(default)s)")
    answer.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    answer.add_argument("--backend", choices=tuple(BACKENDS), help="as for `harness run`")
    answer.add_argument("--base-url", help="for --backend openai-compatible: the server's API root")
    answer.add_argument("--tokenizer", help="a tokenizer folder or tokenizer.json to use instead of the model's")
    answer.add_argument("--batch-size", default="1", help=argparse.SUPPRESS)
    answer.add_argument("--device", choices=checks.DEVICES, help="default: cuda when present, else cpu")
    answer.add_argument("--dtype", help="override the registry's dtype (float32, bfloat16, float16, auto)")
    answer.add_argument("--output", default=str(Path("results") / "answers"), help="folder for the answer file")
    _add_chat_options(answer, always=True)
    answer.set_defaults(handler=_cmd_answer)

    judged = command("judge", help="grade answers with an LLM judge (MT-bench scores, or pairwise battles)")
    judged.add_argument("answers", nargs="+", help="answer files written by `harness answer` (FastChat's format)")
    judged.add_argument("--judge-base-url", required=True,
                        help="an OpenAI-compatible API root, e.g. https://api.openai.com/v1 (key from "
                             "$HARNESS_JUDGE_API_KEY or $OPENAI_API_KEY)")
    judged.add_argument("--judge-model", required=True, help="the judge model's name at that endpoint, e.g. gpt-4")
    judged.add_argument("--mode", choices=("single", "pairwise"), default="single",
                        help="single: grade each answer 1-10 (default); pairwise: every pair of models, both orders")
    judged.add_argument("--bench", default="mt_bench", choices=("mt_bench", "vicuna_bench"),
                        help="the benchmark of answer files that do not say (default: %(default)s)")
    judged.add_argument("--out", required=True, help="folder for the judgments and the result")
    judged.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds over questions (default: %(default)s)")
    judged.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    judged.add_argument("--parallel", type=int, default=4, help="judgments requested at once (default: %(default)s)")
    judged.add_argument("--retries", type=int, default=5, help="tries per judgment (default: %(default)s)")
    judged.add_argument("--timeout", type=float, default=600.0, help="seconds per try (default: %(default)s)")
    judged.set_defaults(handler=_cmd_judge)

    sweep = command("sweep", help="run a grid of models × tasks from a sweep YAML (resumable)",
                                description=_sweep_doc(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("sweep_file", help="the sweep YAML")
    sweep.add_argument("--dry-run", action="store_true", help="print the grid, each cell done or pending, and stop")
    sweep.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="local: cells one after another here (default); ray: cells as tasks on a Ray cluster")
    sweep.add_argument("--address", help="for --executor ray: auto (a cluster started with `ray start`) or "
                                         "ray://HOST:10001; default: a new local Ray instance")
    sweep.add_argument("--output", help="results folder (default: the sweep file's `output:`)")
    sweep.set_defaults(handler=_cmd_sweep)

    status = command("status", help="each cell (or run) of a results folder: done, running, pending…")
    status.add_argument("results_dir", help="a folder written by `harness sweep` or `harness run`")
    status.set_defaults(handler=_cmd_status)

    command("models", help="list the model registry").set_defaults(handler=_cmd_models)
    tasks = command("tasks", help="list tasks and suites")
    tasks.add_argument("--include-path", action="append", metavar="DIR", help="also list the tasks of this folder")
    tasks.set_defaults(handler=_cmd_tasks)
    data = command("data", help="where each task's documents come from: the mirror (with file "
                                            "checksums) or the hub")
    data.add_argument("--tasks", help="comma-separated tasks, suites or YAML paths (default: every task)")
    data.add_argument("--include-path", action="append", metavar="DIR", help="also resolve the tasks of this folder")
    data.set_defaults(handler=_cmd_data)
    return parser


def _close_progress_bars() -> None:
    """Close bars left open by the failed work, so the error is the last line the user sees."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


def _traceback_log(args: argparse.Namespace) -> Path:
    """Write the current exception's traceback into the command's output folder (else the cache)."""
    from harness.paths import CACHE_DIR
    from harness.provenance import utc_now

    name = f"harness-error-{utc_now().strftime('%Y%m%dT%H%M%SZ')}.log"
    text = f"harness {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}"
    for folder in (getattr(args, "output", None), getattr(args, "out", None), CACHE_DIR / "logs"):
        if folder is None:
            continue
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / name).write_text(text, encoding="utf-8")
            return Path(folder) / name
        except OSError:
            continue
    return Path("(nowhere: no folder could be written)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except HarnessError as error:
        _close_progress_bars()
        print(str(error), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        _close_progress_bars()
        print("error: interrupted — nothing was marked complete for the task that was running; "
              "rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, or an input no check foresaw: one line, the traceback in a log
        _close_progress_bars()
        log = _traceback_log(args)
        if args.debug:
            traceback.print_exc()
        lines = str(exc).strip().splitlines()
        cause = f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__
        print(f"error: harness {args.command} failed unexpectedly ({cause}) — the traceback is in {log} "
              "(--debug prints it); check the input it names, and report it as a bug if the input is right",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
