"""The top-level configuration: one dataclass per section, YAML recipes with inheritance, overrides.

``Config()`` works without any YAML (library use). ``load_config("sysu_vd", ["train.epochs=2"])``
resolves a shipped recipe (or any path), follows ``_base_`` inheritance (paths relative to the file,
deep-merged, later wins), applies dotted ``key=value`` overrides (values parsed as YAML) and validates
every key and value: an unknown key or a wrong type is a one-line ``ConfigError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from vireid.data.config import DataConfig
from vireid.errors import ConfigError
from vireid.losses.config import LossConfig
from vireid.models.config import ModelConfig

BASE_KEY = "_base_"


@dataclass
class OptimConfig:
    """Optimiser. The release always used Adam(lr 2.6e-4, wd 5e-4, betas 0.9/0.999), one group."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 2.6e-4
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9  # SGD only
    nesterov: bool = False  # SGD only


@dataclass
class ScheduleConfig:
    """Per-epoch learning-rate factor: linear warm-up from ``warmup_factor``, then ``gamma`` at milestones.

    ``offset`` shifts the epoch index the factor is computed at; the release stepped its scheduler
    before each epoch, which is ``offset: 1`` (lr 2.83e-5 at epoch 0, x0.1 from epoch 209).
    """

    warmup_epochs: int = 10
    warmup_factor: float = 0.01
    milestones: tuple[int, ...] = (210,)
    gamma: float = 0.1
    offset: int = 0


@dataclass
class TrainConfig:
    """The training loop: length, seed, device and numerics, validation, logging, checkpoints."""

    epochs: int = 600
    seed: int = 1
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N" | any torch device string
    amp: bool = True  # autocast: CUDA bf16 where supported, else fp16 + GradScaler; CPU bf16 only where native
    amp_dtype: Literal["auto", "bfloat16", "float16"] = "auto"  # explicit dtypes for measurements (gpu_check)
    channels_last: bool = True  # CUDA and CPU (docs/performance.md)
    compile: bool = False  # torch.compile the model: for GPUs; no gain measured on a CPU, minutes of compiling
    flush_denormal: bool = True  # CPU: flush denormal floats to zero (FTZ/DAZ) for the whole process
    keep_freed_memory: bool = True  # glibc: reuse freed activation memory instead of re-faulting it each step
    deterministic: bool = False  # torch.use_deterministic_algorithms (CPU runs are deterministic anyway)
    select: Literal["val", "last"] = "val"  # which checkpoint becomes model.pt
    select_metric: Literal["mAP", "rank1", "mINP"] = "mAP"
    eval_every: int = 10  # epochs between validations (0: never; the last epoch is always validated)
    eval_batch_size: int = 128
    log_every: int = 20  # steps between metrics lines
    checkpoint_every: int = 1  # epochs between last.pt writes (the last epoch is always written)
    grad_clip: float = 0.0  # max gradient norm; 0 disables clipping
    sync_bn: bool = False  # DDP only
    find_unused_parameters: bool = False  # DDP only: needed when a step leaves some parameters without gradient
    dist_timeout_s: float = 1800.0
    tensorboard: bool = True  # only used when tensorboard is importable
    progress: bool = True  # tqdm bar (rank 0 only)


@dataclass
class TestConfig:
    """Feature extraction for evaluation."""

    flip: bool = False  # test-time augmentation: average the features of an image and its mirror
    batch_size: int = 128


@dataclass
class Config:
    """Everything a run needs; saved as ``config.yaml`` in the run directory and in each checkpoint."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists) suitable for YAML/JSON."""
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, source: str = "config") -> Config:
        """Validate ``data`` (missing keys take defaults) and build a Config."""
        config = _build(cls, data or {}, prefix="", source=source)
        config.validate()
        return config

    def validate(self) -> None:
        """Check values beyond their types (each section's own rules); ConfigError naming the key."""
        for section in (self.data, self.model, self.loss):
            if hasattr(section, "validate"):
                section.validate()
        checks = [
            ("train.epochs", self.train.epochs >= 1, "an integer >= 1"),
            ("optim.lr", self.optim.lr > 0, "a positive number"),
            ("optim.weight_decay", self.optim.weight_decay >= 0, "a number >= 0"),
            ("schedule.warmup_epochs", self.schedule.warmup_epochs >= 0, "an integer >= 0"),
            ("schedule.warmup_factor", 0 < self.schedule.warmup_factor <= 1, "a number in (0, 1]"),
            ("schedule.gamma", self.schedule.gamma > 0, "a positive number"),
            ("train.eval_every", self.train.eval_every >= 0, "an integer >= 0 (0: only after the last epoch)"),
            ("train.log_every", self.train.log_every >= 0, "an integer >= 0"),
            ("train.checkpoint_every", self.train.checkpoint_every >= 1, "an integer >= 1"),
            ("train.eval_batch_size", self.train.eval_batch_size >= 1, "an integer >= 1"),
            ("train.grad_clip", self.train.grad_clip >= 0, "a number >= 0 (0 disables clipping)"),
            ("test.batch_size", self.test.batch_size >= 1, "an integer >= 1"),
        ]
        for key, ok, expected in checks:
            if not ok:
                section, name = key.split(".")
                raise ConfigError(f"{key}: expected {expected}, got {getattr(getattr(self, section), name)!r}")

    def validate_for_training(self) -> None:
        """:meth:`validate`, and the rules that only matter when training starts (a config read back from a
        checkpoint is never refused for them): learning-rate milestones increasing, none past the last epoch."""
        self.validate()
        milestones, epochs = list(self.schedule.milestones), self.train.epochs
        if any(m < 1 for m in milestones) or milestones != sorted(set(milestones)):
            raise ConfigError(f"schedule.milestones: expected increasing epochs >= 1, got {milestones!r}")
        past = [m for m in milestones if m > epochs]
        if past:
            raise ConfigError(
                f"schedule.milestones: {past[0]} is past the last epoch (train.epochs={epochs}), so the "
                f"learning rate would never drop there; lower it or set schedule.milestones=[]"
            )

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


