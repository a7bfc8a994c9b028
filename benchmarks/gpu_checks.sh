#!/usr/bin/env bash
# Every CUDA measurement of the project in ONE command that fits a 9-minute device call on an H100:
#
#   bash benchmarks/gpu_checks.sh [--out DIR]       # DIR: default "${OUT:-benchmarks/results/gpu}"
#   bash benchmarks/gpu_checks.sh --dry-run --out /tmp/gc   # every step for one batch on the CPU (tests)
#   bash benchmarks/gpu_checks.sh --only "01 05"            # only these steps (00 always runs)
#   bash benchmarks/gpu_checks.sh --only 05                 # a selected step may use the whole deadline
#
# Steps, in order of importance; each writes its files into DIR the moment it has them (rows of a table as
# they complete, a run's metrics.jsonl after every epoch), so a cut run still returns the first results:
#   00 GPU name, driver and versions             00-versions.txt
#   01 fastnet: time to 94% on CIFAR-10, 3 seeds 01-fastnet.md, 01-fastnet-seedS.{jsonl,log}
#   02 zoo bench throughput + MFU, every model   02-throughput-eager.{md,json}   (batch 512, bf16, channels_last)
#   03 the same, torch.compile                   03-throughput-compiled.{md,json}
#   04 zoo bench --accuracy, CIFAR-10, 10 epochs 04-accuracy-cifar10.{md,json,png}
#   05 resnet18 on its full CIFAR-10 recipe      05-resnet18-recipe.{jsonl,log}   (100 epochs, trivialaugment
#      and cutout; goal 95.5%: needs a call of its own, --only 05, as the full run gives it 80 s)
#   06 the headline: inception --aug cutmix      06-inception-cutmix.{jsonl,log}
#   07 zoo bench against timm's method           07-bench-vs-timm.md, 07-bench-vs-timm-large.md
#   09 augmentation policies on the GPU          09-augmentations-policies.md (vs torchvision per image)
#   10 streamed photos, JPEGs decoded on the GPU  10-imagefolder-stream.md (vs the workers, torchvision)
#   08 the CUDA-parametrised tests               08-tests-cuda.txt
# steps.txt logs every step: its wall seconds and whether it finished, was cut by its budget or skipped.
#
# Each step has a budget in seconds (a step past it is stopped, keeping what it wrote) and the whole run a
# deadline (GPU_CHECKS_SECONDS, default 530, from the start of the script): a step starts only with time left,
# so the tail of the list is what a slow machine loses. Under --only the budgets are lifted: the selected
# steps run until they finish or the deadline comes. On the device machine the data come from
# the parts that `python benchmarks/stage_data.py` carried over the calls before this one (CIFAR-10's
# original pixels are ~120 MB, a call carries 64 MiB: --dry-run there shows the plan), else
# shared/data/prepare.py inside the checkout or ../shared/data/prepare.py beside it (ZOO_SHARED_DATA names
# another folder), laid out in /tmp/zoo-data.
set -uo pipefail

dry_run=0
only=""
out="${OUT:-benchmarks/results/gpu}"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --out) out="$2"; shift ;;
    --only) only="$2"; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "gpu_checks.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
start=$SECONDS
cd "$(dirname "$0")/.."
mkdir -p "$out"
out="$(cd "$out" && pwd)"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
# the dry run checks that every step works, not how fast: on a busy CPU its limits are 20 times longer
scale=$(( dry_run ? 20 : 1 ))
total="${GPU_CHECKS_SECONDS:-$(( 530 * scale ))}"
work="${GPU_CHECKS_WORK:-/tmp/zoo-gpu-checks}"
rm -rf "$work" && mkdir -p "$work"
: > "$out/steps.txt"

if [ "$dry_run" = 1 ]; then
  py="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
  device=cpu data="$work/tiny" seeds="0" models="lenet fastnet" compiled_models="lenet"
  accuracy_models=$models
  export ZOO_CACHE="$work/cache"
  # one batch per step: a 2-class image tree of 16 training and 8 test images, trained with batch 16
  "$py" - "$data" <<'EOF' || exit 1
import sys
from pathlib import Path

import numpy as np
from PIL import Image

