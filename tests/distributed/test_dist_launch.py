"""Two CPU processes (gloo) launched by torchrun: gathered features, collectives, DDP + SyncBatchNorm maths,
and a dead or stuck peer ending the job with an error instead of a hang."""

from __future__ import annotations

import dist_workers as W  # tests/distributed is on sys.path (pytest prepend import mode)
import pytest
import torch
from launch import run_torchrun
from torch import nn


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("collectives")
    proc = run_torchrun("collectives", out, timeout_s=60)
    assert proc.returncode == 0, proc.stderr[-4000:]
    recs = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]
    for rec in recs:
        rec["out"] = out
    return recs


@pytest.fixture(scope="module")
def single_process() -> dict:
    """The reference: one process, plain BatchNorm, the whole batch."""
    return W.train_steps(W.make_net(), slice(0, W.BATCH))


def test_each_process_has_its_rank_and_gloo(records):
    assert [(r["rank"], r["world_size"], r["local_rank"]) for r in records] == [(0, 2, 0), (1, 2, 1)]
    assert [r["is_main"] for r in records] == [True, False]
    assert {r["backend"] for r in records} == {"gloo"} and {r["device"] for r in records} == {"cpu"}
    assert records[0]["shard"] + records[1]["shard"] == list(range(W.N_IMAGES))


@pytest.mark.parametrize("key", ["gathered", "gathered_strided"])
def test_gathered_features_equal_one_process(records, key):
    reference = W.extract(W.make_net(), W.make_images())
    for rec in records:
        torch.testing.assert_close(rec[key], reference, rtol=1e-6, atol=1e-6)


def test_gather_with_an_empty_share(records):
    reference = W.extract(W.make_net(), W.make_images()[:1])
    for rec in records:
        torch.testing.assert_close(rec["gathered_one"], reference, rtol=1e-6, atol=1e-6)


def test_overlapping_shares_are_refused_on_every_rank(records):
    for rec in records:
        assert rec["overlap_error"] is not None and "exactly once" in rec["overlap_error"]


def test_all_reduce_mean_and_broadcast(records):
    for rec in records:
        assert rec["mean_float"] == pytest.approx(1.5)
        assert rec["mean_dict"] == pytest.approx({"a": 0.5, "b": 1.0})
        torch.testing.assert_close(rec["mean_tensor"], torch.tensor([0.5, 5.0]))
        assert rec["broadcast"] == {"from": 0}
        assert rec["any"] == [True, False]


def test_main_process_only_runs_once_and_shares_the_result(records):
    assert (records[0]["out"] / "main_only.txt").read_text() == "0\n"
    assert [r["main_only"] for r in records] == [0, 0]


def test_a_failure_on_rank0_reaches_the_others(records):
    assert records[0]["main_failure"] == "ValueError: cannot create the run folder"
    assert records[1]["main_failure"].startswith("DistributedError: rank 1/2: rank 0 failed: ValueError")


def _assert_same_step(record: dict, reference: dict) -> None:
    assert record["model"] == "Sequential"  # unwrap_model undid the DDP wrapper
    torch.testing.assert_close(record["state"], reference["state"], rtol=1e-5, atol=1e-6)
    for grads, ref in zip(record["grads"], reference["grads"], strict=True):
        torch.testing.assert_close(grads, ref, rtol=1e-5, atol=1e-6)


def test_ddp_with_sync_bn_equals_one_process_on_the_combined_batch(records, single_process):
    """The issue's central check: gradients are averaged over processes and BN sees the global batch, so
    two steps on two half batches equal two single-process steps on the whole batches (SGD: no scale
    invariance to hide a wrong factor); weights and buffers are identical across ranks."""
    for rec in records:
        _assert_same_step(rec["ddp_sync"], single_process)
        # the per-rank loss is the mean over half a batch; their mean is the single-process loss
    for step in range(W.STEPS):
        mean_loss = (records[0]["ddp_sync"]["losses"][step] + records[1]["ddp_sync"]["losses"][step]) / 2
        torch.testing.assert_close(mean_loss, single_process["losses"][step], rtol=1e-5, atol=1e-6)
    for key, value in records[0]["ddp_sync"]["state"].items():
        assert torch.equal(value, records[1]["ddp_sync"]["state"][key]), key


def test_ddp_starts_from_rank0_weights_whatever_the_seed(records, single_process):
    for rec in records:  # each rank built its model with a different seed; DDP broadcast rank 0's
        _assert_same_step(rec["ddp_init_seed"], single_process)


def test_without_sync_bn_the_step_differs_but_weights_still_agree(records, single_process):
    """Per-process BN statistics change the maths (this is what makes the check above meaningful)."""
    state0, state1 = records[0]["ddp_local_bn"]["state"], records[1]["ddp_local_bn"]["state"]
    assert not torch.allclose(state0["0.weight"], single_process["state"]["0.weight"], atol=1e-4)
    for key, value in state0.items():
        if "running" not in key:  # running statistics are per process without sync BN
            assert torch.equal(value, state1[key]), key


def test_find_unused_parameters_averages_the_used_branch(records):
    torch.manual_seed(0)
    net = W.TwoBranch()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(2):  # the mean of the two ranks' gradients = the gradient at the mean input (linear)
        opt.zero_grad()
        net(torch.full((2, 4), 1.5)).sum().backward()
        opt.step()
    for rec in records:
        torch.testing.assert_close(rec["unused_branch"], net.state_dict())


def test_a_dead_peer_fails_the_job_with_an_error(tmp_path):
    """Rank 0 gets an error naming a dead peer (not a timeout: the job's timeout is 600 s, far beyond the
    test's guard), and torchrun names the process that died. torchrun looks at its workers every 10 s here
    (0.1 s by default): rank 0 must see the error itself, before torchrun stops it because rank 1 died."""
    proc = run_torchrun("dead_peer", tmp_path, timeout_s=600, monitor_interval_s=10)
    assert proc.returncode != 0
    message = (tmp_path / "rank0_error.txt").read_text().split("\n", 1)[1]
    assert message.startswith("rank 0/2: all_reduce failed; a peer process probably died")
    # gloo saw the peer's connection go, rather than waiting for it
    assert "Connection closed by peer" in message or "Connection reset by peer" in message
    assert "exitcode  : 3" in proc.stderr


def test_a_stuck_peer_times_out_and_is_named(tmp_path):
    proc = run_torchrun("stuck_peer", tmp_path, timeout_s=2)
    assert proc.returncode != 0
    message = (tmp_path / "rank0_error.txt").read_text().split("\n", 1)[1]
    assert "barrier failed" in message and "did not answer within 2s" in message
    assert "Ranks 1 failed to pass monitoredBarrier" in message


def test_reference_net_has_batchnorm():
    """Guard: the equivalence check is only meaningful if the model really has BatchNorm layers."""
    assert sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in W.make_net().modules()) == 2
