"""``vireid sweep``: every config x training seed, evaluated with the dataset's protocol, summarised over seeds.

One protocol run (10 trials) says how a trained model does on re-sampled galleries; it says nothing about
how much the result moves when the model is trained again. A sweep trains each variant (a recipe plus
overrides) once per seed into ``OUT/runs/<variant>/seed_<s>/``, scores each run on the test split with the
dataset's protocol (SYSU-MM01: all-search and indoor, single-shot, 10 trials; RegDB: the recipe's trial,
visible->thermal and thermal->visible), and writes:

- ``OUT/runs/<variant>/seed_<s>/result.json``: that run's protocol results, validation figures, timings
  (written last: its presence marks a finished pair, which a rerun skips; an unfinished run resumes from
  its ``last.pt``);
- ``OUT/sweep.json``: per variant and setting, every seed's 10-trial mean, their mean ± standard deviation
  over seeds, and the paired difference to the reference variant (same seeds) with a 95 % interval;
- ``OUT/table.md`` (the same as Markdown) and ``OUT/sweep.png`` (per-seed values, means and intervals).

Checkpoints are chosen as each recipe says (``train.select``: validation ids or the last epoch); the test
split is only ever scored, never used to choose anything.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vireid.config import Config, load_config, resolve_config_path
from vireid.datasets import DatasetSpec, get_dataset
from vireid.errors import ConfigError, VireidError
from vireid.evaluation.statistics import paired_difference, spread
from vireid.utils.io import atomic_write_json, atomic_write_text, check_output_dir

RESULT_FILE = "result.json"
PARENT_POLL_S = 2.0  # how often a worker checks that the sweep process is still alive
MARKER = ".vireid-sweep"
METRICS = ("rank1", "mAP", "mINP")
SAMPLINGS = ("auto", "official", "seeded")


class SweepError(VireidError):
    """Bad sweep input: a variant spec, an output folder, a reference that is not a variant."""


@dataclass(frozen=True)
class Variant:
    """A named recipe with overrides (applied after the sweep-wide ones)."""

    name: str
    config: str
    overrides: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> Variant:
        """``"NAME: CONFIG [key=value ...]"`` (or a plain ``CONFIG``, named after its file)."""
        head, sep, rest = spec.partition(":")
        if sep and "=" not in head and "/" not in head and head.strip():
            name, words = head.strip(), shlex.split(rest)
            if not words or "=" in words[0]:
                raise SweepError(f"--variant {spec!r}: expected 'NAME: CONFIG [key=value ...]'")
            return cls(name, words[0], tuple(words[1:]))
        words = shlex.split(spec)
        if len(words) != 1:
            raise SweepError(f"--variant {spec!r}: expected 'NAME: CONFIG [key=value ...]' or a config name")
        return cls(resolve_config_path(words[0]).stem, words[0])


@dataclass
class SweepResult:
    """What a sweep produced: one result dict per finished run, the summary, and the files."""

    out_dir: Path
    runs: list[dict[str, Any]]
    summary: dict[str, Any]
    failed: list[dict[str, str]] = field(default_factory=list)


def run_dir(out_dir: str | os.PathLike, variant: str, seed: int) -> Path:
    """Where the run of ``variant`` with training seed ``seed`` lives."""
    return Path(out_dir) / "runs" / variant / f"seed_{seed}"


def build_config(variant: Variant, seed: int, overrides: Sequence[str], data_root: str | None) -> Config:
    """The variant's recipe with the sweep-wide overrides, its own, and the seed."""
    cfg = load_config(variant.config, [*overrides, *variant.overrides, f"train.seed={seed}"])
    if data_root is not None:
        cfg.data.root = str(data_root)
    if cfg.data.root is None:
        raise ConfigError("no dataset root: pass --data-root DIR or set data.root")
    return cfg


def scored_settings(dataset: str) -> tuple[Any, ...]:
    """The settings a sweep scores on ``dataset``, side by side: its protocol's ``setting`` values
    (SYSU-MM01: all, indoor; RegDB: v2t, t2v)."""
    return get_dataset(dataset).protocol.settings


def _auto_sampling(spec: DatasetSpec, root: str) -> dict[str, Any]:
    """``sampling: auto``: the first of the protocol's gallery samplings whose check passes on this tree
    (SYSU-MM01: official where rand_perm_cam.mat fits the tree's image counts, i.e. the real dataset, else
    seeded); {} for a protocol without gallery sampling."""
    if "sampling" not in spec.protocol.option_names:
        return {}
    choices = spec.protocol.option("sampling").choices
    for choice in choices[:-1]:
        try:
            spec.protocol.check(root, sampling=choice)
            return {"sampling": choice}
        except VireidError:
            continue
    return {"sampling": choices[-1]}


