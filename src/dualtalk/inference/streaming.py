"""Live use of a causal model: push audio (and, if you have it, the partner's face) as it arrives, get the
frames that became final.

    session = StreamingSession(load_model("demo-stream"))
    for self_chunk, partner_chunk in microphone_pairs():          # any chunk sizes, 16 kHz mono float
        frames = session.push(self_chunk, partner_chunk)          # (n, 56) model order, n >= 0
    frames = session.flush()                                      # the rest; the session is closed

    joint = JointSession(model)                                   # both people from two voices
    b, a = joint.push(b_chunk, a_chunk)                           # each fed the other's motion, 1 frame late

Frame t is final once both voices reached sample ``640 (t + 1 + lookahead)`` (and, with the partner's
face, once the partner's motion of frame ``t - partner_motion_delay`` arrived). The model carries its
state between calls (``CausalDualTalk.forward_frames``), so the frames equal those of the offline
``model(self_audio, partner_audio, partner_motion)`` on the whole input (up to float rounding), and memory
stays constant however long the stream. Audio at another rate is resampled as a stream (soxr), stereo is
averaged to mono.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DualTalkError
from ..io.audio import samples_problem
from ..io.motion import motion_values_problem
from ..model.causal import CausalDualTalk, _take

#: at the end, a partner stream may be this many frames shorter than the person's (as ``generate`` allows)
END_TOLERANCE_FRAMES = 5
#: the two voices may drift apart by this much while streaming before it counts as a stalled stream
MAX_SKEW_SECONDS = 10.0


def _causal(model) -> CausalDualTalk:
    if not isinstance(model, CausalDualTalk):
        variant = getattr(getattr(model, "config", None), "variant", "?")
        raise DualTalkError(
            f"streaming needs a causal model (variant 'causal', e.g. --model demo-stream); this model "
            f"is {variant!r}, which sees the whole conversation at once"
        )
    return model


class _AudioStream:
    """One voice: resampling to the model's rate, the samples still needed, and how many arrived."""

    def __init__(self, name: str, sample_rate: int, channels: int, model_rate: int):
        if not isinstance(sample_rate, (int, np.integer)) or not 4000 <= sample_rate <= 384000:
            raise DualTalkError(
                f"{name}: sample rate must be a whole number of Hz in [4000, 384000], got {sample_rate!r}"
            )
        if channels not in (1, 2):
            raise DualTalkError(f"{name}: channel count must be 1 or 2, got {channels!r}")
        self.name, self.channels = name, channels
        self.resampler = None
        if sample_rate != model_rate:
            import soxr

            self.resampler = soxr.ResampleStream(int(sample_rate), model_rate, 1, dtype="float32")
        self.buffer = np.zeros(0, np.float32)
        self.start = 0  # absolute index of buffer[0]
        self.received = 0  # samples at the model's rate so far

    def push(self, pcm, last: bool = False) -> None:
        if pcm is None:
            if last and self.resampler is not None:
                self._append(self.resampler.resample_chunk(np.zeros(0, np.float32), last=True))
            return
        x = self.check(pcm)
        assert x is not None
        self.take(x, last)

    def check(self, pcm) -> np.ndarray | None:
        """The pushed samples as mono float32 (checked; nothing taken yet); None stays None."""
        if pcm is None:
            return None
        try:
            x = np.asarray(pcm)
        except (ValueError, TypeError):
            raise DualTalkError(f"{self.name}: samples must be an array of numbers") from None
        if x.dtype == np.int16:
            x = x.astype(np.float32) / 32768.0
        if not np.issubdtype(x.dtype, np.floating) and x.size:
            raise DualTalkError(f"{self.name}: samples must be float or int16, got {x.dtype}")
        x = x.astype(np.float32, copy=False)
        if self.channels == 1 and x.ndim != 1:
            raise DualTalkError(f"{self.name}: expected mono samples (n,), got shape {x.shape}")
        if self.channels == 2:
            if x.ndim != 2 or x.shape[1] != 2:
                raise DualTalkError(f"{self.name}: expected stereo samples (n, 2), got shape {x.shape}")
            x = x.mean(axis=1)
        problem = samples_problem(x)
        if problem is not None:
            raise DualTalkError(f"{self.name}: audio {problem}")
        return x

    def take(self, x: np.ndarray, last: bool = False) -> None:
        """Samples :meth:`check` returned, resampled to the model's rate and buffered."""
        if self.resampler is not None:
            x = self.resampler.resample_chunk(x, last=last)
        self._append(x)

    def _append(self, x: np.ndarray) -> None:
        self.buffer = np.concatenate([self.buffer, x]) if self.buffer.size else x.astype(np.float32, copy=True)
        self.received += len(x)

    def trim(self, keep_from: int) -> None:
        """Drop samples before absolute index ``keep_from``."""
        cut = min(max(0, keep_from - self.start), len(self.buffer))
        if cut:
            self.buffer = self.buffer[cut:]
            self.start += cut


