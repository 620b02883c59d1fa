"""Models: backbones, variational bottlenecks, and the vd / ib / baseline networks."""

from vireid.models.build import MODELS, build_model
from vireid.models.config import ModelConfig

__all__ = ["MODELS", "ModelConfig", "build_model"]
