"""The prefix-tree backend gives lm-eval's ``hf`` numbers: per-request log-likelihoods within 1e-4,
identical ``is_greedy`` and identical task metrics, at batch sizes 1, 7 and auto — for the embedded model
and for small random Llama / GPT-NeoX models built on the real Llama 2 and GPT-NeoX tokenizers
(SentencePiece and BPE boundary cases), on real data from the mirror. lm-eval's side reads the embedded
model's GGUF file itself; ours loads it as ``harness run`` does, from its cached float32 folder.

The embedded model's 50-doc comparison is long on a CPU (lm-eval's side runs every 25-shot context in
full), so it is the ``heavy`` tier (``make test-heavy``, any device via ``HARNESS_TEST_DEVICE``);
``make test`` runs it on 4 docs per task.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from harness.backend_kinds import BACKENDS
from harness.backends import PrefixSharingLM
from harness.backends.prefix import Row, build_tree, model_input, pack, plan_packs, prefix_tree_size
from harness.core import RunSpec
from harness.hf_folder import SOURCE_FILE, dequantized_bytes
from harness.paths import TASKS_DIR
from harness.registry import resolve_model
from harness.tasks import task_requests
from tests.conftest import needs, random_model

TASKS = ["arc_challenge", "hellaswag", "mmlu_anatomy", "winogrande", "truthfulqa_mc2"]
DEVICE = os.environ.get("HARNESS_TEST_DEVICE", "cpu")


def test_tree_nests_shared_prefixes_and_never_eats_a_continuation() -> None:
    rows = [
        Row((1, 2, 3, 4, 5, 6), begin=5),  # shares 1..4 with the next two, then 1..5 with the next
        Row((1, 2, 3, 4, 5, 7), begin=4),  # its continuation starts at position 4: shares only 1..4
        Row((1, 2, 3, 4, 8, 9), begin=5),
        Row((9, 9, 9), begin=2),  # shares nothing
        Row((1, 2, 3, 4, 5, 6, 7), begin=6),
    ]
    tree = build_tree(rows, min_shared=1)
    assert tree.depth == 0 and tree.leaves == [3]
    (top,) = tree.children
    assert top.depth == 4 and sorted(top.rows()) == [0, 1, 2, 4]
    assert sorted(top.leaves) == [1, 2]
    (deeper,) = top.children  # rows 0 and 4 share 1..5 (row 0 stops at its begin, 5)
    assert deeper.depth == 5 and sorted(deeper.leaves) == [0, 4]
    assert build_tree(rows, min_shared=3).children[0].children == []  # one more shared token is not worth a node


def test_suffixes_that_begin_alike_share_one_pack_with_each_token_once() -> None:
    rows = [Row((7, 1, 2, 3), begin=1), Row((7, 1, 2, 4, 5), begin=1), Row((7, 1, 2), begin=1),
            Row((7, 9, 9), begin=1), Row((7, 1, 6), begin=1)]
    packs = plan_packs(rows, [0, 1, 2, 3, 4], depth=1, max_tokens=256)
    assert [sorted(p.rows) for p in packs] == [[0, 1, 2, 4], [3]]  # row 3 shares no first token
    tree = packs[0]
    assert sorted(tree.tokens) == [1, 2, 3, 4, 5, 6]  # 1 and 2 once, for all four rows
    for row in tree.rows:  # each path spells the row's suffix, token by token, parent to child
        path = tree.paths[row]
        assert [tree.tokens[j] for j in path] == list(rows[row].tokens[1:])
        assert [tree.parents[j] for j in path] == [-1, *path[:-1]]
    _assert_sees_exactly_its_path(tree)
    assert [len(p.rows) for p in plan_packs(rows, [0, 1, 2, 4], depth=1, max_tokens=5)] == [3, 1]  # a cap
    assert all(len(p.rows) == 1 for p in plan_packs(rows, [0, 1, 2, 4], depth=1, max_tokens=None))


def _path_to(tree, j: int) -> list[int]:
    return [*_path_to(tree, tree.parents[j]), j] if j >= 0 else []


def _assert_sees_exactly_its_path(tree) -> None:
    """Every token attends to itself and its ancestors and nothing else; its level is its depth."""
    allowed = tree.ancestry()
    for j in range(len(tree.tokens)):
        assert allowed[j].nonzero().flatten().tolist() == sorted(_path_to(tree, j)), j
    assert tree.levels() == [len(_path_to(tree, j)) - 1 for j in range(len(tree.tokens))]


def test_a_document_subtree_in_any_row_order_attends_along_its_branches() -> None:
    """A document's whole subtree as one pack (its few-shot prefix, then endings that branch at different
    depths, some inside others), its rows in an order that is not sorted: chains start and resume anywhere."""
    prefix = tuple(range(100, 160))
    rows = {0: prefix + (1, 2, 3), 1: prefix[:30] + (4, 5), 2: prefix + (1, 6), 3: prefix[:45] + (7,),
            4: prefix + (1, 2, 3, 8, 9), 5: prefix[:30] + (4, 10, 11), 6: (12,), 7: prefix[:10]}
    tree = pack(rows)
    assert len(tree.tokens) == len(prefix) + 12  # every shared token once
    for row, suffix in rows.items():
        assert [tree.tokens[j] for j in tree.paths[row]] == list(suffix)
    _assert_sees_exactly_its_path(tree)


def _evaluate(lm, limit: int) -> dict:
    """lm-eval's own evaluation of our five tasks: per-request (log-likelihood, is_greedy) and metrics."""
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    result = simple_evaluate(model=lm, tasks=TASKS, limit=limit, task_manager=manager, log_samples=True,
                             bootstrap_iters=0, device=DEVICE)
    answers = {task: [tuple(resp[0]) for sample in samples for resp in sample["resps"]]
               for task, samples in result["samples"].items()}
    metrics = {f"{task}/{metric}": value for task, values in result["results"].items()
               for metric, value in values.items() if "," in metric and "stderr" not in metric}
    return {"answers": answers, "metrics": metrics}


