"""The batch contract: the k-th visible image of a batch is paired with its k-th infrared image."""

from __future__ import annotations

from torch import Tensor

from vireid.data.records import INFRARED, VISIBLE


def modality_pairs(labels: Tensor, modality: Tensor) -> tuple[Tensor, Tensor]:
    """Batch positions ``(vis_idx, ir_idx)`` of the visible/infrared pairs: ``vis_idx[k]`` is the k-th
    visible image, ``ir_idx[k]`` the k-th infrared one. ValueError if the counts or a pair's labels differ
    (the batch was not built by the cross-modal sampler)."""
    vis_idx = (modality == VISIBLE).nonzero().squeeze(1)
    ir_idx = (modality == INFRARED).nonzero().squeeze(1)
    if vis_idx.numel() != ir_idx.numel():
        raise ValueError(
            f"cross-modal pairs: the batch has {vis_idx.numel()} visible and {ir_idx.numel()} infrared images"
        )
    bad = (labels[vis_idx] != labels[ir_idx]).nonzero()
    if bad.numel():
        k = int(bad[0, 0])
        raise ValueError(
            f"cross-modal pairs: visible image {k} (label {int(labels[vis_idx[k]])}) and infrared image {k} "
            f"(label {int(labels[ir_idx[k]])}) differ; batches must be P blocks of K visible + K infrared"
        )
    return vis_idx, ir_idx
