"""Export the test-time embedding network to ONNX or TorchScript, with a sidecar JSON for deployers.

The exported graph takes ``images`` (float32 N x 3 x H x W, RGB, ``(pixel / 255 - mean) / std``; any N)
and returns ``features`` (float32 N x D, not normalised: L2-normalise them before comparing, as vireid's
evaluation and ``ReIDModel.embed`` do). It is the model's ``extract`` with the checkpoint's test-time
flip averaging included, so its output equals ``vireid extract``'s features.

Features that depend on the modality (paper routing ``*_specific``/``*_concat``, and every baseline
feature; see ``vireid.inference.model``): the graph takes a second input ``modality`` (int64 N, 0 =
visible, 1 = infrared) and runs both modality paths, keeping each row's own (about twice the compute of
one path, but no data-dependent shapes, so any runtime handles it). ``modality="visible"|"infrared"``
instead bakes one modality in and keeps the single input.

The sidecar ``<FILE>.json`` holds the input size, mean, std, interpolation, input and output names, the
feature's name and dimension, whether to L2-normalise, the vireid version, the checkpoint's SHA-256,
and the largest difference measured between the exported model and PyTorch.
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vireid import __version__
from vireid.data.records import INFRARED, VISIBLE
from vireid.errors import VireidError
from vireid.inference.images import parse_modality
from vireid.inference.model import ReIDModel, modality_name
from vireid.utils.io import atomic_path, atomic_write_json

FORMATS = ("onnx", "torchscript")
OPSET = 17


class ExportError(VireidError):
    """An export that cannot be made: a bad option, an output that exists, a missing runtime."""


class EmbeddingGraph(nn.Module):
    """The network as exported: images [, modality] -> features (see the module docstring)."""

    def __init__(self, network: nn.Module, *, flip: bool, modality_input: bool, fixed_modality: int) -> None:
        super().__init__()
        self.network = network
        self.flip = flip
        self.modality_input = modality_input
        self.fixed_modality = fixed_modality

    def _one(self, images: torch.Tensor, modality: int) -> torch.Tensor:
        mod = torch.full((images.shape[0],), modality, dtype=torch.long, device=images.device)
        feats = self.network.extract(images, mod)
        if self.flip:
            feats = (feats + self.network.extract(torch.flip(images, dims=[3]), mod)) / 2
        return feats

    def forward(self, images: torch.Tensor, modality: torch.Tensor | None = None) -> torch.Tensor:
        if not self.modality_input:
            return self._one(images, self.fixed_modality)
        infrared = (modality == INFRARED).unsqueeze(1)
        return torch.where(infrared, self._one(images, INFRARED), self._one(images, VISIBLE))


@torch.no_grad()
def _pytorch_reference(network: nn.Module, flip: bool, inputs: tuple[torch.Tensor, ...], fixed: int) -> np.ndarray:
    """What ``vireid extract`` computes for these inputs: ``extract`` on the batch as it is (each row
    routed by its own modality), with flip averaging as configured."""
    images = inputs[0]
    mod = inputs[1] if len(inputs) > 1 else torch.full((images.shape[0],), fixed, dtype=torch.long)
    feats = network.extract(images, mod).float()
    if flip:
        feats = (feats + network.extract(torch.flip(images, dims=[3]), mod).float()) / 2
    return feats.numpy()


def sidecar_path(out: str | os.PathLike) -> Path:
    """The sidecar JSON of an exported file: ``<FILE>.json`` (e.g. ``model.onnx.json``)."""
    return Path(f"{out}.json")


@dataclass
class ExportResult:
    """The files written, the graph's inputs and the largest |exported - PyTorch| difference measured."""

    path: Path
    sidecar: Path
    inputs: list[str]
    max_abs_diff: float
    max_abs_feature: float
    max_abs_diff_normalized: float


