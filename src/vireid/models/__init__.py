"""Models: backbones, variational bottlenecks, and the vd / ib / baseline networks."""

from vireid.models.build import MODELS, ModelSpec, build_model, get_model, register_model
from vireid.models.config import ModelConfig

__all__ = ["MODELS", "ModelConfig", "ModelSpec", "build_model", "get_model", "register_model"]
