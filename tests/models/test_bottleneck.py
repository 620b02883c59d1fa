"""Bottlenecks: reparameterised sampling in training only."""

import torch

from vireid.models.bottleneck import DeterministicBottleneck, GaussianBottleneck


def test_gaussian_bottleneck_samples_only_in_training():
    b = GaussianBottleneck(12, [16], 4, std_offset=0.0)
    v = torch.randn(6, 12)
    b.eval()
    z1, mu1, std1 = b(v)
    z2, _, _ = b(v)
    assert torch.equal(z1, mu1) and torch.equal(z1, z2)  # eval: deterministic, the mean
    assert (std1 > 0).all() and z1.shape == (6, 4)
    b.train()
    za, mua, stda = b(v)
    zb, _, _ = b(v)
    assert not torch.allclose(za, zb)  # train: stochastic
    g = torch.Generator().manual_seed(7)
    z, mu, std = b(v, generator=g)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(z, mu + std * eps)  # reparameterisation: z = mu + std * eps
    z.sum().backward()
    assert b.mlp[0].weight.grad is not None  # gradients flow through the sample


def test_deterministic_bottleneck_is_the_released_mlp():
    b = DeterministicBottleneck(12, [10, 5], 4)
    b.train()
    v = torch.randn(6, 12)
    z, mu, std = b(v)
    assert z.shape == (6, 8) and std is None and torch.equal(z, mu)
    assert [m.out_features for m in b.mlp if isinstance(m, torch.nn.Linear)] == [10, 5, 8]
