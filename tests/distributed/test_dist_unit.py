"""The distributed layer in one process: context set-up, argument checks, sharding, single-process fallbacks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vireid.errors import ConfigError
from vireid.training import distributed as D

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def clean_env(monkeypatch):
    for name in LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_single_process_context(clean_env):
    ctx = D.init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.local_rank) == (0, 1, 0)
    assert ctx.device == torch.device("cpu")
    assert ctx.is_main and not ctx.is_distributed and ctx.backend is None
    assert not torch.distributed.is_initialized()
    D.cleanup(ctx)  # a no-op without a group


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback of 'auto'")
def test_auto_device_is_cpu_without_cuda(clean_env):
    assert D.init_distributed("auto").device == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_config_error(clean_env):
    with pytest.raises(ConfigError, match="no CUDA device"):
        D.init_distributed("cuda")


@pytest.mark.parametrize(
    ("env", "device", "timeout", "message"),
    [
        ({}, "not-a-device", 10.0, "not a torch device"),
        ({}, "cpu", 0.0, "dist_timeout_s"),
        ({"RANK": "0", "WORLD_SIZE": "2"}, "cpu", 10.0, "MASTER_ADDR"),
        (
            {"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"},
            "cpu",
            10.0,
            "RANK=2",
        ),
        ({"RANK": "zero", "WORLD_SIZE": "2"}, "cpu", 10.0, "RANK: expected an integer"),
    ],
)
def test_bad_launch_settings_are_one_line_config_errors(clean_env, env, device, timeout, message):
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(ConfigError, match=message) as info:
        D.init_distributed(device, timeout_s=timeout)
    assert "\n" not in str(info.value)


def test_torchrun_with_one_process_needs_no_group(clean_env):
    for name, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}.items():
        clean_env.setenv(name, value)
    ctx = D.init_distributed("cpu")
    assert ctx.world_size == 1 and ctx.is_main and not ctx.is_distributed
    assert not torch.distributed.is_initialized()


@pytest.mark.parametrize("world_size", [1, 2, 3, 5])
def test_shards_partition_the_range_in_order(world_size):
    for n in range(0, 23):
        shards = [D.shard_indices(n, D.DistContext(rank=r, world_size=world_size)) for r in range(world_size)]
        assert [i for s in shards for i in s] == list(range(n))  # disjoint, complete, in order
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 1


def test_gather_features_single_process_orders_by_index():
    ctx = D.DistContext()
    feats = torch.arange(12.0).reshape(4, 3)
    index = torch.tensor([2, 0, 3, 1])
    out = D.gather_features(feats, index, 4, ctx)
    assert torch.equal(out[index], feats)
    assert out.dtype == feats.dtype
    assert D.gather_features(torch.empty(0, 3), [], 0, ctx).shape == (0, 3)


@pytest.mark.parametrize(
    ("index", "total", "message"),
    [
        ([0, 1, 1], 3, "1 positions missing, 1 repeated"),
        ([0, 1], 3, "1 positions missing"),
        ([0, 5], 2, "outside"),
    ],
)
def test_gather_features_rejects_bad_coverage(index, total, message):
    with pytest.raises(ValueError, match=message):
        D.gather_features(torch.zeros(len(index), 2), index, total, D.DistContext())


def test_gather_features_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="3 features for 2 indices"):
        D.gather_features(torch.zeros(3, 2), [0, 1], 3, D.DistContext())


def test_collectives_pass_through_in_one_process():
    ctx = D.DistContext()
    assert D.all_reduce_mean(2.5, ctx) == 2.5
    assert D.all_reduce_mean({"loss": torch.tensor(1.5, requires_grad=True), "acc": 0.25}, ctx) == {
        "loss": 1.5,
        "acc": 0.25,
    }
    t = torch.tensor([1.0, 3.0], requires_grad=True)
    mean = D.all_reduce_mean(t, ctx)
    assert torch.equal(mean, t.detach()) and not mean.requires_grad
    assert D.broadcast_object({"a": 1}, ctx) == {"a": 1}
    assert D.main_process_only(ctx, lambda x: x + 1, 1) == 2
    assert D.any_process(True, ctx) is True and D.any_process(False, ctx) is False
    D.barrier(ctx)


def _bn_net() -> nn.Module:
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, 6), nn.BatchNorm1d(6)
    )
    net[4].bias.requires_grad_(False)  # a BNNeck-style frozen bias must stay frozen
    return net


def test_wrap_model_single_process_keeps_the_model():
    net = _bn_net()
    wrapped = D.wrap_model(net, D.DistContext(), sync_bn=True)
    assert wrapped is net  # no DDP, and no SyncBatchNorm conversion with one process
    assert isinstance(net[1], nn.BatchNorm2d)
    assert D.unwrap_model(wrapped) is net


def test_portable_sync_bn_is_batchnorm_in_one_process_and_keeps_checkpoints():
    net = _bn_net()
    x = torch.randn(5, 3, 4, 4)
    net.train()
    net(x)  # move the running statistics away from their defaults
    reference = {k: v.clone() for k, v in net.state_dict().items()}
    converted = D.convert_sync_batchnorm(_bn_net(), D.DistContext())
    converted.load_state_dict(reference)
    assert isinstance(converted[1], D.PortableSyncBatchNorm) and isinstance(
        converted[4], D.PortableSyncBatchNorm
    )
    assert not converted[4].bias.requires_grad
    assert converted.state_dict().keys() == reference.keys()
    for mode in ("train", "eval"):
        getattr(net, mode)()
        getattr(converted, mode)()
        torch.testing.assert_close(converted(x), net(x))
    torch.testing.assert_close(converted.state_dict(), net.state_dict())
    plain = _bn_net()
    plain.load_state_dict(converted.state_dict())  # a checkpoint trained with sync BN loads without it


def test_convert_keeps_weights_of_a_trained_model():
    net = _bn_net()
    with torch.no_grad():
        net[1].weight.fill_(2.0)
        net[1].running_var.fill_(3.0)
    weight = net[1].weight
    converted = D.convert_sync_batchnorm(net, D.DistContext())
    assert converted[1].weight is weight  # the same Parameter: an optimiser built before still updates it
    assert torch.equal(converted[1].weight, torch.full((4,), 2.0))
    assert torch.equal(converted[1].running_var, torch.full((4,), 3.0))


def test_portable_sync_bn_rejects_1d_input():
    with pytest.raises(ValueError, match="at least 2D"):
        D.PortableSyncBatchNorm(3)(torch.zeros(3))
