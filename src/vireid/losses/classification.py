"""Identity classification loss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def cross_entropy(logits: Tensor, labels: Tensor, label_smoothing: float = 0.1) -> Tensor:
    """Label-smoothed cross-entropy, mean over the batch:
    ``L = -(1/B) sum_b sum_c q_bc log softmax(logits_b)_c`` with ``q = (1 - eps) onehot(y) + eps / C``."""
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