def _protocol_results(cfg: Config, model_path: Path, sampling: str, device: str) -> dict[str, Any]:
    from vireid.training.evaluate import evaluate_checkpoint

    root = cfg.data.root
    spec = get_dataset(cfg.data.dataset)
    options = _auto_sampling(spec, root) if sampling == "auto" else {"sampling": sampling}
    out: dict[str, Any] = {}
    for value in spec.protocol.settings:
        res = evaluate_checkpoint(model_path, spec.name, root, trial=cfg.data.trial, device=device,
                                  **{**options, spec.protocol.setting: value})
        out[value] = res.to_dict()
    return out


def run_pair(job: dict[str, Any]) -> dict[str, Any]:
    """Train (or resume) and evaluate one (variant, seed); return the result dict (also written to disk).

    A picklable top-level function so that ``jobs > 1`` can run pairs in worker processes.
    """
    import torch

    from vireid.training import checkpoint as ckpt
    from vireid.training.trainer import train

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    variant = Variant(job["name"], job["config"], tuple(job["variant_overrides"]))
    cfg = build_config(variant, job["seed"], job["overrides"], job["data_root"])
    cfg = replace(cfg, train=replace(cfg.train, progress=bool(job.get("progress", False))))
    if job.get("device"):
        cfg = replace(cfg, train=replace(cfg.train, device=job["device"]))
    rdir = Path(job["run_dir"])
    resume = (rdir / ckpt.LAST).is_file()
    start = time.perf_counter()
    result = train(cfg, rdir, resume=resume, overwrite=not resume)
    train_s = time.perf_counter() - start
    protocol = _protocol_results(cfg, result.model_path, job["sampling"], cfg.train.device)
    record = {
        "variant": variant.name, "config": variant.config, "overrides": list(job["overrides"]) + list(variant.overrides),
        "seed": job["seed"], "dataset": cfg.data.dataset, "results": protocol,
        "selected_epoch": result.selected_epoch, "validation": result.selected_val,
        "epochs": result.epochs_done, "train_seconds": round(train_s, 1),
        "total_seconds": round(time.perf_counter() - start, 1), "resolved_config": cfg.to_dict(),
    }
    atomic_write_json(rdir / RESULT_FILE, record)
    return record


def _watch_parent(parent: int) -> None:
    """Worker initializer: when the sweep process is gone (even by SIGKILL), SIGTERM this worker. Its training
    then stops after the step with a resumable ``last.pt`` (an idle worker just ends), so that nothing trains on
    as an orphan."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="vireid-sweep-parent", daemon=True).start()


def _run_pair_in_worker(job: dict[str, Any], parent: int) -> dict[str, Any]:
    """:func:`run_pair` in a worker process, which exits once the pair has stopped if the sweep is gone
    (nobody is left to take the result, and an idle worker of a dead pool would wait for work forever)."""
    try:
        return run_pair(job)
    finally:
        if os.getppid() != parent:
            os._exit(130)


def _forward_sigterm() -> Any:
    """In the sweep process: SIGTERM is passed on to the workers (each stops after its step and saves) and
    then ends the sweep like Ctrl-C. Returns the handler it replaced (None off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGTERM)
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _run_in_workers(todo: list[dict[str, Any]], jobs: int, finished: Any) -> None:
    """Run ``todo`` in ``jobs`` spawned worker processes, calling ``finished`` as each pair ends.

    A pair is handed to the pool only when a worker is free, so that on Ctrl-C, SIGTERM or a worker's
    interruption nothing new starts; the running pairs (which got the signal too) are waited for while
    they save their ``last.pt``.
    """
    parent = os.getpid()
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_watch_parent, initargs=(parent,))
    previous = _forward_sigterm()
    queued, running = list(todo), {}
    try:
        while queued or running:
            while queued and len(running) < jobs:
                job = queued.pop(0)
                running[pool.submit(_run_pair_in_worker, job, parent)] = job
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                job = running.pop(fut)
                try:
                    finished(job, fut.result(), None)
                except VireidError as exc:
                    finished(job, None, exc)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    pool.shutdown(wait=True)


