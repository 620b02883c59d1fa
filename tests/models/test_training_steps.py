"""A few optimisation steps on a tiny batch lower every loss term of every model.

Under vd's full objective the distillation terms are a moving target: cross-entropy sharpens the
teacher p(y|v) faster than z follows, so VSD / VCD may rise over the first steps. The distillation terms
(and the encoder updates they cause move the teacher too) are therefore checked on their own (VSD + VCD,
then VML; the other weights 0) with only the students (bottlenecks, z classifiers) trained: a fixed
teacher makes each step a true descent step, so a sign or direction error would show. The rest is
checked on the full objective; the released configuration lowers every term together.
"""

import pytest
import torch

from vireid.losses import LossConfig, build_criterion
from vireid.models import build_model

# case: (model overrides, loss overrides, terms that must go down)
CASES = {
    "vd": (dict(name="vd"), dict(metric="triplet"), {"loss", "ce", "metric"}),
    "vd_vsd_vcd": (dict(name="vd"), dict(ce_weight=0.0, metric_weight=0.0, vml_weight=0.0), {"loss", "vsd", "vcd"}),
    "vd_vml": (dict(name="vd"), dict(ce_weight=0.0, metric_weight=0.0, vsd_weight=0.0, vcd_weight=0.0), {"loss", "vml"}),
    "vd_released": (
        dict(name="vd", routing="released", bottleneck="deterministic", z_classifier="mlp"),
        dict(metric="ranking"),
        {"loss", "ce", "metric", "vsd", "vcd", "vml"},
    ),
    "ib": (dict(name="ib"), dict(beta=0.05), {"loss", "ce", "metric", "kl"}),
    "baseline": (dict(name="baseline"), dict(), {"loss", "ce", "metric"}),
}
TERMS = {"vd": {"ce", "metric", "vsd", "vcd", "vml"}, "ib": {"ce", "metric", "kl"}, "baseline": {"ce", "metric"}}
DIAGNOSTICS = {"z_std"}  # logged with a Gaussian bottleneck, not a loss term


@pytest.mark.parametrize("case", list(CASES))
def test_steps_lower_every_term(case, batch, tiny_config):
    model_over, loss_over, must_drop = CASES[case]
    images, labels, modality = batch
    cfg = tiny_config(classifier_std=0.1, **model_over)  # non-uniform initial predictions: divergences > 0
    model = build_model(cfg, 4).train()
    criterion = build_criterion(LossConfig(**loss_over), cfg, 4)
    students_only = case in ("vd_vsd_vcd", "vd_vml")
    params = (
        [*model.bottlenecks.parameters(), *model.z_classifiers.parameters()] if students_only else model.parameters()
    )
    opt = torch.optim.Adam(params, lr=1e-3)

    def measure():
        torch.manual_seed(123)  # the same sampling noise and dropout masks before and after
        with torch.no_grad():
            return {k: v.item() for k, v in criterion(model(images, modality), labels, modality).items()}

    first = measure()
    for _ in range(12):
        terms = criterion(model(images, modality), labels, modality)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
    last = measure()
    assert set(first) - DIAGNOSTICS == TERMS[model_over["name"]] | {"loss"}
    for name in must_drop:
        assert last[name] < first[name], f"{case}: {name} went from {first[name]:.4g} to {last[name]:.4g}"
