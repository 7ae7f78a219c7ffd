"""``dualtalk demo``: the whole pipeline offline, on a fresh synthetic conversation, in about a minute.

    dualtalk demo                                  # -> demo_output/
    dualtalk demo --out DIR --seconds 20 --seed 3
    dualtalk demo --model models/dualtalk-released --self-audio B.wav --partner-audio A.wav \\
                  --partner-motion A.npz [--ground-truth B.npz]

Without ``--model`` it (1) makes a synthetic two-person conversation (``dualtalk.synth``) whose motion
has known causes, (2) generates person B (speaker 2) from both audios and A's motion with the small
DualTalk model shipped in the package (``dualtalk/assets/demo_model``, trained on the synthetic corpus by
``python scripts/train_demo_model.py``), (3) writes the generated motion, a plot of both people's motion
with speaking/listening bands, the metrics against the known ground truth, and the two-head video with
both audio tracks. With ``--model`` and real files the same runs a real model (for example the converted
released checkpoint); metrics need ``--ground-truth``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DualTalkError, require
from .io.audio import save_audio
from .io.files import atomic_write_text
from .io.motion import AnyMotion, save_model_motion, save_motion

#: the model shipped in the package (config.json + model.safetensors)
DEMO_MODEL = Path(__file__).resolve().parent / "assets" / "demo_model"
NAME = "demo"


@dataclass
class DemoResult:
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    metrics: dict | None = None
    seconds: float = 0.0


def _metrics(pred: np.ndarray, gt_dir: Path, work: Path) -> dict:
    """The project's evaluation (reference protocol + speaking/listening breakdown) of one prediction."""
    from .eval import evaluate

    pred_dir = work / "pred"
    save_model_motion(pred_dir / f"{NAME}_speaker2.npy", pred)
    return evaluate(pred_dir, gt_dir, protocol="reference", progress=False)


def run_demo(
    out_dir: str | os.PathLike = "demo_output",
    seconds: float = 20.0,
    seed: int | None = None,
    model: str | os.PathLike | None = None,
    self_audio=None,
    partner_audio=None,
    partner_motion=None,
    ground_truth=None,
    video: bool = True,
    size: int = 384,
    progress: bool = True,
) -> DemoResult:
    """Run the demo; returns what was written. See the module docstring."""
    from .inference.pipeline import InferenceOptions, generate
    from .render import plot_motion, render_video

    started = time.perf_counter()
    out = Path(out_dir)
    real = any(x is not None for x in (self_audio, partner_audio, partner_motion))
    if real and not all(x is not None for x in (self_audio, partner_audio, partner_motion)):
        raise DualTalkError("--self-audio, --partner-audio and --partner-motion go together")
    if real and model is None:
        raise DualTalkError("real input files need --model (the shipped demo model knows only synthetic voices)")
    if model is None and not (DEMO_MODEL / "model.safetensors").exists():
        raise DualTalkError(
            f"the shipped demo model is missing from {DEMO_MODEL} (re-create it: python scripts/train_demo_model.py)"
        )
    require("sklearn", "eval")  # the metrics, the plot and the video: every extra checked before writing anything
    require("matplotlib", "render")
    if video:
        require("imageio_ffmpeg", "render")
        from .render.video import check_video_size

        check_video_size(size)  # before anything is written
    if not real and not (isinstance(seconds, (int, float)) and seconds > 0):
        raise DualTalkError(f"seconds must be > 0, got {seconds!r}")
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out)
    options = InferenceOptions(progress=False)
    with tempfile.TemporaryDirectory(prefix=".demo-", dir=out) as tmp:
        work = Path(tmp)
        if not real:
            from .synth import make_conversation

            seed = int(np.random.default_rng().integers(0, 2**31 - 1)) if seed is None else int(seed)
            conv = make_conversation(seconds, seed)
            conv_dir = out / "conversation"
            for k in (1, 2):
                save_audio(conv_dir / f"{NAME}_speaker{k}.wav", conv.audio[k])
                save_motion(conv_dir / f"{NAME}_speaker{k}.npz", conv.motion[k])
            atomic_write_text(conv_dir / "truth.json", json.dumps(conv.truth(), indent=1) + "\n")
            self_audio = conv_dir / f"{NAME}_speaker2.wav"
            partner_audio = conv_dir / f"{NAME}_speaker1.wav"
            partner_motion = conv_dir / f"{NAME}_speaker1.npz"
            ground_truth = conv_dir / f"{NAME}_speaker2.npz"
            result.files["conversation"] = conv_dir
        if progress:
            source = self_audio if real else f"synthetic conversation, seed {seed}"
            print(
                f"[demo] generating person B ({source})",
                flush=True,
            )
        motion: AnyMotion = generate(
            model if model is not None else DEMO_MODEL,
            self_audio,
            partner_audio,
            partner_motion,
            out / "generated_B.npz",
            options=options,
        )
        result.files["motion"] = out / "generated_B.npz"
        if ground_truth is not None:
            gt_dir = work / "gt"
            gt_dir.mkdir()
            shutil.copyfile(ground_truth, gt_dir / f"{NAME}_speaker2.npz")
            shutil.copyfile(partner_motion, gt_dir / f"{NAME}_speaker1.npz")
            shutil.copyfile(self_audio, gt_dir / f"{NAME}_speaker2{Path(self_audio).suffix}")
            shutil.copyfile(partner_audio, gt_dir / f"{NAME}_speaker1{Path(partner_audio).suffix}")
            result.metrics = _metrics(motion.to_model(), gt_dir, work)
            atomic_write_text(out / "metrics.json", json.dumps(result.metrics, indent=2) + "\n")
            result.files["metrics"] = out / "metrics.json"
        if progress:
            print("[demo] plotting", flush=True)
        result.files["plot"] = plot_motion(
            motion,
            out / "motion.png",
            audio=self_audio,
            partner_motion=partner_motion,
            partner_audio=partner_audio,
            num_exp=4,  # exp[3]: the smile
            title="DualTalk demo: A's motion is given, B's is generated",
        )
        if video:
            if progress:
                print("[demo] rendering the video", flush=True)
            render_video(
                motion,
                out / "conversation.mp4",
                audio=self_audio,
                partner_motion=partner_motion,
                partner_audio=partner_audio,
                ground_truth=ground_truth,
                size=size,
                progress=progress,
            )
            result.files["video"] = out / "conversation.mp4"
    result.seconds = time.perf_counter() - started
    return result


def summary(result: DemoResult) -> str:
    from .eval import format_table

    lines = []
    if result.metrics is not None:
        lines += [
            "Metrics of the generated person against the ground truth (reference protocol):",
            format_table(result.metrics),
            "",
        ]
    lines.append(f"Wrote (in {result.seconds:.0f} s):")
    labels = {
        "conversation": "the conversation (both audios, both motions, truth.json)",
        "motion": "generated motion of B (exp, pose)",
        "metrics": "metrics (JSON)",
        "plot": "motion curves with speaking/listening bands",
        "video": "two-head video with audio",
    }
    for key, path in result.files.items():
        lines.append(f"  {str(path):<40} {labels.get(key, key)}")
    return "\n".join(lines)
