"""``harness export``: run results in the Hugging Face Hub's two evaluation-result formats, built with
``huggingface_hub``'s own classes.

- ``model-index``: ``OUT/README.md``, a model card whose YAML front matter is the legacy ``model-index`` block
  (``EvalResult`` → ``ModelCardData`` → ``ModelCard``), ready to paste into a model card; its body tabulates
  stderr, doc counts, weights and deviations, which the block has no field for. Per result: dataset hub id
  (``type``), config and split as lm-eval read them, n-shot as ``dataset.args.num_few_shot`` (the Open LLM
  Leaderboard's convention), every metric, and ``source``: the result JSON (``file://``) and the harness
  version and commit that wrote it.
- ``hf-eval-results``: ``OUT/.eval_results/<task>_<k>shot.yaml``, one per result, in the schema of
  huggingface_hub 2.4's ``EvalResultEntry`` / ``eval_result_entries_to_yaml`` (documented at
  https://huggingface.co/docs/hub/eval-results): ``dataset.{id,task_id}``, ``value``, ``date``,
  ``source.{url,name}``, ``notes``. One value per file: the headline metric (``report_metric``, else the
  primary); metric, split, n-shot, stderr and deviations go in ``notes``. ``task_id`` should name a task of
  the benchmark's ``eval.yaml`` (not readable offline): it is the dataset config, ``default`` if none.

Proportions (acc*, exact_match, em, f1, mc1/mc2, pass@k) are in percent, unrounded, named ``(%)``; other
metrics as lm-eval gave them. A ``--limit`` subset is refused unless allowed, then labelled ``subset: first N
of M docs``. A group is exported when its member results (same run, beside it) read one hub dataset.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.core import ResultFileError, RunResult, load_result
from harness.errors import HarnessError

if TYPE_CHECKING:  # huggingface_hub loads only when an export runs
    from huggingface_hub import EvalResult, EvalResultEntry, ModelCard

FORMATS = ("hf-eval-results", "model-index")
EVAL_RESULTS_DIR = ".eval_results"
# `datasets`' packaged builders: a task reading local files names one of these, no hub dataset.
_LOCAL_BUILDERS = {"json", "csv", "parquet", "text", "arrow", "pandas", "webdataset", "imagefolder", "audiofolder"}
_PROPORTION_PREFIXES = ("acc", "exact_match", "pass@", "mc1", "mc2")
_PROPORTIONS = {"em", "f1"}
_METRIC_NAMES = {"acc": "accuracy", "acc_norm": "normalized accuracy", "exact_match": "exact match",
                 "em": "exact match", "f1": "F1", "mc1": "MC1 accuracy", "mc2": "MC2 accuracy",
                 "acc_subject_mean": "accuracy (unweighted mean over subjects)"}


@dataclass(frozen=True)
class Dataset:
    """The hub dataset a result was measured on: its id, config and the split lm-eval evaluated."""

    id: str
    config: str | None
    split: str | None


@dataclass(frozen=True)
class Export:
    """One result as it is published: its dataset, pretty name, headline metric and subset (if any)."""

    result: RunResult
    dataset: Dataset
    label: str
    metric: str  # the headline metric (the only one the .eval_results format has room for)
    subset: tuple[int, int] | None  # (docs evaluated, docs in the split) for a --limit subset

    @property
    def stem(self) -> str:
        """The .eval_results file name (without .yaml): task, n-shot, chat and subset."""
        r = self.result
        parts = [r.task, f"{r.num_fewshot if r.num_fewshot is not None else 0}shot"]
        parts += ["chat"] if r.spec.get("chat") else []
        parts += [f"limit{self.subset[0]}"] if self.subset else []
        return re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(parts))


@dataclass(frozen=True)
class ExportPlan:
    """What is exported, and one line for each result passed over (why)."""

    exports: tuple[Export, ...]
    skipped: tuple[str, ...]

    @property
    def model(self) -> str:
        return self.exports[0].result.model


class _NotExportable(Exception):
    """A result the Hub formats cannot carry (no hub dataset, incomplete, no headline value), and the fix."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def load_results(path: Path) -> list[RunResult]:
    """The result JSON at ``path``, or every result JSON in folder ``path`` (``*.samples.jsonl`` are no results)."""
    path = Path(path)
    if not path.exists():
        raise HarnessError(f"{path} does not exist", "pass a result JSON written by `harness run` or its folder")
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise HarnessError(f"no result JSON in {path}", "pass the folder `harness run` wrote (results/runs)")
    results = []
    for file in files:
        try:
            results.append(load_result(file))
        except (OSError, ResultFileError) as exc:
            if not path.is_dir():
                raise HarnessError(f"cannot export {file}: {exc}",
                                   "pass a result JSON file written by `harness run`") from None
            print(f"warning: skipped {exc}", file=sys.stderr)  # a folder's other files are still exported
    if not results:
        raise HarnessError(f"no readable result JSON in {path}", "pass the folder `harness run` wrote (results/runs)")
    return results


