#!/usr/bin/env bash
# The GPU figures of the performance issue, in one go (about 8 minutes on one H100):
#
#   1. benchmarks/throughput.py --device cuda (resnet50, 224 px, batch 256) at 32-true, bf16-mixed,
#      bf16-mixed + channels-last (and + compile, see below): the project's Lightning
#      path against the plain loop, per repetition, with the peak GPU memory of each path; after each,
#      timm's own `benchmark.py --bench train` with the same model, batch size, precision and switches,
#      as an outside reference (10 classes and AdamW like ours; timm turns cudnn.benchmark on);
#   2. python train.py trainer=gpu trainer.precision=bf16-mixed, a short run of the default project;
#   3. benchmarks/data_loading.py --device cuda --backbone resnet50 --image-size 224;
#   and the compiled variant of 1 last, as it takes longest; then a table of every variant.
# While each step runs, nvidia-smi samples GPU utilisation and memory every 200 ms.
#
#   benchmarks/gpu.sh <timm's benchmark.py> <output dir>
#
# timm's benchmark.py is fetched by whoever runs this (github.com/huggingface/pytorch-image-models)
# and never committed here. The default project is baked into <output dir>/bake and run from its
# src/ (PYTHONPATH), not installed; every step's log is kept in <output dir>. Each step has a time
# limit, and steps that would start after BUDGET seconds are skipped, so one hang cannot eat the
# machine's time. Settings come from the environment (defaults in brackets): PYTHON [python],
# BUDGET [480], DEVICE [cuda], MODEL [resnet50], IMAGE_SIZE [224], BATCH_SIZE [256], STEPS [20],
# WARMUP_STEPS [3], REPEATS [3], COMPILE_BACKEND [inductor], TRAINER [gpu]. A quick check of the
# script itself on a CPU:
#
#   DEVICE=cpu TRAINER=cpu MODEL=test_resnet IMAGE_SIZE=32 BATCH_SIZE=8 STEPS=3 WARMUP_STEPS=1 \
#     REPEATS=2 COMPILE_BACKEND=eager benchmarks/gpu.sh /tmp/timm-benchmark.py /tmp/gpu-dry-run
set -uo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 <path to timm's benchmark.py> <output dir>" >&2
    exit 2
fi
TIMM_BENCHMARK=$(realpath "$1")
OUT=$(realpath -m "$2")
[[ -f $TIMM_BENCHMARK ]] || { echo "No file $TIMM_BENCHMARK (timm's benchmark.py)." >&2; exit 2; }
TEMPLATE=$(realpath "$(dirname "${BASH_SOURCE[0]}")/..")
PYTHON=${PYTHON:-python}
BUDGET=${BUDGET:-480}
DEVICE=${DEVICE:-cuda}
MODEL=${MODEL:-resnet50}
IMAGE_SIZE=${IMAGE_SIZE:-224}
BATCH_SIZE=${BATCH_SIZE:-256}
STEPS=${STEPS:-20}
WARMUP_STEPS=${WARMUP_STEPS:-3}
REPEATS=${REPEATS:-3}
COMPILE_BACKEND=${COMPILE_BACKEND:-inductor}
TRAINER=${TRAINER:-gpu}
mkdir -p "$OUT"

# run_step NAME LIMIT_SECONDS COMMAND...: run COMMAND with its output in $OUT/NAME.log, killed after
# LIMIT_SECONDS (or when the budget runs out), sampling the GPU meanwhile; prints how it ended.
run_step() {
    local name=$1 limit=$2
    shift 2
    local left=$((BUDGET - SECONDS))
    if ((left < 30)); then
        echo "== $name: SKIPPED, ${left} s of the ${BUDGET} s budget left"
        return 1
    fi
    ((limit > left)) && limit=$left
    echo "== $name (limit ${limit} s): $*"
    local sampler=""
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200 \
            >"$OUT/$name.gpu.csv" 2>/dev/null &
        sampler=$!
    fi
    local started=$SECONDS status
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    status=$?
    [[ -n $sampler ]] && { kill "$sampler"; wait "$sampler" 2>/dev/null; }
    echo "   exit status $status after $((SECONDS - started)) s; log $OUT/$name.log"
    ((status == 124 || status == 137)) && echo "   TIMED OUT"
    if [[ -s $OUT/$name.gpu.csv ]]; then
        awk -F', *' '{ n++; sum += $1; if ($1 > 0) { busy++; busy_sum += $1 }
                       if ($1 > top) top = $1; if ($2 > memory) memory = $2 }
            END { printf "   GPU utilisation: mean %.0f%% over %d samples, %.0f%% over the %d non-idle ones, max %d%%; memory used max %d MiB\n",
                         sum / n, n, busy ? busy_sum / busy : 0, busy, top, memory }' "$OUT/$name.gpu.csv"
    fi
    return "$status"
}

