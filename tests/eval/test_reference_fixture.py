"""The reference protocol reproduces every value of the shared official-metrics fixture (rel. err <= 1e-6)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import shared_path

from dualtalk.cli import main
from dualtalk.eval import evaluate

TOL = 1e-6


def _fixture():
    root = shared_path("fixtures", "official_metrics")
    return root / "pred", root / "gt", json.loads((root / "expected_metrics.json").read_text())


def _assert_matches(result, expected):
    assert set(result["per_file"]) == set(expected["per_file"])
    for name, values in expected["per_file"].items():
        for key, want in values.items():
            got = result["per_file"][name][key]
            assert abs(got - want) <= TOL * abs(want), (name, key, got, want)
    assert list(result["mean"]) == list(expected["mean"])  # same keys, same order
    for key, want in expected["mean"].items():
        assert abs(result["mean"][key] - want) <= TOL * abs(want), (key, result["mean"][key], want)


@pytest.mark.parametrize("workers", [1, 2])
def test_reference_protocol_reproduces_expected_metrics(workers):
    pred, gt, expected = _fixture()
    result = evaluate(pred, gt, protocol="reference", workers=workers)
    _assert_matches(result, expected)
    assert result["info"]["frames"]["conv00_speaker1.npy"] == {"evaluated": 281, "pred": 281, "gt": 284, "partner": 284}


def test_cli_writes_the_same_json(tmp_path, capsys):
    pred, gt, expected = _fixture()
    out = tmp_path / "m.json"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--json", str(out)]) == 0
    _assert_matches(json.loads(out.read_text()), expected)
    table = capsys.readouterr().out
    assert "fid" in table and "rpcc" in table and "28.66" in table  # fid_exp mean


def test_installed_command(tmp_path):
    pred, gt, expected = _fixture()
    exe = Path(sys.executable).with_name("dualtalk")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "dualtalk"]
    out = tmp_path / "m.json"
    proc = subprocess.run(
        cmd + ["evaluate", "--pred", str(pred), "--gt", str(gt), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    _assert_matches(json.loads(out.read_text()), expected)
