"""The model section of the configuration.

Each default is marked with its source: **paper** (Tian et al., CVPR 2021), **released** (the authors'
released code, see ``shared/docs/released_code.md``) where the paper is silent, or **ours**.

Test-time features (``test_feature``), for ``vd`` and ``ib``:

- ``z_shared`` / ``v_shared``: the representation mean (z) / post-BN observation (v) of the shared
  branch E_S -> B_S. The same network for both modalities.
- ``z_specific`` / ``v_specific``: the modality-specific branch. Paper routing: a visible image goes
  through E_V, an infrared image through E_I (so the feature is **modality-dependent**). Released routing:
  every image goes through both, the feature is ``[E_I(grey x), E_V(x)]``.
- ``z_concat`` / ``v_concat``: ``[specific, shared]``, modality-dependent under paper routing as above.
  Released routing: ``[E_I(grey), E_V(x), E_S(grey), E_S(x)]``.
- ``released_concat``: the released code's 8192-d test feature, ``[v_I(grey), v_S(grey), v_V(x),
  v_S(x)]`` (post-BN observations of the image and of its greyscale through all encoders, in the
  released order), whatever the training routing.

For ``baseline`` the feature is its post-BN observation (``v_shared``) or its pooled feature
(``pooled``). ``extract`` never L2-normalises: that is the evaluator's choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vireid.errors import ConfigError


@dataclass
class ModelConfig:
    """Which network to build and how.

    ``pretrained``: ``"imagenet"`` (torchvision ImageNet weights, read from ``weights_dir`` or torch's hub
    cache ``<torch.hub.get_dir()>/checkpoints``; never downloaded), ``"none"`` (random init) or the path
    of a torchvision state-dict file for the chosen backbone.
    ``share_deep_stages``: how many of the 4 backbone stages (ResNet: conv1..layer1, layer2, layer3,
    layer4), counted from the deepest, E_V, E_I and E_S share (0 = three independent encoders, as in the
    paper; 2 or ``true`` = layer3-4 shared). Saves parameters and optimiser memory; each branch keeps its own BN
    neck, bottleneck and classifiers. ``baseline`` ignores it (where its streams join is ``split``).
    ``bottleneck``: ``"gaussian"`` = the paper's variational bottleneck (MLP -> mean and softplus std,
    z sampled by reparameterisation in training, the mean at test); ``"deterministic"`` = the released
    code's MLP whose whole ``2 * z_dim`` output is z. ``ib`` always uses ``"gaussian"``.
    ``split`` (``baseline`` only): where its two streams join. ``"stem"`` = AGW's two-stream ResNet
    (conv1, bn1, relu, maxpool per modality, layer1-4 shared; the paper recipes' choice, so that the
    baseline is the field's); ``"layer1"`` = conv1..layer1 per modality, layer2-4 shared (ours, the
    default, which older checkpoints were trained with).
    """

    name: str = "vd"  # paper; a name in the model table, vireid.models.build.MODELS
    backbone: str = "resnet50"  # paper; vireid.models.backbones.backbone_names()
    pretrained: str = "imagenet"  # paper ("imagenet" | "none" | path to a state dict)
    weights_dir: str | None = None  # ours: folder holding torchvision weight files (else torch hub cache)
    last_stride: Literal[1, 2] = 1  # released (paper: unverified)
    stem_pool: bool = True  # torchvision ResNet; false: no max-pool after conv1 (small inputs, e.g. 64x32)
    routing: Literal["paper", "released"] = "paper"  # paper (Fig. 3)
    share_deep_stages: int | bool = 0  # paper: three independent encoders (true = 2: layer3-4 shared)
    shallow_cam: bool = False  # paper does not mention it; released: true (CAM before layer2/3/4)
    split: Literal["stem", "layer1"] = "layer1"  # ours (AGW baseline: "stem"); baseline only
    z_dim: int = 256  # paper (mean and std of 256 each; released: z is 2 * 256 = 512-d)
    bottleneck: Literal["gaussian", "deterministic"] = "gaussian"  # paper; released: "deterministic"
    bottleneck_hidden: list[int] = field(default_factory=lambda: [1024, 512])  # paper; released [1000, 500]
    bottleneck_input: Literal["neck", "pooled"] = "neck"  # released (post-BN observation); paper silent
    std_offset: float = 5.0  # ours, after Alemi et al.'s VIB: std = softplus(s - 5) starts small
    z_classifier: Literal["linear", "mlp"] = "linear"  # ours; released: "mlp" (512-256-BN-LReLU-Dropout-C)
    classifier_std: float = 0.001  # released: Linear weights ~ N(0, 0.001), bias 0
    # None = the model's own default (MODELS): "z_shared" for vd/ib (ours; paper: unverified), "v_shared" for
    # the baseline; released: "released_concat"
    test_feature: str | None = None

    @property
    def shared_stages(self) -> int:
        """The number of deepest backbone stages E_V, E_I and E_S share (``true`` means 2)."""
        if isinstance(self.share_deep_stages, bool):
            return 2 if self.share_deep_stages else 0
        return int(self.share_deep_stages)

    @property
    def feature(self) -> str:
        """The test-time feature in effect (``test_feature`` or the model's default)."""
        if self.test_feature is not None:
            return self.test_feature
        from vireid.models.build import get_model

        return get_model(self.name).default_feature

    def validate(self) -> None:
        """Raise a ConfigError naming the first invalid option."""
        from vireid.models.backbones import backbone_names
        from vireid.models.build import get_model

        spec = get_model(self.name)
        if self.backbone not in backbone_names():
            raise ConfigError(f"model.backbone: expected one of {', '.join(backbone_names())}, got {self.backbone!r}")
        if not isinstance(self.pretrained, str) or not self.pretrained:
            raise ConfigError(f"model.pretrained: expected 'imagenet', 'none' or a path, got {self.pretrained!r}")
        if not self.stem_pool and not self.backbone.startswith("resnet"):
            raise ConfigError(f"model.stem_pool: false is for ResNet backbones, not {self.backbone}")
        if self.last_stride not in (1, 2):
            raise ConfigError(f"model.last_stride: expected 1 or 2, got {self.last_stride!r}")
        if self.routing not in ("paper", "released"):
            raise ConfigError(f"model.routing: expected 'paper' or 'released', got {self.routing!r}")
        if self.share_deep_stages not in (0, 1, 2, 3, True, False):
            raise ConfigError(
                f"model.share_deep_stages: expected an integer 0..3 (deepest stages shared), got {self.share_deep_stages!r}"
            )
        if self.split not in ("stem", "layer1"):
            raise ConfigError(f"model.split: expected 'stem' (AGW) or 'layer1', got {self.split!r}")
        if not isinstance(self.z_dim, int) or self.z_dim < 1:
            raise ConfigError(f"model.z_dim: expected a positive integer, got {self.z_dim!r}")
        if self.bottleneck not in ("gaussian", "deterministic"):
            raise ConfigError(f"model.bottleneck: expected 'gaussian' or 'deterministic', got {self.bottleneck!r}")
        if not all(isinstance(h, int) and h > 0 for h in self.bottleneck_hidden):
            raise ConfigError(f"model.bottleneck_hidden: expected a list of positive integers, got {self.bottleneck_hidden!r}")
        if self.bottleneck_input not in ("neck", "pooled"):
            raise ConfigError(f"model.bottleneck_input: expected 'neck' or 'pooled', got {self.bottleneck_input!r}")
        if self.z_classifier not in ("linear", "mlp"):
            raise ConfigError(f"model.z_classifier: expected 'linear' or 'mlp', got {self.z_classifier!r}")
        if self.feature not in spec.features:
            raise ConfigError(
                f"model.test_feature: the {self.name} model gives {', '.join(spec.features)}, got {self.test_feature!r}"
            )
        if spec.check is not None:
            spec.check(self)