@contextmanager
def _quiet() -> Iterator[None]:
    """Tracing warns about every Python-level check in the model (constant in the graph by design) and
    about the exporters' deprecations; none of it concerns the user of ``vireid export``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _sample_inputs(model: ReIDModel, n: int, seed: int, with_modality: bool) -> tuple[torch.Tensor, ...]:
    """``n`` smooth random pictures (coarse colour blobs, bilinearly upsampled), normalised as the model's
    inputs are: closer to real images' statistics than pixel noise (which gives outsized activations)."""
    h, w = model.input_size
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, max(2, h // 8), max(2, w // 8), generator=gen)
    pixels = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    mean = torch.tensor(model.config.data.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(model.config.data.std, dtype=torch.float32).view(1, 3, 1, 1)
    images = (pixels - mean) / std
    if not with_modality:
        return (images,)
    return images, torch.tensor([(i + seed) % 2 for i in range(n)], dtype=torch.long)


def check_export_output(out: str | os.PathLike, overwrite: bool) -> tuple[Path, Path]:
    """Refuse to replace an existing file or sidecar unless ``overwrite``; a folder is never replaced."""
    out = Path(out)
    side = sidecar_path(out)
    for p in (out, side):
        if p.is_dir():
            raise ExportError(f"--out {p} is a directory; expected a file name")
        if p.exists() and not overwrite:
            raise ExportError(f"{p} already exists; choose another --out or pass --overwrite")
    return out, side


def _require_runtime(fmt: str) -> None:
    if fmt == "onnx":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ExportError("--format onnx needs onnxruntime to check the exported file: "
                              "pip install 'vireid[export]'") from None


def run_exported(path: str | os.PathLike, fmt: str, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    """Run an exported file (onnxruntime for ONNX, ``torch.jit.load`` for TorchScript) on ``inputs``."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})[0]
    with _quiet():  # torch.jit.load's deprecation notice
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(*inputs).numpy()


def export_model(
    model: ReIDModel,
    out: str | os.PathLike,
    fmt: str = "onnx",
    *,
    modality: str | None = None,
    overwrite: bool = False,
    opset: int = OPSET,
) -> ExportResult:
    """Export ``model``'s embedding network to ``out`` (``fmt``: onnx or torchscript), check it against
    PyTorch on sample inputs of another batch size than the traced one, and write the sidecar JSON.
    Both files are written atomically: a failure leaves what was there before."""
    if fmt not in FORMATS:
        raise ExportError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    fixed = parse_modality(modality, "--modality")
    out, side = check_export_output(out, overwrite)
    _require_runtime(fmt)
    network = copy.deepcopy(model.network).cpu().eval()
    with_modality = model.modality_dependent and fixed is None
    graph = EmbeddingGraph(network, flip=model.flip, modality_input=with_modality,
                           fixed_modality=VISIBLE if fixed is None else fixed).eval()
    names = ["images", "modality"] if with_modality else ["images"]
    trace_inputs = _sample_inputs(model, 2, 0, with_modality)
    check_inputs = _sample_inputs(model, 5, 1, with_modality)
    reference = _pytorch_reference(network, model.flip, check_inputs, VISIBLE if fixed is None else fixed)
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    # Serialised in memory, then written by Python: a full disk is then an OSError (a one-line OutputError
    # from atomic_path), not an opaque error from inside the exporters' C++ writers.
    buffer = io.BytesIO()
    with _quiet(), torch.no_grad():
        if fmt == "onnx":
            axes = {n: {0: "batch"} for n in [*names, "features"]}
            torch.onnx.export(graph, trace_inputs, buffer, dynamo=False, input_names=names,
                              output_names=["features"], dynamic_axes=axes, opset_version=opset)
        else:
            torch.jit.save(torch.jit.trace(graph, trace_inputs, check_trace=False), buffer)
    try:
        with atomic_path(out, suffix=suffix, what="exported model") as tmp:
            tmp.write_bytes(buffer.getbuffer())
            del buffer
            with _quiet(), torch.no_grad():
                got = run_exported(tmp, fmt, check_inputs)
            if got.shape != reference.shape:
                raise ExportError(f"the exported model returned shape {got.shape}, PyTorch {reference.shape}")
            diff = _differences(got, reference)
            atomic_write_json(side, sidecar(model, fmt, out, names, fixed, opset, diff))
    except OSError as exc:
        raise ExportError(f"could not write {out}: {exc.strerror or exc}; nothing was replaced") from None
    return ExportResult(out, side, names, **diff)


def _differences(got: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Largest |exported - PyTorch| on the raw features, the largest raw feature value, and the largest
    difference after L2 normalisation (what retrieval compares)."""
    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    return {"max_abs_diff": float(np.abs(got - reference).max()),
            "max_abs_feature": float(np.abs(reference).max()),
            "max_abs_diff_normalized": float(np.abs(unit(got) - unit(reference)).max())}


def sidecar(model: ReIDModel, fmt: str, out: Path, inputs: list[str], fixed: int | None, opset: int,
            diff: dict[str, float]) -> dict[str, Any]:
    """What a deployer needs to feed the exported model and use its output."""
    cfg = model.config
    h, w = model.input_size
    resize = getattr(cfg.data, "resize", "tensor")
    return {
        "format": fmt,
        "file": out.name,
        "vireid": __version__,
        "checkpoint": {"sha256": model.sha256, "path": str(model.checkpoint), "model": cfg.model.name},
        "height": h,
        "width": w,
        "mean": [float(x) for x in cfg.data.mean],
        "std": [float(x) for x in cfg.data.std],
        "interpolation": "bilinear",
        "antialias": True,
        "resize": resize,
        "preprocessing": (
            f"decode to RGB, resize to exactly {w}x{h} (width x height; aspect ratio not kept) with "
            "antialiased bilinear interpolation (PIL: img.resize((width, height), Image.BILINEAR)), scale "
            "to [0, 1] (pixel / 255), subtract mean and divide by std per channel, layout N x 3 x H x W float32"
        ),
        "inputs": [
            {"name": "images", "dtype": "float32", "shape": ["N", 3, h, w], "layout": "NCHW", "color": "RGB"},
            *([{"name": "modality", "dtype": "int64", "shape": ["N"], "values": {"visible": VISIBLE,
                                                                               "infrared": INFRARED}}]
              if "modality" in inputs else []),
        ],
        "fixed_modality": modality_name(fixed) if fixed is not None else None,
        "modality_dependent": model.modality_dependent,
        "output": {"name": "features", "dtype": "float32", "shape": ["N", model.feature_dim]},
        "feature": model.feature,
        "feature_dim": model.feature_dim,
        "l2_normalize": True,
        "distance": "euclidean between L2-normalised features",
        "flip_averaged_in_graph": model.flip,
        "opset": opset if fmt == "onnx" else None,
        "check_vs_pytorch": {"inputs": "5 smooth random pictures", **diff},
    }
