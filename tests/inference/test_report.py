"""The HTML report: it parses, every file it references exists in its folder, it holds what the issue
lists; `vireid test --report` and its refusal of a folder that is not a report."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from vireid.cli.main import main
from vireid.evaluation.protocols import evaluate_sysu
from vireid.visualization.report import MethodResults, sysu_split, write_report


class _Refs(HTMLParser):
    """Every src/href of the page, and the text, and whether tags balance."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.text: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]
        if tag not in ("meta", "img", "br", "link"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-3:])
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def check_page(page: Path) -> _Refs:
    """Parse ``page``; assert it is balanced and every file it references exists beside it."""
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    assert parser.stack == []
    assert parser.refs
    for ref in parser.refs:
        assert "://" not in ref and not ref.startswith("/"), ref  # self-contained: relative files only
        assert (page.parent / ref).is_file(), ref
    return parser


@pytest.fixture(scope="module")
def two_methods(ckpt, ckpt_concat, synth_root, extracted):
    methods = []
    for name, path in (("shared", ckpt), ("concat", ckpt_concat)):
        fs = extracted(path)
        results = {f"{mode}-search": evaluate_sysu(synth_root, fs, mode=mode, sampling="seeded")
                   for mode in ("all", "indoor")}
        methods.append(MethodResults(name, results, features=fs, feature="z", checkpoint=str(path)))
    return methods


def test_report_of_several_methods(two_methods, synth_root, tmp_path):
    out = tmp_path / "report"
    page = write_report(out, two_methods, split=sysu_split(synth_root, "all", 1, "seeded"), root=synth_root,
                        title="two methods", info={"note": "<&>"}, num_samples=2, num_worst=2)
    parser = check_page(page)
    text = " ".join(parser.text)
    assert "two methods" in text and "<&>" in text  # escaped in the HTML, read back as text
    for heading in ("Results", "CMC curves", "all-search", "indoor-search", "Ranked lists: sample queries",
                    "Ranked lists: worst queries"):
        assert heading in text
    assert text.count(": every trial (") == 4  # per-trial tables: 2 methods x 2 settings
    refs = set(parser.refs)
    assert "cmc.png" in refs and {"tsne_shared.png", "tsne_concat.png"} <= refs
    ranked = sorted(r for r in refs if r.startswith("ranked/"))
    assert len(ranked) == 8  # (2 samples + 2 worst) x 2 methods
    # The same sample queries for every method: compare the pictures' titles via the file set sizes.
    assert {r.split("_", 1)[0] for r in ranked} == {"ranked/shared", "ranked/concat"}
    # Writing again into the same report folder works; a folder with other files is refused.
    write_report(out, two_methods[:1])
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("keep")
    with pytest.raises(Exception, match="not a vireid report"):
        write_report(other, two_methods)
    assert (other / "keep.txt").read_text() == "keep"


def test_vireid_test_report_with_training_curves(ckpt, synth_root, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(ckpt, run / "model.pt")
    epochs = [{"kind": "epoch", "epoch": e, "lr": 0.1 / e, "loss": 3.0 / e, "ce": 2.0 / e,
               "val": {"rank1": 10.0 * e, "mAP": 8.0 * e, "mINP": 5.0 * e}} for e in (1, 2)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in epochs))
    out = tmp_path / "rep"
    assert main(["test", "--checkpoint", str(run), "--dataset", "sysu", "--root", str(synth_root), "--sampling",
                 "seeded", "--device", "cpu", "--report", str(out)]) == 0
    assert "report written to" in capsys.readouterr().out
    parser = check_page(out / "index.html")
    assert {"cmc.png", "curves_run.png", "tsne_run.png"} <= set(parser.refs)
    # The report folder must be new, empty, or a previous report: checked before any extraction.
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "thesis.tex").write_text("x")
    assert main(["test", "--checkpoint", str(run), "--dataset", "sysu", "--root", str(synth_root), "--sampling",
                 "seeded", "--device", "cpu", "--report", str(taken)]) == 2
    err = capsys.readouterr().err
    assert "not a vireid report" in err and "extract" not in err
    assert (taken / "thesis.tex").read_text() == "x"
    # A previous report is replaced.
    assert main(["test", "--checkpoint", str(run), "--dataset", "sysu", "--root", str(synth_root), "--sampling",
                 "seeded", "--device", "cpu", "--report", str(out), "--mode", "indoor"]) == 0
    check_page(out / "index.html")
