"""Conformance: lm-eval is the oracle. Every task shape in tests/conformance/ runs on the embedded model through
the harness (in process, by YAML path, through --include-path, and two of them in a sweep) and through
``lm_eval.simple_evaluate`` with lm-eval's own ``HFLM`` on the same model object and task manager; every metric
and stderr of every task and group must agree: exactly for accuracy / exact-match (generation) metrics, within
1e-4 for values derived from log-likelihoods.

The harness runs the model once (in process); the two CLI runs go to the same output folder, so their answers
come from its request cache — they must compute nothing, which also proves they built the very same requests.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import needs, run_cli

pytestmark = [needs("mirror", "embedded_model"), pytest.mark.slow]

CONFORMANCE = Path(__file__).resolve().parent / "conformance"
MODEL = "smollm2-135m-instruct"
LIMIT = 6
TOLERANCE = 1e-4
# One doc's summed log-likelihood (hundreds of nats for a rolling document) carries float32 summation noise of
# about 1e-6 of its size; per-doc values are compared within that, aggregated metrics within TOLERANCE.
PER_DOC_RELATIVE = 1e-5
# Metrics whose values (and stderrs) come from summed log-likelihoods: equal within TOLERANCE.
LOGLIKELIHOOD_METRICS = {"perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte", "gold_margin"}
# Metrics of counted verdicts (argmax of choices, string match of generations): equal exactly.
EXACT_METRICS = {"acc", "acc_norm", "exact_match", "hit"}


@dataclass(frozen=True)
class Shape:
    name: str  # what `--tasks` names through --include-path (a task, group or tag)
    files: tuple[str, ...]  # the YAML file(s) that define it, run by path
    results: tuple[str, ...]  # every result it gives: its tasks and groups
    groups: tuple[str, ...] = ()


SHAPES = {
    "mc_jinja_doc_to_choice": Shape("conf_mc_jinja", ("conf_mc_jinja.yaml",), ("conf_mc_jinja",)),
    "mc_list_delimiters": Shape("conf_mc_list", ("conf_mc_list.yaml",), ("conf_mc_list",)),
    "include_base_yaml": Shape("conf_include", ("conf_include.yaml",), ("conf_include",)),
    "function_process_docs_doc_to_text": Shape("conf_hooks", ("conf_hooks.yaml",), ("conf_hooks",)),
    "process_results_two_metrics": Shape("conf_process_results", ("conf_process_results.yaml",),
                                         ("conf_process_results",)),
    "loglikelihood": Shape("conf_loglikelihood", ("conf_loglikelihood.yaml",), ("conf_loglikelihood",)),
    "loglikelihood_rolling": Shape("conf_rolling", ("conf_rolling.yaml",), ("conf_rolling",)),
    "generate_until_two_filters": Shape("conf_generate", ("conf_generate.yaml",), ("conf_generate",)),
    "group_exact_match": Shape("conf_group_em", ("conf_group_em.yaml",),
                               ("conf_group_em", "conf_em_capital", "conf_em_copy"), ("conf_group_em",)),
    "group_acc_unweighted": Shape("conf_group_acc", ("conf_group_acc.yaml",),
                                  ("conf_group_acc", "conf_acc_arc", "conf_acc_facts"), ("conf_group_acc",)),
    "nested_group": Shape("conf_nested", ("conf_nested.yaml",),
                          ("conf_nested", "conf_nested_x", "conf_nested_y", "conf_nx_yesno", "conf_nx_wino",
                           "conf_ny_arc"), ("conf_nested", "conf_nested_x", "conf_nested_y")),
    "tag": Shape("conf_tag", ("conf_tag_a.yaml", "conf_tag_b.yaml"), ("conf_tag_a", "conf_tag_b")),
    "fewshot_split_first_n": Shape("conf_fewshot", ("conf_fewshot.yaml",), ("conf_fewshot",)),
}
# The sweep runs two shapes: one by name (through its include_path), one by YAML path.
SWEEP_BY_NAME, SWEEP_BY_PATH = "mc_list_delimiters", "loglikelihood_rolling"


@pytest.fixture(scope="module")
def model_spec():
    from harness.registry import resolve_model

    return resolve_model(MODEL)


# --- the runs -----------------------------------------------------------------------------------------------

def _new_results(folder: Path, before: set[Path]) -> dict[str, Any]:
    """The result files a run added to ``folder`` (searched recursively), by the task or group they hold;
    each file must be named after it."""
    from harness.core import ResultFileError, load_result

    found = {}
    for path in sorted(set(folder.rglob("*.json")) - before):
        try:
            result = load_result(path)
        except ResultFileError:
            assert not path.name.startswith(f"{MODEL}__"), f"{path} is named like a result but is not one"
            continue  # a sweep's own bookkeeping, not a result
        assert path.name.startswith(f"{MODEL}__{result.task}__"), f"{path.name} holds the result of {result.task}"
        assert result.task not in found, f"two result files for {result.task}: {found[result.task].path}, {path}"
        found[result.task] = result
    return found


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conformance-runs")


@pytest.fixture(scope="module")
def in_process(model_spec, output_dir: Path):
    """All shapes through ``harness.runner.evaluate`` (the default backend), by name; the loaded backend too."""
    from harness.core import RunSpec
    from harness.runner import evaluate, load

    spec = RunSpec(model=model_spec, tasks=tuple(shape.name for shape in SHAPES.values()), limit=LIMIT,
                   device="cpu", include_paths=(CONFORMANCE,))
    lm, weights = load(spec)
    returned = evaluate(spec, output_dir, loaded=(lm, weights))
    on_disk = _new_results(output_dir, set())
    assert sorted(result.task for result in returned) == sorted(on_disk)
    return lm, on_disk


@pytest.fixture(scope="module")
def oracle(in_process) -> dict[str, dict[str, Any]]:
    """Each shape through lm-eval alone: ``simple_evaluate`` with ``HFLM`` on the harness's model object."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm, _ = in_process
    hflm = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=8, device="cpu")
    manager = TaskManager(include_path=str(CONFORMANCE), include_defaults=False)
    outputs = {}
    for key, shape in SHAPES.items():
        out = lm_eval.simple_evaluate(model=hflm, tasks=[shape.name], task_manager=manager, limit=LIMIT, device="cpu",
                                      log_samples=True, random_seed=0, numpy_random_seed=1234,
                                      torch_random_seed=1234, fewshot_random_seed=1234)
        outputs[key] = {name: out.get(name) or {} for name in ("results", "groups", "group_subtasks", "n-shot",
                                                               "n-samples", "samples", "configs")}
    return outputs


