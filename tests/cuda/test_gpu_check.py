"""benchmarks/gpu_check.py in its reduced CPU version: every section runs and every check passes (on a machine
with CUDA the full version is what one runs by hand; see docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def test_reduced_gpu_check_runs_every_section(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--reduced", "--device", "cpu", "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["reduced"] and res["failed"] == []
    sections = res["sections"]
    for recipe in ("sysu_vd", "sysu_baseline"):
        steps = sections[f"training steps: {recipe}"]
        assert {"fp32", "fp32 + channels_last", "bf16", "bf16 + channels_last"} <= set(steps)
        assert all(v["finite"] and v["images_per_s"] > 0 for v in steps.values())
        assert steps["fp32"]["first_loss_minus_fp32"] == 0.0
        assert abs(steps["fp32 + channels_last"]["first_loss_minus_fp32"]) < 1e-3  # same maths, another layout
    assert sections["resume round trip"]["max_weight_diff"] == 0.0
    assert sections["extraction"]["finite"] and sections["extraction"]["images_per_s"] > 0
    ddp = sections["DDP (torchrun)"]
    assert ddp["returncode"] == 0 and len(ddp["ranks"]) == 2
    assert len({r["checksum"] for r in ddp["ranks"]}) == 1 and {r["backend"] for r in ddp["ranks"]} == {"gloo"}
    assert "all checks passed" in proc.stdout
