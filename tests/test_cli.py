"""The ``dualtalk`` command's own contract: exit statuses, and Ctrl-C / SIGTERM at any moment leave one line,
no traceback, no unfinished output and no worker behind."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import dualtalk.cli as cli
from dualtalk.io.files import atomic_path
from dualtalk.io.motion import Motion, save_motion

EXE = str(Path(sys.executable).with_name("dualtalk"))


def _parser_running(func) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.set_defaults(func=func)
    return parser


def test_sigterm_in_a_command_removes_its_unfinished_output(tmp_path, monkeypatch, capsys):
    out = tmp_path / "x.npz"

    def command(args):
        with atomic_path(out) as tmp:
            Path(tmp).write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends

    monkeypatch.setattr(cli, "build_parser", lambda: _parser_running(command))
    before = signal.getsignal(signal.SIGTERM)
    assert cli.main([]) == 143
    assert capsys.readouterr().err == "error: terminated\n"
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back


def test_interrupt_while_the_commands_are_imported(monkeypatch, capsys):
    def build():
        raise KeyboardInterrupt  # Ctrl-C in the first second: torch, transformers still importing

    monkeypatch.setattr(cli, "build_parser", build)
    assert cli.main(["generate"]) == 130
    assert capsys.readouterr().err == "error: interrupted\n"


def _wait_for(predicate, proc, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the command ended (status {proc.returncode}) before {what}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {what} within {timeout:g} s")
        time.sleep(0.05)


def _stopped_cleanly(proc, out_dir: Path) -> str:
    """SIGTERM to the command alone (as ``kill`` or ``timeout`` send it); its status, stderr and leftovers."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err == "error: terminated\n"
    assert not [p for p in os.listdir(out_dir) if p.startswith(".")], "an unfinished output was left behind"
    try:  # nothing of the command's session is left (its workers included)
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return err
    time.sleep(2)  # workers given a moment to exit
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
    return err


def test_sigterm_stops_predict_and_its_workers(tmp_path):
    data = tmp_path / "corpus"
    assert cli.main(["synth", "--out", str(data), "--conversations", "8", "--seconds", "20", "--quiet"]) == 0
    out = tmp_path / "pred"
    cmd = [EXE, "predict", "--model", "demo", "--data", str(data), "--out", str(out), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for(lambda: out.is_dir() and any(p.endswith(".npy") for p in os.listdir(out)), proc, "first prediction")
    _stopped_cleanly(proc, out)
    assert len(os.listdir(out)) < 16  # stopped, not waited for


def _rendering(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """``dualtalk render`` of a minute of motion with two workers, in its own session, once it is writing
    the video -> (the process, the output directory)."""
    rng = np.random.default_rng(0)
    T = 1500
    motion = tmp_path / "m.npz"
    exp = rng.normal(0, 1, (T, 50)).astype(np.float32)
    save_motion(motion, Motion(exp, np.zeros((T, 3), np.float32), rng.normal(0, 0.1, (T, 3)).astype(np.float32)))
    out = tmp_path / "video"
    out.mkdir()
    cmd = [EXE, "render", "--motion", str(motion), "--out", str(out / "x.mp4"), "--size", "64", "--workers", "2"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for(lambda: any(p.startswith(".") for p in os.listdir(out)), proc, "video being written")
    return proc, out


def test_sigterm_stops_render_and_its_workers(tmp_path):
    proc, out = _rendering(tmp_path)
    _stopped_cleanly(proc, out)
    assert os.listdir(out) == []


def test_serve_refuses_a_port_it_cannot_listen_on(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--port", str(port)]) == 2  # before the model is loaded
        assert capsys.readouterr().err == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert cli.main(["serve", "--port", "80000"]) == 2
    assert "--port: must be at most 65535" in capsys.readouterr().err


def test_overrides_may_follow_options_and_strays_name_the_command(capsys):
    parser = cli.build_parser()
    argv = "train --data d --out r optim.lr=1e-3 --max-steps 2 data.num_workers=0".split()
    args = cli.parse_args(parser, argv)
    assert args.overrides == ["optim.lr=1e-3", "data.num_workers=0"] and args.max_steps == 2
    with pytest.raises(SystemExit):
        cli.parse_args(parser, "train --data d --out r --bogus".split())
    assert (
        capsys.readouterr().err
        == "error: dualtalk train: unrecognized arguments: --bogus (see dualtalk train --help)\n"
    )


def test_stream_refuses_options_it_would_ignore_or_misname(tmp_path, capsys):
    import soundfile as sf

    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(1600, np.float32), 16000)
    common = ["stream", "--self-audio", str(wav), "--partner-audio", str(wav)]
    assert cli.main([*common, "--out", str(tmp_path / "x.xyz")]) == 2  # an npz under another name
    assert "a motion file is .npz (the dataset layout) or .npy" in capsys.readouterr().err
    remote = [*common, "--out", str(tmp_path / "x.npz"), "--server", "ws://127.0.0.1:9/v1/stream"]
    assert cli.main([*remote, "--dtype", "bfloat16"]) == 2  # the server's model runs, not this one
    assert "--server runs the server's model" in capsys.readouterr().err
    assert not list(tmp_path.glob("x.*"))


def test_ctrl_c_at_a_terminal_stops_render_and_its_workers(tmp_path):
    """A terminal sends Ctrl-C to every process of the group, the render workers included: one line
    (exit 130), no worker traceback, nothing left."""
    proc, out = _rendering(tmp_path)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err == "error: interrupted\n", err
    assert os.listdir(out) == []