def _pool(path: Path, results: list[RunResult]) -> list[RunResult]:
    """The results a group's members are looked up in: the folder's (a group file's siblings too)."""
    if Path(path).is_dir() or all(r.kind != "group" for r in results):
        return results
    siblings = []
    for file in sorted(Path(path).parent.glob("*.json")):
        with contextlib.suppress(OSError, ResultFileError):
            siblings.append(load_result(file))
    return siblings


def _hub_dataset(config: dict) -> str | None:
    """The hub id lm-eval's config names (``dataset_path``; for our mirrored datasets, the mirror's hub id)."""
    path = config.get("dataset_path")
    if not path and (config.get("dataset_kwargs") or {}).get("dataset"):
        from harness.data import DATASETS  # imports `datasets`: only for a config without dataset_path

        mirrored = DATASETS.get(config["dataset_kwargs"]["dataset"])
        path = mirrored.hub_path if mirrored else None
    return None if not path or path in _LOCAL_BUILDERS else str(path)


def _task_dataset(result: RunResult) -> Dataset:
    config = dict(result.lm_eval_config)
    dataset_id = _hub_dataset(config)
    if dataset_id is None:
        raise _NotExportable(f"{result.task} reads no Hugging Face hub dataset (local files or task code)",
                             "export results of tasks whose YAML names a hub `dataset_path`")
    split = config.get("test_split") or config.get("validation_split")  # lm-eval scores test docs, else validation
    return Dataset(dataset_id, config.get("dataset_name"), split)


def _members(group: RunResult, pool: Sequence[RunResult]) -> list[RunResult]:
    """The results of one run under ``group``, through nested groups (found by ``part_of``)."""
    run = [r for r in pool if r.model == group.model and r.provenance.get("started") == group.provenance.get("started")]
    names, found = {group.task}, {}
    while more := [r for r in run if r.part_of in names and id(r) not in found]:
        found.update((id(r), r) for r in more)
        names |= {r.task for r in more}
    return list(found.values())


def _group_dataset(group: RunResult, pool: Sequence[RunResult]) -> Dataset:
    members = _members(group, pool)
    tasks = [m for m in members if m.kind == "task"]
    if not tasks or not set(group.subtasks) <= {m.task for m in members if m.part_of == group.task}:
        raise _NotExportable(f"group {group.task}: its member task results are not beside it",
                             "export from the folder its run wrote, with the members' result files")
    datasets = {_task_dataset(m) for m in tasks}
    ids = {d.id for d in datasets}
    if len(ids) != 1:
        raise _NotExportable(f"group {group.task} spans several datasets ({', '.join(sorted(ids))})",
                             "export its member tasks' result files instead")
    configs, splits = {d.config for d in datasets}, {d.split for d in datasets}
    return Dataset(ids.pop(), configs.pop() if len(configs) == 1 else None, splits.pop() if len(splits) == 1 else None)


def _subset(result: RunResult) -> tuple[int, int] | None:
    counts = [c for c in result.n_samples.values() if isinstance(c, dict)]
    evaluated, total = sum(c.get("effective", 0) for c in counts), sum(c.get("original", 0) for c in counts)
    return (evaluated, total) if counts and evaluated < total else None


