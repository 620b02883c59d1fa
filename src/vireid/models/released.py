"""The authors' released checkpoint format: recognising it, and mapping its keys onto our ``released`` model.

The release (``shared/docs/released_code.md``) saves ``torch.save({'model': state_dict, 'epoch': ...,
'best_top1': ...})`` of its ``ft_net``: three ``Baseline`` encoders ``IR_backbone``, ``RGB_backbone``,
``shared_backbone`` (a torchvision ResNet-50 ``base`` with last stride 1, channel attention
``cam_256/512/1024`` before layer2/3/4, a BN neck ``bottleneck`` and a ``classifier``) and three ``VIB``
heads ``IR_Bottleneck``, ``RGB_Bottleneck``, ``shared_Bottleneck`` (``bottleneck.model`` = the
2048-1000-500-512 MLP, ``classifier`` = 512-256-BN-LeakyReLU-Dropout-C). Keys carry a ``module.`` prefix
when the file was saved from the DataParallel wrapper itself. The ResNet's ImageNet ``fc`` is saved but
never used: it is ignored here.

Our equivalent is the ``vd`` model with ``routing: released`` (E_I = IR, E_V = RGB, E_S = shared), built
from the ``sysu_vd_released`` recipe; the class count, the z width and the MLP's hidden widths are read
from the tensors' shapes, so any class count loads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from vireid.config import Config, load_config
from vireid.errors import CheckpointError
from vireid.models.loading import load_model_state

log = logging.getLogger(__name__)

RELEASED_RECIPE = "sysu_vd_released"
# the release's module names and our branch names
BRANCH_NAMES = {"IR": "I", "RGB": "V", "shared": "S"}
_DP_PREFIX = "module."


def _prefix_pairs(rel: str, ours: str) -> list[tuple[str, str]]:
    """(release prefix, our prefix) for one branch. Our encoder stages: 0 = Sequential(conv1, bn1,
    relu, maxpool, layer1), 1..3 = Sequential(ShallowCAM, layer2..4); see ``models.encoder``."""
    b, e = f"{rel}_backbone.", f"encoders.{ours}."
    return [
        (f"{b}base.conv1.", f"{e}0.0."),
        (f"{b}base.bn1.", f"{e}0.1."),
        (f"{b}base.layer1.", f"{e}0.4."),
        (f"{b}cam_256._cam_module.", f"{e}1.0."),
        (f"{b}base.layer2.", f"{e}1.1."),
        (f"{b}cam_512._cam_module.", f"{e}2.0."),
        (f"{b}base.layer3.", f"{e}2.1."),
        (f"{b}cam_1024._cam_module.", f"{e}3.0."),
        (f"{b}base.layer4.", f"{e}3.1."),
        (f"{b}bottleneck.", f"heads.{ours}.neck."),
        (f"{b}classifier.0.", f"heads.{ours}.classifier."),
        (f"{rel}_Bottleneck.bottleneck.model.", f"bottlenecks.{ours}.mlp."),
        (f"{rel}_Bottleneck.classifier.", f"z_classifiers.{ours}."),
    ]


PREFIXES: list[tuple[str, str]] = [pair for rel, ours in BRANCH_NAMES.items() for pair in _prefix_pairs(rel, ours)]
# saved by the release, never used by it: the ResNet's ImageNet classifier
IGNORED_PREFIXES = tuple(f"{rel}_backbone.base.fc." for rel in BRANCH_NAMES)


def _swap_prefix(key: str, pairs: list[tuple[str, str]]) -> str | None:
    for old, new in pairs:
        if key.startswith(old):
            return new + key[len(old):]
    return None


def to_vireid_key(key: str) -> str | None:
    """Our parameter name of a release key (without ``module.``), or None if the release has no such key."""
    return _swap_prefix(key, PREFIXES)


def to_released_key(key: str) -> str | None:
    """The release's name of one of our parameters (inverse of ``to_vireid_key``)."""
    return _swap_prefix(key, [(ours, rel) for rel, ours in PREFIXES])


def _state_dict_of(obj: Any) -> Mapping[str, Any] | None:
    """The state dict inside a loaded release file (``{'model': sd, ...}``, or a bare state dict)."""
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj = obj["model"]
    if isinstance(obj, Mapping) and obj and all(isinstance(k, str) for k in obj):
        return obj
    return None


