"""torchvision backbones cut into four stages, with the last-stride option and local-only ImageNet weights.

Stages (ResNet): ``conv1..layer1``, ``layer2``, ``layer3``, ``layer4`` (output strides 4, 8, 16, 32).
MobileNetV3 is cut at the same output strides. Cutting into stages lets encoders share their deeper
stages and lets the two-stream baseline keep its first stage modality-specific.

Weights are never downloaded: ``pretrained: imagenet`` reads the file torchvision would download from
``weights_dir`` (if given) or torch's hub cache ``<torch.hub.get_dir()>/checkpoints``, and raises a
ConfigError naming the file and folder when it is not there.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
from torch import nn

from vireid.errors import ConfigError

# torchvision constructor and weights enum of each backbone
_ARCHS = {
    "resnet18": ("resnet18", "ResNet18_Weights"),
    "resnet34": ("resnet34", "ResNet34_Weights"),
    "resnet50": ("resnet50", "ResNet50_Weights"),
    "mobilenet_v3_small": ("mobilenet_v3_small", "MobileNet_V3_Small_Weights"),
    "mobilenet_v3_large": ("mobilenet_v3_large", "MobileNet_V3_Large_Weights"),
}
# CPU-sized backbones built from torchvision classes that have no published ImageNet weights:
# resnet10 = torchvision's ResNet with BasicBlock and one block per stage (about half of resnet18's compute).
_NO_WEIGHTS = {"resnet10": lambda: torchvision.models.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1])}
# Small VGG-style networks for 64x32 inputs on a CPU, as torchvision's VGG layer lists ("M" = 2x2 max-pool):
# vgg8_bn = two 3x3 conv + BN + ReLU per block at 32, 64, 128, 256 channels; its first block keeps the full
# input resolution, which a ResNet's stride-4 stem does not (docs/ablations.md measures the difference).
_VGG_LAYERS = {"vgg8_bn": [32, 32, "M", 64, 64, "M", 128, 128, "M", 256, 256]}


def backbone_names() -> tuple[str, ...]:
    """Every backbone ``model.backbone`` may name."""
    return (*_NO_WEIGHTS, *_VGG_LAYERS, *_ARCHS)


# Extra file names accepted for a backbone: the released code loads the legacy resnet50 file.
_LEGACY_FILES = {"resnet50": ["resnet50-19c8e357.pth"]}


def weight_file_names(name: str) -> list[str]:
    """File names accepted as ImageNet weights of backbone ``name``, preferred first (IMAGENET1K_V1,
    the weights of the paper's era, then the legacy name, then newer torchvision weights)."""
    enum = getattr(torchvision.models, _ARCHS[name][1])
    names = [os.path.basename(w.url) for w in enum if w.name == "IMAGENET1K_V1"]
    names += _LEGACY_FILES.get(name, [])
    names += [os.path.basename(w.url) for w in enum if w.name != "IMAGENET1K_V1"]
    return names


def weights_search_dir(weights_dir: str | None) -> Path:
    """The folder searched for ImageNet weight files."""
    if weights_dir:
        return Path(weights_dir).expanduser()
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_imagenet_weights(name: str, weights_dir: str | None = None) -> Path:
    """The local ImageNet weight file of backbone ``name``; ConfigError saying where to put it if absent."""
    folder = weights_search_dir(weights_dir)
    candidates = weight_file_names(name)
    for fname in candidates:
        if (folder / fname).is_file():
            return folder / fname
    raise ConfigError(
        f"model.pretrained: ImageNet weights for {name} not found: put {candidates[0]} "
        f"(https://download.pytorch.org/models/{candidates[0]}) in {folder} "
        f"(or set model.weights_dir, or use pretrained: none); nothing is downloaded"
    )


def _load_state_dict(model: nn.Module, path: Path, option: str = "model.pretrained") -> None:
    """Load a torchvision state dict (optionally wrapped in {"state_dict": ...}) strictly into ``model``."""
    if not path.is_file():
        raise ConfigError(f"{option}: weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or not a torch file
        raise ConfigError(f"{option}: cannot read weights file {path}: {type(exc).__name__}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{option}: {path} is not a state dict of this backbone ({first})") from exc


def _refuse_imagenet(name: str, pretrained: str) -> None:
    """ConfigError for ``pretrained: imagenet`` on a backbone that has no published ImageNet weights."""
    if pretrained == "imagenet":
        raise ConfigError(f"model.pretrained: no ImageNet weights exist for {name}; use pretrained: none or a path")


def _torchvision_model(name: str, pretrained: str, weights_dir: str | None) -> nn.Module:
    if name in _NO_WEIGHTS:
        _refuse_imagenet(name, pretrained)
        model = _NO_WEIGHTS[name]()
        if pretrained != "none":
            _load_state_dict(model, Path(pretrained).expanduser())
        return model
    if name not in _ARCHS:
        raise ConfigError(f"model.backbone: expected one of {', '.join(backbone_names())}, got {name!r}")
    model = getattr(torchvision.models, _ARCHS[name][0])(weights=None)  # never downloads
    if pretrained == "imagenet":
        _load_state_dict(model, find_imagenet_weights(name, weights_dir))
    elif pretrained != "none":
        _load_state_dict(model, Path(pretrained).expanduser())
    return model


def _vgg_stages(name: str, pretrained: str, last_stride: int) -> tuple[list[nn.Module], int]:
    """A ``_VGG_LAYERS`` network cut before each max-pool: four stages of output strides 1, 2, 4, 8
    (``last_stride=1``: the last stage without its max-pool, 1, 2, 4, 4)."""
    _refuse_imagenet(name, pretrained)
    features = torchvision.models.vgg.make_layers(_VGG_LAYERS[name], batch_norm=True)
    if pretrained != "none":  # a state dict of the uncut nn.Sequential (a VGG's ``features``)
        _load_state_dict(features, Path(pretrained).expanduser())
    layers = list(features)
    cuts = [0] + [i for i, m in enumerate(layers) if isinstance(m, nn.MaxPool2d)] + [len(layers)]
    stages = [nn.Sequential(*layers[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    if last_stride == 1:
        stages[-1] = stages[-1][1:]
    channels = [c for c in _VGG_LAYERS[name] if c != "M"][-1]
    return stages, channels


def _has_stride2(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) and tuple(m.stride) == (2, 2) for m in module.modules())


def _set_last_stride_one(stage: nn.Module) -> None:
    """Turn every stride-2 convolution of the last stage into stride 1 (ResNet: layer4's conv and
    downsample; MobileNetV3: the depthwise conv), doubling the final map's height and width."""
    for m in stage.modules():
        if isinstance(m, nn.Conv2d) and tuple(m.stride) == (2, 2):
            m.stride = (1, 1)


def stem_length(first_stage: nn.Sequential) -> int:
    """How many leading modules of a first stage form its stem: up to the first activation after the first
    convolution, with a pooling layer right after it (ResNet: conv1, bn1, relu, maxpool; VGG-style: the
    first conv, BN, ReLU); 1 where the stage is a list of blocks (MobileNetV3: its first conv block)."""
    layers = list(first_stage)
    if not layers or not isinstance(layers[0], nn.Conv2d):
        return 1
    for i, m in enumerate(layers[1:], start=1):
        if isinstance(m, nn.Conv2d | nn.Sequential):
            return i  # no activation before the next convolution or block
        if not isinstance(m, nn.BatchNorm2d):  # the activation
            pool = i + 1 < len(layers) and isinstance(layers[i + 1], nn.MaxPool2d | nn.AvgPool2d)
            return i + 2 if pool else i + 1
    return len(layers)


def build_stages(
    name: str, pretrained: str = "none", weights_dir: str | None = None, last_stride: int = 1,
    stem_pool: bool = True,
) -> tuple[list[nn.Module], int]:
    """Build backbone ``name`` as four stages (output strides 4, 8, 16, 32/16; VGG-style: 1, 2, 4, 8/4) and
    its output channels.

    ``stem_pool=False`` (ResNets) leaves out the max-pool after ``conv1``: every feature map doubles in
    height and width (output strides 2, 4, 8, 16/8), for small inputs such as 64x32 where a stride-4 stem
    would blur away fine patterns.
    """
    if name in _VGG_LAYERS:
        return _vgg_stages(name, pretrained, last_stride)
    model = _torchvision_model(name, pretrained, weights_dir)
    if name.startswith("resnet"):
        pool = [model.maxpool] if stem_pool else []
        stem = nn.Sequential(model.conv1, model.bn1, model.relu, *pool, model.layer1)
        stages = [stem, model.layer2, model.layer3, model.layer4]
        channels = model.fc.in_features
    else:
        blocks = list(model.features)
        down = [i for i, b in enumerate(blocks) if _has_stride2(b)]  # 5 downsampling blocks
        cuts = [0, down[2], down[3], down[4], len(blocks)]
        stages = [nn.Sequential(*blocks[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        channels = model.classifier[0].in_features
    if last_stride == 1:
        _set_last_stride_one(stages[-1])
    return stages, channels