def describe(result: RunResult, pool: Sequence[RunResult]) -> Export:
    """How one result is published; :class:`_NotExportable` where the Hub formats cannot carry it."""
    if result.status != "complete":
        raise _NotExportable(f"{result.task} is not a complete result (status {result.status or 'unknown'!r})",
                             "export the result of a run that finished")
    dataset = _group_dataset(result, pool) if result.kind == "group" else _task_dataset(result)
    headline = result.metadata.get("report_metric")
    metric = headline if headline in result.metrics else result.primary_metric
    if result.metrics.get(metric) is None or result.metrics[metric].value is None:
        raise _NotExportable(f"{result.task} has no value for its metric {metric}",
                             "export a result whose headline metric lm-eval computed")
    return Export(result, dataset, str(result.metadata.get("benchmark_label") or result.task), metric,
                  _subset(result))


def _latest(exports: Iterable[Export]) -> tuple[list[Export], list[str]]:
    """One export per file name: a rerun with the same settings supersedes the older result."""
    kept: dict[str, Export] = {}
    skipped = []
    for item in sorted(exports, key=lambda e: e.result.finished):
        if item.stem in kept:
            skipped.append(f"{kept[item.stem].result.path} (superseded by the newer {item.result.path})")
        kept[item.stem] = item
    return list(kept.values()), skipped


def plan(path: Path, model: str | None = None, allow_subset: bool = False) -> ExportPlan:
    """The results at ``path`` (a file or a folder) to export, of one model; refuses subsets unless allowed."""
    results = load_results(path)
    if model is not None:
        results = [r for r in results if r.model == model]
    models = sorted({r.model for r in results})
    if len(models) != 1:
        found = f"results of {len(models)} models ({', '.join(models)})" if models else f"no result of model {model}"
        raise HarnessError(f"{path} holds {found}", "a model card is one model's: pass --model NAME")
    pool, exports, skipped = _pool(path, results), [], []
    for result in results:
        try:
            exports.append(describe(result, pool))
        except _NotExportable as exc:
            if not Path(path).is_dir():
                raise HarnessError(f"cannot export {path}: {exc.problem}", exc.fix) from None
            skipped.append(f"{result.path} ({exc.problem})")
    exports, superseded = _latest(exports)
    subsets = [e for e in exports if e.subset]
    if subsets and not allow_subset:
        first = subsets[0]
        raise HarnessError(f"{first.result.path.name} is a --limit subset (first {first.subset[0]} of "
                           f"{first.subset[1]} docs){f' and {len(subsets) - 1} more' if len(subsets) > 1 else ''}",
                           "rerun without --limit, or pass --allow-subset to export it labelled as a subset")
    if not exports:
        raise HarnessError(f"nothing in {path} can be exported ({'; '.join(skipped)})",
                           "export results of tasks that read a hub dataset")
    return ExportPlan(tuple(sorted(exports, key=lambda e: e.stem)), tuple(skipped + superseded))


def is_proportion(metric: str) -> bool:
    """Whether a metric is a fraction 0–1 (written in percent)."""
    base = metric.split(",")[0]
    return base.startswith(_PROPORTION_PREFIXES) or base in _PROPORTIONS


def scaled(metric: str, value: float | None) -> float | None:
    """A metric value as published: percent for proportions, else as lm-eval computed it."""
    return None if value is None else 100 * value if is_proportion(metric) else value


def metric_name(metric: str, subset: tuple[int, int] | None = None) -> str:
    """A pretty metric name: ``accuracy (%)``, ``exact match (strict-match) (%)``, plus a subset label."""
    base, _, filter_name = metric.partition(",")
    name = _METRIC_NAMES.get(base, base) + (f" ({filter_name})" if filter_name else "")
    name += " (%)" if is_proportion(metric) else ""
    return name + (f" — subset: first {subset[0]} of {subset[1]} docs" if subset else "")


def _source(result: RunResult) -> tuple[str, str]:
    """The result JSON's URI and a name with the harness version and commit that wrote it."""
    harness = result.provenance.get("harness") or {}
    commit = str(harness.get("commit") or "unknown commit")[:12]
    dirty = " + uncommitted changes" if harness.get("dirty") else ""
    name = f"open-llm-harness {harness.get('version', '?')} ({commit}{dirty}): {result.path.name}"
    return result.path.resolve().as_uri(), name


