"""Criteria on hand-made model outputs: terms, totals, pairs, switches."""

import pytest
import torch

from vireid.errors import ConfigError
from vireid.losses import LossConfig, build_criterion
from vireid.losses.distillation import vcd, vml, vsd
from vireid.losses.divergences import gaussian_kl_to_standard_normal
from vireid.models import ModelConfig

LABELS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
MODALITY = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])


def _outputs(rows_by_branch, c=3, d=4, z=2, gaussian=True):
    g = torch.Generator().manual_seed(0)
    out = {}
    for b, rows in rows_by_branch.items():
        n = len(rows)
        out[f"{b}/rows"] = torch.tensor(rows)
        for key, dim in (("g", d), ("v", d), ("v_logits", c), ("z", z), ("z_logits", c), ("mu", z)):
            out[f"{b}/{key}"] = torch.randn(n, dim, generator=g)
        if gaussian:
            out[f"{b}/std"] = torch.rand(n, z, generator=g) + 0.5
    return out


PAPER_ROWS = {"V": [0, 1, 4, 5], "I": [2, 3, 6, 7], "S": list(range(8))}


def test_vd_terms_and_total():
    cfg = LossConfig()
    terms = build_criterion(cfg, ModelConfig(), 3)(_outputs(PAPER_ROWS), LABELS, MODALITY)
    assert set(terms) == {"loss", "ce", "metric", "vsd", "vcd", "vml", "z_std"}
    expected = terms["ce"] + terms["metric"] + 2 * terms["vsd"] + 2 * terms["vcd"] + 2 * terms["vml"]
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    out = _outputs(PAPER_ROWS)
    vis, ir = torch.tensor([0, 1, 4, 5]), torch.tensor([2, 3, 6, 7])
    v, z = out["S/v_logits"], out["S/z_logits"]
    assert terms["vcd"].item() == pytest.approx(vcd(v[vis], z[vis], v[ir], z[ir]).item(), rel=1e-6)
    assert terms["vml"].item() == pytest.approx(vml(z[vis], z[ir]).item(), rel=1e-6)
    expected_vsd = vsd(out["V/v_logits"], out["V/z_logits"]) + vsd(out["I/v_logits"], out["I/z_logits"])
    assert terms["vsd"].item() == pytest.approx(expected_vsd.item(), rel=1e-6)
    # the diagnostic: the mean std over the Gaussian branches (each branch's mean, then their mean)
    z_std = torch.stack([out[f"{b}/std"].mean() for b in "VIS"]).mean()
    assert terms["z_std"].item() == pytest.approx(z_std.item(), rel=1e-6)


def test_vd_prior_switch_adds_the_ib_kl_term():
    out = _outputs(PAPER_ROWS)
    plain = build_criterion(LossConfig(), ModelConfig(), 3)(out, LABELS, MODALITY)
    prior = build_criterion(LossConfig(prior_weight=0.5), ModelConfig(), 3)(out, LABELS, MODALITY)
    kl = sum(gaussian_kl_to_standard_normal(out[f"{b}/mu"], out[f"{b}/std"]) for b in "VIS")
    assert "kl" not in plain and prior["kl"].item() == pytest.approx(kl.item(), rel=1e-6)
    assert prior["loss"].item() == pytest.approx((plain["loss"] + 0.5 * kl).item(), rel=1e-6)


