"""``vireid train`` (the same ``main`` as ``python -m vireid``) with a recorder, for the end-to-end test.

Run under torchrun or as a plain process: ``python dist_train.py RECORD_DIR train --config ... --output RUN``.
Per rank it writes to RECORD_DIR (never to the run directory):

``rank<R>.json``: the rank, the world size, the ``pids``/``index`` of every batch it trained on (with the
step's loss and a fingerprint of the torch RNG before the step), a SHA-256 of every model tensor after
set-up (``start``, i.e. after a resume) and at the end (``end``), the run's epoch records (``history``),
the final weights' validation features extracted by both processes (``val_feats_shared``) and, on rank 0,
by that process alone (``val_feats_single``),
and every write (open for writing, rename, mkdir, remove) it made inside the run directory, seen by an
audit hook.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
PATH_EVENTS = ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.truncate", "shutil.rmtree", "os.symlink")


def _audit_writes(run_dir: str, writes: list[list[str]]):
    prefix = os.path.abspath(run_dir)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
                isinstance(flags, int) and flags & WRITE_FLAGS
            )
        elif event in PATH_EVENTS:
            path, writing = args[0], True
        else:
            return
        if not writing or isinstance(path, int):
            return
        try:
            name = os.path.abspath(os.fsdecode(path))
        except TypeError:
            return
        if name == prefix or name.startswith(prefix + os.sep):
            writes.append([event, name])

    return hook


def state_hashes(model: torch.nn.Module) -> dict[str, str]:
    """Exact fingerprints of every parameter and buffer (equal hashes = bit-identical tensors)."""
    out = {}
    for key, value in model.state_dict().items():
        data = value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
        out[key] = hashlib.sha256(data).hexdigest()
    return out


def main(argv: list[str]) -> int:
    record_dir, cli_args = Path(argv[0]), argv[1:]
    run_dir = cli_args[cli_args.index("--output") + 1]
    rank = int(os.environ.get("RANK", "0"))
    record: dict = {"rank": rank, "batches": [], "writes": []}
    sys.addaudithook(_audit_writes(run_dir, record["writes"]))

    from vireid.cli.main import main as vireid_main
    from vireid.features.extract import extract_features
    from vireid.training import trainer as T
    from vireid.training.distributed import DistContext, unwrap_model

    run_step, train, setup = T.Trainer.run_step, T.Trainer.train, T.Trainer.setup

    def recording_step(self, batch):
        rng = hashlib.sha256(torch.get_rng_state().numpy().tobytes()).hexdigest()
        entry = {"epoch": self.epoch, "pids": batch["pids"].tolist(), "index": batch["index"].tolist(), "rng": rng}
        record["batches"].append(entry)
        terms = run_step(self, batch)
        entry["loss"] = terms["loss"]
        return terms

    def recording_setup(self):
        setup(self)
        record["world_size"] = self.ctx.world_size
        record["start"] = state_hashes(unwrap_model(self.model))

    def recording_train(self):
        result = train(self)
        record["end"] = state_hashes(unwrap_model(self.model))
        record["history"] = result.history
        if self.has_validation:  # the validation features, extracted by both processes, then by one alone
            model, images = unwrap_model(self.model), list(self.data.val_query) + list(self.data.val_gallery)
            kw = {"device": self.device, "batch_size": self.cfg.train.eval_batch_size}
            shared = extract_features(model, images, self.data_root, self.cfg.data, ctx=self.ctx, **kw).feats
            record["val_feats_shared"] = shared.tolist()
            if self.ctx.is_main:
                alone = extract_features(model, images, self.data_root, self.cfg.data, ctx=DistContext(), **kw)
                record["val_feats_single"] = alone.feats.tolist()
        return result

    T.Trainer.run_step, T.Trainer.train, T.Trainer.setup = recording_step, recording_train, recording_setup
    try:
        return vireid_main(cli_args)
    finally:
        (record_dir / f"rank{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