def _cli_run(output_dir: Path, *args: str) -> tuple[dict[str, Any], str | None]:
    """One `harness run` into ``output_dir``: the results it added, or the reason it failed."""
    before = set(output_dir.rglob("*.json"))
    done = run_cli("run", "--model", MODEL, *args, "--limit", str(LIMIT), "--device", "cpu",
                   "--output", str(output_dir), timeout=900)
    if done.returncode != 0:
        return {}, f"harness run {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
    return _new_results(output_dir, before), None


@pytest.fixture(scope="module")
def cli_runs(in_process, output_dir: Path) -> dict[str, dict[str, Any]]:
    """`harness run` by YAML path (task shapes in one run, group shapes in another, so a failure names its
    shapes), then every shape by name through --include-path; all into the in-process run's folder.
    Returns {mode: {"results": {name: RunResult}, "errors": {shape key: why its run failed}}}."""
    runs: dict[str, dict[str, Any]] = {}
    grouped = [key for key, shape in SHAPES.items() if shape.groups]
    batches = {"by_path": [[key for key in SHAPES if key not in grouped], grouped],
               "include_path": [list(SHAPES)]}
    for mode, key_batches in batches.items():
        runs[mode] = {"results": {}, "errors": {}}
        for keys in key_batches:
            if mode == "by_path":
                args = ("--tasks", ",".join(str(CONFORMANCE / f) for key in keys for f in SHAPES[key].files))
            else:
                args = ("--include-path", str(CONFORMANCE), "--tasks", ",".join(SHAPES[key].name for key in keys))
            found, error = _cli_run(output_dir, *args)
            runs[mode]["results"].update(found)
            runs[mode]["errors"].update(dict.fromkeys(keys, error) if error else {})
    return runs


