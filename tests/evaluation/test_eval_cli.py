"""`vireid evaluate` end to end on small generated trees, and its one-line errors (exit status 2)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from eval_trees import (
    OFFICIAL_IDS,
    official_counts,
    one_hot_features,
    regdb_pid,
    sysu_pid,
    write_regdb,
    write_sysu,
)

from vireid.cli.main import main
from vireid.evaluation.protocols import evaluate_sysu, regdb_test_records, sysu_test_records
from vireid.features.store import load_features, save_features


@pytest.fixture(scope="module")
def sysu(tmp_path_factory):
    root = write_sysu(tmp_path_factory.mktemp("sysu"), official_counts(), OFFICIAL_IDS, empty=[(1, 21), (5, 31)])
    paths = [r.path for r in sysu_test_records(root)]
    feats = one_hot_features(paths, sysu_pid) + 0.7 * np.random.default_rng(0).standard_normal((len(paths), 3))
    save_features(root.parent / "sysu.npz", paths, feats)
    return root, root.parent / "sysu.npz"


@pytest.fixture(scope="module")
def regdb(tmp_path_factory):
    root = write_regdb(tmp_path_factory.mktemp("regdb"), (1, 2, 20, 73), trials=(1, 2))
    for t in (1, 2):
        paths = [r.path for r in regdb_test_records(root, t)]
        feats = one_hot_features(paths, regdb_pid) + 0.5 * np.random.default_rng(t).standard_normal((len(paths), 4))
        save_features(root.parent / f"regdb_{t}.npz", paths, feats)
    return root, root.parent


def run(capsys, *argv):
    status = main(["evaluate", *map(str, argv)])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_sysu_official_end_to_end(sysu, capsys, tmp_path):
    root, feats = sysu
    out_json = tmp_path / "r" / "sysu.json"
    before = sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*"))
    status, out, err = run(capsys, "--dataset", "sysu", "--root", root, "--features", feats, "--mode", "all",
                           "--shots", "1", "--json", out_json)
    assert status == 0 and err == ""
    assert sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*")) == before  # the dataset is never written
    assert "Rank-1" in out and "mINP" in out and "±" in out and "sampling=official" in out
    d = json.loads(out_json.read_text())
    # Gallery: one image per (id, camera) with images: id 6 in cams 1,2,4,5; id 21 in 4,5; id 31 in 4.
    n_ir = sum(n for (c, _), n in official_counts().items() if c in (3, 6))
    assert d["num_gallery"] == 7 and d["num_query"] == n_ir and len(d["per_trial"]) == 10
    api = evaluate_sysu(root, load_features(feats), mode="all", shots=1).to_dict()
    assert d == json.loads(json.dumps(api))
    assert {"rank1", "rank5", "rank10", "rank20", "mAP", "mINP", "std", "per_trial", "settings"} <= set(d)
    assert 0 < d["mAP"] <= 100 and d["std"]["rank1"] >= 0


def test_sysu_seeded_multishot_indoor(sysu, capsys, tmp_path):
    root, feats = sysu
    status, out, _ = run(capsys, "--dataset", "sysu", "--root", root, "--features", feats, "--mode", "indoor",
                         "--shots", "10", "--sampling", "seeded", "--no-normalize", "--json", tmp_path / "s.json")
    d = json.loads((tmp_path / "s.json").read_text())
    assert status == 0 and d["num_gallery"] == 20 and d["settings"]["normalize"] is False
    assert d["settings"]["sampling"] == "seeded" and d["settings"]["mode"] == "indoor"


def test_regdb_end_to_end(regdb, capsys, tmp_path):
    root, folder = regdb
    status, out, _ = run(capsys, "--dataset", "regdb", "--root", root, "--features", folder / "regdb_1.npz",
                         "--direction", "t2v", "--trial", "1", "--json", tmp_path / "r.json")
    d = json.loads((tmp_path / "r.json").read_text())
    assert status == 0 and "RegDB" in out and d["num_query"] == 8 and d["num_gallery"] == 12
    assert d["settings"]["direction"] == "t2v" and [t["trial"] for t in d["per_trial"]] == [1]
    pattern = str(folder / "regdb_{trial}.npz")
    status, out, _ = run(capsys, "--dataset", "regdb", "--root", root, "--features", pattern, "--trial", "2",
                         "--json", tmp_path / "r2.json")
    assert status == 0 and json.loads((tmp_path / "r2.json").read_text())["per_trial"][0]["trial"] == 2


def _bad_npz(path, paths, feats):
    np.savez(path, paths=np.array(paths), feats=feats)
    return path


def test_bad_inputs_exit_2_with_one_line(sysu, regdb, capsys, tmp_path):
    sroot, sfeats = sysu
    rroot, rfolder = regdb
    rfeats = rfolder / "regdb_1.npz"
    fs = load_features(sfeats)
    few = [i for i, p in enumerate(fs.paths) if not re.match(r"cam3/0006/000[1-7]", p)]
    nan = fs.feats.copy()
    nan[5, 0] = np.nan
    bad_idx = write_regdb(tmp_path / "bad_idx", (1, 2))
    with open(bad_idx / "idx" / "test_thermal_1.txt", "a") as fh:
        fh.write("Thermal/2/x.bmp\n")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00garbage")
    cases = [
        (["--dataset", "sysu", "--root", tmp_path / "nowhere", "--features", sfeats], "does not exist"),
        (["--dataset", "sysu", "--root", rroot, "--features", rfeats], "looks like a RegDB tree"),
        (["--dataset", "regdb", "--root", sroot, "--features", sfeats], "looks like a SYSU-MM01 tree"),
        (["--dataset", "sysu", "--root", sroot, "--features",
          _bad_npz(tmp_path / "few.npz", [fs.paths[i] for i in few], fs.feats[few])], "lacks 7 of the"),
        (["--dataset", "sysu", "--root", sroot, "--features", _bad_npz(tmp_path / "nan.npz", fs.paths, nan)],
         "NaN or inf"),
        (["--dataset", "regdb", "--root", bad_idx, "--features", rfeats, "--trial", "1"], "test_thermal_1.txt:5:"),
        (["--dataset", "sysu", "--root", sroot, "--features", junk], "not a readable .npz"),
        (["--dataset", "regdb", "--root", rroot, "--features", rfeats], "test_visible_3.txt"),  # all 10 trials
    ]
    for argv, match in cases:
        status, out, err = run(capsys, *argv)
        assert status == 2, (argv, err)
        assert match in err and err.count("\n") == 1 and err.startswith("vireid evaluate: error:"), err


def test_official_misfit_tree_suggests_seeded(capsys, tmp_path):
    root = write_sysu(tmp_path / "synth", {(1, 1): 3, (2, 1): 2, (4, 2): 4, (3, 1): 2, (6, 2): 2}, [1, 2])
    paths = [r.path for r in sysu_test_records(root)]
    save_features(tmp_path / "f.npz", paths, one_hot_features(paths, sysu_pid))
    status, _, err = run(capsys, "--dataset", "sysu", "--root", root, "--features", tmp_path / "f.npz")
    assert status == 2 and "--sampling seeded" in err
    status, out, _ = run(capsys, "--dataset", "sysu", "--root", root, "--features", tmp_path / "f.npz",
                         "--sampling", "seeded")
    assert status == 0 and "100.00" in out


def test_console_exit_status(tmp_path):
    """The real process: exit status 2 and one line on stderr, no traceback."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "vireid", "evaluate", "--dataset", "regdb", "--root", str(tmp_path / "x"),
         "--features", str(tmp_path / "f.npz")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "RegDB root" in proc.stderr
