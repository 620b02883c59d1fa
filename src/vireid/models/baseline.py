"""The two-stream baseline of the field (AGW, Ye et al. 2021): a modality-specific first part, the deeper
stages shared, global average pooling, a BN neck and an identity classifier; trained with cross-entropy
and a triplet loss.

``model.split`` says where the two streams join: ``stem`` (AGW: only conv1, bn1, relu, maxpool are
modality-specific, layer1-4 shared; the paper recipes use it, so that the baseline is the one published
VI-ReID numbers are measured against) or ``layer1`` (conv1..layer1 modality-specific, layer2-4 shared;
this project's first baseline, the default, for compatibility with its checkpoints).

Training output: ``B/g`` (pooled feature), ``B/v`` (post-BN), ``B/v_logits`` and ``B/rows`` (the
batch positions, in batch order).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vireid.models.config import ModelConfig
from vireid.models.encoder import ObservationHead, build_encoders, run_encoders
from vireid.models.vd import check_modality, modality_rows


class TwoStreamBaseline(nn.Module):
    """The ``baseline`` model."""

    def __init__(self, cfg: ModelConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        stem = cfg.split == "stem"
        # stem: 5 stages (stem | layer1 | layer2 | layer3 | layer4), 4 shared; layer1: 4 stages, 3 shared
        self.encoders, channels = build_encoders(cfg, ("V", "I"), 4 if stem else 3, split_stem=stem)
        self.head = ObservationHead(channels, num_classes, cfg.classifier_std)
        self.feature_dim = channels

    def _features(self, images: Tensor, modality: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        vis, ir = modality_rows(modality)
        parts = [(name, rows) for name, rows in (("V", vis), ("I", ir)) if rows.numel() > 0]
        fmaps = run_encoders(self.encoders, [(name, images.index_select(0, rows)) for name, rows in parts])
        fmap = fmaps[0].new_empty(images.shape[0], *fmaps[0].shape[1:])
        for (_, rows), part in zip(parts, fmaps, strict=True):
            fmap.index_copy_(0, rows, part)
        return self.head(fmap)

    def forward(self, images: Tensor, modality: Tensor) -> dict[str, Tensor]:
        """Pooled feature, post-BN observation and logits of every image, in batch order."""
        modality = check_modality(images, modality)
        g, v, logits = self._features(images, modality)
        rows = torch.arange(images.shape[0], device=images.device)
        return {"B/g": g, "B/v": v, "B/v_logits": logits, "B/rows": rows}

    @torch.no_grad()
    def extract(self, images: Tensor, modality: Tensor) -> Tensor:
        """Post-BN observation (``v_shared``) or pooled feature (``pooled``), ``[B, D]``, not normalised."""
        modality = check_modality(images, modality)
        if images.shape[0] == 0:
            return images.new_zeros(0, self.feature_dim)
        g, v, _ = self._features(images, modality)
        return g if self.cfg.feature == "pooled" else v
