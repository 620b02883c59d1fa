"""Atomic writes: the target is replaced whole or not at all."""

import os

import pytest

from vireid.utils.io import atomic_path, atomic_write_json, atomic_write_text


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "result.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert target.read_text() == '{\n  "a": 2\n}\n'
    assert os.listdir(target.parent) == ["result.json"]


def test_a_failing_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "ckpt.pt"
    atomic_write_text(target, "old")
    with pytest.raises(OSError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise OSError("No space left on device")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def test_written_files_honour_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(previous)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o640


def test_output_dir_refusals_keep_the_users_files(tmp_path):
    from vireid.utils.io import check_output_dir

    def check(path, overwrite):
        check_output_dir(path, overwrite=overwrite, ours=lambda p: (p / "MARK").is_file(), what="--out",
                         kind="ours (no MARK)", error=ValueError)

    check(tmp_path / "new", overwrite=False)          # a new folder is fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        check(tmp_path / "file", overwrite=True)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty; choose a new one or pass --overwrite"):
        check(theirs, overwrite=False)
    with pytest.raises(ValueError, match="refusing to overwrite .*not ours"):
        check(theirs, overwrite=True)
    (theirs / "MARK").write_text("")
    check(theirs, overwrite=True)                      # ours: may be replaced
    assert (theirs / "keep.txt").read_text() == "x"    # the check itself never deletes


def test_a_device_error_is_a_one_line_output_error_and_keeps_the_file(tmp_path):
    import errno

    from vireid.errors import OutputError

    target = tmp_path / "result.json"
    atomic_write_text(target, "old")
    with pytest.raises(OutputError, match=r"could not write result file .*result.json: No space left on device; "
                                          r"the previous result file is intact"), \
            atomic_path(target, what="result file") as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["result.json"]
    with pytest.raises(OutputError, match="nothing was written"), atomic_path(tmp_path / "new.json"):
        raise OSError(errno.EROFS, "Read-only file system")
    assert os.listdir(tmp_path) == ["result.json"]


def test_a_folder_that_cannot_be_created_is_an_output_error(tmp_path):
    from vireid.errors import OutputError

    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"could not write .*file/out.json"), \
            atomic_path(tmp_path / "file" / "out.json"):
        pass