def summarize(runs: Sequence[dict[str, Any]], order: Sequence[str], reference: str | None,
              confidence: float = 0.95) -> dict[str, Any]:
    """Per variant and setting: per-seed 10-trial means, mean ± std over seeds, paired difference to the
    reference over the seeds both have, with a ``confidence`` interval."""
    by_variant: dict[str, dict[int, dict[str, Any]]] = {}
    for r in runs:
        by_variant.setdefault(r["variant"], {})[int(r["seed"])] = r
    datasets = {r["dataset"] for r in runs}
    if len(datasets) > 1:
        raise SweepError(f"a sweep compares runs on one dataset, got {sorted(datasets)}")
    scored = scored_settings(datasets.pop()) if runs else ()
    summary: dict[str, Any] = {"reference": reference, "confidence": confidence, "settings": list(scored),
                               "variants": {}}
    for name in order:
        seeds = by_variant.get(name, {})
        entry: dict[str, Any] = {"seeds": sorted(seeds)}
        for setting in scored:
            block: dict[str, Any] = {}
            for metric in METRICS:
                values = {s: float(seeds[s]["results"][setting][metric]) for s in sorted(seeds)}
                if not values:
                    continue
                sp = spread(list(values.values()))
                item: dict[str, Any] = {"per_seed": values, "mean": sp.mean, "std": sp.std, "n": sp.n}
                ref = by_variant.get(reference or "", {})
                common = [s for s in values if s in ref]
                if reference and name != reference and common:
                    diff = paired_difference([values[s] for s in common],
                                             [float(ref[s]["results"][setting][metric]) for s in common], confidence)
                    item["vs_reference"] = {"mean": diff.mean, "low": diff.low, "high": diff.high,
                                            "std": diff.std, "n": diff.n, "excludes_zero": diff.excludes_zero}
                block[metric] = item
            entry[setting] = block
        val = [seeds[s]["validation"]["mAP"] for s in sorted(seeds) if seeds[s].get("validation")]
        if val:
            entry["validation_mAP"] = {"mean": spread(val).mean, "std": spread(val).std, "per_seed": val}
        summary["variants"][name] = entry
    return summary


def format_table(summary: dict[str, Any]) -> str:
    """Markdown: one table per setting; Rank-1, mAP, mINP as mean ± std over seeds, the mAP difference to
    the reference with its interval, and every seed's mAP."""
    ref = summary.get("reference")
    pct = round(100 * summary.get("confidence", 0.95))
    lines: list[str] = []
    for setting in summary["settings"]:
        lines += [f"### {setting}", "",
                  f"| variant | seeds | Rank-1 | mAP | mINP | mAP − {ref} [{pct} % CI] | mAP per seed |",
                  "|---|---|---|---|---|---|---|"]
        for name, entry in summary["variants"].items():
            block = entry.get(setting, {})
            if "mAP" not in block:
                continue
            cells = [f"{block[m]['mean']:.2f} ± {block[m]['std']:.2f}" for m in METRICS]
            vs = block["mAP"].get("vs_reference")
            if vs is None:
                diff = "reference" if name == ref else ""
            elif vs["n"] < 2:
                diff = f"{vs['mean']:+.2f} (n={vs['n']})"
            else:
                diff = f"{vs['mean']:+.2f} [{vs['low']:+.2f}, {vs['high']:+.2f}]"
            per_seed = ", ".join(f"{v:.2f}" for v in block["mAP"]["per_seed"].values())
            lines.append(f"| {name} | {block['mAP']['n']} | " + " | ".join(cells) + f" | {diff} | {per_seed} |")
        lines.append("")
    return "\n".join(lines)


def plot_summary(summary: dict[str, Any], out: str | os.PathLike) -> Path:
    """One panel per setting: every seed's mAP (dots), the mean over seeds and its interval (bar)."""
    from scipy import stats

    from vireid.visualization.figure import png_figure

    settings = summary["settings"]
    names = list(summary["variants"])
    with png_figure(out, nrows=1, ncols=max(1, len(settings)), figsize=(1.2 + 1.1 * len(names) * len(settings), 4.2),
                    dpi=110, squeeze=False) as (fig, axes):
        for ax, setting in zip(axes[0], settings, strict=False):
            for i, name in enumerate(names):
                item = summary["variants"][name].get(setting, {}).get("mAP")
                if not item:
                    continue
                vals = list(item["per_seed"].values())
                ax.scatter([i] * len(vals), vals, s=14, color="0.45", zorder=3)
                half = 0.0
                if item["n"] > 1:
                    half = float(stats.t.ppf(0.975, item["n"] - 1)) * item["std"] / item["n"] ** 0.5
                ax.errorbar([i], [item["mean"]], yerr=[half], fmt="o", color="C0", capsize=4, zorder=4)
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
            ax.set_ylabel("mAP (%)")
            ax.set_title(f"{setting}: per-seed mAP, mean ± 95 % CI")
            ax.grid(axis="y", alpha=0.3)
    return Path(out)