def strip_data_parallel(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Keys without the ``module.`` prefix of a DataParallel save (only a leading one: the release's
    channel-attention keys contain ``_cam_module.`` and keep it)."""
    return {(k[len(_DP_PREFIX):] if k.startswith(_DP_PREFIX) else k): v for k, v in state_dict.items()}


def is_released_checkpoint(obj: Any) -> bool:
    """Whether a loaded object is the release's checkpoint: a state dict (or ``{'model': state dict}``)
    with keys of the release's ``ft_net`` modules, with or without ``module.`` (whether every key fits
    is checked when the weights are read)."""
    sd = _state_dict_of(obj)
    if sd is None:
        return False
    roots = tuple(f"{rel}_{part}." for rel in BRANCH_NAMES for part in ("backbone", "Bottleneck"))
    return any(k.startswith(roots) for k in strip_data_parallel(sd))


def _shape(sd: Mapping[str, Any], key: str, source: str | os.PathLike) -> tuple[int, ...]:
    if key not in sd or not hasattr(sd[key], "shape"):
        raise CheckpointError(f"checkpoint {source}: released format, but it lacks {key}")
    return tuple(sd[key].shape)


def released_config(z_dim: int = 256, hidden: tuple[int, ...] = (1000, 500)) -> Config:
    """The configuration of the release's model: the ``sysu_vd_released`` recipe (released routing,
    ShallowCAM, deterministic bottleneck, mlp z-classifier, ResNet-50 with last stride 1, the 8192-d
    ``released_concat`` feature, the PIL test resize, no flip), no pretrained weights, fp32 extraction."""
    overrides = [
        "model.pretrained=none", f"model.z_dim={z_dim}", f"model.bottleneck_hidden=[{', '.join(map(str, hidden))}]",
        "train.amp=false",  # the release extracts in fp32
    ]
    return load_config(RELEASED_RECIPE, overrides)


def read_released_state(obj: Any, source: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Map a loaded release checkpoint onto our parameter names.

    Returns (our state dict, info) with info ``num_classes``, ``z_dim``, ``hidden``, ``ignored`` (the
    unused fc keys), ``data_parallel`` (whether the keys carried ``module.``). A key the mapping does not
    know is a CheckpointError naming the first few.
    """
    sd = _state_dict_of(obj)
    if sd is None:
        raise CheckpointError(f"checkpoint {source} is not in the released format (no state dict under 'model')")
    data_parallel = all(k.startswith(_DP_PREFIX) for k in sd)
    sd = strip_data_parallel(sd)
    ignored = [k for k in sd if k.startswith(IGNORED_PREFIXES)]
    mapped: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in sd.items():
        if key.startswith(IGNORED_PREFIXES):
            continue
        ours = to_vireid_key(key)
        if ours is None:
            unknown.append(key)
        else:
            mapped[ours] = value
    if unknown:
        more = f" (+{len(unknown) - 3} more)" if len(unknown) > 3 else ""
        raise CheckpointError(
            f"checkpoint {source}: released format with unexpected keys: {', '.join(unknown[:3])}{more}"
        )
    num_classes = _shape(sd, "shared_backbone.classifier.0.weight", source)[0]
    z_out, hidden_last = _shape(sd, "shared_Bottleneck.bottleneck.model.6.weight", source)
    hidden = (_shape(sd, "shared_Bottleneck.bottleneck.model.0.weight", source)[0], hidden_last)
    if z_out % 2:
        raise CheckpointError(f"checkpoint {source}: the bottleneck output ({z_out}) must be 2 x z_dim (even)")
    info = {"num_classes": int(num_classes), "z_dim": z_out // 2, "hidden": hidden, "ignored": ignored,
            "data_parallel": data_parallel}
    return mapped, info


def load_released_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Load mapped weights strictly; a mismatch is one line naming the first few keys by their release
    names (missing, unexpected, or of another shape)."""
    load_model_state(model, state_dict, source, key_name=lambda k: to_released_key(k) or k, what="the released model")


def model_from_released(obj: Any, source: str | os.PathLike) -> tuple[nn.Module, Config]:
    """Build our ``released`` model for a loaded release checkpoint and load its weights (CPU, eval)."""
    from vireid.models.build import build_model

    state_dict, info = read_released_state(obj, source)
    config = released_config(info["z_dim"], info["hidden"])
    model = build_model(config.model, info["num_classes"])
    load_released_weights(model, state_dict, source)
    if info["ignored"]:
        log.warning("%s: the release's unused ResNet fc (%s) ignored", source, ", ".join(info["ignored"]))
    return model.eval(), config
