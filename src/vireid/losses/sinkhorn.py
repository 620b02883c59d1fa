"""The released code's "conventional mutual learning" (CML) term: an entropic optimal-transport cost
between two batches of predicted class distributions (not in the paper's stated objective)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def sinkhorn_cml(
    a_logits: Tensor, b_logits: Tensor, eps: float = 0.01, max_iter: int = 100, threshold: float = 0.1
) -> Tensor:
    """Entropic OT cost ``sum_ij pi_ij C_ij`` between the point clouds p_i = softmax(a_i) and
    q_j = softmax(b_j) with uniform marginals, ``C_ij = ||p_i - q_j||^2`` and the plan
    ``pi = exp((-C + u 1^T + 1 v^T) / eps)`` from log-domain Sinkhorn iterations
    ``u <- eps (log mu - LSE_j((-C + u + v) / eps)) + u``, then the same for v, stopped when
    ``sum |u - u_prev| < threshold`` or after ``max_iter`` (released: eps 0.01, 100, 0.1). Gradients flow
    through every iteration, as released; the log-sum-exp is the stable one (released: log(sum exp + 1e-6)).
    """
    p, q = F.softmax(a_logits.float(), dim=1), F.softmax(b_logits.float(), dim=1)
    cost = (p[:, None, :] - q[None, :, :]).pow(2).sum(dim=2)
    log_mu = torch.full((p.shape[0],), -math.log(p.shape[0]), device=p.device, dtype=p.dtype)
    log_nu = torch.full((q.shape[0],), -math.log(q.shape[0]), device=q.device, dtype=q.dtype)
    u, v = torch.zeros_like(log_mu), torch.zeros_like(log_nu)

    def scaled(u: Tensor, v: Tensor) -> Tensor:
        return (-cost + u[:, None] + v[None, :]) / eps

    for _ in range(max_iter):
        u_prev = u
        u = eps * (log_mu - torch.logsumexp(scaled(u, v), dim=1)) + u
        v = eps * (log_nu - torch.logsumexp(scaled(u, v).t(), dim=1)) + v
        if (u - u_prev).abs().sum().item() < threshold:
            break
    return (scaled(u, v).exp() * cost).sum()
