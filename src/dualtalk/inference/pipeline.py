"""Files -> model -> files: ``generate`` one person, ``predict`` a whole split.

Exact and windowed inference. Up to ``window`` seconds (default :data:`DEFAULT_WINDOW_SECONDS`) a
conversation runs as one sequence: exactly the computation of the reference implementation. Longer
conversations run in windows of that length that overlap by ``overlap`` seconds; in each overlap the two
windows' outputs are cross-faded linearly, so there is no seam. Every attention layer of the model is
global, so windowed output differs (slightly, far from the window edges) from a hypothetical full-sequence
run; ``window=0`` forces one sequence whatever the length (memory grows with the square of the length in
the interaction module's attention).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DualTalkError
from ..io.conversation import discover_conversations, load_generation_inputs, partner_speaker
from ..io.motion import Motion, save_model_motion, save_motion
from ..io.progress import progress as progress_bar
from ..layout import frames_for
from ..model.checkpoint import load_model
from ..model.dualtalk import DualTalk

DEFAULT_WINDOW_SECONDS = 120.0
DEFAULT_OVERLAP_SECONDS = 10.0

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DualTalkError("--device cuda: no CUDA device is available (this PyTorch build or machine has none)")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DualTalkError("--device mps: Apple's Metal backend is not available on this machine")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise DualTalkError(f"unsupported device {device!r} (cpu, cuda, mps)")
    return dev


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise DualTalkError(f"unsupported dtype {dtype!r} (float32, bfloat16)")
    return _DTYPES[dtype]


@dataclass
class InferenceOptions:
    device: str = "cpu"
    dtype: str = "float32"
    #: seconds per window; longer inputs are windowed (0 = never window)
    window: float = DEFAULT_WINDOW_SECONDS
    overlap: float = DEFAULT_OVERLAP_SECONDS
    progress: bool = True
    #: int8 dynamic quantisation of the linear layers (CPU only): faster, not exact
    int8: bool = False


def plan_windows(num_frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """Frame ranges [start, end) covering [0, T) with ``overlap`` frames shared by neighbours."""
    if window <= 0 or num_frames <= window:
        return [(0, num_frames)]
    if overlap >= window:
        raise DualTalkError(f"overlap ({overlap} frames) must be shorter than the window ({window} frames)")
    step = window - overlap
    starts = list(range(0, num_frames - window, step)) + [num_frames - window]
    return [(s, s + window) for s in starts]


def blend_weights(windows: list[tuple[int, int]]) -> list[np.ndarray]:
    """Per-window weights (len = window length) that cross-fade linearly where windows overlap and sum
    to one at every frame."""
    weights = [np.ones(e - s, dtype=np.float64) for s, e in windows]
    for i in range(1, len(windows)):
        s_cur, _ = windows[i]
        _, e_prev = windows[i - 1]
        n = e_prev - s_cur  # overlap length
        if n <= 0:
            continue
        ramp = (np.arange(n) + 0.5) / n  # rises 0 -> 1 across the overlap
        weights[i][:n] *= ramp
        weights[i - 1][-n:] *= 1.0 - ramp
    return weights


def run_model(model: DualTalk, self_audio: np.ndarray, partner_audio: np.ndarray, partner_motion: np.ndarray,
              options: InferenceOptions | None = None) -> np.ndarray:
    """Arrays in, (T, 56) model-order motion out; T = ceil(len(self_audio) / 640)."""
    options = options or InferenceOptions()
    cfg = model.config
    spf = cfg.samples_per_frame
    num_frames = partner_motion.shape[0]
    expected = frames_for(len(self_audio), cfg.sample_rate, cfg.fps)
    if expected != num_frames:
        raise DualTalkError(f"partner motion has {num_frames} frames, the audio implies {expected}")
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype)
    model = model.to(device).eval()
    window = int(round(options.window * cfg.fps)) if options.window else 0
    overlap = int(round(options.overlap * cfg.fps))
    windows = plan_windows(num_frames, window, overlap)
    weights = blend_weights(windows)
    out = np.zeros((num_frames, cfg.motion_dim), dtype=np.float64)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    bar = progress_bar(windows, desc="generate", unit="window", enabled=options.progress and len(windows) > 1)
    with torch.inference_mode(), autocast:
        for (s, e), w in zip(bar, weights):
            a = torch.from_numpy(np.ascontiguousarray(self_audio[s * spf: e * spf], dtype=np.float32))
            b = torch.from_numpy(np.ascontiguousarray(partner_audio[s * spf: e * spf], dtype=np.float32))
            m = torch.from_numpy(np.ascontiguousarray(partner_motion[s:e], dtype=np.float32))
            y = model(a[None].to(device), b[None].to(device), m[None].to(device))  # (1, t, 56)
            out[s:e] += w[:, None] * y[0].float().cpu().numpy()
    return out.astype(np.float32)


def quantize_int8(model: DualTalk) -> DualTalk:
    """Run the audio encoders' ``nn.Linear`` layers (>90% of the arithmetic) as int8 dynamic quantisation
    (weights int8, activations quantised per batch); modifies ``model`` in place and returns it.

    CPU only; trades exactness for speed (see benchmarks/generate.py). The small transformer layers after
    the encoders stay fp32 (their fused fast path needs float weights)."""
    import warnings

    from torch.ao.quantization import quantize_dynamic

    model = model.cpu().eval()
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        for name in ("audio_encoder1", "audio_encoder2"):
            if hasattr(model.joint_encoder, name):
                enc = getattr(model.joint_encoder, name)
                setattr(model.joint_encoder, name, quantize_dynamic(enc, {torch.nn.Linear}, dtype=torch.qint8))
    return model


def _as_model(model, config=None, device="cpu", int8: bool = False) -> DualTalk:
    device = resolve_device(device)  # fail on an unavailable device before reading anything
    if int8 and device.type != "cpu":
        raise DualTalkError("int8 quantisation runs on the CPU only (use --device cpu)")
    net = model if isinstance(model, DualTalk) else load_model(model, config=config)
    return quantize_int8(net) if int8 else net.to(device)


def generate(model, self_audio: str | os.PathLike, partner_audio: str | os.PathLike,
             partner_motion: str | os.PathLike, out: str | os.PathLike | None = None, config=None,
             options: InferenceOptions | None = None) -> Motion:
    """Generate the motion of the person speaking in ``self_audio``; write it to ``out`` (dataset layout).

    ``model``: a :class:`DualTalk`, a model directory, an ``hf-hub:`` id, a released-layout ``.pth``
    (``config`` = its config json when not the released shapes) or a preset name.
    """
    options = options or InferenceOptions()
    net = _as_model(model, config, options.device, options.int8)
    inputs = load_generation_inputs(self_audio, partner_audio, partner_motion, net.config.sample_rate, net.config.fps)
    motion = Motion.from_model(run_model(net, inputs.self_audio, inputs.partner_audio, inputs.partner_motion, options),
                               net.config.fps)
    if out is not None:
        save_motion(out, motion)
    return motion


def predict(model, data_dir: str | os.PathLike, out_dir: str | os.PathLike, config=None,
            options: InferenceOptions | None = None) -> list[Path]:
    """Every conversation of a split, in both directions where the partner's motion exists:
    ``out_dir/NAME_speakerK.npy`` (T, 56) in model order."""
    options = options or InferenceOptions()
    conversations = discover_conversations(data_dir)
    net = _as_model(model, config, options.device, options.int8)
    jobs = [(conv, k) for conv in conversations for k in conv.generatable()]
    written = []
    inner = InferenceOptions(**{**options.__dict__, "progress": False})
    for conv, k in progress_bar(jobs, desc="predict", unit="file", enabled=options.progress):
        p = partner_speaker(k)
        inputs = load_generation_inputs(conv.audio[k], conv.audio[p], conv.motion[p], net.config.sample_rate,
                                        net.config.fps)
        y = run_model(net, inputs.self_audio, inputs.partner_audio, inputs.partner_motion, inner)
        path = Path(out_dir) / f"{conv.name}_speaker{k}.npy"
        save_model_motion(path, y)
        written.append(path)
    return written
