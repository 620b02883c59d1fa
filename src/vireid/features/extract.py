"""Batched feature extraction: a model's test-time feature for every image a protocol needs.

``extract_features(model, records, root, data_cfg)`` -> ``FeatureSet`` (paths relative to the dataset
root, float32 N x D, not normalised). With ``flip=True`` each feature is the average of the image's and
its mirror's (test-time augmentation). ``extract_protocol`` does the whole job for a checkpoint: load
the model it holds, list the protocol's images (SYSU-MM01 test set, or one RegDB trial), extract.
Under torchrun each process extracts its share and the shares are gathered on every process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vireid.data.config import DataConfig
from vireid.data.records import ImageRecord
from vireid.datasets import get_dataset
from vireid.features.store import FeatureSet, save_features
from vireid.models.loading import load_model
from vireid.utils.device import autocast_settings, resolve_device


@torch.no_grad()
def extract_features(
    model: nn.Module,
    records: Sequence[ImageRecord],
    root: str | os.PathLike,
    data_cfg: DataConfig,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 128,
    flip: bool = False,
    amp: bool = False,
    progress: bool = False,
    ctx: Any = None,
) -> FeatureSet:
    """The model's ``extract`` feature of each record, in order (eval mode; restores the model's mode).

    ``ctx`` (a ``DistContext`` with several processes): each extracts a contiguous share, then
    ``gather_features`` assembles the whole set on every process.
    """
    from vireid.data.loaders import build_eval_loader

    device = resolve_device(device)
    records = list(records)
    share = range(len(records))
    if ctx is not None and getattr(ctx, "world_size", 1) > 1:
        from vireid.training.distributed import shard_indices

        share = shard_indices(len(records), ctx)
    mine = [records[i] for i in share]
    was_training = model.training
    model.eval()
    use_amp, dtype = autocast_settings(device, amp)
    chunks: list[torch.Tensor] = []
    loader = build_eval_loader(mine, root, data_cfg, batch_size)
    if progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc="extract", leave=False, unit="batch")
    try:
        for batch in loader:
            images = batch["images"].to(device, non_blocking=True)
            modality = batch["modality"].to(device)
            with torch.autocast(device_type=device.type, dtype=dtype) if use_amp else nullcontext():
                feats = model.extract(images, modality).float()
                if flip:
                    feats = (feats + model.extract(torch.flip(images, dims=[3]), modality).float()) / 2
            chunks.append(feats.cpu())
    finally:
        model.train(was_training)
    feats = torch.cat(chunks) if chunks else torch.zeros(0, 0)
    if ctx is not None and getattr(ctx, "world_size", 1) > 1:
        from vireid.training.distributed import gather_features

        feats = gather_features(feats.to(ctx.device), list(share), len(records), ctx).cpu()
    if feats.numel() == 0 and len(records) == 0:
        feats = torch.zeros(0, 1)
    return FeatureSet([r.path for r in records], feats.numpy(), source="extracted features")


def protocol_records(dataset: str, root: str | os.PathLike, trial: int = 1) -> list[ImageRecord]:
    """Every image the test protocol of ``dataset`` needs (SYSU-MM01 test set; RegDB trial ``trial``)."""
    return get_dataset(dataset, "--dataset").test_records(root, trial)


def extract_protocol(
    checkpoint: str | os.PathLike,
    dataset: str,
    root: str | os.PathLike,
    *,
    trial: int = 1,
    flip: bool | None = None,
    device: torch.device | str = "auto",
    batch_size: int | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = False,
    ctx: Any = None,
    format: str = "auto",
) -> FeatureSet:
    """Features of the protocol's images from a checkpoint; ``flip``/``batch_size`` default to its config.

    ``format``: the checkpoint's format (``auto``, ``vireid``, ``released``; see ``load_model``). With
    ``out`` the set is also written (atomically, rank 0 only) as a features ``.npz``.
    """
    records = protocol_records(dataset, root, trial)  # a bad root fails here, before a model is loaded
    dev = resolve_device(device) if ctx is None else ctx.device
    model, config, _ = load_model(checkpoint, dev, format=format)
    fs = extract_features(
        model, records, root, config.data, device=dev,
        batch_size=batch_size or config.test.batch_size,
        flip=config.test.flip if flip is None else flip, amp=config.train.amp, progress=progress, ctx=ctx,
    )
    if out is not None and (ctx is None or ctx.is_main):
        save_features(out, fs.paths, fs.feats)
        fs.source = str(Path(out))
    return fs