echo "== $(date -u +%FT%TZ), template $TEMPLATE, output $OUT, budget $BUDGET s"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PYTHON" -c "import sys, torch, lightning, timm; print('python', sys.version.split()[0], '| torch', torch.__version__,
'| CUDA', torch.version.cuda, torch.cuda.is_available(), '| lightning', lightning.__version__, '| timm', timm.__version__)"

rm -rf "$OUT/bake"
"$PYTHON" -m cookiecutter "$TEMPLATE" --no-input -o "$OUT/bake" >"$OUT/bake.log" 2>&1 ||
    { cat "$OUT/bake.log"; exit 1; }
PROJECT=$(find "$OUT/bake" -mindepth 1 -maxdepth 1 -type d | head -n 1)
export PYTHONPATH="$PROJECT/src${PYTHONPATH:+:$PYTHONPATH}"
cd "$PROJECT" || exit 1

TIMM_COMMON=(--bench train --model "$MODEL" --img-size "$IMAGE_SIZE" -b "$BATCH_SIZE" --num-classes 10
    --opt adamw --device "$DEVICE")
# Without it timm halves the batch after an out-of-memory error and carries on.
grep -q -- "--no-retry" "$TIMM_BENCHMARK" && TIMM_COMMON+=(--no-retry)
SUMMARY=()

# compare VARIANT LIMIT "THROUGHPUT SWITCHES" "TIMM SWITCHES": throughput.py, then timm's benchmark.py.
compare() {
    local variant=$1 limit=$2 medians timm
    # shellcheck disable=SC2086 # the switches are meant to split into words
    run_step "throughput-$variant" "$limit" "$PYTHON" benchmarks/throughput.py --device "$DEVICE" \
        --backbone "$MODEL" --image-size "$IMAGE_SIZE" --batch-size "$BATCH_SIZE" --steps "$STEPS" \
        --warmup-steps "$WARMUP_STEPS" --repeats "$REPEATS" $3
    grep -v "Warning\|warn(" "$OUT/throughput-$variant.log" | tail -n 20 | sed 's/^/   /'
    # shellcheck disable=SC2086
    run_step "timm-$variant" "$limit" "$PYTHON" "$TIMM_BENCHMARK" "${TIMM_COMMON[@]}" $4
    grep "Benchmarking in\|benchmark of\|rror" "$OUT/timm-$variant.log" | sed 's/^/   /'
    medians=$(grep -m 1 "^plain .* img/s | lightning" "$OUT/throughput-$variant.log" | tr -d '|')
    timm=$(grep -o '"train_samples_per_sec": [0-9.]*' "$OUT/timm-$variant.log" | grep -o '[0-9.]*$')
    SUMMARY+=("$(awk -v name="$variant" -v timm="${timm:-0}" -v medians="$medians" 'BEGIN {
        split(medians, f, " +"); plain = f[2]; lightning = f[5]
        printf "%-34s %9.1f %9.1f %7.3f %9.1f %7.3f", name, plain, lightning, plain ? lightning / plain : 0,
               timm, timm ? lightning / timm : 0 }')")
}

BF16="--amp --amp-dtype bfloat16"
compare 32-true 120 "--precision 32-true" ""
compare bf16-mixed 100 "--precision bf16-mixed" "$BF16"
compare bf16-mixed+channels-last 100 "--precision bf16-mixed --channels-last" "$BF16 --channels-last"

run_step "train-$TRAINER-bf16-mixed" 120 "$PYTHON" train.py "trainer=$TRAINER" trainer.precision=bf16-mixed \
    trainer.max_epochs=3 "hydra.run.dir=$OUT/train-run"
tail -n 12 "$OUT/train-$TRAINER-bf16-mixed.log" | sed 's/^/   /'

run_step "data-loading" 120 "$PYTHON" benchmarks/data_loading.py --device "$DEVICE" --backbone "$MODEL" \
    --image-size "$IMAGE_SIZE" --images 1000 --batches 10
tail -n 12 "$OUT/data-loading.log" | sed 's/^/   /'

# Last, as it takes longest: compiling both models comes first (the inductor cache then serves timm).
compare bf16-mixed+channels-last+compile 240 \
    "--precision bf16-mixed --channels-last --compile --compile-backend $COMPILE_BACKEND" \
    "$BF16 --channels-last --torchcompile=$COMPILE_BACKEND"

echo
echo "== images/s, medians ($MODEL, $IMAGE_SIZE px, batch $BATCH_SIZE, $DEVICE); 0 = no figure (see the logs)"
printf "%-34s %9s %9s %7s %9s %7s\n" variant plain lightning l/plain timm l/timm
printf "%s\n" "${SUMMARY[@]}"
grep -H "peak GPU memory" "$OUT"/throughput-*.log | sed "s|^$OUT/throughput-|   |"
echo "== done in $SECONDS s"
