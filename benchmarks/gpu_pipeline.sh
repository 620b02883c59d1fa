#!/usr/bin/env bash
# Whole training pipeline on one GPU (loader + augmentation + step), not the step alone as gpu_check.py times:
# SynthVI at 256x128 (200 ids), `vireid train` for 3 epochs (data.epoch_length=images) per setting, printing
# each epoch's images/s and the share of its time spent waiting for batches (metrics.jsonl `data_seconds`).
# Compare with gpu_check.py's step-only figures: the wait share says how much of the gap is the input pipeline.
# usage: bash benchmarks/gpu_pipeline.sh [WORKDIR]
# (EXTRA="key=value ..." appends overrides to every run, e.g. a tiny backbone to try the script on a CPU.)
set -u
W=${1:-/tmp/vireid_gpu_pipeline}; mkdir -p "$W"
V="${PYTHON:-python3} -m vireid"
[ -d "$W/svi" ] || $V synth --out "$W/svi" --ids 200 --height 256 --width 128 --quiet
run() {  # name recipe overrides...
  local name=$1 recipe=$2; shift 2
  local t0=$SECONDS
  timeout 150 $V train --config "$recipe" --data-root "$W/svi" --output "$W/$name" --overwrite model.pretrained=none \
    train.epochs=3 schedule.milestones=[] data.epoch_length=images data.cache_dir="$W/cache" train.eval_every=0 \
    train.progress=false train.tensorboard=false "$@" ${EXTRA:-} > "$W/$name.log" 2>&1 || { echo "$name FAILED"; tail -3 "$W/$name.log"; }
  ${PYTHON:-python3} - "$W/$name" "$name" $((SECONDS - t0)) <<'PY'
import sys
from vireid.visualization.curves import read_metrics
eps = [e for e in read_metrics(sys.argv[1]) if e.get("kind") == "epoch"]
wait = ", ".join(f"{100 * e['data_seconds'] / e['seconds']:.0f}%" for e in eps if "data_seconds" in e)
print(f"{sys.argv[2]:<34} images/s per epoch: " + ", ".join(f"{e['images_per_s']:.0f}" for e in eps)
      + f"; waiting for data: {wait or 'not logged'}   ({sys.argv[3]} s wall with start-up)", flush=True)
PY
}
run vd_cache_w2 sysu_vd data.num_workers=2
run vd_cache_w6 sysu_vd data.num_workers=6
run vd_cache_w12 sysu_vd data.num_workers=12
run vd_jpeg_w12 sysu_vd data.num_workers=12 data.cache=false
run baseline_cache_w2 sysu_baseline data.num_workers=2
run baseline_cache_w12 sysu_baseline data.num_workers=12
run baseline_jpeg_w12 sysu_baseline data.num_workers=12 data.cache=false
