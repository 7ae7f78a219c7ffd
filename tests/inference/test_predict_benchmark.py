"""benchmarks/predict.py: the whole ``dualtalk predict`` command timed per ``--workers`` value, with the machine
it ran on (a tiny model directory: the full-size one is the benchmark's default, not the test's)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tests.conftest import load_benchmark


def test_predict_benchmark_times_every_workers_value_and_records_the_machine(tmp_path):
    from dualtalk.model.checkpoint import save_model
    from dualtalk.model.dualtalk import build_model
    from dualtalk.model.presets import get_preset

    torch.manual_seed(0)
    model = build_model(get_preset("tiny")).eval()
    directory = save_model(model, tmp_path / "model")
    out = tmp_path / "predict_test.json"
    load_benchmark("predict").main(
        ["--conversations", "2", "--seconds", "1", "--workers", "1,2", "--model", str(directory)]
        + ["--out", str(out), "--repeats", "2"]
    )
    result = json.loads(out.read_text())
    assert [r["workers"] for r in result["rows"]] == [1, 2]
    assert result["repeats"] == 2 and all(
        len(r["walls_s"]) == 2 and r["wall_s"] == min(r["walls_s"]) for r in result["rows"]
    )
    assert all(r["files"] == 4 and r["conversations_per_minute"] > 0 for r in result["rows"])  # both sides of each
    machine = result["machine"]
    assert machine["cpus"] >= 1 and "python" in machine
    if Path("/proc/cpuinfo").exists():  # generate.py's record: the CPU and whether bfloat16 is native there
        assert "cpu_model" in machine and isinstance(machine["native_bf16"], bool)