class StreamingSession:
    """One person's motion from both voices (and optionally the partner's face), pushed in chunks.

    ``partner_motion``: ``True`` (the partner's motion will be pushed), ``False`` (never: the model runs on
    audio alone; it must have been trained with ``partner_motion_dropout``) or ``None`` (decided by the
    first push). ``sample_rate`` / ``channels`` declare the pushed audio.
    """

    def __init__(
        self,
        model,
        *,
        partner_motion: bool | None = None,
        sample_rate: int = 16000,
        channels: int = 1,
        partner_sample_rate: int | None = None,
        partner_channels: int | None = None,
        compute_dtype: torch.dtype = torch.float32,
    ):
        self.model = _causal(model).eval()
        #: the arithmetic of the model's forward (bfloat16: autocast; float32: exact)
        self.compute_dtype = compute_dtype
        cfg = model.config
        self.cfg = cfg
        self.spf = cfg.samples_per_frame
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.voices = {
            "self": _AudioStream("self audio", sample_rate, channels, cfg.sample_rate),
            "partner": _AudioStream(
                "partner audio", partner_sample_rate or sample_rate, partner_channels or channels, cfg.sample_rate
            ),
        }
        self.frontend = (model.audio_encoder1 if cfg.use_self_audio else model.audio_encoder2).frontend
        self.use_motion = partner_motion
        if partner_motion is False:
            self._check_audio_only()
        self.motion: list[np.ndarray] = []  # partner motion frames still needed (from index motion_start)
        self.motion_start = 0
        self.motion_received = 0
        self.dim = cfg.motion_dim  # 56 FLAME, 55 ARKit
        self.last_motion = np.zeros(self.dim, np.float32)
        self.done = 0  # frames emitted
        self.state: dict | None = None
        self.closed = False
        self.calls: list[float] = []  # seconds of compute of each model call that produced frames

    def _check_audio_only(self) -> None:
        if self.cfg.needs_partner_motion:
            raise DualTalkError(
                "this model was trained with the partner's motion always present "
                "(partner_motion_dropout 0): give the partner's motion, or use a model trained "
                "with partner_motion_dropout > 0 (e.g. demo-stream)"
            )

    # --- input --------------------------------------------------------------------------------------

    def push(self, self_pcm=None, partner_pcm=None, partner_motion=None) -> np.ndarray:
        """Add audio of either or both voices and/or partner motion frames (k, 56) model order; -> the
        frames that became final, (n, 56) model order."""
        self.feed(self_pcm, partner_pcm, partner_motion)
        return self._advance(final=False)

    def feed(self, self_pcm=None, partner_pcm=None, partner_motion=None) -> None:
        """Add input without computing (``push`` = ``feed`` + compute what is ready)."""
        if self.closed:
            raise DualTalkError("the stream was flushed: start a new session")
        # every input checked before any is taken: a push that raises leaves the session as it was
        x_self = self.voices["self"].check(self_pcm)
        x_partner = self.voices["partner"].check(partner_pcm)
        m = self._check_motion(partner_motion) if partner_motion is not None else None
        if self.use_motion is None:  # decided by the first push
            if m is None:
                self._check_audio_only()
            self.use_motion = m is not None
        if x_self is not None:
            self.voices["self"].take(x_self)
        if x_partner is not None:
            self.voices["partner"].take(x_partner)
        if m is not None:
            self._take_motion(m)
        self._check_skew()

    def push_motion(self, frames) -> None:
        """Partner motion frames (k, 56) model order (or (56,) one frame), in order."""
        if self.closed:
            raise DualTalkError("the stream was flushed: start a new session")
        self._take_motion(self._check_motion(frames))

    def _check_motion(self, frames) -> np.ndarray:
        try:
            m = np.asarray(frames, dtype=np.float32)
        except (ValueError, TypeError):  # strings, ragged rows
            raise DualTalkError(
                f"partner motion frames must be numbers, (k, {self.dim}) in model order "
                f"({self.cfg.motion_layout} layout)"
            ) from None
        if m.ndim == 1:
            m = m[None]
        if m.ndim != 2 or m.shape[1] != self.dim:
            raise DualTalkError(
                f"partner motion frames must be (k, {self.dim}) in model order ({self.cfg.motion_layout} layout), "
                f"got shape {m.shape}"
            )
        problem = motion_values_problem(m)
        if problem is not None:
            raise DualTalkError(f"partner motion {problem}")
        if self.use_motion is False:
            raise DualTalkError("this session was started without the partner's motion (partner_motion=False)")
        return m

    def _take_motion(self, m: np.ndarray) -> None:
        self.use_motion = True
        if len(m):
            self.motion.extend(m)
            self.motion_received += len(m)
            self.last_motion = m[-1]

    def flush(self) -> np.ndarray:
        """End the stream: the remaining frames (audio after the end is silence); the session closes."""
        if self.closed:
            raise DualTalkError("the stream was already flushed")
        for voice in self.voices.values():
            voice.push(None, last=True)
        total = -(-self.voices["self"].received // self.spf)
        partner = -(-self.voices["partner"].received // self.spf)
        if partner < total - END_TOLERANCE_FRAMES:
            raise DualTalkError(
                f"the partner's audio ended {(total - partner) / self.cfg.fps:.2f} s before the "
                f"person's (at most {END_TOLERANCE_FRAMES} frames are tolerated)"
            )
        if self.use_motion:
            lag = self.cfg.partner_motion_delay
            needed = max(0, total - lag)
            if self.motion_received < needed - END_TOLERANCE_FRAMES:
                raise DualTalkError(
                    f"the partner's motion ended at frame {self.motion_received}, the audio needs "
                    f"{needed} (at most {END_TOLERANCE_FRAMES} frames are tolerated)"
                )
            while self.motion_received < needed:  # the last frame held, as generate does
                self.motion.append(self.last_motion)
                self.motion_received += 1
        if self.use_motion is None:
            self.use_motion = False
            self._check_audio_only()
        out = self._advance(final=True, total=total)
        self.closed = True
        return out

    # --- the model ----------------------------------------------------------------------------------

    def _check_skew(self) -> None:
        a, b = self.voices["self"].received, self.voices["partner"].received
        if abs(a - b) > MAX_SKEW_SECONDS * self.cfg.sample_rate:
            behind = "partner's" if b < a else "person's"
            raise DualTalkError(
                f"the {behind} audio stalled: the two voices are {abs(a - b) / self.cfg.sample_rate:.1f} s "
                f"apart (at most {MAX_SKEW_SECONDS:.0f} s)"
            )

    def ready_frames(self, final: bool = False, total: int | None = None) -> int:
        """How many frames (from the first not yet emitted) can be computed now."""
        if final:
            t_end = total if total is not None else self.done
        else:
            have = min(v.received for v in self.voices.values())
            t_end = max(0, have // self.spf - self.cfg.lookahead_frames)  # last_sample(t) <= have
        if self.use_motion:
            t_end = min(t_end, self.motion_received + self.cfg.partner_motion_delay)
        return max(0, t_end - self.done)

    def _advance(self, final: bool, total: int | None = None) -> np.ndarray:
        step = self._prepare(final, total)
        if step is None:
            return np.zeros((0, self.dim), np.float32)
        began = time.perf_counter()
        with torch.inference_mode(), self._autocast():
            out, state = self.model.forward_frames(
                step.waves[0], step.waves[1], step.start, step.t0, step.t1, step.motion, self.state
            )
        return self._finish(step, out[0], state, time.perf_counter() - began)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.compute_dtype, enabled=self.compute_dtype != torch.float32)

    def _prepare(self, final: bool, total: int | None = None, exact: bool = False) -> _Step | None:
        """The model's inputs for the frames that are ready (None: no frame is). ``exact``: each voice's
        samples cut to exactly what the frames read (zeros before the stream), as :func:`push_many` stacks them."""
        n = self.ready_frames(final, total)
        if n == 0:
            return None
        t0, t1 = self.done, self.done + n
        # every voice's buffer begins at or before the first sample frame t0 reads (trim keeps it), or at 0
        first = self.frontend.first_sample(t0)
        seg_start = first if exact else max(first, 0)
        waves = []
        for voice in self.voices.values():
            if exact:
                buf = torch.from_numpy(np.ascontiguousarray(voice.buffer))[None]
                seg = _take(buf, voice.start, first, self.frontend.last_sample(t1 - 1))  # (1, S)
            else:
                seg = torch.from_numpy(np.ascontiguousarray(voice.buffer[seg_start - voice.start :]))[None]
            waves.append(seg.to(self.device))
        motion = None
        if self.use_motion:
            lag = self.cfg.partner_motion_delay
            rows = []
            for t in range(t0, t1):
                i = t - lag
                rows.append(np.zeros(self.dim, np.float32) if i < 0 else self.motion[i - self.motion_start])
            motion = torch.from_numpy(np.stack(rows))[None].to(self.device, self.dtype)
        return _Step(t0, t1, seg_start, waves, motion)

    def _finish(self, step: _Step, out: torch.Tensor, state, seconds: float) -> np.ndarray:
        """Keep the state after the frames, drop the input they no longer need; -> (n, 56) frames."""
        self.state = state
        self.calls.append(seconds)
        self.done = step.t1
        keep = self.frontend.first_sample(step.t1)
        for voice in self.voices.values():
            voice.trim(keep)
        if self.use_motion:
            drop = max(0, step.t1 - self.cfg.partner_motion_delay - self.motion_start)
            del self.motion[:drop]
            self.motion_start += drop
        return out.float().cpu().numpy()

    def _batch_key(self, n: int) -> tuple:
        """Sessions whose steps have the same key can be computed as one batch: the same model, frame count,
        inputs and arithmetic, and the same length of every attention cache (the attention bias depends on
        it; nothing else in a step depends on the frame's position)."""
        return (
            id(self.model),
            n,
            bool(self.use_motion),
            self.compute_dtype,
            min(self.done, self.cfg.attention_window - 1),
        )


@dataclass
class _Step:
    t0: int
    t1: int
    start: int  # the first sample of ``waves``
    waves: list  # (1, S) per voice: self, partner
    motion: torch.Tensor | None  # (1, n, D) or None


def _stack_state(states: list, batch_dim: int = 0):
    """Per-session states -> one batched state (tensors joined on the batch dimension: 0, the LSTM's 1)."""
    first = states[0]
    if first is None:
        return None
    if isinstance(first, torch.Tensor):
        return torch.cat(states, dim=batch_dim)
    if isinstance(first, (int, np.integer)):  # an attention cache's position
        return np.asarray(states)
    if isinstance(first, (list, tuple)):
        parts = [_stack_state([s[i] for s in states], batch_dim) for i in range(len(first))]
        return tuple(parts) if isinstance(first, tuple) else parts
    if isinstance(first, dict):
        return {k: _stack_state([s[k] for s in states], 1 if k == "lstm" else batch_dim) for k in first}
    raise TypeError(f"unexpected state entry {type(first).__name__}")


def _split_state(state, i: int, batch_dim: int = 0):
    """Session ``i``'s part of a batched state."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.narrow(batch_dim, i, 1)
    if isinstance(state, np.ndarray):
        return int(state[i])
    if isinstance(state, (int, np.integer)):  # the same for every session (a first step)
        return int(state)
    if isinstance(state, (list, tuple)):
        parts = [_split_state(x, i, batch_dim) for x in state]
        return tuple(parts) if isinstance(state, tuple) else parts
    if isinstance(state, dict):
        return {k: _split_state(v, i, 1 if k == "lstm" else batch_dim) for k, v in state.items()}
    raise TypeError(f"unexpected state entry {type(state).__name__}")


def push_many(
    sessions: list[StreamingSession], inputs: list[tuple], max_batch: int = 64
) -> list[np.ndarray | DualTalkError]:
    """``session.push(*input)`` for each session at once: the steps of sessions that share a model, a frame
    count and a cache length (:meth:`StreamingSession._batch_key`) are computed as one batch, the model's
    per-call overhead paid once for all of them. -> each session's frames (as its own ``push`` returns them,
    to float rounding), or the :class:`DualTalkError` its input raised (the other sessions go on)."""
    results: list = [None] * len(sessions)
    groups: dict[tuple, list[tuple[int, _Step]]] = {}
    for i, (session, args) in enumerate(zip(sessions, inputs)):
        try:
            session.feed(*args)
            step = session._prepare(final=False, exact=True)
        except DualTalkError as exc:
            results[i] = exc
            continue
        if step is None:
            results[i] = np.zeros((0, session.dim), np.float32)
        else:
            groups.setdefault(session._batch_key(step.t1 - step.t0), []).append((i, step))
    for members in groups.values():
        for lo in range(0, len(members), max_batch):
            chunk = members[lo : lo + max_batch]
            first = sessions[chunk[0][0]]
            state = None if first.state is None else _stack_state([sessions[i].state for i, _ in chunk])
            waves = [torch.cat([step.waves[v] for _, step in chunk]) for v in range(2)]  # (B, S) per voice
            motions = [step.motion for _, step in chunk if step.motion is not None]
            motion = torch.cat(motions) if motions else None  # the key makes it all or none
            step0 = chunk[0][1]
            began = time.perf_counter()
            with torch.inference_mode(), first._autocast():
                out, new = first.model.forward_frames(
                    waves[0], waves[1], step0.start, step0.t0, step0.t1, motion, state
                )  # (B, n, D); every session's waves hold exactly the samples its frames read
            seconds = time.perf_counter() - began
            for b, (i, step) in enumerate(chunk):
                results[i] = sessions[i]._finish(step, out[b], _split_state(new, b), seconds)
    return results


class JointSession:
    """Both people from the two voices: each one's model is fed the other's generated motion, read
    ``partner_motion_delay`` (>= 1) frames late. ``push(a_pcm, b_pcm) -> (frames of A, frames of B)``."""

    def __init__(self, model, model_b=None, **audio):
        """``audio``: ``sample_rate`` / ``channels`` of A's voice (the first of each push), ``partner_sample_rate``
        / ``partner_channels`` of B's (default: A's), as for :class:`StreamingSession`."""
        rate, channels = audio.pop("sample_rate", 16000), audio.pop("channels", 1)
        rate_b, channels_b = (
            audio.pop("partner_sample_rate", None) or rate,
            audio.pop("partner_channels", None) or channels,
        )
        self.a = StreamingSession(
            model, partner_motion=True, sample_rate=rate, channels=channels, partner_sample_rate=rate_b,
            partner_channels=channels_b, **audio,
        )  # fmt: skip
        self.b = StreamingSession(  # B's own voice is A's partner: the two voices' settings swap
            model_b if model_b is not None else model, partner_motion=True, sample_rate=rate_b, channels=channels_b,
            partner_sample_rate=rate, partner_channels=channels, **audio,
        )  # fmt: skip
        for s in (self.a, self.b):
            if s.cfg.partner_motion_delay < 1:
                raise DualTalkError(
                    "joint mode needs a model with partner_motion_delay >= 1 (each head reads the "
                    "other's generated motion at least one frame late)"
                )
            if not s.cfg.use_partner_motion:
                raise DualTalkError("joint mode needs a model that reads the partner's motion")

    def push(self, a_pcm=None, b_pcm=None) -> tuple[np.ndarray, np.ndarray]:
        self.a.feed(a_pcm, b_pcm)
        self.b.feed(b_pcm, a_pcm)
        return self._run(final=False)

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        for s in (self.a, self.b):
            if s.closed:
                raise DualTalkError("the stream was already flushed")
            for voice in s.voices.values():
                voice.push(None, last=True)
        total_a = -(-self.a.voices["self"].received // self.a.spf)
        total_b = -(-self.b.voices["self"].received // self.b.spf)
        if abs(total_a - total_b) > END_TOLERANCE_FRAMES:
            raise DualTalkError(
                f"the two voices differ by {abs(total_a - total_b) / self.a.cfg.fps:.2f} s in length "
                f"(at most {END_TOLERANCE_FRAMES} frames are tolerated)"
            )
        out = self._run(final=True, totals=(total_a, total_b))
        self.a.closed = self.b.closed = True
        return out

    def _run(self, final: bool, totals: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        outs: dict[str, list[np.ndarray]] = {"a": [], "b": []}
        while True:
            ta = self.a._advance(final, totals[0] if totals else None)
            tb = self.b._advance(final, totals[1] if totals else None)
            if not len(ta) and not len(tb):
                break
            if len(ta):
                self.b.push_motion(ta)
                outs["a"].append(ta)
            if len(tb):
                self.a.push_motion(tb)
                outs["b"].append(tb)
        empty = np.zeros((0, self.a.dim), np.float32)
        return (np.concatenate(outs["a"]) if outs["a"] else empty, np.concatenate(outs["b"]) if outs["b"] else empty)


# ----------------------------------------------------------------------------------------------------
# files fed as a live source would feed them (``dualtalk stream``)


def _chunk_stats(cfg, compute: list[float], seconds: float, frames: int) -> dict:
    """Latency and compute statistics of a fed stream (``compute``: seconds per chunk)."""
    pct = np.percentile(np.asarray(compute) * 1000.0, [50, 95, 100]) if compute else [0.0, 0.0, 0.0]
    return {
        "model_variant": cfg.variant,
        "seconds": seconds,
        "frames": frames,
        "algorithmic_latency_ms": 1000.0 * (cfg.lookahead_frames + 1) / cfg.fps,
        "chunks": len(compute),
        "compute_ms_per_chunk": {"p50": float(pct[0]), "p95": float(pct[1]), "max": float(pct[2])},
        "real_time_factor": float(sum(compute) / seconds) if seconds else 0.0,
    }


#: what ``dualtalk stream`` writes: motion files of the model's layout, or ARKit channels (Live Link Face CSV, JSON)
STREAM_FORMATS = ("npz", "arkit-csv", "arkit-json")


def _output_map(cfg, format: str, arkit_map):
    """Check ``format`` against the model (ARKit output of a FLAME model needs a map); -> the loaded map."""
    if format not in STREAM_FORMATS:
        raise DualTalkError(f"format must be {', '.join(STREAM_FORMATS)}, got {format!r}")
    if arkit_map is not None and cfg.motion_layout != "flame":
        raise DualTalkError("--arkit-map maps a FLAME model's output, but this model is an ARKit model already")
    if arkit_map is not None and format == "npz":
        raise DualTalkError("--arkit-map applies to --format arkit-csv / arkit-json, not npz")
    if format != "npz" and cfg.motion_layout == "flame" and arkit_map is None:
        raise DualTalkError(
            f"--format {format} of a FLAME model needs --arkit-map MAP.json (an ARKit model needs none)"
        )
    if arkit_map is None:
        return None
    from ..export.arkit import ArkitMap, load_arkit_map

    return arkit_map if isinstance(arkit_map, ArkitMap) else load_arkit_map(arkit_map)


def _write(
    cfg,
    out,
    mine: np.ndarray,
    partner_out,
    other: np.ndarray | None,
    stats,
    summary: dict,
    format: str = "npz",
    arkit_map=None,
) -> None:
    """The generated motion (and the partner's, joint mode) and the stats JSON; ``format`` arkit-csv /
    arkit-json: the ARKit channels (an ARKit model's weights, or a FLAME model's through ``arkit_map``)."""
    import json

    from ..io.files import atomic_group, atomic_write_text
    from ..io.motion import motion_from_model, save_motion

    with atomic_group():  # both people's motion and the stats: all or none
        for path, frames in ((out, mine), (partner_out, other)):
            if path is None or frames is None:
                continue
            if format == "npz":
                save_motion(path, motion_from_model(frames, cfg.motion_layout, cfg.fps))
            else:
                from ..export.arkit import arkit_channels, write_arkit_channels

                write_arkit_channels(path, arkit_channels(frames, cfg.motion_layout, arkit_map), cfg.fps, format)
        if stats is not None:
            atomic_write_text(stats, json.dumps(summary, indent=2) + "\n")


def feed(
    target: StreamingSession | JointSession,
    self_audio: np.ndarray,
    partner_audio: np.ndarray,
    partner_motion: np.ndarray | None = None,
    *,
    step: int,
    realtime: bool = False,
    timings: list[float] | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Whole arrays through a session, ``step`` samples of both voices at a time as a live source would
    deliver them (``realtime``: paced by the clock), the partner's motion frames as their audio completes,
    then ``flush``. A :class:`JointSession` generates both people (``partner_motion`` unused).
    ``timings`` collects the compute seconds of each push. -> ((T, 56) of the person, (T, 56) of the
    partner in joint mode, else None)."""
    from ..io.progress import progress as progress_bar

    joint = isinstance(target, JointSession)
    cfg = target.a.cfg if isinstance(target, JointSession) else target.cfg
    spf = cfg.samples_per_frame
    length = max(len(self_audio), len(partner_audio)) if joint else len(self_audio)
    mine: list[np.ndarray] = []
    other: list[np.ndarray] = []
    pushed = 0
    started = time.perf_counter()
    for i in progress_bar(range(0, length, step), desc="generate", unit="chunk", enabled=progress and length > step):
        if realtime:  # a live source delivers the chunk when its last sample has been spoken
            wait = started + (i + step) / cfg.sample_rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        t0 = time.perf_counter()
        if isinstance(target, JointSession):
            o, m = target.push(partner_audio[i : i + step], self_audio[i : i + step])
            other.append(o)
        else:
            motion = None
            if partner_motion is not None:  # the frames whose audio has fully arrived
                upto = min(len(partner_motion), (i + step) // spf)
                motion, pushed = partner_motion[pushed:upto], upto
            m = target.push(self_audio[i : i + step], partner_audio[i : i + step], motion)
        if timings is not None:
            timings.append(time.perf_counter() - t0)
        mine.append(m)
    if isinstance(target, JointSession):
        o, m = target.flush()
        other.append(o)
    else:
        if partner_motion is not None and pushed < len(partner_motion):
            target.push_motion(partner_motion[pushed:])
        m = target.flush()
    mine.append(m)
    return np.concatenate(mine), (np.concatenate(other) if joint else None)


def stream_files(
    model,
    self_audio,
    partner_audio,
    out,
    *,
    partner_motion=None,
    partner_out=None,
    chunk_ms: float = 40.0,
    realtime: bool = False,
    stats=None,
    format: str = "npz",
    arkit_map=None,
    dtype: str = "float32",
) -> dict:
    """Feed two audio files (and the partner's motion file) to a causal model in ``chunk_ms`` chunks, as a
    live source would (``realtime``: paced by the clock); write the motion to ``out`` (and, with
    ``partner_out``, the partner's generated motion: joint mode) and the stats (``stats``: a JSON path).
    ``format``: ``npz`` (motion files) or ``arkit-csv`` / ``arkit-json`` (ARKit channels; a FLAME model
    needs ``arkit_map``). ``dtype``: float32 (exact), bfloat16 or auto
    (:func:`~dualtalk.inference.pipeline.model_dtype`). -> the stats: algorithmic latency, compute per chunk
    p50/p95/max, real-time factor."""
    from ..io.conversation import load_generation_inputs
    from ..model.checkpoint import load_model
    from .pipeline import InferenceOptions, model_dtype

    net = _causal(model if isinstance(model, torch.nn.Module) else load_model(model))
    cfg = net.config
    arithmetic = model_dtype(net, InferenceOptions(dtype=dtype, device=str(next(net.parameters()).device)))
    if partner_out is not None and partner_motion is not None:
        raise DualTalkError("--partner-out generates the partner's motion: leave out --partner-motion")
    if not chunk_ms > 0:
        raise DualTalkError(f"--chunk-ms must be > 0, got {chunk_ms}")
    amap = _output_map(cfg, format, arkit_map)
    inputs = load_generation_inputs(
        self_audio, partner_audio, partner_motion, cfg.sample_rate, cfg.fps, cfg.motion_layout
    )
    step = max(1, int(round(chunk_ms * cfg.sample_rate / 1000.0)))
    target: StreamingSession | JointSession = (
        JointSession(net, compute_dtype=arithmetic)
        if partner_out is not None
        else StreamingSession(net, partner_motion=inputs.partner_motion is not None, compute_dtype=arithmetic)
    )
    chunk_compute: list[float] = []
    started = time.perf_counter()
    mine, other = feed(
        target,
        inputs.self_audio,
        inputs.partner_audio,
        inputs.partner_motion,
        step=step,
        realtime=realtime,
        timings=chunk_compute,
    )
    sessions = [target.a, target.b] if isinstance(target, JointSession) else [target]
    summary = {
        **_chunk_stats(cfg, chunk_compute, len(inputs.self_audio) / cfg.sample_rate, len(mine)),
        "chunk_ms": chunk_ms,
        "realtime": realtime,
        "heads": len(sessions),
        "partner_motion": inputs.partner_motion is not None,
        "wall_seconds": time.perf_counter() - started,
        "model_calls": sum(len(s.calls) for s in sessions),
    }
    _write(cfg, out, mine, partner_out, other, stats, summary, format, amap)
    return summary


# ----------------------------------------------------------------------------------------------------
# live input from a microphone (``dualtalk stream --self-audio mic``; the ``live`` extra: sounddevice)


def is_microphone(source) -> bool:
    """``mic`` or ``mic:DEVICE`` (a sounddevice device index or name) names a microphone, not a file."""
    return isinstance(source, str) and (source == "mic" or source.startswith("mic:"))


def _sounddevice():
    try:
        import sounddevice
    except ImportError:
        raise DualTalkError("live input needs the sounddevice package: pip install 'dualtalk[live]'") from None
    except OSError as exc:  # the package is there, the PortAudio library is not
        raise DualTalkError(
            f"live input needs the PortAudio library (e.g. apt-get install libportaudio2): {exc}"
        ) from None
    return sounddevice


class MicrophoneSource:
    """Blocks of mono float32 samples at ``sample_rate`` from an input device, as they are recorded."""

    def __init__(self, source: str = "mic", sample_rate: int = 16000, block: int = 640, timeout: float = 5.0):
        import queue

        sd = _sounddevice()
        spec = source[4:] if source.startswith("mic:") else None
        device = int(spec) if spec is not None and spec.isdigit() else spec
        self.name, self.timeout = source, timeout
        self.blocks: queue.Queue = queue.Queue()
        try:
            self.stream = sd.InputStream(
                device=device,
                channels=1,
                samplerate=sample_rate,
                blocksize=block,
                dtype="float32",
                callback=self._callback,
            )
        except Exception as exc:  # noqa: BLE001 - PortAudio reports every device problem its own way
            raise DualTalkError(f"{source}: cannot open the microphone ({str(exc).splitlines()[0]})") from None

    def _callback(self, indata, frames, time_info, status) -> None:
        self.blocks.put(np.asarray(indata, dtype=np.float32)[:, 0].copy())

    def __enter__(self) -> MicrophoneSource:
        self.stream.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stream.stop()
        self.stream.close()

    def read(self) -> np.ndarray:
        import queue

        try:
            return self.blocks.get(timeout=self.timeout)
        except queue.Empty:
            raise DualTalkError(f"{self.name}: no audio for {self.timeout:.0f} s (the microphone stalled)") from None


def stream_live(
    model,
    self_source,
    partner_source,
    out,
    *,
    partner_out=None,
    seconds: float | None = None,
    stats=None,
    chunk_ms: float = 40.0,
    format: str = "npz",
    arkit_map=None,
    dtype: str = "float32",
) -> dict:
    """One or both voices from microphones (``mic`` / ``mic:DEVICE``), the other from a file played at the
    microphone's pace; runs until ``seconds``, the file's end or Ctrl-C, then writes the motion (and, with
    ``partner_out``, the partner's: joint mode) and the stats. -> the stats."""
    import contextlib

    from ..io.audio import load_audio
    from ..model.checkpoint import load_model
    from .pipeline import InferenceOptions, model_dtype

    net = _causal(model if isinstance(model, torch.nn.Module) else load_model(model))
    cfg = net.config
    arithmetic = model_dtype(net, InferenceOptions(dtype=dtype, device=str(next(net.parameters()).device)))
    amap = _output_map(cfg, format, arkit_map)
    block = max(1, int(round(chunk_ms * cfg.sample_rate / 1000.0)))
    files = {
        k: None if is_microphone(s) else load_audio(s, cfg.sample_rate)
        for k, s in (("self", self_source), ("partner", partner_source))
    }
    joint = JointSession(net, compute_dtype=arithmetic) if partner_out is not None else None
    session = None if joint is not None else StreamingSession(net, partner_motion=False, compute_dtype=arithmetic)
    mine: list[np.ndarray] = []
    other: list[np.ndarray] = []
    compute: list[float] = []
    fed = 0
    limit = None if seconds is None else int(seconds * cfg.sample_rate)
    with contextlib.ExitStack() as stack:
        mics = {
            k: stack.enter_context(MicrophoneSource(s, cfg.sample_rate, block))
            for k, s in (("self", self_source), ("partner", partner_source))
            if is_microphone(s)
        }
        try:
            while limit is None or fed < limit:
                got = {k: m.read() for k, m in mics.items()}
                n = len(next(iter(got.values())))
                for k, x in files.items():
                    if x is not None:
                        got[k] = x[fed : fed + n]
                if any(len(v) == 0 for v in got.values()):
                    break  # a file ended
                t0 = time.perf_counter()
                if joint is not None:
                    o, m = joint.push(got["partner"], got["self"])
                    other.append(o)
                else:
                    assert session is not None
                    m = session.push(got["self"], got["partner"])
                compute.append(time.perf_counter() - t0)
                mine.append(m)
                fed += n
        except KeyboardInterrupt:  # Ctrl-C ends the recording: what was heard is still written
            pass
    if joint is not None:
        o, m = joint.flush()
        other.append(o)
    else:
        assert session is not None
        m = session.flush()
    mine.append(m)
    generated = np.concatenate(mine)
    summary = {**_chunk_stats(cfg, compute, fed / cfg.sample_rate, len(generated)), "live": sorted(mics)}
    _write(cfg, out, generated, partner_out, np.concatenate(other) if other else None, stats, summary, format, amap)
    return summary


__all__ = [
    "JointSession",
    "MicrophoneSource",
    "StreamingSession",
    "is_microphone",
    "stream_files",
    "stream_live",
]
