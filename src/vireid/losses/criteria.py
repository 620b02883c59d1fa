"""Criteria: the training objective of each model, from the model's raw outputs.

``criterion(outputs, labels, modality) -> dict``: ``loss`` is the weighted total to back-propagate;
every other key is one term, unweighted, for logging:

- ``vd``: ``ce`` and ``metric`` (per branch b in V, I, S: w_b [L(v_b) + L(z_b)]), ``vsd`` (summed
  over the specific branches V and I), ``vcd`` and ``vml`` (over the shared branch's visible/infrared
  pairs; with released routing over each image's raw/greyscale pair, as the released code does; the
  shared branch's ce and metric there are the mean over its two separate calls, raw and grey).
  ``loss = ce_w ce + metric_w metric + vsd_w vsd + vcd_w vcd + vml_w vml`` (+ ``cml_w cml``, the
  released Sinkhorn term between p(y|v_V) and p(y|v_I), and ``prior_weight kl``, the conventional IB's
  prior term, each logged only when its weight is not 0).
- ``ib``: ``ce``, ``metric`` as above and ``kl`` = sum over branches of KL(q(z|v) || N(0, I));
  ``loss = ce_w ce + metric_w metric + beta kl``.
- ``baseline``: ``ce`` and ``metric`` on its single branch; ``loss = ce_w ce + metric_w metric``.

With a Gaussian bottleneck (vd, ib) the diagnostic ``z_std`` (mean standard deviation of q(z|v)) is logged
too; it is not part of the loss.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vireid.errors import ConfigError
from vireid.losses.classification import cross_entropy
from vireid.losses.config import LossConfig
from vireid.losses.distillation import vcd, vml, vsd
from vireid.losses.divergences import gaussian_kl_to_standard_normal
from vireid.losses.metric import batch_hard_triplet, modality_ranking_loss
from vireid.losses.pairs import modality_pairs
from vireid.losses.sinkhorn import sinkhorn_cml
from vireid.models.build import get_model
from vireid.models.config import ModelConfig


class ReidCriterion(nn.Module):
    """Identity and metric losses over every branch present in the outputs; subclasses add terms."""

    branches: tuple[str, ...] = ("V", "I", "S")
    default_metric_feature = "neck"  # loss.metric_feature when unset

    def __init__(self, loss_cfg: LossConfig, model_cfg: ModelConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = loss_cfg
        self.model_cfg = model_cfg
        self.num_classes = num_classes
        self.metric_key = "g" if (loss_cfg.metric_feature or self.default_metric_feature) == "pooled" else "v"

    def _branch_weight(self, branch: str) -> float:
        return float(self.cfg.branch_weights.get(branch, 1.0))

    def _metric(self, feats: Tensor, labels: Tensor, modality: Tensor) -> Tensor:
        if self.cfg.metric == "ranking":
            c = self.cfg
            return modality_ranking_loss(feats, labels, modality, tuple(c.ranking_intra), tuple(c.ranking_cross), c.ranking_t)
        return batch_hard_triplet(feats, labels, self.cfg.margin)

    def reid_terms(self, outputs: dict[str, Tensor], labels: Tensor, modality: Tensor) -> dict[str, Tensor]:
        """``ce`` and ``metric`` summed over branches with their branch weights.

        A branch whose rows came from several separate forward calls (``<b>/call``: the released
        shared branch, raw and greyscale) gets each loss per call, averaged over the calls: the release's
        ``0.25 rank(raw) + 0.25 rank(grey)``, not one loss over the 2B rows (where each image's
        greyscale copy would be an extra, nearly free positive)."""
        ce = metric = labels.new_zeros((), dtype=torch.float32)
        heads = ("v", "z")
        for b in self.branches:
            if f"{b}/rows" not in outputs:
                continue
            rows = outputs[f"{b}/rows"]
            y, m = labels[rows], modality[rows]
            w = self._branch_weight(b) if len(self.branches) > 1 else 1.0
            calls = _call_rows(outputs.get(f"{b}/call"))
            for h in heads:
                if f"{b}/{h}_logits" not in outputs:
                    continue
                logits = outputs[f"{b}/{h}_logits"]
                feats = outputs[f"{b}/{self.metric_key}"] if h == "v" else outputs[f"{b}/z"]
                for sel in calls:
                    wc = w / len(calls)
                    ce = ce + wc * cross_entropy(logits[sel], y[sel], self.cfg.label_smoothing)
                    metric = metric + wc * self._metric(feats[sel], y[sel], m[sel])
        return {"ce": ce, "metric": metric}

    def total(self, terms: dict[str, Tensor], weights: dict[str, float]) -> Tensor:
        loss = self.cfg.ce_weight * terms["ce"] + self.cfg.metric_weight * terms["metric"]
        for name, weight in weights.items():
            if weight:
                loss = loss + weight * terms[name]
        return loss

    def forward(self, outputs: dict[str, Tensor], labels: Tensor, modality: Tensor) -> dict[str, Tensor]:
        terms = self.reid_terms(outputs, labels, modality)
        return {"loss": self.total(terms, {}), **terms}


def _call_rows(call: Tensor | None) -> list[slice | Tensor]:
    """The rows of each separate forward call of a branch (one call: every row)."""
    ids = [] if call is None else torch.unique(call).tolist()
    if len(ids) <= 1:
        return [slice(None)]
    return [(call == i).nonzero().squeeze(1) for i in ids]


class BaselineCriterion(ReidCriterion):
    """Cross-entropy + metric loss of the two-stream baseline."""

    branches = ("B",)
    default_metric_feature = "pooled"  # AGW's triplet loss on the pooled feature


class VDCriterion(ReidCriterion):
    """Variational Distillation: re-id losses + VSD + VCD + VML."""

    def shared_pairs(self, outputs: dict[str, Tensor], labels: Tensor, modality: Tensor) -> tuple[Tensor, Tensor]:
        """Row indices (a, b) into the shared branch's outputs of the paired views."""
        if self.model_cfg.routing == "released":
            n = labels.shape[0]
            every = torch.arange(n, device=labels.device)
            return every, every + n  # each image's raw and greyscale rows
        vis_idx, ir_idx = modality_pairs(labels, modality)
        return vis_idx, ir_idx  # shared rows are the batch, in batch order

    def forward(self, outputs: dict[str, Tensor], labels: Tensor, modality: Tensor) -> dict[str, Tensor]:
        c = self.cfg
        terms = self.reid_terms(outputs, labels, modality)
        zero = terms["ce"].new_zeros(())
        terms["vsd"] = sum(
            (vsd(outputs[f"{b}/v_logits"], outputs[f"{b}/z_logits"], c.temperature, c.kl_numerics)
             for b in ("V", "I") if f"{b}/rows" in outputs),
            zero,
        )
        a, b = self.shared_pairs(outputs, labels, modality)
        if a.numel():
            v_s, z_s = outputs["S/v_logits"], outputs["S/z_logits"]
            terms["vcd"] = vcd(v_s[a], z_s[a], v_s[b], z_s[b], c.temperature, c.kl_numerics)
            terms["vml"] = vml(z_s[a], z_s[b], c.temperature)
        else:
            terms["vcd"] = terms["vml"] = zero
        weights = {"vsd": c.vsd_weight, "vcd": c.vcd_weight, "vml": c.vml_weight}
        if c.prior_weight:
            terms["kl"] = prior_kl(outputs, self.branches, zero)
            weights["kl"] = c.prior_weight
        if c.cml_weight and "V/rows" in outputs and "I/rows" in outputs:
            terms["cml"] = sinkhorn_cml(outputs["I/v_logits"], outputs["V/v_logits"], eps=c.cml_eps)
            weights["cml"] = c.cml_weight
        return {"loss": self.total(terms, weights), **terms, **bottleneck_std(outputs, self.branches)}


