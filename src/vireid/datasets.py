"""The dataset table: every dataset name, and everything that is chosen by it, in one place.

Per dataset (``DatasetSpec``): how to check a root, list its test images and read its training set (its
layout reader, ``vireid.data.<name>``), its numbered splits (RegDB's trials: one model each), its named
validation splits, how a path in its layout names an image's identity, a one-line description for the
CLI, and its test protocol (``ProtocolSpec``: evaluate, check, its options such as SYSU-MM01's mode or
RegDB's direction, the setting reported side by side, the query/gallery split of the report's ranked
lists). Config validation, ``--dataset`` choices, feature extraction, checkpoint evaluation, sweeps,
reports and the inference layer's path parsing read this table; none of them names a dataset.

Implementations are written ``"package.module:function"`` and imported on first call (``lazy``), so this
module imports nothing of the pipeline beyond the light layout constants: any layer may read the table (the
data config, the CLI) without loading the layers above it (evaluation, visualisation). A
``register_dataset`` caller may pass plain functions instead.

Adding a dataset: a reader module (``data/<name>.py``), a protocol module
(``evaluation/protocols/<name>.py``) and one ``register_dataset(DatasetSpec(...))`` below.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vireid.data.regdb import TRIALS as REGDB_TRIALS
from vireid.errors import ConfigError


class Lazy:
    """A function named ``"package.module:attr"``, imported on its first call."""

    def __init__(self, target: str) -> None:
        module, sep, attr = target.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"expected 'package.module:attr', got {target!r}")
        self.target = target
        self._func: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        """The function itself (imports its module the first time)."""
        if self._func is None:
            module, _, attr = self.target.partition(":")
            self._func = getattr(importlib.import_module(module), attr)
        return self._func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"lazy({self.target!r})"


def lazy(target: str) -> Lazy:
    """``lazy("vireid.data.sysu:test_records")``: a callable that imports its target when first called."""
    return Lazy(target)


@dataclass(frozen=True)
class ProtocolOption:
    """One option of a protocol: a keyword of its ``evaluate``/``check`` functions and the CLI flag
    ``--<name>`` (``choices`` and ``default`` as the CLI offers them; the type is the default's)."""

    name: str
    choices: tuple[Any, ...]
    default: Any
    help: str


@dataclass(frozen=True)
class ProtocolSpec:
    """A test protocol.

    ``evaluate(root, features, *, normalize, rerank, device, **options)`` -> ``ProtocolResult``; a dataset
    with numbered splits also gets ``trial`` (1..N or ``"all"``) and ``features`` per trial (a mapping
    trial -> FeatureSet). ``check(root, **options)`` raises ``DatasetError`` for a bad option or tree
    cheaply (file listing only), before any model is loaded. ``setting``: the option whose values are
    reported side by side (sweeps). ``ranked_split(root, *, trial, **options)``: the report's
    query/gallery split (``vireid.visualization.report.RankedSplit``).
    """

    evaluate: Callable[..., Any]
    check: Callable[..., Any]
    options: tuple[ProtocolOption, ...] = ()
    setting: str | None = None
    ranked_split: Callable[..., Any] | None = None

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    def option(self, name: str) -> ProtocolOption:
        """The option called ``name`` (KeyError if the protocol has none)."""
        for o in self.options:
            if o.name == name:
                return o
        raise KeyError(name)

    def select(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """This protocol's options among ``values`` (others, meant for other protocols, are left out)."""
        return {o.name: values[o.name] for o in self.options if o.name in values}

    @property
    def settings(self) -> tuple[Any, ...]:
        """The values of ``setting`` (e.g. all, indoor), reported side by side; () without a setting."""
        return self.option(self.setting).choices if self.setting else ()


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its layout reader, splits and protocol. The functions' calling conventions:

    - ``check_root(root) -> Path``: the root if it has this layout, else ``DatasetError``;
    - ``test_records(root, trial) -> list[ImageRecord]``: every image the protocol may need;
    - ``training_set(root, *, trial, val_split, val_seed) -> TrainingSet``;
    - ``available_trials(root) -> list[int]``: the numbered splits present under a root (``--trial all``);
    - ``identify(parts) -> (pid, camera, modality) | None``: what the last three parts of a path say in
      this layout (None if the path does not follow it).

    ``trials``: the numbered splits, each trained and scored on its own (RegDB 1..10); () = one split
    (``trial`` is then ignored). ``val_splits``: the named validation splits besides a number of ids.
    """

    name: str
    title: str
    description: str
    check_root: Callable[..., Any]
    test_records: Callable[..., Any]
    training_set: Callable[..., Any]
    protocol: ProtocolSpec
    trials: tuple[int, ...] = ()
    available_trials: Callable[..., Any] | None = None
    val_splits: tuple[str, ...] = ("none",)
    identify: Callable[..., Any] | None = None

    def trials_text(self) -> str:
        """The trials as text: ``1..10``."""
        return span(self.trials)


def span(numbers: Iterable[int]) -> str:
    """``1..10`` for a run of three or more consecutive numbers, else the numbers separated by commas."""
    t = sorted(numbers)
    if len(t) > 2 and t == list(range(t[0], t[0] + len(t))):
        return f"{t[0]}..{t[-1]}"
    return ", ".join(map(str, t))


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec, *, replace: bool = False) -> DatasetSpec:
    """Add ``spec`` to the table under ``spec.name`` (``replace`` to overwrite an entry); returns it."""
    if spec.name in DATASETS and not replace:
        raise ValueError(f"dataset {spec.name!r} is registered already")
    DATASETS[spec.name] = spec
    return spec


def dataset_names() -> tuple[str, ...]:
    """The registered dataset names, in registration order (the CLI's ``--dataset`` choices)."""
    return tuple(DATASETS)


def all_datasets() -> tuple[DatasetSpec, ...]:
    """Every registered dataset."""
    return tuple(DATASETS.values())


def get_dataset(name: str, option: str = "data.dataset") -> DatasetSpec:
    """The entry of ``name``; a ConfigError naming ``option`` and the choices if there is none."""
    spec = DATASETS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ConfigError(f"{option}: expected one of {', '.join(map(repr, DATASETS))}, got {name!r}")
    return spec


def all_trials() -> tuple[int, ...]:
    """Every trial number some dataset has (sorted), for CLI choices."""
    return tuple(sorted(set().union(*(s.trials for s in DATASETS.values()))))


def protocol_options() -> dict[str, ProtocolOption]:
    """Every protocol option by name (the CLI offers each once); a name two protocols share gets the
    union of their choices and the first one's default and help."""
    merged: dict[str, ProtocolOption] = {}
    for spec in DATASETS.values():
        for o in spec.protocol.options:
            first = merged.get(o.name)
            if first is None:
                merged[o.name] = ProtocolOption(o.name, tuple(o.choices), o.default, f"{spec.title}: {o.help}")
            else:
                choices = first.choices + tuple(c for c in o.choices if c not in first.choices)
                merged[o.name] = ProtocolOption(o.name, choices, first.default, first.help)
    return merged


def check_options(names: Iterable[str]) -> None:
    """ConfigError if a name is no registered protocol's option (a misspelt keyword is not ignored)."""
    known = protocol_options()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown protocol option {unknown[0]!r}: expected one of {', '.join(known)}")


# ----------------------------------------------------------------------------------------- the table

register_dataset(DatasetSpec(
    name="sysu",
    title="SYSU-MM01",
    description="SYSU-MM01 (cam1..cam6/, exp/): 10 gallery draws, all- or indoor-search",
    check_root=lazy("vireid.data.sysu:check_sysu_root"),
    test_records=lazy("vireid.data.sysu:test_records"),
    training_set=lazy("vireid.data.training_sets:sysu_training_set"),
    val_splits=("none", "official"),
    identify=lazy("vireid.data.sysu:identify_path"),
    protocol=ProtocolSpec(
        evaluate=lazy("vireid.evaluation.protocols.sysu:evaluate_sysu"),
        check=lazy("vireid.evaluation.protocols.sysu:check_sysu_protocol"),
        options=(
            ProtocolOption("mode", ("all", "indoor"), "all", "search mode"),
            ProtocolOption("shots", (1, 10), 1, "gallery images per id and camera"),
            ProtocolOption("sampling", ("official", "seeded"), "official",
                           "gallery sampling: official rand_perm_cam.mat rows, or AGW-style random.seed(trial)"),
        ),
        setting="mode",
        ranked_split=lazy("vireid.visualization.report:sysu_split"),
    ),
))

register_dataset(DatasetSpec(
    name="regdb",
    title="RegDB",
    description="RegDB (Visible/, Thermal/, idx/): trials 1..10, one model each",
    check_root=lazy("vireid.data.regdb:check_regdb_root"),
    test_records=lazy("vireid.data.regdb:test_records"),
    training_set=lazy("vireid.data.training_sets:regdb_training_set"),
    trials=REGDB_TRIALS,
    available_trials=lazy("vireid.data.regdb:training_trials"),
    identify=lazy("vireid.data.regdb:identify_path"),
    protocol=ProtocolSpec(
        evaluate=lazy("vireid.evaluation.protocols.regdb:evaluate_regdb"),
        check=lazy("vireid.evaluation.protocols.regdb:check_regdb_protocol"),
        options=(ProtocolOption("direction", ("v2t", "t2v"), "v2t", "query -> gallery modality"),),
        setting="direction",
        ranked_split=lazy("vireid.visualization.report:regdb_split"),
    ),
))
