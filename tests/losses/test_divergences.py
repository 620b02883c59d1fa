"""The divergences and distillation losses against formulas written out by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from vireid.losses.classification import cross_entropy
from vireid.losses.distillation import vcd, vml, vsd
from vireid.losses.divergences import (
    gaussian_kl_to_standard_normal,
    js_divergence,
    kl_divergence,
    released_kl_div,
)

P = [0.7, 0.2, 0.1]
Q = [0.2, 0.5, 0.3]


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def test_kl_value_and_direction_match_hand_computation():
    p_logits, q_logits = torch.tensor([P]).log(), torch.tensor([Q]).log()
    assert kl_divergence(p_logits, q_logits).item() == pytest.approx(_kl(P, Q), rel=1e-5)
    assert _kl(P, Q) != pytest.approx(_kl(Q, P), rel=1e-2)  # the direction matters on this example
    assert kl_divergence(q_logits, p_logits).item() == pytest.approx(_kl(Q, P), rel=1e-5)


def test_kl_is_batchmean_and_scaled_by_t_squared():
    logits_p = torch.tensor([P, Q]).log()
    logits_q = torch.tensor([Q, [1 / 3] * 3]).log()
    expected = (_kl(P, Q) + _kl(Q, [1 / 3] * 3)) / 2
    assert kl_divergence(logits_p, logits_q).item() == pytest.approx(expected, rel=1e-5)
    t = 2.0
    soft = lambda row: [math.exp(math.log(x) / t) for x in row]  # noqa: E731
    norm = lambda row: [x / sum(row) for x in row]  # noqa: E731
    p2, q2 = norm(soft(P)), norm(soft(Q))
    got = kl_divergence(torch.tensor([P]).log(), torch.tensor([Q]).log(), temperature=t).item()
    assert got == pytest.approx(t**2 * _kl(p2, q2), rel=1e-5)


def test_vsd_sends_no_gradient_into_the_teacher():
    v = torch.randn(4, 5, requires_grad=True)
    z = torch.randn(4, 5, requires_grad=True)
    loss = vsd(v, z)
    assert loss.item() == pytest.approx(kl_divergence(v.detach(), z).item())
    loss.backward()
    assert v.grad is None
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_vcd_crosses_views_and_detaches_both_teachers():
    va, za, vb, zb = (torch.randn(3, 6, requires_grad=True) for _ in range(4))
    loss = vcd(va, za, vb, zb)
    expected = 0.5 * (kl_divergence(vb.detach(), za) + kl_divergence(va.detach(), zb))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert va.grad is None and vb.grad is None
    assert za.grad.abs().sum() > 0 and zb.grad.abs().sum() > 0


def test_js_symmetric_bounded_and_zero_for_equal_inputs():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        a, b = torch.randn(6, 7, generator=g) * 3, torch.randn(6, 7, generator=g) * 3
        js_ab, js_ba = js_divergence(a, b), js_divergence(b, a)
        assert js_ab.item() == pytest.approx(js_ba.item(), rel=1e-6)
        assert 0.0 < js_ab.item() <= math.log(2)
        assert js_divergence(a, a).item() == pytest.approx(0.0, abs=1e-7)
    # disjoint supports reach the bound ln 2
    far_a, far_b = torch.tensor([[50.0, 0.0]]), torch.tensor([[0.0, 50.0]])
    assert js_divergence(far_a, far_b).item() == pytest.approx(math.log(2), rel=1e-6)
    # the value of the formula: 1/2 KL(p||m) + 1/2 KL(q||m)
    m = [(x + y) / 2 for x, y in zip(P, Q, strict=True)]
    expected = 0.5 * _kl(P, m) + 0.5 * _kl(Q, m)
    assert js_divergence(torch.tensor([P]).log(), torch.tensor([Q]).log()).item() == pytest.approx(expected, rel=1e-5)


def test_vml_trains_both_sides():
    a, b = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    vml(a, b).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


def test_gaussian_kl_matches_torch_distributions():
    mu, std = torch.randn(5, 8), torch.rand(5, 8) + 0.1
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, std), torch.distributions.Normal(torch.zeros(8), torch.ones(8))
    ).sum(dim=1).mean()
    assert gaussian_kl_to_standard_normal(mu, std).item() == pytest.approx(expected.item(), rel=1e-5)
    assert gaussian_kl_to_standard_normal(torch.zeros(2, 3), torch.ones(2, 3)).item() == pytest.approx(0.0, abs=1e-7)


def test_released_kl_div_reproduces_the_released_numerics():
    # released_code.md section 2: (1/BC) sum p_z (log p_z - p_v), student as target, mean over B*C
    b, c = 4, 395
    g = torch.Generator().manual_seed(1)
    v, z = torch.randn(b, c, generator=g), torch.randn(b, c, generator=g, requires_grad=True)
    p_v, p_z = F.softmax(v, dim=1), F.softmax(z, dim=1)
    expected = (p_z * (p_z.log() - p_v)).sum() / (b * c)
    got = released_kl_div(v, z)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert -(math.log(c) + 1) / c <= got.item() < 0  # negative, bounded below as documented
    assert got.item() != pytest.approx(kl_divergence(v, z).item(), rel=1e-2)
    v.requires_grad_(True)
    released_kl_div(v, z).backward()
    assert v.grad is None and z.grad.abs().sum() > 0
    assert vsd(v, z, numerics="released").item() == pytest.approx(expected.item(), rel=1e-5)


def test_released_vcd_has_no_temperature_but_released_vsd_has():
    """Release (trainers.py): VSD = kl_div(softmax(v / T), softmax(z / T)), VCD = 1/2 kl_div(softmax(v_b),
    softmax(z_a)) + 1/2 kl_div(softmax(v_a), softmax(z_b)), with kl_div(input=p_t, target=p_s, 'mean') =
    (1/BC) sum p_s (log p_s - p_t)."""
    b, c, t = 3, 5, 4.0
    g = torch.Generator().manual_seed(2)
    va, za, vb, zb = (torch.randn(b, c, generator=g) * 3 for _ in range(4))

    def kl_div_mean(teacher, student, temp=1.0):
        p_t, p_s = F.softmax(teacher / temp, dim=1), F.softmax(student / temp, dim=1)
        return (p_s * (p_s.log() - p_t)).sum() / (b * c)

    expected_vcd = 0.5 * kl_div_mean(vb, za) + 0.5 * kl_div_mean(va, zb)
    assert vcd(va, za, vb, zb, t, "released").item() == pytest.approx(expected_vcd.item(), rel=1e-5)
    assert vcd(va, za, vb, zb, t, "released").item() == pytest.approx(vcd(va, za, vb, zb, 1.0, "released").item())
    assert kl_div_mean(vb, za, t).item() != pytest.approx(kl_div_mean(vb, za).item(), rel=1e-2)  # T would matter
    assert vsd(va, za, t, "released").item() == pytest.approx(kl_div_mean(va, za, t).item(), rel=1e-5)
    # the corrected numerics keep T on both (with T^2)
    assert vcd(va, za, vb, zb, t).item() == pytest.approx(
        0.5 * (kl_divergence(vb, za, t) + kl_divergence(va, zb, t)).item(), rel=1e-6)


def test_cross_entropy_with_label_smoothing_formula():
    logits, labels, eps = torch.randn(3, 5), torch.tensor([0, 3, 4]), 0.1
    q = torch.full((3, 5), eps / 5)
    q[torch.arange(3), labels] += 1 - eps
    expected = -(q * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    assert cross_entropy(logits, labels, eps).item() == pytest.approx(expected.item(), rel=1e-6)


def test_sinkhorn_cml_plan_and_cost():
    from vireid.losses.sinkhorn import sinkhorn_cml

    a = torch.randn(5, 7, requires_grad=True)
    # identical clouds: the optimal plan is the identity matching, cost ~ 0
    assert sinkhorn_cml(a, a.detach(), eps=0.01, threshold=1e-6, max_iter=500).item() == pytest.approx(0.0, abs=1e-3)
    # a permuted copy is matched back: still ~ 0, far below the cost of the uniform plan
    b = a.detach()[torch.tensor([2, 0, 4, 1, 3])]
    cost = sinkhorn_cml(a, b, eps=0.01, threshold=1e-6, max_iter=500)
    p, q = F.softmax(a, dim=1), F.softmax(b, dim=1)
    uniform = ((p[:, None] - q[None]) ** 2).sum(-1).mean()
    assert cost.item() < 0.05 * uniform.item()
    cost.backward()
    assert torch.isfinite(a.grad).all()