def test_vd_released_routing_pairs_each_image_with_its_greyscale():
    rows = {"V": list(range(8)), "I": list(range(8)), "S": list(range(8)) * 2}
    out = _outputs(rows, gaussian=False)
    model_cfg = ModelConfig(routing="released", bottleneck="deterministic")
    loss_cfg = LossConfig(kl_numerics="released", metric="ranking", cml_weight=8.0)
    terms = build_criterion(loss_cfg, model_cfg, 3)(out, LABELS, MODALITY)
    v, z = out["S/v_logits"], out["S/z_logits"]
    raw, grey = torch.arange(8), torch.arange(8, 16)
    expected = vcd(v[raw], z[raw], v[grey], z[grey], numerics="released")
    assert terms["vcd"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["vsd"].item() < 0  # the released numerics are negative
    assert "cml" in terms and terms["cml"].item() >= 0


def test_released_shared_metric_is_a_quarter_of_each_call_not_one_loss_over_2b_rows():
    """Release (trainers.py:123-126): rank = 0.5 [r(v_I) + r(z_I)] + 0.5 [r(v_V) + r(z_V)]
    + 0.25 [r(v_S,grey) + r(z_S,grey)] + 0.25 [r(v_S,raw) + r(z_S,raw)], each r over the B rows of one
    call with the images' own modalities; CE likewise."""
    from vireid.losses.classification import cross_entropy
    from vireid.losses.metric import modality_ranking_loss

    rows = {"V": list(range(8)), "I": list(range(8)), "S": list(range(8)) * 2}
    out = _outputs(rows, gaussian=False)
    out["S/call"] = torch.tensor([0] * 8 + [1] * 8)
    model_cfg = ModelConfig(routing="released", bottleneck="deterministic")
    terms = build_criterion(LossConfig(metric="ranking", kl_numerics="released"), model_cfg, 3)(out, LABELS, MODALITY)
    r = lambda f: modality_ranking_loss(f, LABELS, MODALITY)  # noqa: E731
    ce = lambda x: cross_entropy(x, LABELS, 0.1)  # noqa: E731
    raw, grey = slice(0, 8), slice(8, 16)
    expected = sum(0.5 * (r(out[f"{b}/v"]) + r(out[f"{b}/z"])) for b in "IV") + sum(
        0.25 * (r(out["S/v"][s]) + r(out["S/z"][s])) for s in (grey, raw))
    assert terms["metric"].item() == pytest.approx(expected.item(), rel=1e-6)
    expected_ce = sum(0.5 * (ce(out[f"{b}/v_logits"]) + ce(out[f"{b}/z_logits"])) for b in "IV") + sum(
        0.25 * (ce(out["S/v_logits"][s]) + ce(out["S/z_logits"][s])) for s in (grey, raw))
    assert terms["ce"].item() == pytest.approx(expected_ce.item(), rel=1e-6)
    # one loss over the 2B rows is a different number
    both = torch.cat([LABELS, LABELS]), torch.cat([MODALITY, MODALITY])
    merged = sum(0.5 * (r(out[f"{b}/v"]) + r(out[f"{b}/z"])) for b in "IV") + 0.5 * (
        modality_ranking_loss(out["S/v"], *both) + modality_ranking_loss(out["S/z"], *both))
    assert terms["metric"].item() != pytest.approx(merged.item(), rel=1e-3)


def test_vd_rejects_batches_that_break_the_pair_contract():
    labels = LABELS.clone()
    labels[[2, 6]] = labels[[6, 2]]
    with pytest.raises(ValueError, match="differ"):
        build_criterion(LossConfig(), ModelConfig(), 3)(_outputs(PAPER_ROWS), labels, MODALITY)


def test_ib_terms():
    out = _outputs(PAPER_ROWS)
    terms = build_criterion(LossConfig(beta=0.1), ModelConfig(name="ib"), 3)(out, LABELS, MODALITY)
    assert set(terms) == {"loss", "ce", "metric", "kl", "z_std"}
    kl = sum(gaussian_kl_to_standard_normal(out[f"{b}/mu"], out[f"{b}/std"]) for b in "VIS")
    assert terms["kl"].item() == pytest.approx(kl.item(), rel=1e-6)
    assert terms["loss"].item() == pytest.approx((terms["ce"] + terms["metric"] + 0.1 * kl).item(), rel=1e-6)


def test_baseline_terms():
    out = {k.replace("S/", "B/"): v for k, v in _outputs({"S": list(range(8))}).items() if k.split("/")[1] in
           ("rows", "g", "v", "v_logits")}
    terms = build_criterion(LossConfig(), ModelConfig(name="baseline"), 3)(out, LABELS, MODALITY)
    assert set(terms) == {"loss", "ce", "metric"}
    assert terms["loss"].item() == pytest.approx((terms["ce"] + terms["metric"]).item(), rel=1e-6)


@pytest.mark.parametrize("overrides, option", [(dict(metric="arcface"), "loss.metric"),
                                               (dict(kl_numerics="wrong"), "loss.kl_numerics"),
                                               (dict(temperature=0.0), "loss.temperature"),
                                               (dict(branch_weights={"X": 1.0}), "loss.branch_weights")])
def test_loss_config_errors(overrides, option):
    with pytest.raises(ConfigError, match=option):
        build_criterion(LossConfig(**overrides), ModelConfig(), 3)