# --------------------------------------------------------------------------- validation


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_plain(v) for v in obj]
    return obj


def _build(cls: type, data: Any, prefix: str, source: str) -> Any:
    section = prefix.rstrip(".") or "top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {section} must be a mapping, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(
            f"{source}: unknown key '{prefix}{unknown[0]}'; valid keys of {section}: {', '.join(fields)}"
        )
    kwargs = {name: _convert(hints[name], value, f"{prefix}{name}", source) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # a section's own __post_init__ checks
        raise ConfigError(f"{source}: {section}: {exc}") from None


def _show(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _convert(tp: Any, value: Any, key: str, source: str) -> Any:
    """Check ``value`` against the type hint ``tp`` and return it converted (lists -> tuples, int -> float)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".", source)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{source}: {key} must be one of {choices}, got {_show(value)}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key, source)
            except ConfigError as exc:
                errors.append(exc)
        names = " or ".join(_type_name(a) for a in args)
        raise ConfigError(f"{source}: {key} must be {names}, got {_show(value)}")
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{source}: {key} must be a list, got {_show(value)}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(f"{source}: {key} must be a list of {len(args)} values, got {_show(value)}")
            items = [_convert(a, v, f"{key}[{i}]", source) for i, (a, v) in enumerate(zip(args, value, strict=True))]
        else:
            item_tp = args[0] if args else Any
            items = [_convert(item_tp, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key} must be a mapping, got {_show(value)}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key} must be an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "2.6e-4" as a string; accept it as a number
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: {key} must be a number, got {_show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key} must be a string, got {_show(value)}")
        return value
    return value


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


# --------------------------------------------------------------------------- YAML files


def recipes_dir() -> Path:
    """The folder of the shipped recipes (package data ``vireid/configs``)."""
    return Path(str(resources.files("vireid") / "configs"))


def list_recipes() -> list[str]:
    """Names of the shipped recipes (without ``.yaml``)."""
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def resolve_config_path(name: str | os.PathLike) -> Path:
    """A recipe name (``sysu_vd``), ``configs/sysu_vd.yaml`` or any path -> an existing file."""
    path = Path(name)
    if path.is_file():
        return path
    stem = path.name[: -len(".yaml")] if path.name.endswith(".yaml") else path.name
    shipped = recipes_dir() / f"{stem}.yaml"
    if shipped.is_file() and (len(path.parts) == 1 or path.parent.name == "configs"):
        return shipped
    raise ConfigError(
        f"config {str(name)!r} is neither a file nor a shipped recipe; recipes: {', '.join(list_recipes())}"
    )


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml_tree(path: str | os.PathLike, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML config and its ``_base_`` ancestors (relative to the file), merged, base first."""
    path = Path(path).resolve()
    if path in _chain:
        raise ConfigError(f"{path}: _base_ inheritance loops back to {path.name}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    bases = data.pop(BASE_KEY, None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: {BASE_KEY} must be a file name or a list of file names")
    merged: dict[str, Any] = {}
    for base in bases:
        base_path = path.parent / base
        if not base_path.is_file():
            raise ConfigError(f"{path}: {BASE_KEY} file {base_path} does not exist")
        merged = deep_merge(merged, load_yaml_tree(base_path, _chain + (path,)))
    return deep_merge(merged, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.epochs=5"`` -> (["train", "epochs"], 5); the value is parsed as a YAML scalar or list."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} must look like section.key=value (e.g. train.epochs=10)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Set each dotted ``key=value`` in a copy of ``data`` (unknown keys are caught by validation)."""
    out = deep_merge({}, data)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for i, part in enumerate(keys[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {'.'.join(keys[: i + 1])} is not a section")
            else:
                child = node[part] = dict(child)
            node = child
        node[keys[-1]] = value
    return out


def load_config(name: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Resolve, read (with inheritance), override and validate a config; ``None`` starts from defaults."""
    if name is None:
        data, source = {}, "config"
    else:
        path = resolve_config_path(name)
        data, source = load_yaml_tree(path), str(path)
    if overrides:
        data = apply_overrides(data, overrides)
        source = f"{source} (with overrides)"
    return Config.from_dict(data, source=source)


def save_config(config: Config, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically."""
    from vireid.utils.io import atomic_write_text

    atomic_write_text(path, config.to_yaml())


def config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts (missing counts as differing)."""
    keys: list[str] = []
    for key in list(a) + [k for k in b if k not in a]:
        va, vb = a.get(key, _MISSING), b.get(key, _MISSING)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += config_diff(va, vb, f"{prefix}{key}.")
        elif _to_plain(va) != _to_plain(vb):
            keys.append(f"{prefix}{key}")
    return keys


_MISSING = object()
