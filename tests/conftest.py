"""Shared fixtures: offline hub, the mirror in ../shared/data, and a helper to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from harness.data import data_dir  # noqa: E402

MIRROR = data_dir()
TOKENIZERS = Path(__file__).resolve().parents[2] / "shared" / "tokenizers"

needs_mirror = pytest.mark.skipif(
    MIRROR is None or not MIRROR.is_dir(),
    reason="the benchmark mirror ../shared/data (or $HARNESS_DATA_DIR) is not present on this machine",
)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    """`python -m harness ARGS` in a subprocess, offline, capturing text output."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )

needs_tokenizers = pytest.mark.skipif(
    not TOKENIZERS.is_dir(), reason="../shared/tokenizers (the real Llama 2 and GPT-NeoX tokenizers) is not present"
)


def random_model(folder: Path, kind: str) -> Path:
    """A small random-weight Llama (on the real Llama 2 tokenizer) or GPT-NeoX (Dolly's tokenizer) folder."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
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
