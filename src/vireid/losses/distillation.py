"""The three distillation losses of Variational Distillation (Tian et al., CVPR 2021).

v = observation (post-BN encoder feature), z = representation (bottleneck output); every ``*_logits``
is a classifier's output on v or z. ``numerics="correct"`` uses KL(teacher || student) with batchmean
(and T^2); ``"released"`` the released code's ``F.kl_div`` misuse (see ``released_kl_div``).
"""

from __future__ import annotations

from torch import Tensor

from vireid.losses.divergences import js_divergence, kl_divergence, released_kl_div


def _distil(teacher_logits: Tensor, student_logits: Tensor, temperature: float, numerics: str) -> Tensor:
    if numerics == "released":
        return released_kl_div(teacher_logits, student_logits, temperature)
    return kl_divergence(teacher_logits.detach(), student_logits, temperature)


def vsd(v_logits: Tensor, z_logits: Tensor, temperature: float = 1.0, numerics: str = "correct") -> Tensor:
    """Variational Self-Distillation: ``KL(p(y|v) || p(y|z))``, the observation's prediction a fixed
    teacher (detached)."""
    return _distil(v_logits, z_logits, temperature, numerics)


def vcd(
    v_a_logits: Tensor,
    z_a_logits: Tensor,
    v_b_logits: Tensor,
    z_b_logits: Tensor,
    temperature: float = 1.0,
    numerics: str = "correct",
) -> Tensor:
    """Variational Cross-Distillation over paired views a, b (row k of a pairs with row k of b):
    ``1/2 [KL(p(y|v_b) || p(y|z_a)) + KL(p(y|v_a) || p(y|z_b))]``, teachers detached.

    With ``numerics="released"`` the temperature is ignored: the release softens VSD by T but calls
    ``kl_div`` on plain softmaxes for VCD (trainers.py:142-145)."""
    if numerics == "released":
        temperature = 1.0
    return 0.5 * (
        _distil(v_b_logits, z_a_logits, temperature, numerics) + _distil(v_a_logits, z_b_logits, temperature, numerics)
    )


def vml(z_a_logits: Tensor, z_b_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Variational Mutual-Learning: ``JS(p(y|z_a) || p(y|z_b))`` over paired rows; both sides learn."""
    return js_divergence(z_a_logits, z_b_logits, temperature)
