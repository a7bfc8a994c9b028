#!/usr/bin/env bash
# The CUDA checks of the whole project, in two phases that each fit one 10-minute device call:
#   bash benchmarks/gpu_checks.sh checks  DATA_SRC OUT   # install, test suite on CUDA, bench, pipeline, augs
#   bash benchmarks/gpu_checks.sh train   DATA_SRC OUT   # accuracy/time runs of the Trainer on CUDA
# DATA_SRC is a copy of ../shared/data (prepare.py and its sources); results are written flat into OUT.
set -uo pipefail
phase=$1 src=$2 out=$3
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . >/tmp/install.log 2>&1 || { cat /tmp/install.log; exit 1; }
python3 "$src/prepare.py" /tmp/zoo-data >/dev/null || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__)" | tee -a "$out/gpu.txt"
if [ "$phase" = checks ]; then
  timeout 280 python3 -m pytest -q -x -m "not slow" -p no:cacheprovider 2>&1 | tail -25 | tee "$out/pytest-cuda.txt"
  zoo bench --device cuda --batch-size 256 --channels-last --runs 20 --warmup 5 --output "$out/models-cuda.md" 2>/dev/null | tail -3
  python3 benchmarks/augmentations.py --device cuda --output "$out/augmentations-cuda.md" 2>&1 | tail -15
else
  python3 benchmarks/data_pipeline.py --device cuda --skip-load --data-dir /tmp/zoo-data \
    --output "$out/data-pipeline-cuda.md" 2>&1 | tail -12
  for job in "mnist lenet" "cifar10 resnet18 --channels-last --compile" "cifar10 inception --aug cutmix --channels-last"; do
    name=$(echo "$job" | cut -d' ' -f1,2 | tr ' ' '-')
    /usr/bin/time -f "wall %e s" zoo train $job --device cuda --data-dir /tmp/zoo-data --out "/tmp/runs/$name" \
      --no-tensorboard 2>&1 | tee "$out/train-$name.txt"
    cp "/tmp/runs/$name/metrics.jsonl" "$out/metrics-$name.jsonl"
  done
fi
