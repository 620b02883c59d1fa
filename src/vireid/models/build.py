"""The model table (``MODELS``) and ``build_model``.

Per model name (``ModelSpec``): the class that builds it, the test-time features its ``extract`` gives and
its default one, whether that feature depends on the image's modality (the inference layer's question),
and any rule of its own on the config. ``ModelConfig.validate``, ``build_model`` and the inference layer
read this table; the training objective of each model is ``vireid.losses.criteria.CRITERIA``, keyed by
the same names. Adding a model: ``models/<name>.py``, one ``register_model`` entry below, and its
criterion under the same name in ``CRITERIA``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from vireid.errors import ConfigError
from vireid.models.baseline import TwoStreamBaseline
from vireid.models.config import ModelConfig
from vireid.models.ib import VariationalIBNet, check_ib_config
from vireid.models.vd import VD_FEATURES, VariationalDistillationNet, vd_modality_dependent


@dataclass(frozen=True)
class ModelSpec:
    """A model: ``build(cfg, num_classes) -> nn.Module`` (its class, usually), a one-line description,
    the test-time features it gives (``model.test_feature``) and its default one,
    ``modality_dependent(cfg)``: whether its test feature depends on the image's modality flag, and
    ``check(cfg)``: its own config rules (ConfigError), if any. Calling the spec builds the model."""

    build: Callable[[ModelConfig, int], nn.Module]
    description: str
    features: tuple[str, ...]
    default_feature: str
    modality_dependent: Callable[[ModelConfig], bool]
    check: Callable[[ModelConfig], None] | None = None

    def __call__(self, cfg: ModelConfig, num_classes: int) -> nn.Module:
        return self.build(cfg, num_classes)


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Add ``spec`` to the table under ``name`` (``replace`` to overwrite an entry); returns it."""
    if name in MODELS and not replace:
        raise ValueError(f"model {name!r} is registered already")
    if spec.default_feature not in spec.features:
        raise ValueError(f"model {name!r}: default feature {spec.default_feature!r} is not among {spec.features}")
    MODELS[name] = spec
    return spec


def model_names() -> tuple[str, ...]:
    """The registered model names (``model.name``), in registration order."""
    return tuple(MODELS)


def get_model(name: str, option: str = "model.name") -> ModelSpec:
    """The entry of ``name``; a ConfigError naming ``option`` and the choices if there is none."""
    spec = MODELS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ConfigError(f"{option}: expected one of {', '.join(map(repr, MODELS))}, got {name!r}")
    return spec


def build_model(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """The model ``cfg.name`` for ``num_classes`` training identities (ConfigError on a bad config)."""
    cfg.validate()
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"number of training identities: expected an integer >= 2, got {num_classes!r}")
    return get_model(cfg.name).build(cfg, num_classes)


# ----------------------------------------------------------------------------------------- the table

register_model("vd", ModelSpec(
    VariationalDistillationNet, "Variational Distillation (VSD + VCD + VML), three encoders with bottlenecks",
    features=VD_FEATURES, default_feature="z_shared", modality_dependent=vd_modality_dependent,
))
register_model("ib", ModelSpec(
    VariationalIBNet, "the conventional variational information bottleneck on the vd network",
    features=VD_FEATURES, default_feature="z_shared", modality_dependent=vd_modality_dependent,
    check=check_ib_config,
))
register_model("baseline", ModelSpec(
    TwoStreamBaseline, "two-stream network (modality-specific first part, shared deeper stages)",
    features=("v_shared", "pooled"), default_feature="v_shared",
    modality_dependent=lambda cfg: True,  # its first part is modality-specific
))
