#!/usr/bin/env bash
# The GPU checks of issue 17, on a machine with CUDA, its own torch, and .gpu/ from gpu_bundle.sh beside the checkout's
# files (no network needed). Each stage writes its log to $OUT (or ./gpu-logs); its timeouts keep it under one
# 10-minute device call (not yet run on a GPU).
#
#   bash benchmarks/gpu_run.sh correctness   # the prefix scorer's lm-eval agreement tests on CUDA (fp32; the embedded
#                                            # model's skip, its GGUF does not travel), and fp32 20-doc checks of the
#                                            # random-weight shapes
#   bash benchmarks/gpu_run.sh speed MODEL   # bf16, 200 docs, two interleaved reps, lm-eval at bs 8/32/64 (bs 1 was
#                                            # 5x slower than bs 32 on the H100 run in benchmarks/README.md):
#                                            # ARC-25, HellaSwag-10, MMLU-5 (MODEL: smollm2-135m, tinyllama-1.1b, llama-2-7b)
set -uo pipefail
cd "$(dirname "$0")/.."
USAGE="usage: bash benchmarks/gpu_run.sh correctness | speed MODEL (smollm2-135m, tinyllama-1.1b or llama-2-7b)"
case "${1:-} ${2:-}" in correctness\ |"speed smollm2-135m"|"speed tinyllama-1.1b"|"speed llama-2-7b") ;; *) echo "$USAGE" >&2; exit 2 ;; esac
OUT=${OUT:-gpu-logs}; mkdir -p "$OUT"
[ -d .gpu/whl ] || { echo ".gpu/ is missing: run bash benchmarks/gpu_bundle.sh where pip works, and carry .gpu" >&2; exit 2; }
python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null \
  || { echo "this machine's python3 has no CUDA torch: run gpu_run.sh on the GPU machine" >&2; exit 2; }
if [ ! -f /tmp/site/.installed ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl \
    && touch /tmp/site/.installed || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HARNESS_DATA_DIR=$PWD/.gpu/shared/data
[ -e ../shared ] || ln -s "$PWD/.gpu/shared" ../shared  # where the tests and the benchmark look for the tokenizers
python3 -c "import torch, transformers, lm_eval; print('torch', torch.__version__, torch.cuda.get_device_name(0), '| transformers', transformers.__version__, '| lm-eval', lm_eval.__version__)" | tee "$OUT/versions.txt"
CASES="arc_challenge (25-shot),hellaswag (10-shot),mmlu (5-shot; 4 subjects)"
case "${1:-}" in
  correctness)
    HARNESS_TEST_DEVICE=cuda timeout 340 python3 -m pytest -q -p no:cacheprovider tests/test_backend_prefix.py 2>&1 | tee "$OUT/test-prefix-cuda.log"
    for model in smollm2-135m tinyllama-1.1b; do
      timeout 110 python3 benchmarks/bench_scoring.py --model $model --device cuda --dtype float32 --docs 20 --reps 1 \
        --ref-batch-sizes 8 --cases "$CASES" 2>&1 | grep -v "it/s\]" | tee "$OUT/fp32-$model.log"
    done ;;
  speed)
    model=$2
    timeout 560 python3 benchmarks/bench_scoring.py --model "$model" --device cuda --dtype bfloat16 \
      --docs 200 --reps 2 --ref-batch-sizes 8,32,64 --cases "$CASES" 2>&1 | grep -v "it/s\]" | tee "$OUT/bf16-$model.log" ;;
esac
