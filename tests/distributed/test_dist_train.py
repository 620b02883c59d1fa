"""End to end: ``vireid train`` under ``torchrun --nproc_per_node 2`` (gloo, CPU) on a tiny SynthVI tree,
then ``--resume`` of that run with one process. Two of the 12 identities are held out for validation, which
both processes share (each extracts half the images)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from dist_train import state_hashes
from launch import run_torchrun, torchrun_env

from vireid.data.synthvi import generate

TRAIN_SCRIPT = Path(__file__).with_name("dist_train.py")
JOB_LIMIT_S = 300  # a guard only
P = 2  # identities per batch PER PROCESS

TINY = """\
data:
  dataset: sysu
  height: 32
  width: 16
  ids_per_batch: {p}
  instances: 2
  num_workers: 0
  cache: true
  cache_dir: {cache}
  val_split: 2
model:
  name: baseline
  backbone: mobilenet_v3_small
  pretrained: none
optim:
  name: sgd
  lr: 0.01
schedule:
  warmup_epochs: 0
  milestones: []
train:
  epochs: 1
  amp: false
  channels_last: false
  select: last
  eval_every: 1
  log_every: 1
  tensorboard: false
  progress: true
  device: cpu
  sync_bn: true
  dist_timeout_s: 60
"""


def _records(record_dir: Path, world_size: int) -> list[dict]:
    return [json.loads((record_dir / f"rank{r}.json").read_text()) for r in range(world_size)]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("e2e")
    root = generate(base / "synthvi", num_ids=12, height=32, width=16, min_images=2, max_images=3, seed=0)
    config = base / "tiny.yaml"
    config.write_text(TINY.format(p=P, cache=base / "cache"))
    run_dir, record_dir, log_dir = base / "run", base / "records", base / "logs"
    record_dir.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += [f"--log-dir={log_dir}", "--redirects=3", str(TRAIN_SCRIPT), str(record_dir)]
    cmd += ["train", "--config", str(config), "--data-root", str(root), "--output", str(run_dir)]
    proc = subprocess.run(cmd, env=torchrun_env(), capture_output=True, text=True, timeout=JOB_LIMIT_S)
    logs = {}
    for rank in range(2):
        (folder,) = log_dir.glob(f"*/attempt_0/{rank}")
        logs[rank] = {name: (folder / f"{name}.log").read_text() for name in ("stdout", "stderr")}
    assert proc.returncode == 0, (
        f"{proc.stderr[-3000:]}\n{logs[0]['stderr'][-3000:]}\n{logs[1]['stderr'][-3000:]}"
    )
    return {"base": base, "root": root, "run_dir": run_dir, "records": _records(record_dir, 2), "logs": logs}


def test_processes_train_on_disjoint_identities(two_process_run):
    records = two_process_run["records"]
    assert [(r["rank"], r["world_size"]) for r in records] == [(0, 2), (1, 2)]
    steps = [len(r["batches"]) for r in records]
    assert steps[0] == steps[1] > 0  # the same number of DDP steps, or the gradient all-reduce would hang
    for b in records[0]["batches"] + records[1]["batches"]:
        assert len(set(b["pids"])) == P and len(b["pids"]) == P * 2 * 2  # P ids x (2 visible + 2 infrared)
    seen = [{pid for b in r["batches"] for pid in b["pids"]} for r in records]
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    images = [{i for b in r["batches"] for i in b["index"]} for r in records]
    assert not images[0] & images[1]


def test_weights_are_identical_across_ranks_and_checkpointed(two_process_run):
    records = two_process_run["records"]
    assert records[0]["start"] == records[1]["start"]  # DDP broadcast rank 0's initial weights
    assert records[0]["end"] == records[1]["end"]  # parameters and (synchronised) BN buffers, bit for bit
    assert records[0]["end"] != records[0]["start"]  # it did train
    saved = torch.load(two_process_run["run_dir"] / "last.pt", map_location="cpu", weights_only=False)
    model = torch.nn.Module()
    for key, value in saved["model"].items():  # hash the checkpoint's tensors the same way
        model.register_buffer(key.replace(".", "__"), value)
    assert sorted(state_hashes(model).values()) == sorted(records[0]["end"].values())


def test_only_rank0_writes_into_the_run_directory(two_process_run):
    writes = [r["writes"] for r in two_process_run["records"]]
    assert writes[1] == []
    written = {Path(path).name for _, path in writes[0]}
    assert "metrics.jsonl" in written and any(name.startswith(".last.pt") for name in written)
    files = sorted(p.name for p in two_process_run["run_dir"].iterdir())
    assert files == ["config.yaml", "last.pt", "metrics.jsonl", "model.pt", "run.json"]


def test_only_rank0_shows_the_training_progress(two_process_run):
    logs = two_process_run["logs"]
    assert "epoch 1/1" in logs[0]["stderr"]
    assert "epoch" not in logs[1]["stderr"]


def test_other_ranks_print_nothing(two_process_run):
    logs = two_process_run["logs"]
    assert "1 epochs in" in logs[0]["stdout"]
    assert logs[1]["stdout"].strip() == ""
    assert logs[1]["stderr"].strip() == ""


def test_logged_epoch_losses_are_averaged_over_processes(two_process_run):
    records = two_process_run["records"]
    per_rank = [sum(b["loss"] for b in r["batches"]) / len(r["batches"]) for r in records]
    assert per_rank[0] != per_rank[1]  # the processes saw different data
    lines = (two_process_run["run_dir"] / "metrics.jsonl").read_text().splitlines()
    (epoch,) = [json.loads(line) for line in lines if json.loads(line)["kind"] == "epoch"]
    assert epoch["loss"] == pytest.approx(sum(per_rank) / 2, rel=1e-9)
    timing = ("images_per_s", "seconds", "data_seconds")  # each process's own clock
    same = [[{k: v for k, v in h.items() if k not in timing} for h in r["history"]] for r in records]
    assert same[0] == same[1]  # every process holds the same epoch records (losses, validation)


def test_processes_draw_different_random_numbers(two_process_run):
    """Dropout masks and the bottleneck's sampling noise must not repeat across processes."""
    first = [r["batches"][0]["rng"] for r in two_process_run["records"]]
    assert first[0] != first[1]