def run_sweep(
    variants: Sequence[Variant],
    seeds: Sequence[int],
    out_dir: str | os.PathLike,
    *,
    data_root: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    reference: str | None = None,
    sampling: str = "auto",
    device: str | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> SweepResult:
    """Train and evaluate every variant x seed into ``out_dir`` (finished pairs are skipped), then summarise.

    ``reference`` (default: the first variant) is what the paired differences are taken against.
    ``jobs`` > 1 runs pairs in that many worker processes, each with ``cpus // jobs`` torch threads.
    """
    out_dir = Path(out_dir)
    variants = list(variants)
    if not variants:
        raise SweepError("--configs: expected at least one config or --variant")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise SweepError(f"variant name {dup!r} appears twice; name variants with 'NAME: CONFIG key=value'")
    if not seeds:
        raise SweepError("--seeds: expected at least one seed")
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds: {list(seeds)} repeats a seed")
    reference = reference if reference is not None else names[0]
    if reference not in names:
        raise SweepError(f"--reference {reference!r} is not one of the variants: {', '.join(names)}")
    if sampling not in SAMPLINGS:
        raise SweepError(f"--sampling: expected one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    if jobs < 1:
        raise SweepError(f"--jobs: expected an integer >= 1, got {jobs}")
    check_output_dir(out_dir, overwrite=True, ours=lambda p: (p / MARKER).is_file(), what="--out",
                     kind=f"a vireid sweep folder (no {MARKER})", error=SweepError)
    for v in variants:  # every config must load before hours of training start
        build_config(v, int(seeds[0]), overrides, None if data_root is None else str(data_root))
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / MARKER, "a vireid sweep folder: reruns skip finished runs\n")

    runs: list[dict[str, Any]] = []
    todo: list[dict[str, Any]] = []
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    for v in variants:
        for s in seeds:
            rdir = run_dir(out_dir, v.name, int(s))
            done = rdir / RESULT_FILE
            if done.is_file():
                runs.append(json.loads(done.read_text(encoding="utf-8")))
                continue
            todo.append({"name": v.name, "config": v.config, "variant_overrides": list(v.overrides), "seed": int(s),
                         "overrides": list(overrides), "data_root": None if data_root is None else str(data_root),
                         "run_dir": str(rdir), "sampling": sampling, "device": device, "threads": threads})
    failed: list[dict[str, str]] = []
    from tqdm.auto import tqdm

    bar = tqdm(total=len(variants) * len(seeds), initial=len(runs), desc="sweep", unit="run", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)

    def finished(job: dict[str, Any], record: dict[str, Any] | None, error: BaseException | None) -> None:
        if record is not None:
            runs.append(record)
            first = scored_settings(record["dataset"])[0]
            bar.write(f"{job['name']} seed {job['seed']}: {first} mAP {record['results'][first]['mAP']:.2f} "
                      f"({record['train_seconds']:.0f} s)")
        else:
            failed.append({"variant": job["name"], "seed": str(job["seed"]), "error": str(error)})
            bar.write(f"{job['name']} seed {job['seed']}: FAILED: {error}")
        bar.update(1)

    try:
        if jobs == 1:
            for job in todo:
                try:
                    finished(job, run_pair(job), None)
                except VireidError as exc:
                    finished(job, None, exc)
        else:
            _run_in_workers(todo, jobs, finished)
    finally:
        bar.close()
    order = {(v.name, int(s)): i for i, (v, s) in enumerate((v, s) for v in variants for s in seeds)}
    runs.sort(key=lambda r: order.get((r["variant"], int(r["seed"])), len(order)))
    summary = summarize(runs, names, reference)
    summary["seeds"] = [int(s) for s in seeds]
    summary["variants_spec"] = {v.name: {"config": v.config, "overrides": list(v.overrides)} for v in variants}
    summary["overrides"] = list(overrides)
    summary["failed"] = failed
    atomic_write_json(out_dir / "sweep.json", summary)
    atomic_write_text(out_dir / "table.md", format_table(summary))
    if runs:
        plot_summary(summary, out_dir / "sweep.png")
    return SweepResult(out_dir, runs, summary, failed)


__all__ = ["RESULT_FILE", "SweepError", "SweepResult", "Variant", "build_config", "format_table", "plot_summary",
           "run_dir", "run_pair", "run_sweep", "summarize"]