rng = np.random.default_rng(0)
for split, n in (("train", 8), ("test", 4)):
    for label, base in (("dark", 40), ("bright", 200)):
        folder = Path(sys.argv[1]) / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = np.clip(rng.normal(base, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
EOF
  small=(--epochs 1 --batch-size 16)
  fastnet=(imagefolder fastnet "${small[@]}")
  resnet=(imagefolder resnet18 --aug trivialaugment --aug cutout:size=8 "${small[@]}")  # the recipe's augs
  inception=(imagefolder inception --aug cutmix "${small[@]}")
  accuracy=(--dataset imagefolder "${small[@]}")
  bench=(--batch-size 2 --runs 1 --warmup 0 --precision fp32)
  timm_args=(--batch-size 2 --warmup 0 --steps 1 --rounds 2)
  compile=()  # the CPU compiler would take minutes; the flag is exercised by the test suite instead
  compiled_extra=(--mode infer)
else
  py="${PYTHON:-python3}"
  device=cuda data=/tmp/zoo-data seeds="0 1 2" models=""
  # compiling takes ~20 s a model: the most used first, so a cut step has measured those
  compiled_models="fastnet resnet18 vgg11 mobilenet_v2 inception lenet tv_resnet18 vgg13 vgg16 vgg19
    mobilenet_v1 resnet34 resnet50 googlenet"
  # the accuracy sweep, cheapest first (H200 training img/s, 02-throughput-eager.md), so that a sweep cut
  # by its budget has measured as many models as it could
  accuracy_models="fastnet lenet vgg11 vgg13 vgg16 vgg19 mobilenet_v1 tv_resnet18 resnet18 resnet34
    mobilenet_v2 inception resnet50 googlenet"
  # the machine has torch and the other dependencies but no package index: install zoo alone
  "$py" -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$work/install.log" 2>&1 \
    || "$py" -m pip install -q --no-deps --no-build-isolation --no-index . >>"$work/install.log" 2>&1 \
    || { cat "$work/install.log"; exit 1; }
  shared="${ZOO_SHARED_DATA:-}"
  # the data carried in parts over the calls before this one (python benchmarks/stage_data.py --dry-run)
  if [ -z "$shared" ] && [ -d .gpu/data/part1 ]; then
    "$py" benchmarks/stage_data.py --assemble "$work/shared-data" >/dev/null || exit 1
    shared="$work/shared-data"
  fi
  for candidate in shared/data ../shared/data; do
    [ -z "$shared" ] && [ -f "$candidate/prepare.py" ] && shared=$candidate
  done
  [ -n "$shared" ] || { echo "gpu_checks.sh: no shared/data/prepare.py here or beside the checkout" >&2; exit 1; }
  "$py" "$shared/prepare.py" "$data" >"$work/prepare.log" 2>&1 || { cat "$work/prepare.log"; exit 1; }
  fastnet=(cifar10 fastnet --compile)
  resnet=(cifar10 resnet18 --channels-last --compile)
  # eager: compiling inception's many branches took the whole 40 s budget on an H200 (2026-11-26), and
  # eager trains it at ~20,000 img/s, so a budget cut still leaves epochs
  inception=(cifar10 inception --aug cutmix --channels-last)
  accuracy=(--dataset cifar10 --epochs 10 --channels-last)
  bench=(--batch-size 512 --precision bf16 --channels-last --runs 20 --warmup 5)
  timm_args=(--batch-size 256 --precision bf16 --channels-last)
  compile=(--compile)
  compiled_extra=()
fi
tests_reserve=$(( 40 * scale ))
total=$(( total - tests_reserve ))
zoo_cmd=("$py" -m zoo_core)
zoo() { "$py" -m zoo_core "$@"; }
data_args=(--data-dir "$data")

# run_step NAME BUDGET STDOUT_COPY COMMAND...: run COMMAND (an executable, so that timeout stops the
# program itself) for at most min(BUDGET, time left), its stdout also copied to STDOUT_COPY unless "-";
# stderr (progress bars, per-epoch lines) goes to stderr.log
selected() { [ -z "$only" ] || [[ " $only " == *" ${1%% *} "* ]]; }

run_step() {
  local name=$1 budget=$(( $2 * scale )) copy=$3; shift 3
  [ -n "$only" ] && budget=$total  # chosen steps: as long as the deadline allows
  if ! selected "$name"; then
    echo "$name: skipped (--only $only)" | tee -a "$out/steps.txt"
    return
  fi
  local left=$(( total - (SECONDS - start) ))
  [ "$budget" -gt "$left" ] && budget=$left
  if [ "$budget" -lt 5 ]; then
    echo "$name: skipped, out of time" | tee -a "$out/steps.txt"
    return
  fi
  local t0=$SECONDS rc
  if [ "$copy" = - ]; then
    timeout --kill-after=10 "$budget" "$@" 2>>"$out/stderr.log"
    rc=$?
  else
    timeout --kill-after=10 "$budget" "$@" 2>>"$out/stderr.log" | tee "$copy"
    rc=${PIPESTATUS[0]}
  fi
  local how="finished"
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && how="cut at its ${budget} s budget"
  [ $rc -ne 0 ] && [ "$how" = finished ] && how="failed (exit $rc)"
  echo "$name: $how, $(( SECONDS - t0 )) s" | tee -a "$out/steps.txt"
}

# train_run NAME ARGS...: zoo train into $work/NAME, copying metrics.jsonl to $out/NAME.jsonl every few
# seconds while it runs (so a run stopped by its budget keeps every finished epoch)
train_run() {
  local name=$1; shift
  zoo train "$@" --device "$device" --data-dir "$data" --out "$work/$name" --no-tensorboard \
    >"$out/$name.log" 2>&1 &
  local pid=$!
  trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; cp "$work/$name/metrics.jsonl" "$out/$name.jsonl" 2>/dev/null; exit 124' TERM
  while kill -0 $pid 2>/dev/null; do
    cp "$work/$name/metrics.jsonl" "$out/$name.jsonl" 2>/dev/null
    sleep 3
  done
  wait $pid
  local rc=$?
  cp "$work/$name/metrics.jsonl" "$out/$name.jsonl" 2>/dev/null
  return $rc
}
export -f zoo train_run
export py device out work data

# fastnet_row SEED: one line of the fastnet table, from the run's metrics.jsonl
fastnet_row() {
  "$py" - "$out/01-fastnet-seed$1.jsonl" "$1" <<'EOF' >>"$out/01-fastnet.md"
import json
import sys
from pathlib import Path

from zoo_core.bench.accuracy import time_to_targets

path, seed = Path(sys.argv[1]), sys.argv[2]
rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
if not rows:
    print(f"| {seed} | — | — | — | — | — | no epoch finished |")
    sys.exit()
last = rows[-1]
# the first epoch whose score (its TTA accuracy where it has one, else val_acc) reached 94%
seconds = time_to_targets(rows, [0.94])["0.94"]
hit = next((r for r in rows if r["time_s"] == seconds), None)
to94 = f"{hit['time_s']:.1f} (epoch {hit['epoch']})" if hit else "not reached"
tta = f"{last['tta_acc']:.2%}" if "tta_acc" in last else "—"
# epoch 1 holds the compilation: the later epochs' mean time, times the epochs run
steady = (last["time_s"] - rows[0]["time_s"]) * len(rows) / (len(rows) - 1) if len(rows) > 1 else None
steady_s = f"{steady:.1f}" if steady is not None else "—"
print(f"| {seed} | {len(rows)} | {last['val_acc']:.2%} | {tta} | {to94} | {last['time_s']:.1f} | {steady_s} |")
EOF
}

# -- 00 versions ---------------------------------------------------------------------------------------
{
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  else
    echo "no nvidia-smi (dry run on $(uname -m))"
  fi
  "$py" -c "import torch, torchvision, timm, zoo_core; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'cuDNN', torch.backends.cudnn.version(), '| torchvision', torchvision.__version__, '| timm', timm.__version__, '| zoo', zoo_core.__version__)"
  "$py" -c "import platform, os; print('Python', platform.python_version(), '|', os.cpu_count(), 'CPU cores |', platform.platform())"
} 2>&1 | tee "$out/00-versions.txt"

# -- 01 fastnet: time to 94% ---------------------------------------------------------------------------
{
  echo "# fastnet on CIFAR-10 (original pixels): time to 94% test top-1"
  echo
  echo "Command: \`zoo train ${fastnet[*]} --device $device --seed S\`; times are \`time_s\` of metrics.jsonl"
  echo "(wall seconds since the start of training, compilation included). GPU: $(head -1 "$out/00-versions.txt")"
  echo
  echo "The score is the final epoch's top-1 with the recipe's TTA; \`steady s\` estimates the run without"
  echo "compilation: the mean time of epochs 2 to N, times N."
  echo
  echo "| seed | epochs | final top-1 | with TTA | s to 94% | train s | steady s |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
} >"$out/01-fastnet.md"
for seed in $seeds; do
  run_step "01 fastnet seed $seed" $(( seed == 0 ? 90 : 45 )) - bash -c 'train_run "$@"' _ \
    "01-fastnet-seed$seed" "${fastnet[@]}" --seed "$seed"
  selected 01 && fastnet_row "$seed"
done

# -- 02/03 throughput and MFU --------------------------------------------------------------------------
# shellcheck disable=SC2086  # $models: word-split on purpose (empty: every model)
run_step "02 throughput eager" 45 "$out/02-throughput-eager.md" "${zoo_cmd[@]}" bench \
  $models --device "$device" "${bench[@]}" --output "$out/02-throughput-eager.json"
# shellcheck disable=SC2086
run_step "03 throughput compiled" 45 "$out/03-throughput-compiled.md" "${zoo_cmd[@]}" bench \
  $compiled_models --device "$device" "${bench[@]}" "${compile[@]}" "${compiled_extra[@]}" \
  --output "$out/03-throughput-compiled.json"

# -- 04 accuracy of every model ------------------------------------------------------------------------
plot=()
"$py" -c "import matplotlib" 2>/dev/null && plot=(--plot "$out/04-accuracy-cifar10.png")
# shellcheck disable=SC2086
run_step "04 accuracy sweep" 90 "$out/04-accuracy-cifar10.md" "${zoo_cmd[@]}" bench \
  $accuracy_models --accuracy --device "$device" "${accuracy[@]}" "${data_args[@]}" \
  --output "$out/04-accuracy-cifar10.json" "${plot[@]}"

# -- 05/06 full recipes --------------------------------------------------------------------------------
run_step "05 resnet18 recipe" 65 - bash -c 'train_run "$@"' _ \
  05-resnet18-recipe "${resnet[@]}"
run_step "06 inception cutmix" 40 - bash -c 'train_run "$@"' _ \
  06-inception-cutmix "${inception[@]}"

# -- 09 the augmentation policies on the device, against torchvision per image on the CPU -------------------
run_step "09 augmentation policies" 30 - "$py" benchmarks/augmentation_policies.py --device "$device" \
  --batch-size $(( dry_run ? 16 : 1024 )) --runs $(( dry_run ? 1 : 5 )) \
  --output "$out/09-augmentations-policies.md"

# -- 10 streamed photos: JPEGs decoded in the workers against a batch at a time on the GPU (nvJPEG) ----------
stream_args=(--images $(( dry_run ? 48 : 6000 )) --rounds $(( dry_run ? 1 : 2 )) --warmup $(( dry_run ? 0 : 2 ))
  --batches $(( dry_run ? 1 : 20 )) --batch-size $(( dry_run ? 8 : 64 )))
run_step "10 streamed photos, decode on the device" 45 - "$py" benchmarks/imagefolder_stream.py \
  --device "$device" --work "$work/stream" --modes imagenet --rss --decode-on-device "${stream_args[@]}" \
  --output "$out/10-imagefolder-stream.md"

# -- 07 fairness: zoo bench against timm's benchmark method --------------------------------------------
run_step "07 bench vs timm" 25 - "$py" benchmarks/bench_vs_timm.py --device "$device" "${timm_args[@]}" \
  --output "$out/07-bench-vs-timm.md"
# the same at a batch where the GPU, not the launching of kernels, sets the pace
run_step "07 bench vs timm, large batch" 25 - "$py" benchmarks/bench_vs_timm.py --device "$device" \
  "${timm_args[@]}" --batch-size $(( dry_run ? 4 : 1024 )) --output "$out/07-bench-vs-timm-large.md"

# -- 08 the CUDA-parametrised tests (their reserve was kept out of the steps above) ---------------------
total=$(( total + tests_reserve ))
if [ "$dry_run" = 1 ]; then
  tests=(tests/test_augmentations.py -k "cuda and mixup-1")  # one test id: the suite runs the rest
else
  tests=(tests -k cuda)
fi
run_step "08 tests on cuda" 40 "$out/08-tests-cuda.txt" "$py" -m pytest -q -p no:cacheprovider "${tests[@]}"

echo "total $(( SECONDS - start )) s (deadline $total s)" | tee -a "$out/steps.txt"
