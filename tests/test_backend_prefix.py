"""The prefix-sharing backend gives lm-eval's ``hf`` numbers: per-request log-likelihoods within 1e-4,
identical ``is_greedy``, for the embedded model and for small random Llama / GPT-NeoX models built on the
real Llama 2 and GPT-NeoX tokenizers (SentencePiece and BPE boundary cases)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from harness.backends import PrefixSharingLM
from harness.backends.prefix import _Item, group_by_prefix
from harness.paths import TASKS_DIR
from harness.registry import resolve_model
from tests.conftest import TOKENIZERS, needs_mirror

# task -> docs compared (few-shot contexts are long; the benchmark script compares >= 200 docs per task)
CASES = {"arc_challenge": 4, "hellaswag": 6, "mmlu_anatomy": 6, "winogrande": 20, "truthfulqa_mc2": 6}


def test_groups_share_the_longest_prefix_and_never_eat_a_continuation() -> None:
    items = [_Item((1, 2, 3, 4, 5), (5,)), _Item((1, 2, 3, 4, 6), (4, 6)), _Item((9, 9, 9), (9,)),
             _Item((1, 2, 3, 4, 5), (4, 5))]
    groups = group_by_prefix(items, min_shared=2)
    assert sorted((shared, sorted(members)) for shared, members in groups) == [(2, [2]), (3, [0, 1, 3])]


def _requests(task_names: dict[str, int]):
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    requests = []
    for name, limit in task_names.items():
        task = manager.load([name])["tasks"][name]
        task.build_all_requests(limit=limit, rank=0, world_size=1)
        requests += task.instances
    return requests


def _assert_same(ours: list, theirs: list) -> None:
    assert len(ours) == len(theirs) > 0
    assert max(abs(a[0] - b[0]) for a, b in zip(ours, theirs)) < 1e-4
    assert [a[1] for a in ours] == [b[1] for b in theirs]


@pytest.fixture(scope="module")
def embedded_kwargs() -> dict:
    spec = resolve_model("smollm2-135m-instruct")
    return {"pretrained": str(spec.gguf_path.parent), "gguf_file": spec.gguf_path.name, "device": "cpu",
            "dtype": "float32"}


@needs_mirror
@pytest.mark.slow
def test_embedded_model_matches_lm_eval_hf_on_five_tasks(embedded_kwargs: dict) -> None:
    requests = _requests(CASES)
    reference = HFLM(**embedded_kwargs, batch_size=8).loglikelihood(requests, disable_tqdm=True)
    for batch_size in (1, 7):
        ours = PrefixSharingLM(**embedded_kwargs, batch_size=batch_size)
        scores = ours.loglikelihood(requests, disable_tqdm=True)
        _assert_same(scores, reference)
        assert ours.stats.groups < ours.stats.distinct  # prefixes really were shared


def _random_model(tmp_path: Path, kind: str) -> Path:
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    folder = tmp_path / kind
    if kind == "llama":
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(TOKENIZERS / "llama2" / "tokenizer.json"),
                                            bos_token="<s>", eos_token="</s>", unk_token="<unk>")
        config = LlamaConfig(vocab_size=32000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                             bos_token_id=1, eos_token_id=2)
        model = LlamaForCausalLM(config)
    else:
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(TOKENIZERS / "gpt-neox" / "20B_tokenizer.json"),
                                            bos_token="<|endoftext|>", eos_token="<|endoftext|>")
        config = GPTNeoXConfig(vocab_size=50432, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=4, max_position_embeddings=2048, bos_token_id=0, eos_token_id=0)
        model = GPTNeoXForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@needs_mirror
@pytest.mark.skipif(not TOKENIZERS.is_dir(), reason="../shared/tokenizers is not present on this machine")
@pytest.mark.parametrize("kind", ["llama", "neox"])
def test_random_models_on_real_tokenizers_match_lm_eval_hf(tmp_path: Path, kind: str) -> None:
    folder = _random_model(tmp_path, kind)
    requests = _requests({"arc_easy": 25, "winogrande": 25, "truthfulqa_mc2": 5})
    kwargs = {"pretrained": str(folder), "device": "cpu", "dtype": "float32"}
    reference = HFLM(**kwargs, batch_size=4).loglikelihood(requests, disable_tqdm=True)
    for batch_size in (1, 7):
        _assert_same(PrefixSharingLM(**kwargs, batch_size=batch_size).loglikelihood(requests, disable_tqdm=True),
                     reference)
