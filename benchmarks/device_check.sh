#!/usr/bin/env bash
# The GPU check of the DDC family, one script, under 10 minutes on one H100/H200:
#   0. python -m alphafree_d2.modeling.backends: each backend installed or not, its self-check
#      on this machine's devices (Triton's first real compile happens here) and time, what
#      "auto" picks;
#   1. the CUDA tests (pytest -m cuda): Triton kernels vs the plain formulation, fp16/bf16
#      autocast, the self-check and "auto" on the GPU;
#   2. benchmarks/ddc_loss.py at B=4 and B=16, 512x512, K=11, fp16 autocast: time and
#      torch.cuda.max_memory_allocated, Listing 1 vs ours ("auto");
#   3. the same at B=16 in float32 with the torch backend (the fallback, in bands of rows) vs
#      Listing 1: the memory the bands save;
#   4. benchmarks/train_speed.py: 100 iterations of the AM-2K recipe (AMP) on a synthetic
#      AM-2K-layout dataset, s/iteration, images/s and peak memory, Listing 1's loss vs ours.
# Each step's output is printed and saved to OUT/<step>.txt (OUT: --out, default
# output/device_check), with the machine's description in OUT/machine.txt.
#
#   bash benchmarks/device_check.sh                 # on the GPU machine, from the repository root
#   bash benchmarks/device_check.sh --device cpu    # dry run: tiny sizes, checks the wiring
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
OUT=output/device_check
while [[ $# -gt 0 ]]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "usage: $0 [--device cuda|cpu] [--out DIR]" >&2; exit 2 ;;
  esac
done
PYTHON="${PYTHON:-python}"
mkdir -p "$OUT"
{ date -u +%Y-%m-%dT%H:%M:%SZ; git rev-parse HEAD 2>/dev/null || true; uname -a
  nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"; } > "$OUT/machine.txt"

echo "== 0. Backends" | tee "$OUT/0_backends.txt"
"$PYTHON" -m alphafree_d2.modeling.backends 2>&1 | tee -a "$OUT/0_backends.txt"

TESTS=(tests/modeling/test_neighbour_kernels.py tests/modeling/test_backends.py)
echo "== 1. CUDA tests" | tee "$OUT/1_cuda_tests.txt"
if [[ "$DEVICE" == cuda ]]; then
  "$PYTHON" -m pytest -q -m cuda "${TESTS[@]}" 2>&1 | tee -a "$OUT/1_cuda_tests.txt"
else
  # dry run: the same selection of tests collects (and skips without CUDA)
  "$PYTHON" -m pytest -q -m cuda "${TESTS[@]}" 2>&1 | tee -a "$OUT/1_cuda_tests.txt" \
    || [[ $? == 5 ]]
fi

echo "== 2. DDC loss, fp16 autocast" | tee "$OUT/2_ddc_loss_amp.txt"
if [[ "$DEVICE" == cuda ]]; then
  "$PYTHON" benchmarks/ddc_loss.py --device cuda --amp --sizes 4x512x512 16x512x512 --kinds real \
    2>&1 | tee -a "$OUT/2_ddc_loss_amp.txt"
else
  "$PYTHON" benchmarks/ddc_loss.py --device cpu --sizes 2x48x48 --kinds real --repeats 1 \
    --plain-repeats 1 2>&1 | tee -a "$OUT/2_ddc_loss_amp.txt"
fi

echo "== 3. DDC loss, the torch backend in bands, float32" | tee "$OUT/3_ddc_loss_torch.txt"
if [[ "$DEVICE" == cuda ]]; then
  "$PYTHON" benchmarks/ddc_loss.py --device cuda --backend torch --sizes 16x512x512 \
    --kinds random --repeats 2 --plain-repeats 1 2>&1 | tee -a "$OUT/3_ddc_loss_torch.txt"
else
  "$PYTHON" benchmarks/ddc_loss.py --device cpu --backend torch --sizes 2x48x48 --kinds random \
    --repeats 1 --plain-repeats 1 --threads 1 --torch-chunk-mib 1 \
    2>&1 | tee -a "$OUT/3_ddc_loss_torch.txt"
fi

echo "== 4. AM-2K recipe, 100 iterations with AMP" | tee "$OUT/4_train_speed.txt"
if [[ "$DEVICE" == cuda ]]; then
  "$PYTHON" benchmarks/train_speed.py --device cuda --iters 100 --batch 16 \
    2>&1 | tee -a "$OUT/4_train_speed.txt"
else
  "$PYTHON" benchmarks/train_speed.py --device cpu --tiny --iters 2 \
    2>&1 | tee -a "$OUT/4_train_speed.txt"
fi
echo "results saved in $OUT"
