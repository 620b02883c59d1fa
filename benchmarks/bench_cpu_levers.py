"""CPU levers on one ResNet-50 (last stride 1) forward + backward at 256x128, variants interleaved in one process.

Run by hand:  python benchmarks/bench_cpu_levers.py [--batch 16] [--iters 4] [--threads 1] [--compile]
              [--with-emulated-bf16]

The cheap way to see each lever on its own on a shared machine: every variant runs once per round, rounds
repeat, and the median user and system CPU seconds per forward + backward are printed (CPU time, not the wall
clock, so other people's jobs on the same cores change the figures little). Variants: fp32 contiguous (the
reference), channels_last, oneDNN off (``torch.backends.mkldnn.enabled = False``: what oneDNN brings),
freed memory kept (glibc mallopt, see ``vireid.utils.device.keep_freed_memory``: the system time of
re-faulting activations), and optionally bf16 autocast and ``torch.compile``. Flush-to-zero is per process:
compare a run with ``--no-ftz``. The whole training step of a recipe: ``bench_training.py --levers``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import time

import torch
import torchvision

from vireid.utils.device import cpu_supports_bf16, flush_denormals

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def glibc_keep_freed(on: bool) -> None:
    """Switch glibc between keeping freed memory (no mmap, no trim) and its defaults."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(_M_MMAP_MAX, 0 if on else 65536)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1 if on else 128 * 1024)


def resnet50(num_classes: int = 100) -> torch.nn.Module:
    torch.manual_seed(0)
    m = torchvision.models.resnet50()
    m.layer4[0].conv2.stride = (1, 1)
    m.layer4[0].downsample[0].stride = (1, 1)
    m.fc = torch.nn.Linear(2048, num_classes)
    return m


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--iters", type=int, default=4, help="rounds (the first is a warm-up)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--compile", action="store_true", help="also torch.compile (minutes of compiling on a CPU)")
    p.add_argument("--with-emulated-bf16", action="store_true", help="bf16 autocast even without native bf16")
    p.add_argument("--no-ftz", action="store_true", help="keep denormals (the default flushes them)")
    args = p.parse_args()
    if not args.no_ftz:
        flush_denormals()  # first: torch's worker threads inherit it
    torch.set_num_threads(args.threads)
    variants = ["fp32", "channels_last", "oneDNN off", "keep freed memory"]
    if cpu_supports_bf16() or args.with_emulated_bf16:
        variants.append("bf16 autocast")
    if args.compile:
        variants.append("channels_last + compile")
    models = {}
    for v in variants:
        m = resnet50()
        if "channels_last" in v:
            m = m.to(memory_format=torch.channels_last)
        models[v] = (m, torch.compile(m) if "compile" in v else m)
    x0 = torch.randn(args.batch, 3, 256, 128)
    y = torch.randint(100, (args.batch,))
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    for it in range(args.iters):
        for v in variants:
            m, fwd = models[v]
            x = x0.contiguous(memory_format=torch.channels_last) if "channels_last" in v else x0
            torch.backends.mkldnn.enabled = v != "oneDNN off"
            glibc_keep_freed(v == "keep freed memory")
            amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=v == "bf16 autocast")
            t0 = os.times()
            wall = time.perf_counter()
            with amp:
                out = fwd(x)
            torch.nn.functional.cross_entropy(out.float(), y).backward()
            m.zero_grad(set_to_none=True)
            t1 = os.times()
            times[v].append((t1.user - t0.user, t1.system - t0.system))
            print(f"round {it + 1}/{args.iters} {v:<24} user {times[v][-1][0]:6.2f} s  sys {times[v][-1][1]:5.2f} s  "
                  f"wall {time.perf_counter() - wall:6.2f} s", flush=True)
    torch.backends.mkldnn.enabled = True
    glibc_keep_freed(False)
    ref = statistics.median(u + s for u, s in times["fp32"][1:])
    print(f"\nResNet-50 fwd+bwd, batch {args.batch} at 256x128, {args.threads} thread(s), ftz {not args.no_ftz}; "
          f"medians over rounds 2..{args.iters}")
    print(f"{'variant':<24} {'user s':>7} {'sys s':>6} {'CPU s':>6} {'x fp32':>7}")
    for v in variants:
        u = statistics.median(t[0] for t in times[v][1:])
        s = statistics.median(t[1] for t in times[v][1:])
        tot = statistics.median(a + b for a, b in times[v][1:])
        print(f"{v:<24} {u:7.2f} {s:6.2f} {tot:6.2f} {ref / tot:7.2f}")


if __name__ == "__main__":
    main()
