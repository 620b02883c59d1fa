"""The training step's numerics levers: autocast policy, channels_last on CPU, flush-to-zero reaching torch's
worker threads, the torch.compile switch and the allocator setting."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from vireid.errors import ConfigError
from vireid.training.trainer import Trainer
from vireid.utils import device as dev

CPU = torch.device("cpu")


def test_cpu_autocast_only_where_bf16_is_native(monkeypatch):
    monkeypatch.setattr(dev, "cpu_supports_bf16", lambda: False)
    assert dev.autocast_settings(CPU, True) == (False, torch.float32)  # emulated bf16: many times slower
    assert dev.autocast_settings(CPU, True, "bfloat16") == (True, torch.bfloat16)  # asked for explicitly
    monkeypatch.setattr(dev, "cpu_supports_bf16", lambda: True)
    assert dev.autocast_settings(CPU, True) == (True, torch.bfloat16)
    assert dev.autocast_settings(CPU, False) == (False, torch.float32)
    with pytest.raises(ConfigError, match="train.amp_dtype"):
        dev.autocast_settings(CPU, True, "float16")
    with pytest.raises(ConfigError, match="train.amp_dtype"):
        dev.autocast_settings(CPU, True, "half")


def test_config_refuses_an_unknown_amp_dtype(tiny):
    with pytest.raises(ConfigError, match="train.amp_dtype"):
        tiny("train.amp_dtype=fp8")


def _trainer(tiny, root, tmp_path, name, *extra):
    t = Trainer(tiny(*extra), tmp_path / name, data_root=root, hooks=[])
    t.setup()
    t.model.train()
    return t


def test_channels_last_on_cpu_gives_the_same_step(synth_sysu, tmp_path, tiny):
    a = _trainer(tiny, synth_sysu, tmp_path, "cl", "train.channels_last=true")
    b = _trainer(tiny, synth_sysu, tmp_path, "contiguous", "train.channels_last=false")
    assert a.channels_last and not b.channels_last
    conv = next(m for m in a.model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch = next(iter(a.data.loader))
    torch.manual_seed(0)  # the same bottleneck noise in both steps
    ta = a.run_step(batch)
    torch.manual_seed(0)
    tb = b.run_step(batch)
    assert ta.keys() == tb.keys()
    for key in ta:
        assert ta[key] == pytest.approx(tb[key], rel=1e-4, abs=1e-5), key
    for (name, pa), pb in zip(a.model.named_parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-3, atol=1e-5, msg=name)


def test_compile_switch_wraps_the_step_only(synth_sysu, tmp_path, tiny):
    t = _trainer(tiny, synth_sysu, tmp_path, "compiled", "train.compile=true")
    assert t.step_model is not t.model and getattr(t.step_model, "_orig_mod", None) is t.model
    assert not any(k.startswith("_orig_mod") for k in t.state()["model"])  # checkpoints as without compile
    plain = _trainer(tiny, synth_sysu, tmp_path, "plain")
    assert plain.step_model is plain.model


@pytest.mark.skipif(sys.platform != "linux", reason="glibc allocator setting")
def test_keep_freed_memory_applies_on_glibc():
    import platform

    assert dev.keep_freed_memory() == (platform.libc_ver()[0] == "glibc")


def test_flush_to_zero_reaches_the_worker_threads_of_a_training_process(synth_sysu, tmp_path):
    # A fresh process: FTZ is per thread and inherited only by threads created after it is set; the
    # trainer sets it first thing in setup, so torch's intra-op threads (created later) have it too.
    script = textwrap.dedent(f"""
        import sys, torch
        from vireid.config import load_config
        from vireid.training.trainer import Trainer
        sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r})
        from conftest import TINY
        torch.set_num_threads(2)
        off = len(sys.argv) > 1
        cfg = load_config("sysu_vd", [*TINY, f"train.flush_denormal={{str(not off).lower()}}"])
        Trainer(cfg, {str(tmp_path / 'run')!r} + ("off" if off else "on"), data_root={str(synth_sysu)!r}, hooks=[]).setup()
        y = torch.full((1 << 22,), 1e-39) * 1.0  # denormal inputs, split over both threads
        print(float((y != 0).float().mean()))
    """)
    on = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    off = subprocess.run([sys.executable, "-c", script, "off"], capture_output=True, text=True, timeout=300)
    assert on.returncode == 0 and off.returncode == 0, on.stderr[-2000:] + off.stderr[-2000:]
    assert float(on.stdout.split()[-1]) == 0.0  # flushed on every thread
    assert float(off.stdout.split()[-1]) == 1.0  # the check can fail: denormals survive without the setting
