"""Chat templates of the registry's families, and the exact prompt text and token ids a model sees.

Each family's template is a Jinja chat template (the form transformers' ``apply_chat_template`` and
lm-eval's ``--apply_chat_template`` use), written to reproduce the family's reference format:

* ``llama-2-chat``: Meta's ``chat_completion`` format as Hugging Face's ``-chat-hf`` template writes it
  (BOS/EOS as the text ``<s>``/``</s>``; a system prompt folded into the first user turn inside
  ``<<SYS>>``; each finished turn pair closed by EOS, each user turn opened by BOS).
* ``vicuna_v1.1``: FastChat's ``ADD_COLON_TWO`` style (``SYSTEM USER: … ASSISTANT:``), the template of
  Vicuna v1.1 to v1.5; the tokenizer adds BOS. An empty system prompt leaves no leading space.
* ``dolly_v2``: Databricks' generation prompt (intro blurb, ``### Instruction:``, ``### Response:``);
  earlier turns end ``\\n\\n### End\\n\\n`` as in Dolly's training text. A custom system prompt replaces
  the blurb and is followed by a blank line (FastChat glues it to ``### Instruction:``).
* ``tokenizer``: the tokenizer's own ``chat_template``; ``none``: a base model, no chat template.

Token ids follow lm-eval's ``hf`` backend: the tokenizer's default special tokens, unless the text
already starts with the BOS text (so a rendered ``<s>[INST]`` gets no second BOS).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import hub
from harness.errors import HarnessError, first_line
from harness.registry import ModelSpec

_LLAMA_2_CHAT = (
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set turns = messages[1:] %}{% else %}{% set system = none %}{% set turns = messages %}{% endif %}"
    "{% for message in turns %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('llama-2-chat needs turns that alternate user/assistant, starting with user') }}{% endif %}"
    "{% set content = message['content'] %}"
    "{% if loop.first and system %}{% set content = '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + content %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% else %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
_VICUNA = (
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set turns = messages[1:] %}{% else %}{% set system = '" + VICUNA_SYSTEM.replace("'", "\\'") + "' %}"
    "{% set turns = messages %}{% endif %}"
    "{% if system %}{{ system + ' ' }}{% endif %}"
    "{% for message in turns %}"
    "{% if message['role'] == 'user' %}{{ 'USER: ' + message['content'] + ' ' }}"
    "{% else %}{{ 'ASSISTANT: ' + message['content'] + '</s>' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

DOLLY_SYSTEM = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
DOLLY_SPECIAL_TOKENS = ("### End", "### Instruction:", "### Response:\n")
_DOLLY = (
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set turns = messages[1:] %}{% else %}{% set system = '" + DOLLY_SYSTEM + "' %}"
    "{% set turns = messages %}{% endif %}"
    "{% if system %}{{ system + '\\n\\n' }}{% endif %}"
    "{% for message in turns %}"
    "{% if message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
    "{% else %}{{ '### Response:\\n' + message['content'] + '\\n\\n### End\\n\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class ChatTemplate:
    """A family's chat format: its Jinja source and the special tokens its tokenizer must know."""

    name: str
    jinja: str
    special_tokens: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()  # where an answer ends besides the tokenizer's EOS (FastChat's stop_str)


TEMPLATES: dict[str, ChatTemplate] = {
    t.name: t
    for t in (
        ChatTemplate("llama-2-chat", _LLAMA_2_CHAT),
        ChatTemplate("vicuna_v1.1", _VICUNA),
        ChatTemplate("dolly_v2", _DOLLY, DOLLY_SPECIAL_TOKENS, stop=("### End",)),
    )
}

# What each architecture's hub tokenizer_config.json declares, for a bare tokenizer.json given with --tokenizer.
_SPECIAL_TOKENS = {
    "LlamaForCausalLM": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "GPTNeoXForCausalLM": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"},
}


def check_chat_options(model: ModelSpec, chat: bool, system: str | None) -> None:
    """Refuse ``--chat`` for a base model, and ``--system`` without ``--chat``, before anything is loaded."""
    if system is not None and not chat:
        raise HarnessError("--system needs --chat (a system prompt is part of a chat template)", "add --chat")
    if chat and model.template == "none":
        raise HarnessError(f"{model.name} is a base model with no chat template",
                           "run it without --chat, or name one with --chat-template")


def install_chat_template(model: ModelSpec, tokenizer) -> str:
    """Give ``tokenizer`` the model's chat template (adding the special tokens it needs); returns the Jinja.

    Raises a :class:`HarnessError` for a base model, or a ``tokenizer`` model whose tokenizer has none.
    """
    check_chat_options(model, True, None)
    if model.template == "tokenizer":
        if not getattr(tokenizer, "chat_template", None):
            raise HarnessError(f"the tokenizer of {model.name} has no chat template",
                               "run it without --chat, or name one with --chat-template")
        return tokenizer.chat_template
    template = TEMPLATES[model.template]
    missing = [token for token in template.special_tokens if token not in tokenizer.get_vocab()]
    if missing:  # what Dolly's training added to the GPT-NeoX tokenizer; its released tokenizers have them
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
    tokenizer.chat_template = template.jinja
    return template.jinja


def chat_messages(text: str, system: str | None = None) -> list[dict[str, str]]:
    """One user turn, after a system turn when ``system`` is given ("" = no system prompt at all)."""
    return ([{"role": "system", "content": system}] if system is not None else []) + [{"role": "user", "content": text}]


def render_prompt(model: ModelSpec, tokenizer, text: str, chat: bool, system: str | None = None) -> str:
    """The prompt text the model receives for ``text``: as given, or through its chat template."""
    check_chat_options(model, chat, system)
    if not chat:
        return text
    install_chat_template(model, tokenizer)
    return tokenizer.apply_chat_template(chat_messages(text, system), tokenize=False, add_generation_prompt=True)


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Token ids as lm-eval's ``hf`` backend encodes a context: no extra BOS if the text starts with it."""
    bos = tokenizer.bos_token
    if bos and prompt.startswith(bos):
        return tokenizer.encode(prompt, add_special_tokens=False)
    return tokenizer.encode(prompt)


def load_tokenizer(model: ModelSpec, tokenizer_path: Path | None = None):
    """The model's tokenizer (GGUF, folder or hub), or the one at ``tokenizer_path`` (folder or tokenizer.json)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        if tokenizer_path is not None:
            if not tokenizer_path.exists():
                raise HarnessError(f"tokenizer {tokenizer_path} does not exist", "give a tokenizer folder or tokenizer.json")
            if tokenizer_path.is_dir():
                return AutoTokenizer.from_pretrained(str(tokenizer_path))
            return PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_path),
                                           **_SPECIAL_TOKENS.get(model.architecture, {}))
        if model.gguf_path is not None:
            return AutoTokenizer.from_pretrained(str(model.gguf_path.parent), gguf_file=model.gguf_path.name)
        if model.local_path is not None:
            return AutoTokenizer.from_pretrained(str(model.local_path))
        # One line, not huggingface_hub's five retries, when the hub cannot give it.
        hub.check_available(model, cached_enough=(*hub.TOKENIZER_FILES, "config.json"))
        return AutoTokenizer.from_pretrained(model.hub_id, revision=model.revision)
    except HarnessError:
        raise
    except Exception as exc:  # transformers, tokenizers and the hub raise many types: all mean "no tokenizer"
        raise HarnessError(
            f"could not load the tokenizer of {model.name}: {first_line(exc)}",
            "pass --tokenizer with a local tokenizer folder or tokenizer.json (the hub may be unreachable)",
        ) from None
