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

import hashlib
import os
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DualTalkError, InputError
from ..features.audio_encoder import Wav2Vec2Encoder
from ..io.conversation import discover_conversations, load_generation_inputs, partner_speaker
from ..io.files import atomic_group
from ..io.motion import AnyMotion, motion_from_model, save_model_motion, save_motion
from ..io.progress import progress as progress_bar
from ..layout import frames_for, frames_text
from ..model.baselines.common import BaselineModel
from ..model.causal import CausalDualTalk
from ..model.checkpoint import Model, load_model
from ..model.dualtalk import DualTalk

DEFAULT_WINDOW_SECONDS = 120.0
DEFAULT_OVERLAP_SECONDS = 10.0

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DualTalkError(f"--device {device}: not a device (cpu, cuda, cuda:N, mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DualTalkError("--device cuda: no CUDA device is available (this PyTorch build or machine has none)")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DualTalkError("--device mps: Apple's Metal backend is not available on this machine")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise DualTalkError(f"unsupported device {device!r} (cpu, cuda, mps)")
    return dev


def _read_cpuinfo(path: str | os.PathLike) -> tuple[dict[str, str], set[str]] | None:
    """``/proc/cpuinfo``'s fields (each key's first value) and the union of its ``flags`` / ``Features`` lines;
    None where there is no such file."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields: dict[str, str] = {}
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        fields.setdefault(key, value.strip())
        if key in ("flags", "Features"):
            flags.update(value.split())
    return fields, flags


def cpu_flags(path: str | os.PathLike = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags as Linux lists them (``flags`` lines of ``/proc/cpuinfo``); empty elsewhere."""
    info = _read_cpuinfo(path)
    return set() if info is None else info[1]


#: CPU flags of native bfloat16 arithmetic (AVX-512 BF16 dot products, AMX tiles)
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def has_native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes in bfloat16 natively (faster than float32, not emulated): a CPU with
    AVX512-BF16 or AMX-BF16, a CUDA GPU whose bfloat16 is not emulated (Ampere and later). False elsewhere
    (MPS, older CPUs and GPUs)."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return any(flag in cpu_flags() for flag in NATIVE_BF16_CPU_FLAGS)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return False
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # older PyTorch: no including_emulation
            return bool(torch.cuda.is_bf16_supported())
    return False


#: CPU flags that decide the matrix products' speed: vector width, native bfloat16 (what ``--dtype auto`` reads)
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def machine_record(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> dict:
    """What a measurement was made on: cores, CPU model and its matrix-relevant flags (:data:`ISA_FLAGS`, from
    ``cpuinfo`` where there is one), and whether ``--dtype auto`` picks bfloat16 here (``native_bf16``; absent
    when there is no cpuinfo to tell). The benchmarks write it into every result."""
    import platform

    info: dict = {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    read = _read_cpuinfo(cpuinfo)
    if read is None:
        return info
    fields, flags = read
    info["cpu_model"] = fields.get("model name", "")
    info["cpu_family_model"] = f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}"
    info["isa"] = [f for f in ISA_FLAGS if f in flags]
    info["native_bf16"] = bool(flags & set(NATIVE_BF16_CPU_FLAGS))
    return info


def resolve_dtype(dtype: str | torch.dtype, device: str | torch.device = "cpu") -> torch.dtype:
    """``float32``/``bfloat16`` (or a torch dtype) as given; ``auto``: bfloat16 where ``device`` has native
    bfloat16 (:func:`has_native_bf16`), else float32."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if has_native_bf16(device) else torch.float32
    if dtype not in _DTYPES:
        raise DualTalkError(f"unsupported dtype {dtype!r} (auto, float32, bfloat16)")
    return _DTYPES[dtype]


def model_dtype(model, options: InferenceOptions) -> torch.dtype:
    """The dtype ``run_model`` computes ``model`` in. ``auto`` resolves to float32 for a causal model (its
    per-frame operations are too small to gain from bfloat16, and its stream must equal its offline run) and
    with ``int8`` (quantised layers take float32 activations); otherwise by the device (:func:`resolve_dtype`)."""
    if options.dtype == "auto" and (options.int8 or getattr(model.config, "variant", None) == "causal"):
        return torch.float32
    return resolve_dtype(options.dtype, options.device)


@dataclass
class InferenceOptions:
    """How :func:`generate` / :func:`predict` run a model: device, arithmetic, windowing, progress.

    The library's default ``dtype`` is float32 (exact, the reference arithmetic); the command line's is
    ``auto`` (bfloat16 where the device has it natively). ``InferenceOptions(dtype="auto", window=60)``."""

    device: str = "cpu"
    #: float32 (exact: the reference arithmetic), bfloat16, or auto (bfloat16 where the device has it
    #: natively, :func:`has_native_bf16`; the default of the command line)
    dtype: str = "float32"
    #: seconds per window; longer inputs are windowed (0 = never window)
    window: float = DEFAULT_WINDOW_SECONDS
    overlap: float = DEFAULT_OVERLAP_SECONDS
    progress: bool = True
    #: int8 dynamic quantisation of the linear layers (CPU only): faster, not exact
    int8: bool = False
    #: the two audio encoders side by side, each on half of the intra-op threads, where that applies
    #: (:func:`encode_audio_concurrently`); False: one after the other, each on all threads (less memory; what
    #: ``benchmarks/generate.py`` counts FLOPs and profiles modules with: both see one thread)
    concurrent_encoders: bool = True


def plan_windows(num_frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """Frame ranges [start, end) covering [0, T) with ``overlap`` frames shared by neighbours."""
    if window <= 0 or num_frames <= window:
        return [(0, num_frames)]
    if overlap >= window:
        raise DualTalkError(f"--overlap ({frames_text(overlap)}) must be shorter than --window ({frames_text(window)})")
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


#: a causal model reads long inputs in chunks of this many seconds (its state carries between them)
CAUSAL_CHUNK_SECONDS = 10.0


def needs_partner_motion(model) -> bool:
    """Whether the model cannot run without the partner's motion (``DualTalkConfig.needs_partner_motion``)."""
    return model.config.needs_partner_motion


def _require_partner_motion(model) -> None:
    if needs_partner_motion(model):
        raise DualTalkError(
            "this model needs the partner's motion (--partner-motion); only causal models trained "
            "with partner_motion_dropout run without it (e.g. --model demo-stream)"
        )


def run_causal(
    model,
    self_audio: np.ndarray,
    partner_audio: np.ndarray,
    partner_motion: np.ndarray | None,
    options: InferenceOptions | None = None,
) -> np.ndarray:
    """A causal model over whole arrays through its streaming session, in chunks (constant memory; equal to
    the offline forward). -> (T, D)"""
    from .streaming import StreamingSession, feed

    options = options or InferenceOptions()
    model = model.to(resolve_device(options.device)).eval()
    session = StreamingSession(model, partner_motion=partner_motion is not None)
    step = int(CAUSAL_CHUNK_SECONDS * model.config.sample_rate)
    mine, _ = feed(session, self_audio, partner_audio, partner_motion, step=step, progress=options.progress)
    return mine.astype(np.float32)


def run_joint(
    model, audio_a: np.ndarray, audio_b: np.ndarray, options: InferenceOptions | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Both people from their two voices with a causal model (each fed the other's generated motion one
    frame late); -> ((T, 56) of A, (T, 56) of B)."""
    from .streaming import JointSession, feed

    options = options or InferenceOptions()
    model = model.to(resolve_device(options.device)).eval()
    if model.config.variant != "causal":
        raise DualTalkError("generating both people (--partner-out) needs a causal model (e.g. --model demo-stream)")
    step = int(CAUSAL_CHUNK_SECONDS * model.config.sample_rate)
    b, a = feed(JointSession(model), audio_b, audio_a, step=step)  # B is "self", A the partner
    assert a is not None
    return a, b


def _digest(tensors) -> bytes:
    """A digest of tensors' dtypes, shapes and bytes."""
    h = hashlib.blake2b(digest_size=16)
    for t in tensors:
        t = t.detach().contiguous().cpu()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.digest()


class CnnFeatureCache:
    """The wav2vec2 CNN features (``Wav2Vec2Encoder.cnn_features``: normalisation, CNN, interpolation) of recent
    clips, looked up by the CNN's weights and the clip. :func:`predict` generates both people of a
    conversation, so each voice goes through a CNN twice (as the self audio, then as the partner's); in the
    released model both encoders' CNNs are the same frozen pretrained weights (the reference freezes both), so
    the second time its features are looked up. The key holds a digest of the CNN's weights (taken once per
    encoder: for a model whose weights do not change while the cache lives), of the clip's samples, its frame
    count, device and autocast dtype, so a hit is the same computation; encoders with different CNNs never
    share. Past ``max_bytes`` the least recently used entries are dropped. Thread-safe (the encoders run side by
    side)."""

    def __init__(self, max_bytes: int = 256 * 2**20):
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._entries: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._bytes = 0
        self._weights: weakref.WeakKeyDictionary[torch.nn.Module, bytes] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _cnn_digest(self, encoder: Wav2Vec2Encoder) -> bytes:
        extractor = encoder.model.feature_extractor
        with self._lock:
            known = self._weights.get(extractor)
        if known is None:
            known = _digest(list(extractor.parameters()) + list(extractor.buffers()))
            with self._lock:
                self._weights[extractor] = known
        return known

    def features(self, encoder: Wav2Vec2Encoder, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``encoder.cnn_features(wave, num_frames)``, computed or looked up. (B, S) -> (B, T, C)"""
        device = wave.device.type
        autocast = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        how = (encoder.cfg.normalize_waveform, encoder.time_major_cnn, str(wave.device), str(autocast), num_frames)
        key = (self._cnn_digest(encoder), _digest([wave]), how)
        with self._lock:
            feats = self._entries.get(key)
            if feats is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return feats
        feats = encoder.cnn_features(wave, num_frames)  # (B, T, C)
        size = feats.numel() * feats.element_size()
        with self._lock:
            self.misses += 1
            if key not in self._entries and size <= self.max_bytes:
                self._entries[key] = feats
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, old = self._entries.popitem(last=False)
                    self._bytes -= old.numel() * old.element_size()
        return feats


def _encoders(model: Model) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """The offline model's two audio encoders (self, partner), or None."""
    if not isinstance(model, DualTalk):
        return None
    own = getattr(model.joint_encoder, "audio_encoder1", None)
    other = getattr(model.joint_encoder, "audio_encoder2", None)
    return None if own is None or other is None else (own, other)


def _encode(encoder: torch.nn.Module, wave: torch.Tensor, num_frames: int, cache: CnnFeatureCache | None):
    """One audio encoder's output (B, T, H), its CNN features from ``cache`` where given."""
    if cache is not None and isinstance(encoder, Wav2Vec2Encoder):
        return encoder.transformer(cache.features(encoder, wave, num_frames))
    return encoder(wave, num_frames)


def encode_audio(
    model: Model,
    self_audio: torch.Tensor,
    partner_audio: torch.Tensor,
    num_frames: int,
    concurrent: bool = True,
    cache: CnnFeatureCache | None = None,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Both audio encoders' outputs ``(self (B, T, H), partner (B, T, H))`` for :func:`run_model`: side by side
    where that applies (``concurrent``: :func:`encode_audio_concurrently`), else one after the other when a
    ``cache`` of CNN features is given; None otherwise (not an offline model with both encoders, or nothing to
    gain over the model's own forward), and the caller runs the model as usual."""
    feats = encode_audio_concurrently(model, self_audio, partner_audio, num_frames, cache) if concurrent else None
    encoders = _encoders(model)
    if feats is None and cache is not None and encoders is not None:
        own, other = encoders
        feats = _encode(own, self_audio, num_frames, cache), _encode(other, partner_audio, num_frames, cache)
    return feats


def encode_audio_concurrently(
    model: Model,
    self_audio: torch.Tensor,
    partner_audio: torch.Tensor,
    num_frames: int,
    cache: CnnFeatureCache | None = None,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Both audio encoders' outputs ``(self (B, T, H), partner (B, T, H))``, computed at the same time: the
    partner's in a second thread, each encoder on half of the intra-op threads; None where that does not
    apply (fewer than two threads, not on the CPU, not an offline model with both encoders, called from another
    thread than the main one), and the caller runs the model as usual (also with
    ``InferenceOptions(concurrent_encoders=False)``, which :func:`run_model` checks before calling this).
    Only the main thread: a program that runs models from several threads (``dualtalk serve``) has its own
    parallelism, and while the encoders run PyTorch's thread count for threads started meanwhile (a
    process-wide default) is half. ``cache``: CNN features to look up (:class:`CnnFeatureCache`).

    Two encoders side by side keep both cores busy through the parts of a forward that do not split well
    between threads (small products, layer norms, the attention kernel's softmax). Same arithmetic; the
    rounding of each product may differ from a run on all threads, as between any two thread counts."""
    encoders = _encoders(model)
    if encoders is None or self_audio.device.type != "cpu":
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    own, other = encoders
    threads = torch.get_num_threads()
    if threads < 2:
        return None
    # autocast and inference mode are per thread: the second thread enters the caller's
    autocast = torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")
    inference = torch.is_inference_mode_enabled()

    def encode(encoder: torch.nn.Module, wave: torch.Tensor, n: int) -> torch.Tensor:
        torch.set_num_threads(n)
        with torch.inference_mode(inference), torch.autocast("cpu", dtype=autocast[1], enabled=autocast[0]):
            return _encode(encoder, wave, num_frames, cache)  # (B, T, H)

    half = threads // 2
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="dualtalk-encoder") as pool:
            partner = pool.submit(encode, other, partner_audio, threads - half)
            mine = encode(own, self_audio, half)
            return mine, partner.result()
    finally:
        torch.set_num_threads(threads)  # this thread's count (and PyTorch's default for new threads)


def run_model(
    model: Model,
    self_audio: np.ndarray,
    partner_audio: np.ndarray,
    partner_motion: np.ndarray | None,
    options: InferenceOptions | None = None,
    cnn_cache: CnnFeatureCache | None = None,
) -> np.ndarray:
    """Arrays in, (T, D) model-order motion out (D: 56 FLAME, 55 ARKit, the model's ``motion_layout``; ARKit
    weights clipped to [0, 1]); T = ceil(len(self_audio) / 640). ``partner_motion`` None: the partner's
    face unseen (models that can: :func:`needs_partner_motion`). ``cnn_cache``: wav2vec2 CNN features to reuse
    across calls (:class:`CnnFeatureCache`; :func:`predict` passes one)."""
    options = options or InferenceOptions()
    cfg = model.config
    spf = cfg.samples_per_frame
    expected = frames_for(len(self_audio), cfg.sample_rate, cfg.fps)
    if partner_motion is None:
        _require_partner_motion(model)
    if partner_motion is not None and expected != partner_motion.shape[0]:
        raise DualTalkError(f"partner motion has {partner_motion.shape[0]} frames, the audio implies {expected}")
    if cfg.variant == "causal":
        return run_causal(model, self_audio, partner_audio, partner_motion, options)
    if partner_motion is None:  # a model that does not read it (the speaking baselines): a placeholder
        partner_motion = np.zeros((expected, cfg.motion_dim), dtype=np.float32)
    num_frames = expected
    device = resolve_device(options.device)
    dtype = model_dtype(model, options)
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
            a = torch.from_numpy(np.ascontiguousarray(self_audio[s * spf : e * spf], dtype=np.float32))
            b = torch.from_numpy(np.ascontiguousarray(partner_audio[s * spf : e * spf], dtype=np.float32))
            m = torch.from_numpy(np.ascontiguousarray(partner_motion[s:e], dtype=np.float32))
            a, b, m = a[None].to(device), b[None].to(device), m[None].to(device)  # (1, S), (1, S), (1, t, D)
            feats = encode_audio(model, a, b, e - s, options.concurrent_encoders, cnn_cache)
            y = model(a, b, m, audio_features=feats) if feats is not None else model(a, b, m)  # (1, t, D)
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


def _file_mappings() -> list[tuple[int, int]]:
    """Address ranges of this process that map a file (Linux: /proc/self/maps; empty elsewhere)."""
    out = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            for line in fh:
                parts = line.split(maxsplit=5)
                if len(parts) == 6 and parts[5].startswith("/") and parts[5].rstrip().endswith(".safetensors"):
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    out.append((lo, hi))
    except OSError:
        pass
    return out


def _release_mapped_pages(tensors: list[torch.Tensor], ranges: list[tuple[int, int]] | None = None) -> None:
    """Give back the pages of memory-mapped (read-only, unmodified) safetensors data that ``tensors`` view:
    ``madvise(MADV_DONTNEED)`` on the whole pages inside each tensor. Safe: a private file mapping that was
    never written reads the file again if touched. Only ranges inside a mapping of a ``.safetensors`` file
    are touched (never heap memory); a no-op where that cannot be checked."""
    import ctypes
    import mmap

    ranges = _file_mappings() if ranges is None else ranges
    if not ranges or not hasattr(mmap, "MADV_DONTNEED"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover
        return
    page = mmap.PAGESIZE
    for t in tensors:
        start = t.data_ptr()
        end = start + t.numel() * t.element_size()
        if not any(lo <= start and end <= hi for lo, hi in ranges):
            continue
        first = -(-start // page) * page
        last = end // page * page
        if last > first:
            libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), mmap.MADV_DONTNEED)


def bf16_encoder_weights(model: DualTalk) -> DualTalk:
    """Store the audio encoders' matrix-product weights (their ``nn.Linear`` and CNN ``nn.Conv1d`` weights and
    biases) in bfloat16, in place. Under bfloat16 autocast these layers cast them to bfloat16 at every call
    anyway, so the output is identical, the weights take half the memory and no cast is repeated per forward;
    in float32 the model would no longer be exact, so only models loaded for a bfloat16 run get this."""
    mapped = _file_mappings()
    for name in ("audio_encoder1", "audio_encoder2"):
        enc = getattr(model.joint_encoder, name, None)
        if enc is None:
            continue
        for module in enc.modules():
            is_cnn_conv = isinstance(module, torch.nn.Conv1d) and not hasattr(module, "parametrizations")
            if isinstance(module, torch.nn.Linear) or is_cnn_conv:
                for pname in ("weight", "bias"):
                    p = getattr(module, pname, None)
                    if isinstance(p, torch.nn.Parameter) and p.dtype == torch.float32:
                        setattr(module, pname, torch.nn.Parameter(p.detach().to(torch.bfloat16), requires_grad=False))
                        # the float32 original, read once from a mapped file, is not needed: give its pages
                        # back at once (the peak stays near the bfloat16 weights, not both copies)
                        _release_mapped_pages([p.detach()], mapped)
    return model


def _as_model(model, config=None, device="cpu", int8: bool = False, options: InferenceOptions | None = None) -> Model:
    device = resolve_device(device)  # fail on an unavailable device before reading anything
    if int8 and device.type != "cpu":
        raise DualTalkError("int8 quantisation runs on the CPU only (use --device cpu)")
    loaded = not isinstance(model, (DualTalk, CausalDualTalk, BaselineModel))
    net: Model = load_model(model, config=config) if loaded else model
    if not int8:
        net = net.to(device)
        if loaded and isinstance(net, DualTalk) and options is not None and model_dtype(net, options) == torch.bfloat16:
            net = bf16_encoder_weights(net)  # our own copy: the caller's model is never changed
        return net
    if not isinstance(net, DualTalk):
        raise DualTalkError("--int8 quantises the offline model's wav2vec2 encoders; a causal model has none")
    return quantize_int8(net)


def generate(
    model,
    self_audio: str | os.PathLike,
    partner_audio: str | os.PathLike,
    partner_motion: str | os.PathLike | None,
    out: str | os.PathLike | None = None,
    config=None,
    options: InferenceOptions | None = None,
    partner_out: str | os.PathLike | None = None,
) -> AnyMotion:
    """Generate the motion of the person speaking in ``self_audio``; write it to ``out`` (dataset layout):
    a :class:`~dualtalk.io.motion.Motion` (FLAME model) or :class:`~dualtalk.io.motion.ArkitMotion`
    (``motion_layout`` arkit; the partner's motion must be ARKit motion too).

    ``model``: a :class:`DualTalk`, a model directory, a packaged model (``demo``, ``demo-stream``), an
    ``hf-hub:`` id, a released-layout ``.pth`` (``config`` = its config json when not the released shapes)
    or a preset name. ``partner_motion`` None: the partner's face unseen (causal models trained for it).
    ``partner_out``: generate the partner too (joint mode, causal models, no ``partner_motion``), written there.
    """
    options = options or InferenceOptions()
    _check_outputs(
        {"out": out, "partner_out": partner_out},
        {"self_audio": self_audio, "partner_audio": partner_audio, "partner_motion": partner_motion},
    )
    net = _as_model(model, config, options.device, options.int8, options)
    if partner_out is not None and partner_motion is not None:
        raise DualTalkError("--partner-out generates the partner's motion: leave out --partner-motion")
    if partner_out is not None and net.config.variant != "causal":
        raise DualTalkError("generating both people (--partner-out) needs a causal model (e.g. --model demo-stream)")
    if partner_motion is None and partner_out is None:  # before any file is read
        _require_partner_motion(net)
    cfg = net.config
    inputs = load_generation_inputs(
        self_audio, partner_audio, partner_motion, cfg.sample_rate, cfg.fps, cfg.motion_layout
    )
    if partner_out is not None:
        other, mine = run_joint(net, inputs.partner_audio, inputs.self_audio, options)
        motion = motion_from_model(mine, cfg.motion_layout, cfg.fps)
        with atomic_group():  # both people's motion: both files or neither
            if out is not None:
                save_motion(out, motion)
            save_motion(partner_out, motion_from_model(other, cfg.motion_layout, cfg.fps))
        return motion
    motion = motion_from_model(
        run_model(net, inputs.self_audio, inputs.partner_audio, inputs.partner_motion, options),
        cfg.motion_layout,
        cfg.fps,
    )
    if out is not None:
        save_motion(out, motion)
    return motion


def _check_outputs(outputs: dict, inputs: dict) -> None:
    """Before any work: each output is a motion file (.npz / .npy) that is neither an input nor another
    output (one would replace the other: the user's recording by a motion file, or one person by the other)."""
    from ..io.motion import check_motion_suffix

    def same(a, b) -> bool:
        return isinstance(b, (str, os.PathLike)) and os.path.realpath(a) == os.path.realpath(b)

    named = [(k, v) for k, v in outputs.items() if v is not None]
    for i, (name, path) in enumerate(named):
        if not isinstance(path, (str, os.PathLike)):
            raise DualTalkError(f"{name} must be a file path, got {type(path).__name__}")
        check_motion_suffix(path)
        for other, given in [*inputs.items(), *named[i + 1 :]]:
            if same(path, given):
                raise InputError(path, f"is both {name} and {other}: give the output its own file")


def shard_from_env() -> tuple[int, int]:
    """(index, count) of this process among torchrun's (``RANK``, ``WORLD_SIZE``); (0, 1) when not under it."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        raise DualTalkError("RANK and WORLD_SIZE must be integers (as torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world:
        raise DualTalkError(f"RANK={rank} is not in [0, WORLD_SIZE={world})")
    return rank, world


def predict(
    model,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config=None,
    options: InferenceOptions | None = None,
    partner_motion: bool = True,
    workers: int = 1,
    shard: tuple[int, int] | None = None,
) -> list[Path]:
    """Every conversation of a split, in both directions where the partner's motion exists:
    ``out_dir/NAME_speakerK.npy`` (T, 56) in model order ((T, 55) for an ARKit model).
    ``partner_motion=False``: the same sides, the partner's face unseen (models that can run without it).

    ``shard=(i, n)``: only conversations i, i + n, i + 2n, ... of the split (sorted by name); default: from
    torchrun's ``RANK`` / ``WORLD_SIZE`` (:func:`shard_from_env`), so ``torchrun ... -m dualtalk predict``
    splits a test set over processes and machines (each writes its own files into a shared ``out_dir``).
    ``workers=N``: N processes on this machine, each with 1/N of the threads and every N-th conversation of
    this shard (``model`` then must be a path or a name; a model directory's weights are memory-mapped, so
    the processes share them). -> the files written (by this process and its workers)."""
    options = options or InferenceOptions()
    if workers < 1:
        raise DualTalkError(f"workers must be >= 1, got {workers}")
    index, count = shard if shard is not None else shard_from_env()
    if not (isinstance(count, int) and isinstance(index, int) and count >= 1 and 0 <= index < count):
        raise DualTalkError(f"shard must be (index, count) with 0 <= index < count, got {shard!r}")
    conversations = discover_conversations(data_dir)
    if workers > 1:
        if isinstance(model, torch.nn.Module):
            raise DualTalkError("predict with workers > 1 needs the model as a path or a name (each process loads it)")
        # every input of the shard checked before a worker starts: a bad file is an error before anything is written
        cfg = load_model(model, config=config).config
        _check_inputs(_jobs(conversations[index::count]), cfg, partner_motion)
        return _predict_in_workers(model, data_dir, out_dir, config, options, partner_motion, workers, (index, count))
    net = _as_model(model, config, options.device, options.int8, options)
    jobs = _jobs(conversations[index::count])
    if not _is_worker():
        _check_inputs(jobs, net.config, partner_motion)  # all of them before the first file is written
    written = []
    inner = InferenceOptions(**{**options.__dict__, "progress": False})
    cache = CnnFeatureCache()  # each voice is encoded twice: as the self audio, then as the partner's
    for conv, k in progress_bar(jobs, desc="predict", unit="file", enabled=options.progress):
        p = partner_speaker(k)
        inputs = load_generation_inputs(
            conv.audio[k],
            conv.audio[p],
            conv.motion[p] if partner_motion else None,
            net.config.sample_rate,
            net.config.fps,
            net.config.motion_layout,
        )
        y = run_model(net, inputs.self_audio, inputs.partner_audio, inputs.partner_motion, inner, cache)
        path = Path(out_dir) / f"{conv.name}_speaker{k}.npy"
        save_model_motion(path, y)
        written.append(path)
    return written


def _jobs(conversations) -> list:
    """(conversation, speaker) for every side of ``conversations`` that can be generated."""
    return [(conv, k) for conv in conversations for k in conv.generatable()]


def _check_inputs(jobs, cfg, partner_motion: bool) -> None:
    """Read and check every input file of ``jobs`` (as :func:`load_generation_inputs` does, results dropped),
    so a split with a bad file fails before any prediction is written."""
    for conv, k in jobs:
        p = partner_speaker(k)
        motion = conv.motion[p] if partner_motion else None
        load_generation_inputs(conv.audio[k], conv.audio[p], motion, cfg.sample_rate, cfg.fps, cfg.motion_layout)


_WORKER = threading.local()


def _is_worker() -> bool:
    """In a process :func:`_predict_in_workers` started (its parent checked the inputs already)."""
    return bool(getattr(_WORKER, "active", False))


class _Stopped(KeyboardInterrupt):
    """A predict worker told to stop (SIGTERM from the parent, which was interrupted or failed)."""


def _stop_worker(signum, frame):
    raise _Stopped


def _init_predict_worker() -> None:
    """The parent handles Ctrl-C (a terminal sends it to every process of the group: ignored here); SIGTERM,
    which the parent sends when it stops, ends the worker's prediction as an interrupt does (the unfinished
    output removed) and then the worker, without a traceback."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_worker)


def _predict_worker(model, data_dir, out_dir, config, options, partner_motion, shard, threads) -> tuple[str, list]:
    _WORKER.active = True
    torch.set_num_threads(threads)
    try:
        paths = predict(model, data_dir, out_dir, config, options, partner_motion, workers=1, shard=shard)
    except DualTalkError as exc:  # (its subclasses do not all pickle) -> the message, raised by the parent
        return "error", [str(exc)]
    except KeyboardInterrupt:  # stopped by the parent: what it was writing is removed by now
        os._exit(143)
    return "ok", [str(p) for p in paths]


def _predict_in_workers(model, data_dir, out_dir, config, options, partner_motion, workers, shard) -> list[Path]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    index, count = shard
    threads = max(1, torch.get_num_threads() // workers)
    inner = InferenceOptions(**{**options.__dict__, "progress": False})
    # worker i of this shard takes every (count * workers)-th conversation from index + count * i
    shards = [(index + count * i, count * workers) for i in range(workers)]
    ctx = multiprocessing.get_context("spawn")  # not fork: the parent's OpenMP threads do not survive a fork
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_predict_worker)
    try:
        results = list(
            pool.map(
                _predict_worker,
                *zip(*[(model, data_dir, out_dir, config, inner, partner_motion, s, threads) for s in shards]),
            )
        )
    except BaseException as exc:  # interrupted (or a worker died): stop the others now, not after their shards
        processes = list(getattr(pool, "_processes", {}).values())  # no public way before Python 3.14
        for p in processes:
            p.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            p.join(10)
        if isinstance(exc, BrokenProcessPool):
            raise DualTalkError(
                "a predict worker process ended abruptly (out of memory, killed, or, from a script, a call to "
                'predict(..., workers=N) outside `if __name__ == "__main__":`: workers are started afresh and '
                "import the calling script again)"
            ) from None
        raise
    pool.shutdown()
    errors = [r[1][0] for r in results if r[0] == "error"]
    if errors:
        raise DualTalkError(errors[0])
    return sorted(Path(p) for r in results for p in r[1])
