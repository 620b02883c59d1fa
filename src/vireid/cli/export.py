"""``vireid export``: the test-time embedding network as ONNX or TorchScript, with a sidecar JSON."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="export the embedding network (ONNX or TorchScript) + sidecar JSON",
                       description=__doc__.split(": ", 1)[1] + " The exported model is run against PyTorch and "
                       "the largest difference printed. Input: N x 3 x H x W float32, normalised (see the "
                       "sidecar <FILE>.json); output: N x D features (L2-normalise before comparing).")
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript"))
    p.add_argument("--out", required=True, help="file to write (e.g. model.onnx); the sidecar is <FILE>.json")
    p.add_argument("--modality", choices=("visible", "infrared"),
                   help="for a modality-dependent feature: bake this modality in (default: a second input "
                        "'modality', int64 N, 0 visible / 1 infrared)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file and sidecar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from vireid.inference.export import check_export_output, export_model
    from vireid.inference.model import ReIDModel

    check_export_output(args.out, args.overwrite)  # before the model is loaded
    model = ReIDModel.load(args.checkpoint, "cpu")
    res = export_model(model, args.out, args.format, modality=args.modality, overwrite=args.overwrite)
    print(f"{args.format} model written to {res.path} (inputs: {', '.join(res.inputs)}; output: features "
          f"N x {model.feature_dim}, {model.feature}); sidecar {res.sidecar}")
    print(f"largest difference vs PyTorch on sample inputs: {res.max_abs_diff:.3g} on features up to "
          f"{res.max_abs_feature:.3g} (relative {res.max_abs_diff / max(res.max_abs_feature, 1e-30):.2g}); "
          f"{res.max_abs_diff_normalized:.3g} after L2 normalisation")
    return 0