def _n_shot(result: RunResult) -> int:
    return int(result.num_fewshot or 0)


def eval_results(exports: Sequence[Export]) -> list[EvalResult]:
    """The model-index entries (:class:`huggingface_hub.EvalResult`): every metric of every result, headline first."""
    from huggingface_hub import EvalResult

    entries = []
    for item in exports:
        result, url_name = item.result, _source(item.result)
        metrics = [item.metric, *[m for m in result.metrics if m != item.metric]]
        for metric in metrics:
            value = result.metrics[metric].value
            if value is None:
                continue
            entries.append(EvalResult(
                task_type="text-generation", task_name="Text Generation", dataset_type=item.dataset.id,
                dataset_name=f"{item.label} ({_n_shot(result)}-shot)", dataset_config=item.dataset.config,
                dataset_split=item.dataset.split, dataset_args={"num_few_shot": _n_shot(result)},
                metric_type=metric.split(",")[0], metric_name=metric_name(metric, item.subset),
                metric_value=scaled(metric, value), source_url=url_name[0], source_name=url_name[1]))
    return entries


def _check_one_per_dataset(exports: Sequence[Export]) -> None:
    """huggingface_hub merges model-index results of one dataset config and split: refuse two of them."""
    seen: dict[Dataset, Export] = {}
    for item in exports:
        other = seen.setdefault(item.dataset, item)
        if other is not item:
            where = " ".join(str(p) for p in (item.dataset.id, item.dataset.config, item.dataset.split) if p)
            raise HarnessError(f"{other.result.path.name} and {item.result.path.name} are both results on {where}, "
                               "and a model-index holds one result per dataset config and split",
                               "export one of them (pass its file), or use --format hf-eval-results")