def _assert_same(ours: dict, theirs: dict) -> float:
    """Assert ours equal lm-eval's; return the largest log-likelihood difference."""
    # Counting metrics (acc, acc_norm) move in steps of 1/n if they move at all; TruthfulQA's mc2 is a sum
    # of normalised probabilities, which log-likelihoods equal within 1e-4 leave equal to about 1e-7.
    assert ours["metrics"] == pytest.approx(theirs["metrics"], abs=1e-5)
    assert ours["answers"].keys() == theirs["answers"].keys() == set(TASKS)
    for task, expected in theirs["answers"].items():
        got = ours["answers"][task]
        assert len(got) == len(expected) > 0, task
        assert max(abs(a[0] - b[0]) for a, b in zip(got, expected)) < 1e-4, task
        assert [a[1] for a in got] == [b[1] for b in expected], task
    return max(abs(a[0] - b[0]) for task, expected in theirs["answers"].items()
               for a, b in zip(ours["answers"][task], expected))


def _compare_at_batch_sizes(kwargs: dict, limit: int, ours_kwargs: dict | None = None,
                            reference_batch_size: int = 8) -> None:
    reference = _evaluate(HFLM(**kwargs, batch_size=reference_batch_size), limit)
    deltas = []
    for batch_size in (1, 7, "auto"):
        ours = PrefixSharingLM(**(ours_kwargs or kwargs), batch_size=batch_size)
        deltas.append(_assert_same(_evaluate(ours, limit), reference))
        assert ours.stats.tokens_forwarded > 0 and ours.stats.rows < ours.stats.distinct  # shared, scored
    print(f"measured: max |delta| {max(deltas):.2e} nats over {len(TASKS)} tasks at batch sizes 1, 7, auto")


# lm-eval's fastest batch size for the embedded model: on a CPU 1 (batch 8's logits over 49,152 tokens at every
# position of 1,000-token contexts cost more than batching saves: 176 s for this test, 235 s at batch 8); the tiny
# random models are fastest at 8.
EMBEDDED_REFERENCE_BATCH = 1 if DEVICE == "cpu" else 8


def _embedded_kwargs() -> dict:
    """lm-eval's hf reading the embedded model's GGUF file itself."""
    spec = resolve_model("smollm2-135m-instruct")
    return {"pretrained": str(spec.gguf_path.parent), "gguf_file": spec.gguf_path.name, "device": DEVICE,
            "dtype": "float32"}


def _embedded_as_run() -> dict:
    """Ours as ``harness run`` builds it: the embedded model from its cached float32 folder."""
    spec = RunSpec(model=resolve_model("smollm2-135m-instruct"), tasks=(), device=DEVICE, dtype="float32")
    kwargs = BACKENDS["harness"].build(spec)
    assert kwargs["pretrained"].endswith("-float32") and "gguf_file" not in kwargs
    return {key: value for key, value in kwargs.items() if key != "batch_size"}


