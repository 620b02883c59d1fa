"""Feature files: round trip, atomic write, validation with one-line messages."""

from __future__ import annotations

import numpy as np
import pytest

from vireid.errors import FeaturesError
from vireid.features.store import FeatureSet, load_features, save_features


def test_round_trip_and_lookup(tmp_path):
    feats = np.arange(12, dtype=np.float64).reshape(4, 3)
    paths = ["cam1/0001/0001.jpg", "cam1/0001/0002.jpg", "cam3/0001/0001.jpg", "Visible/2/a.bmp"]
    out = tmp_path / "sub" / "f.npz"
    save_features(out, paths, feats)
    assert [p.name for p in out.parent.iterdir()] == ["f.npz"]  # no temporary file left behind
    fs = load_features(out)
    assert fs.paths == paths and fs.feats.dtype == np.float32 and fs.dim == 3 and len(fs) == 4
    np.testing.assert_array_equal(fs.lookup([paths[2], paths[0]]), feats[[2, 0]].astype(np.float32))


def test_windows_separators_are_normalised():
    fs = FeatureSet(["cam1\\0001\\0001.jpg"], np.zeros((1, 2)))
    assert fs.paths == ["cam1/0001/0001.jpg"]


def test_missing_paths_are_counted_and_named():
    fs = FeatureSet([f"cam1/0001/{i:04d}.jpg" for i in range(3)], np.zeros((3, 2)), source="F.npz")
    wanted = [f"cam1/0001/{i:04d}.jpg" for i in range(8)]
    with pytest.raises(FeaturesError) as err:
        fs.lookup(wanted, "gallery images")
    msg = str(err.value)
    assert "F.npz lacks 5 of the 8 gallery images" in msg and "cam1/0001/0003.jpg" in msg and "\n" not in msg


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"paths": np.array(["a", "b"]), "feats": np.array([[0.0], [np.nan]])}, "1 feature rows contain NaN or inf .first: b"),
        ({"paths": np.array(["a", "b"])}, "missing feats"),
        ({"paths": np.array(["a", "b"]), "feats": np.zeros((3, 2))}, "2 paths but 3 feature rows"),
        ({"paths": np.array(["a", "a"]), "feats": np.zeros((2, 2))}, "appears more than once"),
        ({"paths": np.array([1, 2]), "feats": np.zeros((2, 2))}, "1-D array of strings"),
        ({"paths": np.array(["a"]), "feats": np.zeros(3)}, "2-D array"),
    ],
)
def test_malformed_files(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(FeaturesError, match=match):
        load_features(path)


def test_unreadable_files(tmp_path):
    with pytest.raises(FeaturesError, match="does not exist"):
        load_features(tmp_path / "none.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file")
    with pytest.raises(FeaturesError, match="not a readable .npz"):
        load_features(junk)
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, paths=np.array(["a", None], dtype=object), feats=np.zeros((2, 2)))
    with pytest.raises(FeaturesError, match="not a readable .npz"):
        load_features(pickled)


def test_failed_save_leaves_previous_file(tmp_path):
    out = tmp_path / "f.npz"
    save_features(out, ["a"], np.ones((1, 2)))
    with pytest.raises(FeaturesError):
        save_features(out, ["a", "b"], np.ones((1, 2)))
    assert load_features(out).paths == ["a"]
