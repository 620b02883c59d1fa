"""Variational Distillation network (Tian et al., CVPR 2021, Fig. 3): encoders E_V, E_I, E_S, each with
an observation head (BN neck + classifier) and a bottleneck B_V, B_I, B_S with a classifier on z.

Routing ``paper``: E_V sees the visible images, E_I the infrared images, E_S every image.
Routing ``released``: E_V sees every image, E_I the greyscale of every image, E_S both versions
(4 backbone passes per image), as the released code does.

Training output (``forward``): for each branch b in ``V``, ``I``, ``S`` the tensors ``b/g`` (pooled),
``b/v`` (post-BN observation), ``b/v_logits``, ``b/z``, ``b/mu``, ``b/z_logits``, ``b/std`` (Gaussian
bottleneck only) and ``b/rows``: the batch position of each row. Paper routing: V rows are the visible
images, I rows the infrared ones, S rows the whole batch. Released routing: V and I rows are the whole
batch, S has 2B rows (the raw images, then their greyscale) and ``S/call`` says which of the two
separate calls each row came from (0 raw, 1 grey). A branch with no rows is left out.

Released routing runs every encoder call on its own, as the release does (newresnet.py:73-93: E_V(x),
E_S(grey), E_S(x), E_I(grey), in that order): in training mode each call's BatchNorm layers (backbone,
BN neck, bottleneck, z-classifier) normalise with that call's batch statistics only, and the shared
branch's running statistics are updated by the greyscale call first, then by the raw one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vireid.data.records import INFRARED, VISIBLE
from vireid.models.bottleneck import DeterministicBottleneck, GaussianBottleneck, build_z_classifier
from vireid.models.config import ModelConfig
from vireid.models.encoder import ObservationHead, build_encoders, run_encoders

BRANCHES = ("V", "I", "S")
# test-time features (model.test_feature), documented in vireid.models.config
VD_FEATURES = ("z_shared", "v_shared", "z_specific", "v_specific", "z_concat", "v_concat", "released_concat")
# Released to_edge(): luma weights applied to the already-normalised tensor.
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)


def released_greyscale(images: Tensor) -> Tensor:
    """0.2989 R + 0.587 G + 0.114 B of the (ImageNet-normalised) batch, copied to 3 channels (released
    code's ``to_edge``, vectorised)."""
    w = images.new_tensor(GREY_WEIGHTS).view(1, 3, 1, 1)
    return (images * w).sum(dim=1, keepdim=True).expand(-1, 3, -1, -1).contiguous()


def vd_modality_dependent(cfg: ModelConfig) -> bool:
    """Whether the test feature depends on the image's modality: under paper routing the specific branch
    is E_V for a visible image and E_I for an infrared one; released routing sends every image through all."""
    if cfg.routing == "released" or cfg.feature == "released_concat":
        return False
    return not cfg.feature.endswith("_shared")


def check_modality(images: Tensor, modality: Tensor) -> Tensor:
    """The modality vector as int64 on the images' device; ValueError if its shape or values are wrong."""
    modality = torch.as_tensor(modality, device=images.device).long()
    if modality.shape != (images.shape[0],):
        raise ValueError(f"modality must have shape [{images.shape[0]}], got {tuple(modality.shape)}")
    if modality.numel() and not bool(((modality == VISIBLE) | (modality == INFRARED)).all()):
        raise ValueError("modality values must be 0 (visible) or 1 (infrared)")
    return modality


def modality_rows(modality: Tensor) -> tuple[Tensor, Tensor]:
    """Batch positions of the visible and of the infrared images."""
    return (modality == VISIBLE).nonzero().squeeze(1), (modality == INFRARED).nonzero().squeeze(1)


class VariationalDistillationNet(nn.Module):
    """The ``vd`` model; also the architecture of ``ib`` (see ``vireid.models.ib``)."""

    def __init__(self, cfg: ModelConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.routing = cfg.routing
        self.encoders, channels = build_encoders(cfg, BRANCHES, cfg.shared_stages)
        self.heads = nn.ModuleDict({b: ObservationHead(channels, num_classes, cfg.classifier_std) for b in BRANCHES})
        if cfg.bottleneck == "gaussian":
            make = lambda: GaussianBottleneck(channels, list(cfg.bottleneck_hidden), cfg.z_dim, cfg.std_offset)  # noqa: E731
        else:
            make = lambda: DeterministicBottleneck(channels, list(cfg.bottleneck_hidden), cfg.z_dim)  # noqa: E731
        self.bottlenecks = nn.ModuleDict({b: make() for b in BRANCHES})
        z_out = self.bottlenecks["S"].out_dim
        self.z_classifiers = nn.ModuleDict(
            {b: build_z_classifier(cfg.z_classifier, z_out, num_classes, cfg.classifier_std) for b in BRANCHES}
        )
        self.obs_dim, self.z_out_dim = channels, z_out
        self.feature_dim = self._feature_dim(cfg.feature)

    def _feature_dim(self, feature: str) -> int:
        per = self.z_out_dim if feature.startswith("z_") else self.obs_dim
        if feature == "released_concat":
            return 4 * self.obs_dim
        parts = 2 if feature.endswith("_concat") else 1
        return parts * per * (2 if self.routing == "released" else 1)

    # ---- training ----------------------------------------------------------------------------------
    def _branch(self, name: str, fmap: Tensor) -> dict[str, Tensor]:
        g, v, v_logits = self.heads[name](fmap)
        z, mu, std = self.bottlenecks[name](v if self.cfg.bottleneck_input == "neck" else g)
        out = {"g": g, "v": v, "v_logits": v_logits, "z": z, "mu": mu, "z_logits": self.z_classifiers[name](z)}
        if std is not None:
            out["std"] = std
        return out

    @property
    def _merge_calls(self) -> bool:
        """Whether jobs through the same (shared) module run as one batch; released routing never does."""
        return self.routing != "released"

    def _training_jobs(self, images: Tensor, modality: Tensor) -> list[tuple[str, Tensor, Tensor, int]]:
        """(branch, images, batch rows, call slot) in execution order; a branch's calls are assembled by
        slot (released shared branch: slot 0 raw, slot 1 grey)."""
        every = torch.arange(images.shape[0], device=images.device)
        if self.routing == "released":
            grey = released_greyscale(images)
            return [("V", images, every, 0), ("S", grey, every, 1), ("S", images, every, 0), ("I", grey, every, 0)]
        vis, ir = modality_rows(modality)
        jobs = [("V", images.index_select(0, vis), vis, 0), ("I", images.index_select(0, ir), ir, 0),
                ("S", images, every, 0)]
        return [job for job in jobs if job[2].numel() > 0]

    def forward(self, images: Tensor, modality: Tensor) -> dict[str, Tensor]:
        """Every branch's observations, representations and logits (keys ``<branch>/<name>``)."""
        modality = check_modality(images, modality)
        jobs = self._training_jobs(images, modality)
        fmaps = run_encoders(self.encoders, [(name, x) for name, x, _, _ in jobs], merge=self._merge_calls)
        calls: dict[str, dict[int, dict[str, Tensor]]] = {}
        for (name, _, rows, slot), fmap in zip(jobs, fmaps, strict=True):
            calls.setdefault(name, {})[slot] = {**self._branch(name, fmap), "rows": rows}
        out: dict[str, Tensor] = {}
        for name in BRANCHES:
            if name not in calls:
                continue
            parts = [calls[name][slot] for slot in sorted(calls[name])]
            for key in parts[0]:
                out[f"{name}/{key}"] = parts[0][key] if len(parts) == 1 else torch.cat([p[key] for p in parts])
            if len(parts) > 1:
                out[f"{name}/call"] = torch.cat([torch.full_like(p["rows"], i) for i, p in enumerate(parts)])
        return out

    # ---- test-time features ------------------------------------------------------------------------
    def _embed(self, jobs: list[tuple[str, Tensor]], kind: str) -> list[Tensor]:
        """v (post-BN observation) or z (bottleneck mean) of each (encoder, images) job."""
        fmaps = run_encoders(self.encoders, jobs, merge=self._merge_calls)
        feats = []
        for (name, _), fmap in zip(jobs, fmaps, strict=True):
            g, v, _ = self.heads[name](fmap)
            if kind == "v":
                feats.append(v)
            else:
                feats.append(self.bottlenecks[name](v if self.cfg.bottleneck_input == "neck" else g)[1])
        return feats

    def _paper_specific(self, images: Tensor, modality: Tensor, kind: str, with_shared: bool) -> list[Tensor]:
        """Paper routing: [specific] or [specific, shared], the specific part through each image's own
        modality's encoder (rows reassembled in batch order)."""
        vis, ir = modality_rows(modality)
        parts = [(name, rows) for name, rows in (("V", vis), ("I", ir)) if rows.numel() > 0]
        jobs = [(name, images.index_select(0, rows)) for name, rows in parts]
        feats = self._embed(jobs + ([("S", images)] if with_shared else []), kind)
        specific = feats[0].new_empty(images.shape[0], feats[0].shape[1])
        for (_, rows), feat in zip(parts, feats, strict=False):
            specific.index_copy_(0, rows, feat)
        return [specific, feats[-1]] if with_shared else [specific]

    @torch.no_grad()
    def extract(self, images: Tensor, modality: Tensor) -> Tensor:
        """The configured test-time feature ``[B, D]`` (call in eval mode; not L2-normalised).

        Any mix of modalities works: under paper routing each image goes through its own modality's
        encoder (the specific part of the feature is then modality-dependent).
        """
        modality = check_modality(images, modality)
        feature = self.cfg.feature
        if images.shape[0] == 0:
            return images.new_zeros(0, self.feature_dim)
        if feature == "released_concat":
            grey = released_greyscale(images)
            return torch.cat(self._embed([("I", grey), ("S", grey), ("V", images), ("S", images)], "v"), dim=1)
        kind, part = feature.split("_")
        if self.routing == "released":
            grey = released_greyscale(images)
            if part == "shared":
                return torch.cat(self._embed([("S", grey), ("S", images)], kind), dim=1)
            if part == "specific":
                return torch.cat(self._embed([("I", grey), ("V", images)], kind), dim=1)
            return torch.cat(self._embed([("I", grey), ("V", images), ("S", grey), ("S", images)], kind), dim=1)
        if part == "shared":
            return self._embed([("S", images)], kind)[0]
        return torch.cat(self._paper_specific(images, modality, kind, with_shared=part == "concat"), dim=1)
