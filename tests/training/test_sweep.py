"""`vireid sweep`: the interval arithmetic against a hand computation, the summary, resume, bad input."""

from __future__ import annotations

import json
import math

import pytest

import vireid.sweep as sweep_mod
from vireid.cli.main import main
from vireid.evaluation.statistics import paired_difference, spread
from vireid.sweep import SweepError, Variant, format_table, run_sweep, summarize


def test_paired_difference_matches_a_hand_computation():
    # differences 1, 2, 3: mean 2, sample sd 1, t(0.975, 2 dof) = 4.302653 -> half width 4.302653 / sqrt(3)
    d = paired_difference([10.0, 12.0, 14.0], [9.0, 10.0, 11.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert d.mean == pytest.approx(2.0)
    assert d.std == pytest.approx(1.0)
    assert (d.low, d.high) == pytest.approx((2.0 - half, 2.0 + half))
    assert d.n == 3 and not d.excludes_zero  # [-0.48, 4.48] straddles 0
    tight = paired_difference([11.0, 12.1, 13.0], [10.0, 11.0, 12.0])  # 1.0, 1.1, 1.0: beyond noise
    assert tight.excludes_zero and tight.low > 0
    single = paired_difference([3.0], [1.0])
    assert single.mean == 2.0 and math.isnan(single.low) and not single.excludes_zero
    assert spread([1.0, 2.0, 3.0]).std == pytest.approx(1.0)
    assert spread([5.0]).std == 0.0
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])


def _record(variant: str, seed: int, all_map: float, indoor_map: float) -> dict:
    res = {"all": {"rank1": all_map / 2, "mAP": all_map, "mINP": all_map / 3},
           "indoor": {"rank1": indoor_map / 2, "mAP": indoor_map, "mINP": indoor_map / 3}}
    return {"variant": variant, "seed": seed, "dataset": "sysu", "results": res, "validation": {"mAP": 1.0 + seed},
            "train_seconds": 1.0}


def test_summary_pairs_seeds_and_formats_a_table():
    runs = [_record("vd", 0, 20.0, 30.0), _record("vd", 1, 22.0, 31.0), _record("vd", 2, 24.0, 35.0),
            _record("ib", 0, 19.0, 29.0), _record("ib", 1, 20.0, 30.0), _record("ib", 2, 21.0, 33.0)]
    s = summarize(runs, ["ib", "vd"], reference="ib")
    vd = s["variants"]["vd"]["all"]["mAP"]
    assert vd["per_seed"] == {0: 20.0, 1: 22.0, 2: 24.0}
    assert vd["mean"] == pytest.approx(22.0) and vd["std"] == pytest.approx(2.0)
    diff = vd["vs_reference"]  # paired differences 1, 2, 3 as in the hand computation above
    assert diff["mean"] == pytest.approx(2.0)
    assert diff["low"] == pytest.approx(2.0 - 4.302652729911275 / math.sqrt(3))
    assert "vs_reference" not in s["variants"]["ib"]["all"]["mAP"]
    table = format_table(s)
    assert "| vd | 3 |" in table and "+2.00 [-0.48, +4.48]" in table and "reference" in table


def test_variant_specs():
    v = Variant.parse("vsd: demo_vd loss.vcd_weight=0 loss.vml_weight=0")
    assert (v.name, v.config, v.overrides) == ("vsd", "demo_vd", ("loss.vcd_weight=0", "loss.vml_weight=0"))
    assert Variant.parse("demo_ib") == Variant("demo_ib", "demo_ib")
    with pytest.raises(SweepError):
        Variant.parse("name: loss.beta=1")


@pytest.mark.slow
def test_sweep_runs_evaluates_and_skips_finished_pairs(synth_sysu, tiny_overrides, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    variants = [Variant("vd", "sysu_vd"), Variant("ib", "sysu_ib")]
    extra = [*tiny_overrides, "train.epochs=1", "schedule.milestones=[1]"]
    first = run_sweep(variants, [0, 1], out, data_root=synth_sysu, overrides=extra, progress=False)
    assert len(first.runs) == 4 and not first.failed
    for v in ("vd", "ib"):
        for s in (0, 1):
            rec = json.loads((out / "runs" / v / f"seed_{s}" / "result.json").read_text())
            assert rec["seed"] == s and rec["resolved_config"]["train"]["seed"] == s
            assert rec["results"]["all"]["num_trials"] == 10 and 0 <= rec["results"]["indoor"]["mAP"] <= 100
    on_disk = json.loads((out / "sweep.json").read_text())
    assert on_disk["reference"] == "vd" and set(on_disk["variants"]) == {"vd", "ib"}
    assert (out / "table.md").read_text().startswith("### all") and (out / "sweep.png").stat().st_size > 0
    # different seeds train different models
    maps = on_disk["variants"]["vd"]["all"]["mAP"]["per_seed"]
    assert len(maps) == 2

    # a rerun trains nothing: every pair is finished
    calls = []
    monkeypatch.setattr(sweep_mod, "run_pair", lambda job: calls.append(job) or pytest.fail("re-trained"))
    again = run_sweep(variants, [0, 1], out, data_root=synth_sysu, overrides=extra, progress=False)
    assert calls == [] and again.summary["variants"] == first.summary["variants"]
    # a pair whose result is gone is the only one run again
    (out / "runs" / "ib" / "seed_1" / "result.json").unlink()
    monkeypatch.setattr(sweep_mod, "run_pair", lambda job: calls.append(job) or _record("ib", 1, 1.0, 1.0))
    run_sweep(variants, [0, 1], out, data_root=synth_sysu, overrides=extra, progress=False)
    assert [(c["name"], c["seed"]) for c in calls] == [("ib", 1)]


def test_sweep_bad_input_is_one_line_exit_2(tmp_path, capsys, synth_sysu):
    base = ["sweep", "--seeds", "0", "--data-root", str(synth_sysu), "--out", str(tmp_path / "s")]
    assert main([*base, "--configs", "sysu_vd", "--reference", "nope"]) == 2
    assert "--reference 'nope' is not one of the variants" in capsys.readouterr().err
    assert main([*base, "--configs", "no_such_recipe"]) == 2
    assert "neither a file nor a shipped recipe" in capsys.readouterr().err
    assert main([*base, "--configs", "sysu_vd", "sysu_vd"]) == 2
    assert "appears twice" in capsys.readouterr().err
    assert main([*base, "--configs", "sysu_vd", "model.nonsense=1"]) == 2
    assert "unknown key 'model.nonsense'" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    assert main(["sweep", "--seeds", "0", "--configs", "sysu_vd", "--data-root", str(synth_sysu),
                 "--out", str(tmp_path / "full")]) == 2
    assert "not a vireid sweep folder" in capsys.readouterr().err
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep"