@pytest.fixture(scope="module")
def sweep_run(model_spec, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A sweep file with two shapes (one by name through include_path, one by YAML path), own output folder."""
    folder = tmp_path_factory.mktemp("conformance-sweep")
    sweep_file = folder / "conformance_sweep.yaml"
    sweep_file.write_text(yaml.safe_dump({
        "output": str(folder / "out"),
        "include_path": str(CONFORMANCE),
        "tasks": [SHAPES[SWEEP_BY_NAME].name, str(CONFORMANCE / SHAPES[SWEEP_BY_PATH].files[0])],
        "limit": LIMIT,
        "device": "cpu",
        "models": [MODEL],
    }))
    done = run_cli("sweep", str(sweep_file), timeout=900)
    assert done.returncode == 0, f"harness sweep failed:\n{done.stderr[-3000:]}"
    return _new_results(folder / "out", set())


# --- comparison ---------------------------------------------------------------------------------------------

def _oracle_metrics(row: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """lm-eval's row → {harness label: (value, stderr)}; labels are the metric for filter `none`, else
    "metric,filter"; "N/A" (and NaN) stderrs become None."""
    metrics = {}
    for key, value in row.items():
        if "," not in key or "_stderr," in key:
            continue
        metric, filter_name = key.split(",", 1)
        stderr = row.get(f"{metric}_stderr,{filter_name}", "N/A")
        if stderr == "N/A" or (isinstance(stderr, float) and math.isnan(stderr)):
            stderr = None
        metrics[metric if filter_name == "none" else key] = (value, stderr)
    return metrics


def _assert_equal(actual: float | None, expected: float | None, metric: str, where: str, per_doc: bool = False) -> None:
    base = metric.split(",")[0]
    assert base in LOGLIKELIHOOD_METRICS | EXACT_METRICS, f"{where}: metric {metric} is not classified"
    if expected is None or actual is None:
        assert actual is None and expected is None, f"{where}: harness {actual!r}, lm-eval {expected!r}"
    elif base in LOGLIKELIHOOD_METRICS:
        tolerance = max(TOLERANCE, PER_DOC_RELATIVE * abs(expected)) if per_doc else TOLERANCE
        assert abs(actual - expected) <= tolerance, f"{where}: harness {actual!r}, lm-eval {expected!r}"
    else:
        assert actual == expected, f"{where}: harness {actual!r}, lm-eval {expected!r}"


def _assert_matches_oracle(results: Mapping[str, Any], shape: Shape, out: dict[str, Any], run: str) -> None:
    expected_names = set(out["results"])
    assert expected_names == set(shape.results), f"lm-eval gave {sorted(expected_names)}"
    assert set(shape.results) <= set(results), f"{run}: no result for {sorted(set(shape.results) - set(results))}"
    for name in shape.results:
        result, row = results[name], out["results"][name]
        assert result.kind == ("group" if name in shape.groups else "task"), f"{run} {name}: kind {result.kind}"
        expected = _oracle_metrics(row)
        assert expected, f"lm-eval gave no metric for {name}"
        assert set(result.metrics) == set(expected), f"{run} {name}: metrics {sorted(result.metrics)}"
        for label, (value, stderr) in expected.items():
            got = result.metrics[label]
            _assert_equal(got.value, value, label, f"{run} {name} {label}")
            _assert_equal(got.stderr, stderr, label, f"{run} {name} {label} stderr")
        assert result.n == row["sample_len"], f"{run} {name}: n {result.n}, lm-eval {row['sample_len']}"
        if name not in shape.groups or name in out["n-shot"]:  # lm-eval gives no n-shot for a group of groups
            assert result.num_fewshot == out["n-shot"][name], f"{run} {name}: num_fewshot {result.num_fewshot}"


def _assert_same_numbers(results: Mapping[str, Any], reference: Mapping[str, Any], shape: Shape, run: str) -> None:
    for name in shape.results:
        got, ref = results[name], reference[name]
        assert (got.kind, got.n, got.num_fewshot) == (ref.kind, ref.n, ref.num_fewshot), f"{run} {name}"
        assert set(got.metrics) == set(ref.metrics), f"{run} {name}: metrics {sorted(got.metrics)}"
        for label, value in ref.metrics.items():
            _assert_equal(got.metrics[label].value, value.value, label, f"{run} {name} {label} (vs in-process)")
            _assert_equal(got.metrics[label].stderr, value.stderr, label, f"{run} {name} {label} stderr")


# --- the tests ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", SHAPES)
def test_harness_run_equals_lm_eval(key: str, in_process, oracle) -> None:
    """Every metric and stderr of every task and group of the shape, as the harness wrote it, is lm-eval's."""
    _, results = in_process
    _assert_matches_oracle(results, SHAPES[key], oracle[key], "in-process")


@pytest.mark.parametrize("key", SHAPES)
def test_per_sample_verdicts_and_generations_equal_lm_eval(key: str, in_process, oracle) -> None:
    """Each task's samples file has lm-eval's docs, per-doc metric values, and (generation) the same text."""
    from harness.core import load_samples

    _, results = in_process
    out = oracle[key]
    for name in SHAPES[key].results:
        if name in SHAPES[key].groups:
            continue
        records = load_samples(results[name].samples_path)
        assert len(records) == out["n-samples"][name]["effective"], f"{name}: {len(records)} samples"
        primary_filter = records[0].filter
        by_doc = {s["doc_id"]: s for s in out["samples"][name] if primary_filter in (None, s["filter"])}
        assert sorted(by_doc) == sorted(record.doc_id for record in records), name
        output_type = out["configs"][name]["output_type"]
        for record in records:
            sample = by_doc[record.doc_id]
            if output_type == "loglikelihood_rolling":  # per-doc values are (loglikelihood, length) pairs
                (got,), (expected,) = record.response, sample["resps"]
                _assert_equal(float(got[0]), float(expected[0]), "perplexity", f"{name} doc {record.doc_id}",
                              per_doc=True)
                continue
            assert record.metrics, f"{name} doc {record.doc_id}: no per-doc metrics"
            for metric, value in record.metrics.items():
                _assert_equal(value, sample[metric], metric, f"{name} doc {record.doc_id} {metric}", per_doc=True)
            if output_type == "generate_until":
                assert record.generation == sample["resps"][0][0], f"{name} doc {record.doc_id} generation"
                assert record.prediction == sample["filtered_resps"][0], f"{name} doc {record.doc_id} prediction"


@pytest.mark.parametrize("mode", ["by_path", "include_path"])
@pytest.mark.parametrize("key", SHAPES)
def test_cli_run_files_and_numbers_agree(key: str, mode: str, cli_runs, in_process, oracle) -> None:
    """`harness run` by YAML path and through --include-path: one file per task and group, named after it,
    the in-process run's numbers, lm-eval's numbers, and every answer from the request cache."""
    shape = SHAPES[key]
    assert key not in cli_runs[mode]["errors"], cli_runs[mode]["errors"].get(key)
    results = cli_runs[mode]["results"]
    assert set(shape.results) <= set(results), f"{mode}: no result file for {sorted(set(shape.results) - set(results))}"
    for name in shape.results:
        assert results[name].path.name.startswith(f"{MODEL}__{name}__")
        assert results[name].path.with_name(results[name].samples_file).is_file(), f"{mode} {name}: no samples"
        cache = results[name].provenance.get("request_cache") or {}
        assert cache.get("computed") == 0, f"{mode} {name}: {cache} (requests differ from the in-process run's)"
    _assert_same_numbers(results, in_process[1], shape, mode)
    _assert_matches_oracle(results, shape, oracle[key], mode)


def test_cli_runs_give_exactly_the_expected_results(cli_runs, in_process) -> None:
    """No run writes a result for anything but the shapes' tasks and groups (a tag has no result of its own)."""
    expected = {name for shape in SHAPES.values() for name in shape.results}
    assert set(in_process[1]) == expected
    for mode in ("by_path", "include_path"):
        assert not cli_runs[mode]["errors"], f"{mode}: {sorted(cli_runs[mode]['errors'])} failed"
        assert set(cli_runs[mode]["results"]) == expected, mode


@pytest.mark.parametrize("key", [SWEEP_BY_NAME, SWEEP_BY_PATH])
def test_sweep_equals_lm_eval(key: str, sweep_run, oracle) -> None:
    """A sweep file naming one shape and giving another by path gives lm-eval's numbers for both."""
    shape = SHAPES[key]
    assert set(sweep_run) == {name for k in (SWEEP_BY_NAME, SWEEP_BY_PATH) for name in SHAPES[k].results}
    _assert_matches_oracle(sweep_run, shape, oracle[key], "sweep")


# --- each shape does what its name says (checked on lm-eval's side, so the comparison above means something) ---

def _docs(name: str, out: dict[str, Any]) -> list[dict]:
    return [sample for sample in out["samples"][name]]


def _check_mc_jinja(out):
    for sample in _docs("conf_mc_jinja", out):
        assert [arg[1] for arg in sample["arguments"]] == [" " + text for text in sample["doc"]["choices"]["text"]]
    assert all(len(s["arguments"]) >= 3 for s in _docs("conf_mc_jinja", out)), "ARC items have 3-5 choices"


def _check_mc_list(out):
    for sample in _docs("conf_mc_list", out):
        context = sample["arguments"][0][0]
        assert context.count("\n###\n") == 2 and context.startswith("Q: ") and "\nA: " in context
        assert [arg[1] for arg in sample["arguments"]] == ["\nA: no", "\nA: yes"]
    assert out["n-shot"]["conf_mc_list"] == 2


def _check_include(out):
    config = out["configs"]["conf_include"]
    assert config["custom_dataset"] and config["output_type"] == "multiple_choice"  # from the base
    assert {m["metric"] for m in config["metric_list"]} == {"acc", "acc_norm"}
    for sample in _docs("conf_include", out):
        assert sample["arguments"][0][0].startswith("Answer the science question.\n\nQ: ")


def _check_hooks(out):
    for sample in _docs("conf_hooks", out):
        assert set(sample["doc"]) == {"context", "endings", "gold"}
        assert sample["arguments"][0][0] == "Complete the story.\n" + sample["doc"]["context"]


def _check_process_results(out):
    assert set(_oracle_metrics(out["results"]["conf_process_results"])) == {"hit", "gold_margin"}


def _check_loglikelihood(out):
    facts = [json.loads(line) for line in (CONFORMANCE / "data" / "facts.jsonl").read_text().splitlines()]
    for sample in _docs("conf_loglikelihood", out):
        fact = facts[sample["doc_id"]]
        assert [tuple(arg) for arg in sample["arguments"]] == [(fact["prompt"], " " + fact["answer"])]
    assert set(_oracle_metrics(out["results"]["conf_loglikelihood"])) == {"perplexity", "acc"}


def _check_rolling(out):
    metrics = _oracle_metrics(out["results"]["conf_rolling"])
    assert set(metrics) == {"word_perplexity", "byte_perplexity", "bits_per_byte"}
    assert all(value > 0 for value, _ in metrics.values())


def _check_generate(out):
    assert set(_oracle_metrics(out["results"]["conf_generate"])) == {"exact_match,strict", "exact_match,maj"}
    samples = _docs("conf_generate", out)
    assert {s["filter"] for s in samples} == {"strict", "maj"}
    assert all(len(s["resps"][0]) == 3 for s in samples), "repeats: 3 gives three generations per doc"
    assert 0 < out["results"]["conf_generate"]["exact_match,strict"] < 1, "the data should separate right from wrong"


def _check_group_em(out):
    members = ("conf_em_capital", "conf_em_copy")
    sizes = [out["n-samples"][m]["effective"] for m in members]
    values = [out["results"][m]["exact_match,none"] for m in members]
    weighted = sum(v * n for v, n in zip(values, sizes)) / sum(sizes)
    assert out["group_subtasks"]["conf_group_em"] == list(members)
    assert out["results"]["conf_group_em"]["exact_match,none"] == pytest.approx(weighted)


def _check_group_acc(out):
    members = ("conf_acc_arc", "conf_acc_facts")
    sizes = [out["n-samples"][m]["effective"] for m in members]
    values = [out["results"][m]["acc,none"] for m in members]
    group = out["results"]["conf_group_acc"]["acc,none"]
    assert sizes[0] != sizes[1]
    assert group == pytest.approx(sum(values) / 2)
    assert group != pytest.approx(sum(v * n for v, n in zip(values, sizes)) / sum(sizes)), "weights would not matter"


def _check_nested(out):
    assert out["group_subtasks"]["conf_nested"] == ["conf_nested_x", "conf_nested_y"]
    assert out["group_subtasks"]["conf_nested_x"] == ["conf_nx_yesno", "conf_nx_wino"]
    assert set(out["groups"]) == {"conf_nested", "conf_nested_x", "conf_nested_y"}


def _check_tag(out):
    assert set(out["results"]) == {"conf_tag_a", "conf_tag_b"} and not out["groups"]


def _check_fewshot(out):
    from harness.data import load_docs

    train = load_docs("ai2_arc", "ARC-Easy")["train"]
    shots = "".join(f"Question: {train[i]['question']}\nAnswer: {train[i]['choices']['text'][train[i]['choices']['label'].index(train[i]['answerKey'])]}\n\n"
                    for i in range(3))
    assert out["n-shot"]["conf_fewshot"] == 3
    for sample in _docs("conf_fewshot", out):
        assert sample["arguments"][0][0] == shots + f"Question: {sample['doc']['question']}\nAnswer:"


FEATURE_CHECKS = {
    "mc_jinja_doc_to_choice": _check_mc_jinja,
    "mc_list_delimiters": _check_mc_list,
    "include_base_yaml": _check_include,
    "function_process_docs_doc_to_text": _check_hooks,
    "process_results_two_metrics": _check_process_results,
    "loglikelihood": _check_loglikelihood,
    "loglikelihood_rolling": _check_rolling,
    "generate_until_two_filters": _check_generate,
    "group_exact_match": _check_group_em,
    "group_acc_unweighted": _check_group_acc,
    "nested_group": _check_nested,
    "tag": _check_tag,
    "fewshot_split_first_n": _check_fewshot,
}


@pytest.mark.parametrize("key", SHAPES)
def test_shape_exercises_its_feature(key: str, oracle) -> None:
    FEATURE_CHECKS[key](oracle[key])


def test_every_shape_has_its_own_yaml_files() -> None:
    """At least 12 task YAMLs, every shape's files present, and each declares the name its results carry."""
    from harness.tasks import declared_name, read_task_yaml

    configs = [yaml.safe_load(p.read_text().replace("!function", "")) for p in CONFORMANCE.glob("*.yaml")]
    task_files = [config for config in configs if "task" in config and "group" not in config]
    assert len(task_files) >= 12
    for shape in SHAPES.values():
        declared = {declared_name(read_task_yaml(CONFORMANCE / file)) for file in shape.files}
        assert declared == ({shape.name} if shape.name != "conf_tag" else {"conf_tag_a", "conf_tag_b"})
    assert set(FEATURE_CHECKS) == set(SHAPES)


# --- lm-eval's --seed and --gen_kwargs ------------------------------------------------------------------------

SEEDED = {"mc_list_delimiters": "conf_mc_list", "generate_until_two_filters": "conf_generate"}
SEED, GEN_KWARGS = 7, {"max_gen_toks": 2, "until": ["\n"]}


def test_seed_and_gen_kwargs_give_lm_evals_numbers(in_process, tmp_path: Path) -> None:
    """`harness run --seed 7 --gen-kwargs …` against lm-eval's ``simple_evaluate`` with the same seeds and
    gen_kwargs: the same numbers, the same few-shot prompts and generations; the seed draws other few-shot
    examples than the default run's, the gen_kwargs replace the task's own, and the result records both."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from harness.core import load_samples

    lm, default_results = in_process
    done = run_cli("run", "--model", MODEL, "--include-path", str(CONFORMANCE), "--tasks", ",".join(SEEDED.values()),
                   "--limit", str(LIMIT), "--device", "cpu", "--seed", str(SEED),
                   "--gen-kwargs", json.dumps(GEN_KWARGS), "--output", str(tmp_path), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = _new_results(tmp_path, set())
    hflm = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=8, device="cpu")
    out = lm_eval.simple_evaluate(model=hflm, tasks=list(SEEDED.values()), limit=LIMIT, device="cpu", log_samples=True,
                                  task_manager=TaskManager(include_path=str(CONFORMANCE), include_defaults=False),
                                  gen_kwargs=dict(GEN_KWARGS), random_seed=SEED, numpy_random_seed=SEED,
                                  torch_random_seed=SEED, fewshot_random_seed=SEED)
    for key, name in SEEDED.items():
        oracle_out = {"results": {name: out["results"][name]}, "n-shot": out["n-shot"]}
        _assert_matches_oracle(results, SHAPES[key], oracle_out, "--seed/--gen-kwargs")
        result = results[name]
        assert result.spec["gen_kwargs"] == GEN_KWARGS and set(result.provenance["seeds"].values()) == {SEED}
        records = {r.doc_id: r for r in load_samples(result.samples_path)}
        theirs = {s["doc_id"]: s for s in out["samples"][name] if s["filter"] in ("none", "strict")}
        defaults = {r.doc_id: r for r in load_samples(default_results[name].samples_path)}
        assert sorted(records) == sorted(theirs) == sorted(defaults)
        for doc_id, record in records.items():
            assert record.prompt == theirs[doc_id]["arguments"][0][0], f"{name} doc {doc_id}: prompt"
        if name == "conf_mc_list":  # 2 of a 4-doc pool, drawn with the few-shot seed
            assert any(records[i].prompt != defaults[i].prompt for i in records), "the seed changed no few-shot draw"
        else:
            assert all(s["arguments"][0][1]["max_gen_toks"] == 2 for s in theirs.values())  # lm-eval's requests
            assert all(record.generation == theirs[i]["resps"][0][0] for i, record in records.items())
            assert result.lm_eval_config["generation_kwargs"]["max_gen_toks"] == 2
            assert any("--gen-kwargs" in d for d in result.provenance["deviations"])
    assert not any("--gen-kwargs" in d for d in results["conf_mc_list"].provenance["deviations"])