def _card_body(plan_: ExportPlan) -> str:
    lines = [f"# Evaluation results: {plan_.model}", "",
             "Exported by `harness export` (open-llm-harness). Proportions are in percent; the YAML front matter's "
             "`model-index` is what goes into a model card.", "",
             "| benchmark | harness task | dataset | split | n-shot | metric | value | stderr | docs | result file |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for item in plan_.exports:
        r, headline = item.result, item.result.metrics[item.metric]
        stderr = scaled(item.metric, headline.stderr)
        docs = f"{item.subset[0]} of {item.subset[1]} (subset)" if item.subset else str(r.n)
        dataset = "/".join(p for p in (item.dataset.id, item.dataset.config) if p)
        lines.append(f"| {item.label} | {r.task} | {dataset} | {item.dataset.split or ''} | {_n_shot(r)} | "
                     f"{metric_name(item.metric)} | {scaled(item.metric, headline.value):.2f} | "
                     f"{'' if stderr is None else f'{stderr:.2f}'} | {docs} | `{r.path.name}` |")
    weights = dict.fromkeys(_weights(item.result) for item in plan_.exports)
    lines += ["", f"Weights evaluated: {'; '.join(weights)}."]
    deviations = [d if d.startswith(f"{item.result.task}:") else f"{item.result.task}: {d}"
                  for item in plan_.exports for d in item.result.provenance.get("deviations", ())]
    if deviations:
        lines += ["", "Deviations from lm-eval's protocol, as each result records them:", ""]
        lines += [f"- {text}" for text in dict.fromkeys(deviations)]
    return "\n".join(lines) + "\n"


def model_card(plan_: ExportPlan, model_name: str) -> ModelCard:
    """A :class:`huggingface_hub.ModelCard` whose front matter is the results' ``model-index``."""
    from huggingface_hub import ModelCard, ModelCardData

    _check_one_per_dataset(plan_.exports)
    data = ModelCardData(model_name=model_name, eval_results=eval_results(plan_.exports))
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{_card_body(plan_)}")


def _weights(result: RunResult) -> str:
    model = result.provenance.get("model") or {}
    files = ", ".join(model.get("weight_files") or {})
    return f"{model.get('source', '?')} weights{f' {files}' if files else ''}"


def _notes(item: Export) -> str:
    r, value = item.result, item.result.metrics[item.metric]
    stderr = scaled(item.metric, value.stderr)
    parts = [f"open-llm-harness task {r.task}", f"{_n_shot(r)}-shot", f"split {item.dataset.split or '?'}",
             f"metric {item.metric}{' in percent' if is_proportion(item.metric) else ''}"
             + (f", stderr {stderr:.4g}" if stderr is not None else ""),
             f"{_weights(r)}{', chat template' if r.spec.get('chat') else ''}"]
    parts += [f"subset: first {item.subset[0]} of {item.subset[1]} docs (--limit)"] if item.subset else []
    parts += [f"deviation: {d}" for d in r.provenance.get("deviations", ()) if not d.startswith("--limit")]
    return "; ".join(parts)


def eval_result_entries(plan_: ExportPlan) -> dict[str, EvalResultEntry]:
    """``{file name: huggingface_hub.EvalResultEntry}``, one .eval_results file per result."""
    from huggingface_hub import EvalResultEntry

    entries = {}
    for item in plan_.exports:
        url, name = _source(item.result)
        entries[f"{item.stem}.yaml"] = EvalResultEntry(
            dataset_id=item.dataset.id, task_id=item.dataset.config or "default",
            value=scaled(item.metric, item.result.metrics[item.metric].value),
            date=item.result.finished or None, source_url=url, source_name=name, notes=_notes(item))
    return entries


def card_name(plan_: ExportPlan, repo: str | None = None) -> str:
    """The model-index ``name``: the repo pushed to, else the model's hub id, else its registry name."""
    return repo or str((plan_.exports[0].result.provenance.get("model") or {}).get("hub_id") or plan_.model)


def write(plan_: ExportPlan, fmt: str, out: Path, model_name: str) -> list[Path]:
    """Write the export under ``out``: ``README.md`` (model-index) or ``.eval_results/*.yaml``."""
    import yaml
    from huggingface_hub import eval_result_entries_to_yaml

    out = Path(out)
    if fmt == "model-index":
        card = model_card(plan_, model_name)
        out.mkdir(parents=True, exist_ok=True)
        card.save(out / "README.md")
        return [out / "README.md"]
    folder = out / EVAL_RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, entry in eval_result_entries(plan_).items():
        text = yaml.safe_dump(eval_result_entries_to_yaml([entry]), sort_keys=False, allow_unicode=True)
        (folder / file_name).write_text(text, encoding="utf-8")
        written.append(folder / file_name)
    return written


def check_can_push() -> None:
    """Stop before anything is read or written when huggingface_hub has no token or the hub is offline."""
    from huggingface_hub import constants, get_token

    if get_token() is None:
        raise HarnessError("--push needs a Hugging Face token and none is set",
                           "set HF_TOKEN to a token with write access to the repo (or run `hf auth login`)")
    if constants.HF_HUB_OFFLINE:
        raise HarnessError("--push cannot reach the hub: HF_HUB_OFFLINE is set", "unset HF_HUB_OFFLINE to push")


def push(fmt: str, files: Sequence[Path], out: Path, repo: str) -> str:
    """Upload to model repo ``repo``: the model-index merged into its card, or the .eval_results files."""
    from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, metadata_update

    try:
        if fmt == "model-index":
            model_index = ModelCard.load(files[0]).data.to_dict()["model-index"]
            return str(metadata_update(repo, {"model-index": model_index}, overwrite=True,
                                       commit_message="Add evaluation results (harness export)"))
        operations = [CommitOperationAdd(path_in_repo=file.relative_to(out).as_posix(), path_or_fileobj=str(file))
                      for file in files]
        commit = HfApi().create_commit(repo, operations, commit_message="Add evaluation results (harness export)")
        return str(commit.commit_url)
    except (OSError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise HarnessError(f"could not push to {repo} ({type(exc).__name__}{': ' + detail if detail else ''})",
                           "check the repo id and that the token may write to it; the files are kept under "
                           f"{out}") from None