def prior_kl(outputs: dict[str, Tensor], branches: tuple[str, ...], zero: Tensor) -> Tensor:
    """``sum_b KL(q(z_b|v_b) || N(0, I))`` over the branches with a Gaussian bottleneck."""
    kl = zero
    for b in branches:
        if f"{b}/std" in outputs:
            kl = kl + gaussian_kl_to_standard_normal(outputs[f"{b}/mu"], outputs[f"{b}/std"])
    return kl


def bottleneck_std(outputs: dict[str, Tensor], branches: tuple[str, ...]) -> dict[str, Tensor]:
    """``z_std``: the mean standard deviation of q(z|v) over the Gaussian branches' rows and dimensions (a
    diagnostic, not a loss term: how much the sampled z differs from its mean); empty without a Gaussian
    bottleneck."""
    stds = [outputs[f"{b}/std"].detach().float().mean() for b in branches if f"{b}/std" in outputs]
    return {"z_std": torch.stack(stds).mean()} if stds else {}


class IBCriterion(ReidCriterion):
    """The conventional variational IB: re-id losses + beta * KL(q(z|v) || N(0, I)) on every branch."""

    def forward(self, outputs: dict[str, Tensor], labels: Tensor, modality: Tensor) -> dict[str, Tensor]:
        terms = self.reid_terms(outputs, labels, modality)
        terms["kl"] = prior_kl(outputs, self.branches, terms["ce"].new_zeros(()))
        return {"loss": self.total(terms, {"kl": self.cfg.beta}), **terms, **bottleneck_std(outputs, self.branches)}


# The objective of each model, keyed by the names of the model table (vireid.models.build.MODELS).
CRITERIA: dict[str, type[ReidCriterion]] = {"vd": VDCriterion, "ib": IBCriterion, "baseline": BaselineCriterion}


def build_criterion(loss_cfg: LossConfig, model_cfg: ModelConfig, num_classes: int) -> nn.Module:
    """The objective of model ``model_cfg.name`` (ConfigError on a bad loss config)."""
    loss_cfg.validate()
    get_model(model_cfg.name)  # an unknown name: the model table's choices
    if model_cfg.name not in CRITERIA:
        raise ConfigError(f"model.name: the {model_cfg.name} model has no criterion (vireid.losses.criteria.CRITERIA)")
    return CRITERIA[model_cfg.name](loss_cfg, model_cfg, num_classes)
