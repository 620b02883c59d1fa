"""Information bottlenecks mapping an observation v to a representation z, and the classifier on z.

- ``GaussianBottleneck`` (paper): an MLP gives the mean and a positive standard deviation
  (softplus) of q(z|v) = N(mu, diag(std^2)); ``z = mu + std * eps`` (reparameterisation) in training
  mode, ``z = mu`` in eval mode.
- ``DeterministicBottleneck`` (released code): the same kind of MLP whose whole output is z; no sampling,
  no std.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vireid.models.encoder import init_classifier


def _mlp(in_dim: int, hidden: list[int], out_dim: int) -> nn.Sequential:
    """Linear -> BN -> ReLU per hidden layer, then a Linear (released ChannelCompress; Kaiming fan-out
    init for the Linear layers, BN weights ~ N(1, 0.02))."""
    layers: list[nn.Module] = []
    dim = in_dim
    for h in hidden:
        layers += [nn.Linear(dim, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
        dim = h
    layers.append(nn.Linear(dim, out_dim))
    for m in layers:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return nn.Sequential(*layers)


class GaussianBottleneck(nn.Module):
    """q(z|v) = N(mu(v), diag(std(v)^2)) with ``std = softplus(s - std_offset) + 1e-6``.

    forward(v) -> (z, mu, std): z sampled by reparameterisation in training mode, z = mu in eval mode.
    ``generator`` (optional) makes the sampling reproducible.
    """

    def __init__(self, in_dim: int, hidden: list[int], z_dim: int, std_offset: float = 5.0) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.out_dim = z_dim
        self.std_offset = std_offset
        self.mlp = _mlp(in_dim, hidden, 2 * z_dim)

    def forward(self, v: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        mu, s = self.mlp(v).split(self.z_dim, dim=1)
        std = F.softplus(s - self.std_offset) + 1e-6
        if not self.training:
            return mu, mu, std
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + std * eps, mu, std


class DeterministicBottleneck(nn.Module):
    """The released code's "VIB": z = MLP(v), ``2 * z_dim`` wide (2048 -> 1000 -> 500 -> 512 there).

    forward(v) -> (z, z, None): the mean is z itself and there is no std.
    """

    def __init__(self, in_dim: int, hidden: list[int], z_dim: int) -> None:
        super().__init__()
        self.out_dim = 2 * z_dim
        self.mlp = _mlp(in_dim, hidden, self.out_dim)

    def forward(self, v: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, None]:
        z = self.mlp(v)
        return z, z, None


def build_z_classifier(kind: str, z_dim: int, num_classes: int, std: float = 0.001) -> nn.Module:
    """Classifier on z: ``linear``, or the released ``mlp`` (z -> 256 -> BN -> LeakyReLU(0.1) ->
    Dropout(0.5) -> C, Linear weights ~ N(0, std))."""
    if kind == "linear":
        head = nn.Linear(z_dim, num_classes)
        init_classifier(head, std)
        return head
    first, last = nn.Linear(z_dim, 256), nn.Linear(256, num_classes)
    init_classifier(first, std)
    init_classifier(last, std)
    return nn.Sequential(first, nn.BatchNorm1d(256), nn.LeakyReLU(0.1), nn.Dropout(0.5), last)
