"""Data: dataset layouts read in place, SynthVI, training sets, decoded-image cache, sampler, transforms.

Only the light, dependency-free names are re-exported here (importing ``vireid.data.records`` runs this
file too); readers, loaders and the cache live in their modules (``vireid.data.sysu``, ``.regdb``,
``.training_sets``, ``.loaders``, ``.cache``).
"""

from .config import AugmentConfig, DataConfig
from .records import INFRARED, MODALITY_NAMES, VISIBLE, ImageRecord

__all__ = ["INFRARED", "MODALITY_NAMES", "VISIBLE", "AugmentConfig", "DataConfig", "ImageRecord"]
