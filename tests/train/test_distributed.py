"""Two CPU processes (torchrun, gloo): each sees its own data, both end with identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from tests.conftest import put_nan

from dualtalk.model.checkpoint import load_model
from dualtalk.train import train
from dualtalk.train.engine import weights_digest

BIN = Path(sys.executable).parent


def test_two_processes_gloo(toy_corpus, tmp_path):
    run = tmp_path / "run"
    cmd = [
        str(BIN / "torchrun"),
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "dualtalk",
        "train",
        "--data",
        str(toy_corpus),
        "--out",
        str(run),
        "--preset",
        "tiny-mel",
        "--max-steps",
        "4",
        "--no-progress",
        "data.window_frames=25",
        "data.batch_size=3",
        "data.num_workers=0",
        "debug_record=true",
        "tensorboard=false",
        "val_every=2",
        "checkpoint_every=2",
        "val_at_start=false",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((run / "debug" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    seen = [set(r["samples"]) for r in ranks]
    assert len(ranks[0]["samples"]) == len(ranks[1]["samples"]) == 4 * 3  # 4 steps of 3 examples each
    assert seen[0] and seen[1] and not seen[0] & seen[1], "both processes read the same examples"
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"], "the processes' weights diverged"
    saved = load_model(run / "checkpoints" / "step_00000004" / "model")
    assert weights_digest(saved) == ranks[0]["weights_sha256"]
    assert json.loads((run / "run.json").read_text())["world_size"] == 2
    assert not torch.equal(
        saved.synthesis_module.blendshape_predictor.weight,
        load_model(run / "checkpoints" / "step_00000002" / "model").synthesis_module.blendshape_predictor.weight,
    )

    # the run continues in one process (another world size: same data position, fresh random states)
    train(None, run, max_steps=6, overrides=["debug_record=false"], resume=True, progress=False)
    assert (run / "checkpoints" / "step_00000006").is_dir()


def test_a_data_error_under_torchrun_is_one_line_from_one_process(toy_corpus, tmp_path):
    """Rank 0 reads the data; its error stops rank 1 too, which neither prints it again nor dies in a
    collective left waiting (a gloo traceback); no run directory is left."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(toy_corpus, data)
    bad = put_nan(sorted((data / "val").glob("*.npz"))[0])
    run = tmp_path / "run"
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "dualtalk", "train"]
    cmd += ["--data", str(data), "--out", str(run), "--preset", "tiny-mel", "--max-steps", "2", "--no-progress"]
    cmd += ["data.num_workers=0", "tensorboard=false"]
    result = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert ours == [f"error: {bad}: 'exp' contains NaN or infinite values"], result.stderr[-3000:]
    assert "[rank1]" not in result.stderr and "gloo" not in result.stderr.lower()
    assert not run.exists()