@needs("mirror", "embedded_model")
@pytest.mark.slow
def test_embedded_model_matches_lm_eval_hf_on_five_tasks() -> None:
    _compare_at_batch_sizes(_embedded_kwargs(), limit=4, ours_kwargs=_embedded_as_run(),
                            reference_batch_size=EMBEDDED_REFERENCE_BATCH)


@needs("mirror", "embedded_model")
@pytest.mark.heavy
def test_embedded_model_matches_lm_eval_hf_on_fifty_docs_per_task() -> None:
    _compare_at_batch_sizes(_embedded_kwargs(), limit=50, ours_kwargs=_embedded_as_run(),
                            reference_batch_size=EMBEDDED_REFERENCE_BATCH)


@needs("embedded_model")
def test_a_gguf_model_loads_from_a_float32_folder_of_the_files_own_tensors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The transformers backends read a GGUF model from a folder written once on its first run: the tensors
    transformers dequantizes from the file, bit for bit, with the same config. With no room on the disk for
    it (known from the file's tensor table), a run reads the GGUF file once, says so, and leaves no folder
    behind. Writing it removes the folders an earlier version of the same file left, and no other."""
    import torch
    from transformers import AutoModelForCausalLM

    folders = tmp_path / "hf_folders"
    monkeypatch.setattr("harness.hf_folder.FOLDERS", folders)
    spec = RunSpec(model=resolve_model("smollm2-135m-instruct"), tasks=(), device="cpu", dtype="float32")
    gguf = spec.model.gguf_path
    real_usage = shutil.disk_usage
    with monkeypatch.context() as full:
        full.setattr(shutil, "disk_usage", lambda path: real_usage(path)._replace(free=0))
        full.setattr(AutoModelForCausalLM, "from_pretrained", None)  # the weights are read by the backend only
        kwargs = BACKENDS["harness"].build(spec)
    assert (kwargs["pretrained"], kwargs["gguf_file"]) == (str(gguf.parent), gguf.name)
    assert "no room in" in capsys.readouterr().err
    assert not any(path.name.endswith("-float32") or path.name.startswith(".") for path in folders.iterdir())

    other_file = tmp_path / "other.gguf"
    earlier = {source: folders / f"{source.stem}-earlier-float32" for source in (gguf, other_file)}
    for source, old in earlier.items():  # as an earlier file (or transformers) version, and another file, left them
        old.mkdir()
        (old / SOURCE_FILE).write_text(json.dumps({"gguf": str(source.resolve())}))
    folder = Path(BACKENDS["harness"].build(spec)["pretrained"])
    assert folder.parent == folders and folder.name.endswith("-float32")
    assert not earlier[gguf].exists() and earlier[other_file].is_dir()
    assert BACKENDS["hf"].build(spec)["pretrained"] == str(folder)  # lm-eval's hf backend reads it too
    written = {path: path.stat().st_mtime_ns for path in folder.iterdir()}
    assert Path(BACKENDS["harness"].build(spec)["pretrained"]) == folder  # written once
    assert {path: path.stat().st_mtime_ns for path in folder.iterdir()} == written
    assert sorted(path.name for path in folders.iterdir() if path.name.startswith(".")) == []  # no staging left

    direct = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    saved = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    expected, got = direct.state_dict(), saved.state_dict()
    assert got.keys() == expected.keys() and all(torch.equal(got[name], expected[name]) for name in expected)
    stored = {tensor.untyped_storage().data_ptr(): tensor.nbytes for tensor in got.values()}
    assert dequantized_bytes(spec.model) == sum(stored.values())  # the room asked for is the room taken
    bookkeeping = {"transformers_version", "_name_or_path", "quantization_config", "architectures"}  # saving adds it
    assert ({k: v for k, v in saved.config.to_dict().items() if k not in bookkeeping}
            == {k: v for k, v in direct.config.to_dict().items() if k not in bookkeeping})


@needs("mirror")
@pytest.mark.slow
@needs("tokenizers")
@pytest.mark.parametrize("kind", ["llama", "neox"])
def test_random_models_on_real_tokenizers_match_lm_eval_hf(tmp_path: Path, kind: str) -> None:
    folder = random_model(tmp_path / kind, kind)
    _compare_at_batch_sizes({"pretrained": str(folder), "device": DEVICE, "dtype": "float32"}, limit=50)


@needs("mirror", "tokenizers")
def test_scores_do_not_depend_on_batch_composition(tmp_path: Path) -> None:
    """WinoGrande's requests scored alone, each document's prefix in its own pass and its endings below it,
    give the same log-likelihoods (within 1e-4) and is_greedy as when they are shuffled among TruthfulQA's
    and ARC-Challenge's requests and scored with other documents in the same forward passes: at batch sizes
    3 and auto, with documents laid out whole up to 256 and 2,048 tokens."""
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    own, docs = task_requests(manager, "winogrande", 8), 8 + 4 + 3
    mixed = own + task_requests(manager, "truthfulqa_mc2", 4) + task_requests(manager, "arc_challenge", 3)
    random.Random(0).shuffle(mixed)
    kwargs = {"pretrained": str(random_model(tmp_path / "llama", "llama")), "device": DEVICE, "dtype": "float32"}
    alone = PrefixSharingLM(**kwargs, batch_size=1)
    alone.max_subtree_tokens = 0
    expected = alone.loglikelihood(own, disable_tqdm=True)
    assert alone.stats.forward_calls >= 3 * 8  # a prefix, then each of its two endings
    for batch_size, subtree_tokens in [(3, 256), ("auto", 256), ("auto", 2048)]:
        lm = PrefixSharingLM(**kwargs, batch_size=batch_size)
        lm.max_subtree_tokens = subtree_tokens
        scores = dict(zip(map(id, mixed), lm.loglikelihood(mixed, disable_tqdm=True)))
        got = [scores[id(request)] for request in own]
        assert [a[0] for a in got] == pytest.approx([a[0] for a in expected], abs=1e-4), (batch_size, subtree_tokens)
        assert [a[1] for a in got] == [a[1] for a in expected]
        if batch_size == "auto":  # fewer passes than documents: documents shared them
            assert lm.stats.forward_calls < docs, lm.stats


@needs("mirror", "tokenizers")
@pytest.mark.parametrize("kind", [pytest.param("embedded", marks=needs("embedded_model")), "llama", "neox"])
def test_strings_tokenized_in_one_batch_give_lm_eval_own_token_ids(
        tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What scoring receives, with every string tokenized beforehand in one batch call, is what lm-eval's own
    ``loglikelihood`` gives calling ``tok_encode`` string by string: on 50 docs of each of the five tasks, after
    an empty context, and for a context that starts with the BOS text; and no string is left to that call."""
    from lm_eval.api.instance import Instance

    kwargs = (_embedded_as_run() if kind == "embedded" else
              {"pretrained": str(random_model(tmp_path / kind, kind)), "device": DEVICE, "dtype": "float32"})
    lm = PrefixSharingLM(**kwargs, batch_size=1)
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    requests = [request for name in TASKS for request in task_requests(manager, name, 50)]
    bos = lm.tokenizer.decode(lm.prefix_token_id)
    requests += [Instance("loglikelihood", {}, ("", " an empty context"), 0),
                 Instance("loglikelihood", {}, (f"{bos}Question: is this a BOS?\nAnswer: ", "yes "), 0)]
    handed = []
    monkeypatch.setattr(lm, "_loglikelihood_tokens",
                        lambda tokens, disable_tqdm=False: handed.append(tokens) or [(0.0, False)] * len(tokens))
    one_by_one = []
    lm_eval_encode = HFLM.tok_encode
    monkeypatch.setattr(HFLM, "tok_encode", lambda self, *a, **k: one_by_one.append(a) or lm_eval_encode(self, *a, **k))
    lm.loglikelihood(requests, disable_tqdm=True)
    assert one_by_one == []  # every string was foreseen
    HFLM.loglikelihood(lm, requests, disable_tqdm=True)  # lm-eval's own: string by string
    assert len(one_by_one) >= len(requests)
    assert len(handed[0]) == len(requests) > 1000 and handed[0] == handed[1]


@needs("tokenizers")
def test_rolling_loglikelihood_matches_lm_eval_hf(tmp_path: Path) -> None:
    from lm_eval.api.instance import Instance

    folder = random_model(tmp_path / "llama", "llama")
    texts = ["The quick brown fox jumps over the lazy dog. " * 40, "  Leading spaces,\ttabs and 'quotes' é ü 中文"]
    requests = [Instance("loglikelihood_rolling", {}, (text,), i) for i, text in enumerate(texts)]
    kwargs = {"pretrained": str(folder), "device": DEVICE, "dtype": "float32", "max_length": 128}
    reference = HFLM(**kwargs, batch_size=4).loglikelihood_rolling(requests, disable_tqdm=True)
    for batch_size in (1, "auto"):
        ours = PrefixSharingLM(**kwargs, batch_size=batch_size).loglikelihood_rolling(requests, disable_tqdm=True)
        assert ours == pytest.approx(reference, abs=1e-4)


@needs("tokenizers")
def test_model_without_kv_cache_falls_back_to_lm_eval_scoring(tmp_path: Path, caplog) -> None:
    from lm_eval.api.instance import Instance

    folder = random_model(tmp_path / "llama", "llama")
    kwargs = {"pretrained": str(folder), "device": DEVICE, "dtype": "float32", "use_cache": False}
    requests = [Instance("loglikelihood", {}, ("Question: 2+2?\nAnswer:", answer), i)
                for i, answer in enumerate([" 4", " five", " 22"])]
    with caplog.at_level("WARNING"):
        ours = PrefixSharingLM(**kwargs, batch_size=2)
    assert "cannot reuse a KV cache here: falling back to lm-eval's scoring" in caplog.text
    scores = ours.loglikelihood(requests, disable_tqdm=True)
    assert ours.stats.tokens_forwarded == 0  # our scorer never ran
    assert scores == HFLM(**kwargs, batch_size=2).loglikelihood(requests, disable_tqdm=True)


@needs("tokenizers")
@pytest.mark.parametrize("attention", ["sdpa", "eager", "sliding window"])
def test_tree_attention_and_its_fallback_match_lm_eval_hf(tmp_path: Path, attention: str) -> None:
    """Answers that begin alike (one a prefix of another, two sharing one input) under sdpa's boolean
    mask, eager attention's additive mask, and a sliding-window model, which is scored without packing."""
    from lm_eval.api.instance import Instance
    from transformers import MistralConfig, MistralForCausalLM

    folder = random_model(tmp_path / "llama", "llama")
    kwargs = {"pretrained": str(folder), "device": DEVICE, "dtype": "float32"}
    if attention == "sliding window":
        config = MistralConfig(vocab_size=32000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, sliding_window=4096)
        MistralForCausalLM(config).save_pretrained(folder)  # beside the Llama 2 tokenizer files
    else:
        kwargs["attn_implementation"] = attention
    context = "Q: Can a person see the Great Wall of China from the Moon with the naked eye?\nA:"
    answers = [" No", " No, it is too narrow.", " No, never.", " Yes", " Yes, easily.", " The wall is visible.",
               " A", " B"]
    requests = [Instance("loglikelihood", {}, (context, answer), i) for i, answer in enumerate(answers)]
    reference = HFLM(**kwargs, batch_size=3).loglikelihood(requests, disable_tqdm=True)
    for batch_size in (1, "auto"):
        lm = PrefixSharingLM(**kwargs, batch_size=batch_size)
        ours = lm.loglikelihood(requests, disable_tqdm=True)
        assert [a[0] for a in ours] == pytest.approx([a[0] for a in reference], abs=1e-4)
        assert [a[1] for a in ours] == [a[1] for a in reference]
        inputs = [model_input(*lm._encode_pair(context, answer), lm.max_length) for answer in answers]
        tree, rows = prefix_tree_size(inputs), sum(len(t) for t in set(inputs))
        if attention == "sliding window":  # one sequence per distinct input, the shared question once
            assert lm._tree_attention is False and tree < lm.stats.tokens_forwarded < rows
        else:  # every token of the prefix tree once
            assert lm._tree_attention is True and lm.stats.tokens_forwarded == tree


@pytest.mark.parametrize(("model_type", "options", "supported"), [
    ("llama", {"attn_implementation": "sdpa"}, True),
    ("gpt_neox", {"attn_implementation": "eager"}, True),
    ("mistral", {"sliding_window": 4096}, False),  # a custom mask would drop the window
    ("falcon", {"alibi": True}, False),  # ALiBi reads positions off a 2D mask
    ("bloom", {"attn_implementation": "eager"}, False),  # ALiBi, and no position ids at all
])
def test_tree_attention_only_where_a_custom_mask_is_exact(model_type: str, options: dict, supported: bool) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    from harness.backends.prefix import tree_attention_supported

    attention = options.pop("attn_implementation", "sdpa")
    config = AutoConfig.for_model(model_type, vocab_size=128, hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=4, intermediate_size=64, **options)
    model = AutoModelForCausalLM.from_config(config, attn_implementation=attention)
    assert tree_attention_supported(model) is supported
