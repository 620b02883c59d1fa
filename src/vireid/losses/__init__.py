"""Losses, each a small function with its formula in the docstring, and the criteria combining them."""

from vireid.losses.config import LossConfig
from vireid.losses.criteria import CRITERIA, build_criterion
from vireid.losses.pairs import modality_pairs

__all__ = ["CRITERIA", "LossConfig", "build_criterion", "modality_pairs"]
