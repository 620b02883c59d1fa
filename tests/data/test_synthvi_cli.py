"""``vireid synth``: writes a dataset; bad options and unsafe targets give one line and exit status 2."""

from __future__ import annotations

from vireid.cli.main import main
from vireid.data.sysu import check_sysu_root, read_split_ids

SMALL = ["--ids", "3", "--height", "64", "--width", "32", "--quiet"]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("vireid synth: error:"), err
    return err


def test_synth_writes_then_refuses_a_non_empty_directory(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", "--out", str(out), *SMALL]) == 0
    check_sysu_root(out)
    before = sorted(p.as_posix() for p in out.rglob("*"))
    capsys.readouterr()
    assert main(["synth", "--out", str(out), *SMALL, "--seed", "1"]) == 2
    err = _error_line(capsys)
    assert "not empty" in err and "--overwrite" in err
    assert sorted(p.as_posix() for p in out.rglob("*")) == before
    assert main(["synth", "--out", str(out), *SMALL, "--seed", "1", "--overwrite", "--layout", "regdb"]) == 0
    assert (out / "idx").is_dir() and not (out / "cam1").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_overwrite_refuses_a_folder_synthvi_did_not_write(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["synth", "--out", str(out), *SMALL, "--overwrite"]) == 2
    assert "refusing" in _error_line(capsys)
    assert (out / "notes.txt").read_text() == "keep me" and len(list(out.iterdir())) == 1


def test_synth_into_an_existing_empty_directory(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["synth", "--out", str(out), *SMALL, "--layout", "regdb"]) == 0
    assert (out / "Visible").is_dir()


def test_bad_options_exit_2_with_one_line(tmp_path, capsys):
    for bad, word in ((["--layout", "market"], "layout"), (["--ids", "0"], "num_ids"),
                      (["--height", "4"], "height"), (["--nuisance", "9"], "nuisance"),
                      (["--train-fraction", "0.7", "--val-fraction", "0.4"], "train_fraction/val_fraction")):
        assert main(["synth", "--out", str(tmp_path / "x"), *SMALL, *bad]) == 2, bad
        assert word in _error_line(capsys)
    assert not (tmp_path / "x").exists()
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["synth", "--out", str(target), *SMALL]) == 2
    assert "not a directory" in _error_line(capsys)


def test_id_split_fractions_set_the_split_files(tmp_path):
    out = tmp_path / "split"
    assert main(["synth", "--out", str(out), "--ids", "20", "--height", "64", "--width", "32", "--quiet",
                 "--train-fraction", "0.5", "--val-fraction", "0.1"]) == 0
    train, val, test = (read_split_ids(out, split) for split in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (10, 2, 8)
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
