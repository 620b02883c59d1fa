"""Encoders: backbone stages (optionally shared between encoders), and the observation head
(global average pooling, BN neck, identity classifier)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vireid.models.backbones import build_stages, stem_length
from vireid.models.config import ModelConfig


class ShallowCAM(nn.Module):
    """The released code's channel attention (DANet / ABD-Net CAM), inserted before layer2/3/4.

    ``A = softmax(max(E) - E)`` with ``E = X X^T`` over channels (X = the C x HW map);
    ``out = gamma * (A X) + x``, gamma initialised to 0 so the module starts as the identity.
    """

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q = x.reshape(b, c, h * w)
        energy = q @ q.transpose(1, 2)
        energy = energy.amax(dim=-1, keepdim=True) - energy
        attention = torch.softmax(energy, dim=-1)
        return self.gamma * (attention @ q).reshape(b, c, h, w) + x


def build_encoder_stages(cfg: ModelConfig, split_stem: bool = False) -> tuple[list[nn.Module], int]:
    """One encoder's four stages (a ShallowCAM in front of stages 2-4 if configured) and its channels.

    ``split_stem``: five stages instead, the first cut into the stem and the rest (ResNet: layer1), so
    that a two-stream network can keep only the stem modality-specific (AGW)."""
    stages, channels = build_stages(cfg.backbone, cfg.pretrained, cfg.weights_dir, cfg.last_stride, cfg.stem_pool)
    if cfg.shallow_cam:
        stages = [stages[0]] + [nn.Sequential(ShallowCAM(), s) for s in stages[1:]]
    if split_stem:
        k = stem_length(stages[0])
        stages = [stages[0][:k], stages[0][k:], *stages[1:]]
    return stages, channels


def build_encoders(
    cfg: ModelConfig, names: Sequence[str], shared_deep: int, split_stem: bool = False
) -> tuple[nn.ModuleDict, int]:
    """Encoders ``names`` (each an nn.ModuleList of 4 stages, 5 with ``split_stem``) whose last
    ``shared_deep`` stages are the very same modules (shared weights); the others are independent copies."""
    first, channels = build_encoder_stages(cfg, split_stem)
    encoders = {names[0]: nn.ModuleList(first)}
    for name in names[1:]:
        own, _ = build_encoder_stages(cfg, split_stem)
        n_own = len(own) - shared_deep
        encoders[name] = nn.ModuleList(own[:n_own] + first[n_own:])
    return nn.ModuleDict(encoders), channels


def run_encoders(
    encoders: nn.ModuleDict, jobs: Sequence[tuple[str, Tensor]], merge: bool = True
) -> list[Tensor]:
    """Feature maps of ``jobs`` = [(encoder name, images), ...], stage by stage.

    ``merge``: jobs whose current stage is the same module (shared stages, or one encoder given two
    jobs) run as one concatenated batch, so they cost one call and their BatchNorm sees every image that
    goes through them. ``merge=False`` runs every job in its own call (the released code's separate
    encoder calls: in training mode each call's BatchNorm normalises with its own batch statistics).
    """
    if not merge:
        outs = []
        for name, x in jobs:
            for stage in encoders[name]:
                x = stage(x)
            outs.append(x)
        return outs
    xs = [x for _, x in jobs]
    n_stages = len(encoders[jobs[0][0]])
    for s in range(n_stages):
        groups: dict[int, tuple[nn.Module, list[int]]] = {}
        for j, (name, _) in enumerate(jobs):
            stage = encoders[name][s]
            groups.setdefault(id(stage), (stage, []))[1].append(j)
        for stage, members in groups.values():
            if len(members) == 1:
                xs[members[0]] = stage(xs[members[0]])
                continue
            out = stage(torch.cat([xs[j] for j in members]))
            for j, part in zip(members, out.split([xs[j].shape[0] for j in members]), strict=True):
                xs[j] = part
    return xs


def init_classifier(linear: nn.Linear, std: float) -> None:
    """Released code: classifier weights ~ N(0, std), bias 0."""
    nn.init.normal_(linear.weight, std=std)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


class ObservationHead(nn.Module):
    """Global average pooling -> BN neck (bias frozen at 0, weight 1; BNNeck) -> identity classifier.

    Returns the pooled feature ``g``, the post-BN observation ``v`` and the logits of ``v``.
    """

    def __init__(self, channels: int, num_classes: int, classifier_std: float = 0.001) -> None:
        super().__init__()
        self.neck = nn.BatchNorm1d(channels)
        self.neck.bias.requires_grad_(False)
        self.classifier = nn.Linear(channels, num_classes)
        init_classifier(self.classifier, classifier_std)

    def forward(self, fmap: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        g = fmap.mean(dim=(2, 3))
        v = self.neck(g)
        return g, v, self.classifier(v)
