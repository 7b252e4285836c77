#!/usr/bin/env bash
# The GPU check of the DDC family (issue 13), one script, under 8 minutes on one H100/H200:
#   1. the CUDA tests (pytest -m cuda): Triton kernels vs the plain formulation, fp16/bf16 autocast;
#   2. benchmarks/ddc_loss.py at B=4 and B=16, 512x512, K=11, fp16 autocast: time and
#      torch.cuda.max_memory_allocated, Listing 1 vs ours;
#   3. benchmarks/train_speed.py: 100 iterations of the AM-2K recipe (AMP) on a synthetic
#      AM-2K-layout dataset, s/iteration, images/s and peak memory, Listing 1's loss vs ours.
#
#   bash benchmarks/device_check.sh                 # on the GPU machine, from the repository root
#   bash benchmarks/device_check.sh --device cpu    # dry run: tiny sizes, checks the wiring
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
if [[ "${1:-}" == "--device" ]]; then DEVICE="$2"; fi
PYTHON="${PYTHON:-python}"

echo "== 1. CUDA tests"
if [[ "$DEVICE" == cuda ]]; then
  "$PYTHON" -m pytest -q -m cuda tests/modeling/test_neighbour_kernels.py
else
  # dry run: the same selection of tests collects (and skips without CUDA)
  "$PYTHON" -m pytest -q -m cuda tests/modeling/test_neighbour_kernels.py || [[ $? == 5 ]]
fi

echo "== 2. DDC loss, fp16 autocast"
if [[ "$DEVICE" == cuda ]]; then
  "$PYTHON" benchmarks/ddc_loss.py --device cuda --amp --sizes 4x512x512 16x512x512 --kinds real
else
  "$PYTHON" benchmarks/ddc_loss.py --device cpu --sizes 2x48x48 --kinds real --repeats 1 \
    --plain-repeats 1
fi

echo "== 3. AM-2K recipe, 100 iterations with AMP"
if [[ "$DEVICE" == cuda ]]; then
  "$PYTHON" benchmarks/train_speed.py --device cuda --iters 100 --batch 16
else
  "$PYTHON" benchmarks/train_speed.py --device cpu --tiny --iters 2
fi
