"""vireid: visible-infrared person re-identification with Variational Distillation.

The package layout follows the pipeline:
``data`` (dataset layouts, SynthVI, cache, sampler) -> ``models`` -> ``losses`` -> ``training``
-> ``features`` -> ``evaluation`` -> ``visualization``; ``cli`` is a thin layer over all of them.
"""

__version__ = "0.1.0"
