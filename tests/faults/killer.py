"""Run ``vireid ARGS`` in this process and kill it with SIGKILL at an exact point (fault injection).

    python killer.py SPEC [SPEC ...] -- ARGS...

The process really dies by ``kill -9`` (no exception handler, no ``finally`` runs); the SPEC only
chooses the moment, which an outside ``kill`` could hit only by chance:

    step=N                 after the N-th optimisation step returns
    save=NAME:N:BYTES      inside ``torch.save`` of the N-th checkpoint written to NAME (last.pt, model.pt),
                           once BYTES bytes of it reached the file (torch's own writer is mid-file)
    evalimage=N            when the N-th test-transform image is loaded (validation or extraction)
    cache=N                when the decoded-image cache build loads its N-th image
    synth=N                when ``vireid synth`` has written N images
    hold=step:N:FILE       after step N, wait until FILE exists (keeps the process alive for a test)

Used by tests/faults and by benchmarks/faults.py (which runs it by path). Data loading must run in
this process (``data.num_workers=0``) for ``evalimage`` and ``cache``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def nth_call(obj, name: str, n: int, action=die, before: bool = True) -> None:
    """Patch ``obj.name`` so that its n-th call runs ``action`` (before or after the real call)."""
    real = getattr(obj, name)
    calls = [0]

    def patched(*args, **kwargs):
        calls[0] += 1
        hit = calls[0] == n
        if hit and before:
            action()
        out = real(*args, **kwargs)
        if hit and not before:
            action()
        return out

    setattr(obj, name, patched)


class _KillAfter:
    """A file for ``torch.save`` that dies once ``limit`` bytes went through it."""

    def __init__(self, fh, limit: int) -> None:
        self.fh, self.left = fh, limit

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) >= self.left:
            self.fh.write(data[: self.left])
            self.fh.flush()
            getattr(self.fh, "fh", self.fh).flush()
            die()
        self.left -= len(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


def arm_save(name: str, n: int, limit: int) -> None:
    import torch

    from vireid.training import checkpoint

    real_save, real_checkpoint = torch.save, checkpoint.save_checkpoint
    count, armed = [0], [False]

    def save_checkpoint(path, state):
        if Path(path).name == name:
            count[0] += 1
            armed[0] = count[0] == n
        try:
            return real_checkpoint(path, state)
        finally:
            armed[0] = False

    def save(obj, f, *args, **kwargs):
        if armed[0]:
            f = _KillAfter(f, limit)
        return real_save(obj, f, *args, **kwargs)

    checkpoint.save_checkpoint = save_checkpoint
    torch.save = save


def hold(path: str) -> None:
    deadline = time.monotonic() + 300  # a guard only: the test creates the file
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def install(spec: str) -> None:
    kind, _, arg = spec.partition("=")
    if kind == "step":
        from vireid.training.trainer import Trainer

        nth_call(Trainer, "run_step", int(arg), before=False)
    elif kind == "save":
        name, n, limit = arg.split(":")
        arm_save(name, int(n), int(limit))
    elif kind == "evalimage":
        from vireid.data.loaders import EvalDataset

        nth_call(EvalDataset, "__getitem__", int(arg))
    elif kind == "cache":
        from vireid.data import cache

        nth_call(cache._DecodeDataset, "__getitem__", int(arg))
    elif kind == "synth":
        from vireid.data.synthvi import writer

        nth_call(writer, "_save", int(arg) + 1)
    elif kind == "hold":
        what, n, path = arg.split(":", 2)
        if what != "step":
            raise SystemExit(f"killer: unknown hold point {what!r}")
        from vireid.training.trainer import Trainer

        nth_call(Trainer, "run_step", int(n), action=lambda: hold(path), before=False)
    else:
        raise SystemExit(f"killer: unknown spec {spec!r}")


def main(argv: list[str]) -> int:
    if "--" not in argv:
        raise SystemExit(__doc__)
    cut = argv.index("--")
    for spec in argv[:cut]:
        install(spec)
    from vireid.cli.main import main as vireid_main

    return vireid_main(argv[cut + 1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