def test_validation_is_shared_and_equals_one_process(two_process_run):
    records = two_process_run["records"]
    val = [r["history"][-1]["val"] for r in records]  # both processes validated (each extracted half)
    assert val[0] == val[1] and set(val[0]) == {"rank1", "rank5", "mAP", "mINP"}
    shared = [torch.tensor(r["val_feats_shared"]) for r in records]
    single = torch.tensor(records[0]["val_feats_single"])
    assert single.shape[0] >= 8 and single.abs().sum() > 0  # 2 held-out ids, visible and infrared images
    for feats in shared:  # the gathered features are one process's (the metrics of a 1-epoch model on
        torch.testing.assert_close(feats, single, rtol=1e-5, atol=1e-6)  # this tree are ties, not comparable)


def test_resume_with_a_different_number_of_processes(two_process_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(two_process_run["run_dir"], run_dir)
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    cmd = [sys.executable, str(TRAIN_SCRIPT), str(record_dir), "train", "--output", str(run_dir), "--resume"]
    cmd += ["--data-root", str(two_process_run["root"]), "train.epochs=2"]
    proc = subprocess.run(cmd, env=torchrun_env(), capture_output=True, text=True, timeout=JOB_LIMIT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = _records(record_dir, 1)
    assert record["world_size"] == 1
    assert record["start"] == two_process_run["records"][0]["end"]  # continued from the 2-process weights
    assert record["batches"] and {b["epoch"] for b in record["batches"]} == {1}
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sorted(set(epochs)) == [1, 2]
    assert json.loads((run_dir / "run.json").read_text())["world_size"] == 1


def test_a_stop_or_a_nan_on_one_process_stops_every_process_at_the_same_step(two_process_run, tmp_path):
    """Ctrl-C reaching rank 1 only (after its first step), then a NaN loss on rank 1 only (first step of
    epoch 2): both ranks stop together instead of one waiting in DDP's all-reduce until the timeout. The
    same job then runs RegDB ``--trial all --overwrite`` over an earlier run."""
    (tmp_path / "synthvi").symlink_to(two_process_run["root"])
    config = TINY.format(p=P, cache=two_process_run["base"] / "cache").replace("val_split: 2", "val_split: none")
    (tmp_path / "tiny.yaml").write_text(config)
    generate(tmp_path / "regdb", layout="regdb", num_ids=12, height=32, width=16, min_images=2, max_images=3)
    (tmp_path / "trials").mkdir()  # an earlier run of ours, to be replaced
    (tmp_path / "trials" / "config.yaml").write_text("old\n")
    (tmp_path / "trials" / "stale.txt").write_text("old\n")
    proc = run_torchrun("trainer_faults", tmp_path, timeout_s=30)
    assert proc.returncode == 0, proc.stderr[-4000:]
    recs = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert [r["stop"] for r in recs] == [[0, 1], [0, 1]]  # both after step 1 of epoch 1
    assert [r["stop_checkpoint"] for r in recs] == [[0, 1], [0, 1]]  # rank 0 saved the mid-epoch state
    assert [r["resumed"][0] for r in recs] == [[1, 2], [1, 2]]  # ... which both ranks resumed to the end
    assert recs[0]["resumed"][1] == recs[1]["resumed"][1]  # the same (averaged) epoch-1 loss everywhere
    assert [r["nan"][:2] for r in recs] == [[1, 0], [1, 0]]  # both at the first step of epoch 2
    assert "on another process" in recs[0]["nan"][2] and "on another process" not in recs[1]["nan"][2]
    assert "last good checkpoint" in recs[0]["nan"][2] and "(epoch 1)" in recs[0]["nan"][2]
    kept = torch.load(tmp_path / "nan" / "last.pt", map_location="cpu", weights_only=False)
    assert (kept["epoch"], kept["step"]) == (1, 0)  # the end of epoch 1, not touched after the NaN
    # RegDB --trial all --overwrite: both trials trained by both ranks, the old run replaced by rank 0
    assert [r["trials"] for r in recs] == [[(1, 1, True), (2, 1, True)], [(1, 1, False), (2, 1, False)]]
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == ["trial_1", "trial_2"]
    assert all((tmp_path / "trials" / f"trial_{t}" / "last.pt").is_file() for t in (1, 2))

