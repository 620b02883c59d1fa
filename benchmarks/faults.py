"""Fault injection, the long version: kill -9 at many random points, then check that nothing was lost.

Each trial trains the tiny recipe of tests/faults on a tiny SynthVI tree into a fresh run directory with a
fresh decoded-image cache, kills the process with SIGKILL at a random point (1 to 3 kills in a row, each
``--resume`` killed again), then runs ``vireid train --resume`` to the end and compares the result with an
uninterrupted run: bit-identical weights (last.pt and model.pt), the same metrics log (without timings),
no temporary or lock file left. Kill points, drawn with ``--seed``:

    outside   ``kill -9`` from this process after a random delay (anywhere: start-up, cache, step, save, ...)
    save      inside ``torch.save`` of last.pt or model.pt, after a random number of bytes
    step      after a random optimisation step
    eval      at a random validation image
    cache     at a random image of the decoded-image cache build
    extract   ``vireid extract`` at a random image (the features file: absent or the previous one, intact)
    synth     ``vireid synth`` at a random image (no dataset folder; a rerun gives the same files)

The inner kill points use tests/faults/killer.py (run by path). Prints the outcome counts per kind and
exits 1 if any trial lost anything. Run by hand (about 10 minutes of CPU for 60 kills):

    python benchmarks/faults.py [--kills 60] [--seed 0] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "faults"))
from faultlib import TINY, cli_env, vireid_cmd  # noqa: E402  the fault tests' recipe and commands, spelled once

SYNTH = ["--ids", "6", "--height", "32", "--width", "16", "--seed", "3"]
KINDS = ("outside", "save", "step", "eval", "cache", "extract", "synth")
WEIGHTS = (3, 3, 2, 2, 1, 1, 1)  # outside and save kills are the ones the issue asks about most
KILLED = -signal.SIGKILL


def vireid(args: list[str], cache: Path, kill: str | None = None, delay: float | None = None) -> tuple[int, str]:
    """Run a vireid command; ``kill``: a killer.py spec; ``delay``: kill -9 it from here after that many s."""
    cmd = vireid_cmd(*args, kill=(kill,) if kill else ())
    proc = subprocess.Popen(cmd, env=cli_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if delay is not None:
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=1800)
    return proc.returncode, err


def train_args(root: Path, run: Path, resume: bool = False) -> list[str]:
    return ["train", "--config", "sysu_vd", *TINY, "--data-root", str(root), "--output", str(run),
            *(["--resume"] if resume else [])]


def state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def log(run: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["kind"], r["epoch"], r.get("step"), r["loss"], r.get("val")) for r in rows]


class Reference:
    """The uninterrupted runs (train, extract, synth), and the sizes the kill points are drawn from."""

    def __init__(self, work: Path, root: Path) -> None:
        from vireid.data.training_sets import load_training_set

        base, cache = work / "reference", work / "reference" / "cache"
        self.root, self.run = root, base / "run"
        start = time.perf_counter()
        code, err = vireid(train_args(root, self.run), cache)
        if code != 0:
            raise SystemExit(f"the reference run failed:\n{err}")
        self.seconds = time.perf_counter() - start
        self.last, self.model, self.log = state(self.run / "last.pt"), state(self.run / "model.pt"), log(self.run)
        self.files = sorted(p.name for p in self.run.iterdir())
        self.sizes = {n: (self.run / n).stat().st_size for n in ("last.pt", "model.pt")}
        ts = load_training_set("sysu", root, val_split="official")
        self.train_images, self.eval_images = len(ts.records), len(ts.val_query) + len(ts.val_gallery)

        self.features = base / "feats.npz"
        code, err = vireid(["extract", "--checkpoint", str(self.run), "--dataset", "sysu", "--root", str(root),
                            "--out", str(self.features), "--device", "cpu"], cache)
        if code != 0:
            raise SystemExit(f"the reference extraction failed:\n{err}")
        with np.load(self.features) as data:
            self.test_images = len(data["paths"])

        self.synth = base / "synth"
        code, err = vireid(["synth", "--out", str(self.synth), *SYNTH], cache)
        if code != 0:
            raise SystemExit(f"the reference synth failed:\n{err}")
        self.synth_files = sorted(str(p.relative_to(self.synth)) for p in self.synth.rglob("*") if p.is_file())
        self.synth_images = sum(1 for f in self.synth_files if f.endswith(".jpg"))

    def checks(self, run: Path) -> list[str]:
        """What differs from the uninterrupted run (empty: nothing was lost)."""
        problems = []
        if not same(state(run / "last.pt"), self.last):
            problems.append("last.pt weights differ")
        if not same(state(run / "model.pt"), self.model):
            problems.append("model.pt weights differ")
        if log(run) != self.log:
            problems.append("metrics log differs")
        files = sorted(p.name for p in run.iterdir())
        if files != self.files:
            problems.append(f"files differ: {sorted(set(files) ^ set(self.files))}")
        return problems


def draw(kind: str, rng: random.Random, ref: Reference) -> tuple[str | None, float | None]:
    """A killer.py spec or a delay for ``kind``."""
    if kind == "outside":
        return None, rng.uniform(0.0, ref.seconds)
    if kind == "save":
        name = rng.choice(["last.pt", "last.pt", "model.pt"])
        n = rng.randint(1, 2) if name == "last.pt" else 1
        return f"save={name}:{n}:{rng.randrange(1, ref.sizes[name])}", None
    if kind == "step":
        return f"step={rng.randint(1, 6)}", None
    if kind == "eval":
        return f"evalimage={rng.randint(1, 2 * ref.eval_images)}", None
    if kind == "cache":
        return f"cache={rng.randint(1, ref.train_images)}", None
    raise ValueError(kind)


def train_trial(rng: random.Random, ref: Reference, work: Path, first_kind: str) -> tuple[list[dict], list[str]]:
    """Kill a training run 1-3 times (the first kill of ``first_kind``), resume it to the end, check it."""
    run, cache = work / "run", work / "cache"
    kills, kinds = [], [first_kind] + [rng.choice(["outside", "save", "step", "eval"]) for _ in range(2)]
    for i, kind in enumerate(kinds[: rng.randint(1, 3)]):
        spec, delay = draw(kind, rng, ref)
        code, err = vireid(train_args(ref.root, run, resume=i > 0), cache, spec, delay)
        half = [p.name for p in run.glob(".*.tmp")] if run.is_dir() else []
        outcome = {KILLED: "killed", 0: "finished before the kill"}.get(code, f"exit {code}")
        kills.append({"kind": kind, "point": spec or f"after {delay:.2f} s", "outcome": outcome,
                      "afresh": "starting afresh" in err, "half_written": bool(half),
                      "resumable": (run / "last.pt").is_file(), "error": err.strip()[-300:] if code > 0 else ""})
    code, err = vireid(train_args(ref.root, run, resume=True), cache)
    if code != 0:
        return kills, [f"the final --resume failed: {err.strip()[-300:]}"]
    problems = ref.checks(run)
    if ("starting afresh" in err) == kills[-1]["resumable"]:
        problems.append("the final --resume did not resume exactly when a checkpoint was there")
    return kills, problems


def extract_trial(rng: random.Random, ref: Reference, work: Path) -> tuple[list[dict], list[str]]:
    out = work / "feats.npz"
    args = ["extract", "--checkpoint", str(ref.run), "--dataset", "sysu", "--root", str(ref.root),
            "--out", str(out), "--device", "cpu"]
    previous = rng.random() < 0.5
    if previous:
        shutil.copy(ref.features, out)
    spec = f"evalimage={rng.randint(1, ref.test_images)}"
    code, _ = vireid(args, work / "cache", spec)
    problems = []
    if previous and out.read_bytes() != ref.features.read_bytes():
        problems.append("the previous features file changed")
    if not previous and out.exists():
        problems.append("a features file appeared from a killed extraction")
    leftovers = [p.name for p in work.iterdir() if p.name.endswith(".tmp")]
    code2, err = vireid(args, work / "cache")
    if code2 != 0 or out.read_bytes() != ref.features.read_bytes():
        problems.append(f"the rerun did not give the reference features ({err.strip()[-200:]})")
    kills = [{"kind": "extract", "point": spec, "outcome": "killed" if code == KILLED else f"exit {code}",
              "afresh": False, "half_written": bool(leftovers), "resumable": True, "error": ""}]
    return kills, problems


def synth_trial(rng: random.Random, ref: Reference, work: Path) -> tuple[list[dict], list[str]]:
    out = work / "synth"
    opts = SYNTH
    spec = f"synth={rng.randint(1, ref.synth_images - 1)}"
    code, _ = vireid(["synth", "--out", str(out), *opts], work / "cache", spec)
    problems = ["a dataset folder exists after a killed synth"] if out.exists() else []
    code2, err = vireid(["synth", "--out", str(out), *opts], work / "cache")
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) if out.is_dir() else []
    if code2 != 0 or files != ref.synth_files or any(
            (out / f).read_bytes() != (ref.synth / f).read_bytes() for f in files if f != "synthvi.json"):
        problems.append(f"the rerun did not give the reference tree ({err.strip()[-200:]})")
    kills = [{"kind": "synth", "point": spec, "outcome": "killed" if code == KILLED else f"exit {code}",
              "afresh": False, "half_written": False, "resumable": True, "error": ""}]
    return kills, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=60, help="kill points in all (at least this many)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", help="keep everything here (default: a temporary folder, removed)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="vireid-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        from vireid.data.synthvi import generate

        root = generate(work / "sysu", layout="sysu", num_ids=12, seed=0, height=32, width=16, min_images=2,
                        max_images=3)
        ref = Reference(work, root)
        print(f"reference: {ref.seconds:.1f} s per run, {ref.train_images} training images, "
              f"{ref.eval_images} validation images, last.pt {ref.sizes['last.pt']} B, "
              f"model.pt {ref.sizes['model.pt']} B", flush=True)

        rng = random.Random(args.seed)
        table: dict[str, Counter] = defaultdict(Counter)
        failures, points, trial = [], 0, 0
        while points < args.kills:
            kind = rng.choices(KINDS, WEIGHTS)[0]
            trial_dir = work / f"trial_{trial:03d}"
            trial_dir.mkdir()
            if kind == "extract":
                kills, problems = extract_trial(rng, ref, trial_dir)
            elif kind == "synth":
                kills, problems = synth_trial(rng, ref, trial_dir)
            else:
                kills, problems = train_trial(rng, ref, trial_dir, kind)
            for k in kills:
                row = table[k["kind"]]
                row["kill points"] += 1
                row[k["outcome"]] += 1
                row["resumed from a checkpoint" if k["resumable"] else "started afresh on --resume"] += (
                    k["kind"] not in ("extract", "synth"))
                row["half-written file left by the kill"] += k["half_written"]
                if k["error"]:
                    problems.append(f"{k['kind']} {k['point']}: {k['error']}")
            table[kills[0]["kind"]]["trials with everything identical" if not problems else "trials LOST"] += 1
            if problems:
                failures.append((trial, [k["point"] for k in kills], problems))
            points += len(kills)
            print(f"trial {trial:3d}: " + ", ".join(f"{k['kind']} {k['point']} -> {k['outcome']}" for k in kills)
                  + ("  OK" if not problems else f"  LOST: {problems}"), flush=True)
            if not problems and not args.workdir:
                shutil.rmtree(trial_dir)
            trial += 1
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    columns = ["kill points", "killed", "finished before the kill", "resumed from a checkpoint",
               "started afresh on --resume", "half-written file left by the kill", "trials with everything identical",
               "trials LOST"]
    print(f"\n{points} kill points in {trial} trials, seed {args.seed}, "
          f"{time.perf_counter() - started:.0f} s\n")
    print("| kind | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for kind in KINDS:
        if kind in table:
            print(f"| {kind} | " + " | ".join(str(table[kind][c]) for c in columns) + " |")
    total = Counter()
    for row in table.values():
        total.update(row)
    print("| all | " + " | ".join(str(total[c]) for c in columns) + " |")
    for trial, kill_points, problems in failures:
        print(f"LOST in trial {trial} ({kill_points}): {problems}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
