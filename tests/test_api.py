"""The Python API mirrors the CLI, and ``import dualtalk`` stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import dualtalk


def test_every_command_has_a_function():
    for name in (
        "load_model",
        "generate",
        "predict",
        "convert_official",
        "evaluate",
        "train_model",
        "render_video",
        "plot_motion",
        "make_corpus",
        "run_benchmark",
        "run_demo",
        "get_preset",
        "DualTalkConfig",
    ):
        assert callable(getattr(dualtalk, name)), name
    assert "generate" in dir(dualtalk)
    train_pkg = importlib.import_module("dualtalk.train")  # the subpackage must not hide the function
    assert dualtalk.train_model is train_pkg.train


def test_import_is_light():
    code = "import sys, dualtalk; from dualtalk.io import load_motion; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_cli_lists_every_subcommand():
    from dualtalk.cli import build_parser

    text = build_parser().format_help()
    for cmd in (
        "generate",
        "predict",
        "convert-official",
        "evaluate",
        "train",
        "render",
        "plot",
        "synth",
        "benchmark",
        "demo",
    ):
        assert cmd in text, cmd


def test_library_misuse_is_one_clear_error(tmp_path):
    """Arguments a library user may get wrong are checked before anything is written (a sweep found them
    failing late or as bare Python errors)."""
    import pytest

    import dualtalk
    from dualtalk.errors import DualTalkError

    for kwargs, message in ((dict(size=100), "multiple of 16"), (dict(seconds=0), "seconds must be > 0")):
        with pytest.raises(DualTalkError, match=message):
            dualtalk.run_demo(tmp_path / "demo", **kwargs)
    assert not (tmp_path / "demo").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(DualTalkError, match="exists and is not a directory"):
        dualtalk.train_model(tmp_path, tmp_path / "file", preset="tiny-mel", max_steps=1, progress=False)
    with pytest.raises(DualTalkError, match=r"shard must be \(index, count\)"):
        dualtalk.predict("demo", tmp_path, tmp_path / "pred", shard=(0, 0))
