"""Chat templates: rendered text and token ids equal the references in ../shared/reference/chat_templates.md.

Expected strings and ids are read from that file (each after a fixed phrase of it), and encoded with
the real tokenizers in ../shared/tokenizers, so BOS/EOS handling and SentencePiece spaces are checked
exactly. The last tests run prompts through lm-eval (``harness run --chat``) and the CLI.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from harness.registry import REGISTRY
from harness.templates import chat_messages, encode_prompt, load_tokenizer, render_prompt
from tests.conftest import TOKENIZERS, needs, random_model, run_cli

REFERENCE = TOKENIZERS.parent / "reference" / "chat_templates.md"
LLAMA = TOKENIZERS / "llama2" / "tokenizer.json"
NEOX = TOKENIZERS / "gpt-neox" / "20B_tokenizer.json"
SYSTEM = "You are a helpful assistant."
QUESTION = "What is 2+2?"

pytestmark = [
    needs("tokenizers", "reference"),
]


def _after(phrase: str) -> str:
    text = REFERENCE.read_text(encoding="utf-8")
    assert phrase in text, f"reference phrase not found: {phrase!r}"
    return text[text.index(phrase) + len(phrase):]


def _reference_text(phrase: str) -> str:
    """The first backquoted Python string literal after ``phrase``."""
    return ast.literal_eval(re.search(r'("(?:[^"\\]|\\.)*")`', _after(phrase)).group(1))


def _reference_ids(phrase: str) -> list[int]:
    """The first list of token ids after ``phrase``."""
    return json.loads(re.search(r"\[\d+(?:, \d+)*\]", _after(phrase)).group(0))


def _prompt(model: str, tokenizer_file: Path, system: str | None) -> tuple[str, list[int]]:
    spec = REGISTRY[model]
    tokenizer = load_tokenizer(spec, tokenizer_file)
    prompt = render_prompt(spec, tokenizer, QUESTION, chat=True, system=system)
    return prompt, encode_prompt(tokenizer, prompt)


def test_llama_2_chat_without_and_with_system_prompt() -> None:
    prompt, ids = _prompt("llama-2-7b-chat", LLAMA, None)
    assert prompt == _reference_text("Rendered text without system prompt: `") == "<s>[INST] What is 2+2? [/INST]"
    assert ids == _reference_ids("* without system prompt: `⟨BOS⟩ +")
    prompt, ids = _prompt("llama-2-13b-chat", LLAMA, SYSTEM)
    assert prompt == _reference_text("  With system prompt: `")
    assert ids == _reference_ids("* with system prompt: `⟨BOS⟩ +")
    assert ids.count(1) == 1, "exactly one BOS"


def test_llama_2_chat_multi_turn_ids_equal_meta_chat_completion() -> None:
    """Meta encodes each finished (user, answer) pair with BOS and EOS ids, then the last user turn with BOS."""
    tokenizer = load_tokenizer(REGISTRY["llama-2-7b-chat"], LLAMA)
    messages = [{"role": "system", "content": "SYS"}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": QUESTION}]
    illustrated = re.search(r"Two turns \(illustration\): `(.*)`\.", REFERENCE.read_text(encoding="utf-8")).group(1)
    pieces = [ast.literal_eval(piece) for piece in re.findall(r'"(?:[^"\\]|\\.)*"', illustrated)]
    assert illustrated.startswith("⟨BOS⟩") and "⟨EOS⟩⟨BOS⟩" in illustrated and len(pieces) == 2
    meta = [1, *tokenizer.encode(pieces[0], add_special_tokens=False), 2,
            1, *tokenizer.encode(pieces[1], add_special_tokens=False)]
    render = render_prompt(REGISTRY["llama-2-7b-chat"], tokenizer, QUESTION, chat=True)  # installs the template
    assert render.startswith("<s>[INST]")
    ours = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert ours == "<s>" + pieces[0] + "</s><s>" + pieces[1]
    assert encode_prompt(tokenizer, ours) == meta


def test_vicuna_default_custom_and_no_system_prompt() -> None:
    prompt, ids = _prompt("vicuna-7b-v1.5", LLAMA, None)
    assert prompt == _reference_text("* with the default system prompt:\n  `")
    assert ids == _reference_ids("ids (with BOS) ")
    prompt, ids = _prompt("vicuna-13b-v1.5", LLAMA, SYSTEM)
    assert prompt == _reference_text("* with a custom system prompt: `")
    assert ids == _reference_ids("* with a custom system prompt: `")
    prompt, ids = _prompt("vicuna-7b-v1.5", LLAMA, "")
    assert prompt == "USER: What is 2+2? ASSISTANT:", "an empty system prompt leaves no leading space"
    assert ids[:2] == [1, 3148]


def test_vicuna_multi_turn_matches_fastchat() -> None:
    tokenizer = load_tokenizer(REGISTRY["vicuna-7b-v1.5"], LLAMA)
    render_prompt(REGISTRY["vicuna-7b-v1.5"], tokenizer, QUESTION, chat=True)
    messages = [{"role": "system", "content": "SYS"}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": QUESTION}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == _reference_text("* Two turns: `")
    ids = encode_prompt(tokenizer, rendered)
    assert ids[0] == 1 and ids.count(2) == 1, "BOS first; the literal </s> after the answer is the EOS id"


def test_dolly_v2_with_dollys_special_tokens() -> None:
    prompt, ids = _prompt("dolly-v2-3b", NEOX, None)
    assert prompt == _reference_text("* Databricks generation prompt:\n  `")
    assert ids == _reference_ids("* ids with Dolly's special tokens (no BOS): `")
    tokenizer = load_tokenizer(REGISTRY["dolly-v2-12b"], NEOX)
    render_prompt(REGISTRY["dolly-v2-12b"], tokenizer, QUESTION, chat=True)
    assert tokenizer.convert_tokens_to_ids(["### End", "### Instruction:", "### Response:\n"]) == [50277, 50278, 50279]


def test_dolly_v2_few_shot_turns_end_with_dollys_end_key() -> None:
    tokenizer = load_tokenizer(REGISTRY["dolly-v2-3b"], NEOX)
    render_prompt(REGISTRY["dolly-v2-3b"], tokenizer, QUESTION, chat=True)
    messages = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"},
                {"role": "user", "content": QUESTION}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    blurb = _reference_text("| `INTRO_BLURB` | `")
    assert rendered == (f"{blurb}\n\n### Instruction:\n1+1?\n\n### Response:\n2\n\n### End\n\n"
                        f"### Instruction:\n{QUESTION}\n\n### Response:\n")


def test_chat_messages_put_the_system_turn_first() -> None:
    assert chat_messages("q") == [{"role": "user", "content": "q"}]
    assert chat_messages("q", "s")[0] == {"role": "system", "content": "s"}


def test_prompt_command_prints_text_and_ids() -> None:
    done = run_cli("prompt", "--model", "vicuna-7b-v1.5", "--chat", "--system", SYSTEM, "--ids", "--text", QUESTION,
                   "--tokenizer", str(LLAMA))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert json.loads(lines[0].removeprefix("text: ")) == _reference_text("* with a custom system prompt: `")
    ids = _reference_ids("* with a custom system prompt: `")
    assert lines[1] == f"ids ({len(ids)}): {json.dumps(ids)}"
    assert json.loads(lines[2].removeprefix("tokens: "))[:2] == ["<s>", "▁You"]
    plain = run_cli("prompt", "--model", "dolly-v2-7b", "--chat", "--text", QUESTION, "--tokenizer", str(NEOX))
    assert plain.stdout == _reference_text("* Databricks generation prompt:\n  `"), "the exact text, nothing added"


def test_prompt_command_uses_the_embedded_models_own_template() -> None:
    done = run_cli("prompt", "--model", "smollm2-135m-instruct", "--chat", "--text", QUESTION)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("<|im_start|>system\n") and done.stdout.endswith("<|im_start|>assistant\n")
    assert f"<|im_start|>user\n{QUESTION}<|im_end|>" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--model", "llama-2-7b", "--chat"), "llama-2-7b is a base model with no chat template"),
        (("--model", "vicuna-7b-v1.5", "--system", "S"), "--system needs --chat"),
        (("--model", "vicuna-7b-v1.5", "--chat"),  # tests run with HF_HUB_OFFLINE=1 (tests/conftest.py)
         "model lmsys/vicuna-7b-v1.5 is not in this machine's Hugging Face cache"),
        (("--model", "vicuna-7b-v1.5", "--chat", "--tokenizer", "/no/such/tokenizer.json"), "does not exist"),
    ],
)
def test_prompt_command_bad_input(args: tuple[str, ...], message: str) -> None:
    done = run_cli("prompt", *args, "--text", QUESTION)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and " — " in last, done.stderr


@needs("mirror")
def test_run_with_chat_renders_few_shot_examples_as_llama_2_chat_turns(tmp_path: Path) -> None:
    folder = random_model(tmp_path / "llama", "llama")
    done = run_cli("run", "--model", str(folder), "--chat-template", "llama-2-chat", "--chat", "--system", SYSTEM,
                   "--tasks", "arc_challenge", "--limit", "2", "--output", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    result = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    chat = result["provenance"]["chat_template"]
    assert chat["name"] == "llama-2-chat" and chat["system"] == SYSTEM and chat["fewshot_as_multiturn"]
    assert any("llama-2-chat chat template" in d for d in result["provenance"]["deviations"])
    prompt = json.loads(next((tmp_path / "out").glob("*.samples.jsonl")).read_text().split("\n")[0])["prompt"]
    assert prompt.startswith(f"<s>[INST] <<SYS>>\n{SYSTEM}\n<</SYS>>\n\nQuestion: ")
    assert prompt.count("[INST] ") == 26 and prompt.count(" </s><s>[INST] ") == 25, "25 shots as turns + the question"
    assert prompt.endswith("\nAnswer: [/INST]")
