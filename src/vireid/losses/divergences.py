"""Divergences between predictive distributions (given as logits) and the Gaussian KL of the VIB.

Everything is computed in float32 (safe under autocast)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def kl_divergence(p_logits: Tensor, q_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """``KL(p || q)`` between softmax(p_logits / T) and softmax(q_logits / T), batchmean, times T^2:
    ``T^2 (1/B) sum_b sum_c p_bc (log p_bc - log q_bc)``. Gradients flow into both arguments; detach the
    teacher before calling."""
    log_p = F.log_softmax(p_logits.float() / temperature, dim=1)
    log_q = F.log_softmax(q_logits.float() / temperature, dim=1)
    return temperature**2 * (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()


def js_divergence(p_logits: Tensor, q_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Jensen-Shannon divergence, batchmean, times T^2: with m = (p + q) / 2,
    ``JS(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m)``; symmetric, 0 iff p = q, at most ln 2 (at T = 1)."""
    log_p = F.log_softmax(p_logits.float() / temperature, dim=1)
    log_q = F.log_softmax(q_logits.float() / temperature, dim=1)
    log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)
    js = 0.5 * (log_p.exp() * (log_p - log_m)).sum(dim=1) + 0.5 * (log_q.exp() * (log_q - log_m)).sum(dim=1)
    return temperature**2 * js.mean()


def released_kl_div(teacher_logits: Tensor, student_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """The released code's call, kept for fidelity studies:
    ``F.kl_div(input=softmax(teacher.detach() / T), target=softmax(student / T))`` with reduction
    ``mean``, which computes ``(1 / (B C)) sum_bc p_s (log p_s - p_t)`` (p_s = student, p_t = teacher
    probabilities): not KL(p_t || p_s); negative; gradient only into the student."""
    p_t = F.softmax(teacher_logits.detach().float() / temperature, dim=1)
    p_s = F.softmax(student_logits.float() / temperature, dim=1)
    # reduction "mean" (the released default) spelled out: PyTorch warns it will change its meaning
    return F.kl_div(p_t, p_s, reduction="sum") / p_t.numel()


def gaussian_kl_to_standard_normal(mu: Tensor, std: Tensor) -> Tensor:
    """``KL(N(mu, diag(std^2)) || N(0, I))`` in closed form, summed over dimensions, mean over the batch:
    ``(1/B) sum_b sum_d 1/2 (mu^2 + std^2 - 1 - 2 log std)``."""
    mu, std = mu.float(), std.float()
    return 0.5 * (mu.pow(2) + std.pow(2) - 1.0 - 2.0 * std.log()).sum(dim=1).mean()
