"""Inference speed of the released architecture at full size on CPU, beside the reference implementation.

    python benchmarks/generate.py                                   # 60 s conversation, our modes
    python benchmarks/generate.py --seconds 30 --reference-dir ~/src/DualTalk      # + the reference, same run
    python benchmarks/generate.py --seconds 30 --modes exact,bf16 --profile        # + time per module
    python benchmarks/generate.py --seconds 600 --modes exact --window 120 --tag long   # a 10-minute conversation

Builds the released model (two wav2vec2-large-lv60 encoders, d=256, 647 M parameters) with random weights
(timing does not depend on the weights) and times ``--repeats`` forwards (default 3; the fastest counts, as
the probe's fastest product does, all are stored) on a generated conversation of ``--seconds`` per mode, each
mode in a fresh process (so that peak memory is per mode), after a 5 s warm-up:

- ``reference``: the reference implementation (``DualTalkModel`` of ``DualTalk.py`` in the checkout that
  ``--reference-dir`` points to: the authors' repository, github.com/ziqiaopeng/DualTalk; nothing of it is
  copied here), fed the waveform normalised as its ``Wav2Vec2Processor`` does, under ``--reference-python``
  (default: this interpreter; the reference pins transformers 4.26, so a separate environment may be needed).
  Its ``from_pretrained("facebook/wav2vec2-large-960h-lv60-self")`` is replaced by random initialisation
  from the same config (no download) unless ``--reference-weights DualTalk.pth`` is given. Its state dict is
  saved and our modes load it (``load_official``), so every mode's output is compared with the reference's;
- ``exact``: our default path in float32 (time-major chunked wav2vec2 CNN, SDPA attention): ``--exact``;
- ``transformers``: the same with transformers' own CNN path;
- ``bf16``: ``--dtype bfloat16`` (what ``--dtype auto`` picks on a CPU with native bfloat16);
- ``int8``: int8 dynamic quantisation of the audio encoders' linear layers.

Also measured, in their own processes: the machine's matrix-product speed (GFLOP/s in float32 and bfloat16,
``matmul_probe``) and the model's arithmetic (FLOPs of the forward at this length, counted by
``torch.utils.flop_counter`` in the ``exact`` process), hence the floor: the real-time factor that the
matrix products alone would take at the probe's speed. ``--fixtures DIR`` (default
``../shared/fixtures/official_parity`` if present) adds the error of each fast mode on the parity fixture
against the reference's stored output. ``--profile`` adds the time per module (forward hooks) and, with the
arithmetic counted per module group, each group's GFLOP/s beside the probe's (where the time above the floor goes);
and the time per kind of operation (``torch.profiler``: matrix products, the attention kernel, vector work, copies)
with the least the forward could take if every product ran at the probe's speed (``op_bound``).

Real-time factor = wall time / audio duration (lower is better; < 1 is faster than real time).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "official_parity"
OUR_MODES = ("exact", "transformers", "bf16", "int8")


def inputs(seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same conversation for every mode: two voices (noise) of ``seconds`` (S samples) and the partner's
    motion, T = ceil(S / 640) frames (a length that is not whole frames ends inside the last one)."""
    rng = np.random.default_rng(0)
    samples = int(round(seconds * 16000))
    t = -(-samples // 640)
    a = (0.1 * rng.normal(size=samples)).astype(np.float32)
    b = (0.1 * rng.normal(size=samples)).astype(np.float32)
    m = (0.3 * rng.normal(size=(t, 56))).astype(np.float32)
    return a, b, m


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------- children
def run_reference(args) -> dict:
    """The reference implementation: only numpy, torch, transformers and the checkout are imported."""
    import torch

    ref_dir = str(Path(args.reference_dir).resolve())
    sys.path.insert(0, ref_dir)
    import transformers

    # eager attention: the reference asks its encoder for attention weights (output_attentions), which
    # transformers >= 4.36 computes only with eager attention (its default then was eager anyway)
    w2v = transformers.Wav2Vec2Config(**json.loads(Path(args.w2v_config).read_text()), attn_implementation="eager")

    def random_init(cls, *_args, **_kwargs):  # from_pretrained without a download: same shapes, random
        return cls(w2v)

    transformers.PreTrainedModel.from_pretrained = classmethod(random_init)  # type: ignore[method-assign]
    try:
        import wav2vec  # the reference's own Wav2Vec2Model (frame_num interpolation)

        wav2vec.Wav2Vec2Model.from_pretrained = classmethod(random_init)
    except ImportError:
        pass
    import DualTalk as reference  # noqa: N813 - the reference's module name

    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = reference.DualTalkModel(argparse.Namespace(blendshape_dim=56, feature_dim=args.feature_dim))
    if args.reference_weights:
        model.load_state_dict(torch.load(args.reference_weights, map_location="cpu"))
    model = model.eval()
    build_s = time.perf_counter() - t0
    if args.state_out:
        torch.save(model.state_dict(), args.state_out)
    a, b, m = inputs(args.seconds)

    def normalised(x: np.ndarray) -> np.ndarray:  # Wav2Vec2Processor (do_normalize=True), as demo.py feeds it
        return ((x - x.mean()) / np.sqrt(x.var() + 1e-7)).astype(np.float32)

    def forward(a, b, m):
        with torch.no_grad():
            return model(
                torch.from_numpy(normalised(a))[None], torch.from_numpy(normalised(b))[None], torch.from_numpy(m)[None]
            )

    forward(a[: 5 * 16000], b[: 5 * 16000], m[:125])  # warm-up, as ours
    y, walls = timed(lambda: forward(a, b, m), args.repeats)
    np.save(args.out_npy, y[0].float().numpy())
    return {"build_s": build_s, "wall_s": min(walls), "walls_s": walls, "threads": torch.get_num_threads()}


def timed(fn, repeats: int):
    """``fn()``'s first result and the wall time of each of ``repeats`` calls (the fastest is the mode's time,
    as the probe's is its fastest product: what the machine can do, not its noise)."""
    walls, first = [], None
    for i in range(max(1, repeats)):
        t0 = time.perf_counter()
        y = fn()
        walls.append(time.perf_counter() - t0)
        if i == 0:
            first = y
    return first, walls


#: (pattern of module names, group) for ``--profile``; the first match counts
PROFILE_GROUPS = [
    (r"joint_encoder\.audio_encoder[12]", "wav2vec2 (all)"),
    (r".*\.model\.feature_projection", "wav2vec2 feature projection"),
    (r".*\.model\.encoder", "wav2vec2 transformer (all)"),
    (r".*\.model\.encoder\.pos_conv_embed", "wav2vec2 positional convolution"),
    (r".*\.model\.encoder\.layers\.\d+\.attention", "wav2vec2 attention (all)"),
    (r".*\.model\.encoder\.layers\.\d+\.attention\.(q|k|v|out)_proj", "wav2vec2 attention projections"),
    (r".*\.model\.encoder\.layers\.\d+\.feed_forward", "wav2vec2 feed-forward"),
    (r"joint_encoder\.(audio_projection|blendshape_encoder)", "DualTalk audio projection + motion encoder"),
    (r"temporal_enhancer", "DualTalk temporal enhancer (cross-attention + BiLSTM)"),
    (r"interaction_module", "DualTalk interaction module (3 encoder layers + attention)"),
    (r"synthesis_module", "DualTalk synthesis module (decoder layer + heads)"),
]


def group_of(name: str) -> str | None:
    """The :data:`PROFILE_GROUPS` group of a module name (as ``named_modules`` spells it), or None."""
    import re

    return next((g for pattern, g in PROFILE_GROUPS if re.fullmatch(pattern, name)), None)


def per_group(totals: dict[str, float], whole: float) -> dict[str, float]:
    """Totals per group (seconds or FLOPs, summed over each group's modules; a module's total includes its
    children) split into disjoint parts: the wav2vec2 CNN is what the encoders spend outside projection and
    transformer, the layer norms what the transformer spends outside attention, feed-forward and positional
    convolution, the attention kernel what attention spends outside its four projections (the scores, their
    softmax and the weighted sum: one fused kernel), and ``outside the modules`` what the forward spends outside
    the encoders and DualTalk's layers."""
    t = dict(totals)
    w2v, enc = t.pop("wav2vec2 (all)", 0.0), t.pop("wav2vec2 transformer (all)", 0.0)
    attention = t.pop("wav2vec2 attention (all)", 0.0)
    t["wav2vec2 CNN (+ normalisation, interpolation)"] = w2v - enc - t.get("wav2vec2 feature projection", 0.0)
    t["wav2vec2 layer norms"] = enc - attention - t.get("wav2vec2 feed-forward", 0.0)
    t["wav2vec2 layer norms"] -= t.get("wav2vec2 positional convolution", 0.0)
    t["wav2vec2 attention kernel (scores, softmax)"] = attention - t.get("wav2vec2 attention projections", 0.0)
    dualtalk = sum(v for k, v in t.items() if k.startswith("DualTalk"))
    t["outside the modules (inputs, output)"] = whole - w2v - dualtalk
    return dict(sorted(t.items(), key=lambda kv: -kv[1]))


def flops_per_group(counts: dict[str, dict]) -> dict[str, float]:
    """FLOPs per :data:`PROFILE_GROUPS` group from ``FlopCounterMode.get_flop_counts()`` (module names prefixed
    by the root's class name, each module's count including its children's; ``Global`` is the whole)."""
    totals: dict[str, float] = {}
    for name, ops in counts.items():
        group = group_of(name.partition(".")[2]) if "." in name else None
        if group is not None:
            totals[group] = totals.get(group, 0.0) + float(sum(ops.values()))
    whole = float(sum(counts.get("Global", {}).values()))
    return {k: round(v) for k, v in per_group(totals, whole).items()}


class ModuleTimer:
    """Wall time per module group (:data:`PROFILE_GROUPS`), from forward pre/post hooks (CPU ops are
    synchronous, so the clock between a module's entry and exit is its time)."""

    def __init__(self, model) -> None:
        self.totals: dict[str, float] = {}
        self.started: dict[int, float] = {}
        self.handles = []
        for name, module in model.named_modules():
            group = group_of(name)
            if group is not None:
                self.handles.append(module.register_forward_pre_hook(self._pre))
                self.handles.append(module.register_forward_hook(self._post(group)))

    def _pre(self, module, _inputs):
        self.started[id(module)] = time.perf_counter()

    def _post(self, group: str):
        def hook(module, _inputs, _output):
            self.totals[group] = self.totals.get(group, 0.0) + time.perf_counter() - self.started.pop(id(module))

        return hook

    def table(self, wall: float) -> dict[str, float]:
        """Seconds per group (:func:`per_group`)."""
        return {k: round(v, 3) for k, v in per_group(self.totals, wall).items()}

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def in_one_thread(options):
    """``options`` with the two audio encoders one after the other in the calling thread: the FLOP counter sees
    only its own thread's operations, and the module timer's clock is wall time, which two encoders side by
    side would count twice."""
    return dataclasses.replace(options, concurrent_encoders=False)


def probe_dtype(mode: str) -> str | None:
    """The matmul probe's dtype a mode is measured against (``fp32`` / ``bf16``); None for int8, whose matrix
    products are neither (no floor, no share of a probe)."""
    return {"reference": "fp32", "exact": "fp32", "transformers": "fp32", "bf16": "bf16"}.get(mode)


def group_speeds(seconds: dict[str, float], gflop: dict[str, float], probe_gflops: float) -> dict[str, dict]:
    """GFLOP/s of each module group that does arithmetic (at least 0.5 GFLOP) and its share of the probe's
    speed: ``{group: {"gflops": .., "of_probe": ..}}``, from a profile's seconds and the counted GFLOP."""
    return {
        g: {"gflops": gflop[g] / secs, "of_probe": gflop[g] / secs / probe_gflops}
        for g, secs in seconds.items()
        if gflop.get(g, 0.0) >= 0.5 and secs > 0
    }


#: what each ATen operation does, for the op-level profile (``--profile``): matrix products (convolutions, the
#: LSTM's kernel and the fused encoder-layer and multi-head attention paths included), the fused attention kernel
#: (scores, softmax, weighted sum) and copies (layout changes, casts); any other operation is vector work
#: (layer norms, GELU, residual adds, softmax, weight norm, ...)
OP_KINDS = {
    "matrix products": {
        "addmm", "mm", "bmm", "baddbmm", "_addmm_activation", "linear", "matmul", "convolution", "_convolution",
        "mkldnn_convolution", "mkldnn_rnn_layer", "_transformer_encoder_layer_fwd", "_native_multi_head_attention",
        "linear_dynamic",
    },
    "attention kernel": {"_scaled_dot_product_flash_attention_for_cpu"},
    "copies": {"copy_", "_to_copy", "cat", "stack", "clone", "contiguous", "constant_pad_nd", "index", "index_select"},
}  # fmt: skip


def op_kind(name: str) -> str | None:
    """The :data:`OP_KINDS` kind of an operation, named as the profiler (``aten::addmm``) or the FLOP counter
    (``aten.addmm``, ``aten.addmm.default``) names it; None for what is not an operator (a profiler's own
    events)."""
    parts = name.replace("::", ".").split(".")
    if len(parts) < 2:
        return None
    return next((kind for kind, ops in OP_KINDS.items() if parts[1] in ops), "vector work")


def op_seconds(fn) -> tuple[dict[str, float], float]:
    """Seconds of each kind of operation (:func:`op_kind`; each operator's own time, without its children's)
    in one call of ``fn``, from ``torch.profiler`` (CPU operators are synchronous: an operator's time is the
    calling thread's wall time in it, its intra-op threads included), and the call's wall time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
    seconds: dict[str, float] = {}
    for event in prof.key_averages():
        kind = op_kind(event.key)
        if kind is not None:
            seconds[kind] = seconds.get(kind, 0.0) + event.self_cpu_time_total / 1e6
    return dict(sorted(seconds.items(), key=lambda kv: -kv[1])), wall


def flops_per_op_kind(global_counts: dict) -> dict[str, float]:
    """FLOPs per :data:`OP_KINDS` kind from the counter's whole-forward counts (``get_flop_counts()["Global"]``)."""
    totals: dict[str, float] = {}
    for op, flops in global_counts.items():
        kind = op_kind(str(op)) or "vector work"
        totals[kind] = totals.get(kind, 0.0) + float(flops)
    return totals


def op_bound(seconds: dict[str, float], gflop: dict[str, float], probe_gflops: float) -> dict:
    """Where the time above the floor goes, by kind of operation, and the least it could be with PyTorch's
    kernels for the rest: ``kinds`` gives each kind's seconds, GFLOP, GFLOP/s and share of the probe's speed;
    ``bound_s`` is the floor (all the arithmetic at the probe's speed) plus the time of what is not arithmetic as
    the profile measured it: the vector work, and the attention kernel's time beyond its own products at the
    probe's speed (its softmax). Copies are left out of the bound (a different layout could avoid them), so
    ``bound_s / floor_s`` is what no faster matrix product can go below, only fusing the vector work into the
    products (kernels eager PyTorch does not have) could."""
    kinds = {}
    for kind, secs in seconds.items():
        g = gflop.get(kind, 0.0)
        kinds[kind] = {"s": secs, "gflop": g}
        if g >= 0.5 and secs > 0:
            kinds[kind].update(gflops=g / secs, of_probe=g / secs / probe_gflops)
    floor_s = sum(gflop.values()) / probe_gflops
    attention = seconds.get("attention kernel", 0.0) - gflop.get("attention kernel", 0.0) / probe_gflops
    rest_s = seconds.get("vector work", 0.0) + max(0.0, attention)
    return {"kinds": kinds, "floor_s": floor_s, "bound_s": floor_s + rest_s, "bound_x_floor": 1 + rest_s / floor_s}


def cpu_fused_flops() -> dict:
    """FLOP formulas the counter lacks, for the CPU's fused kernels: PyTorch counts the CUDA kernels of scaled
    dot-product attention but not the CPU's flash kernel, which the wav2vec2 encoders use (without it their
    attention scores, about a tenth of the arithmetic, would be left out of the floor; same formula as the CUDA
    kernels'); nor the inference fast paths of ``nn.TransformerEncoderLayer`` and ``nn.MultiheadAttention``, nor
    ``nn.LSTM``'s kernel (DualTalk's interaction module and temporal enhancer). Products only, 2 per
    multiply-add, as the counter's own formulas."""
    import torch
    from torch.utils.flop_counter import sdpa_flop_count

    def flash_for_cpu(query_shape, key_shape, value_shape, *_args, out_shape=None, **_kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    def encoder_layer(src, embed_dim, _heads, *args, out_shape=None, **_kwargs) -> int:
        # args: qkv_weight, qkv_bias, proj_weight, proj_bias, use_gelu, norm_first, eps, 4 norm params, then
        # ffn_weight_1 (F, E), ffn_bias_1, ffn_weight_2, ffn_bias_2, [mask, mask_type]
        tokens, t = math.prod(src[:-1]), src[-2]  # (B, T, E), batch first
        ffn = args[11][0]
        return 2 * tokens * embed_dim * (4 * embed_dim + 2 * ffn) + 4 * tokens * t * embed_dim

    def multi_head_attention(query, key, _value, embed_dim, *_args, out_shape=None, **_kwargs) -> int:
        tq, tk = math.prod(query[:-1]), math.prod(key[:-1])  # (B, T, E): batch first
        scores = 4 * tq * key[-2] * embed_dim  # scores and weighted sum: (B, Tq, Tk) x E, twice
        return 2 * tq * embed_dim * 2 * embed_dim + 2 * tk * embed_dim * 2 * embed_dim + scores

    def lstm_layer(input, w_ih, w_hh, *_args, out_shape=None, **_kwargs) -> int:
        # one layer and direction of nn.LSTM on the CPU (what aten.lstm decomposes into): every step of every
        # sequence multiplies its input by w_ih (4H, I) and the hidden state by w_hh (4H, H)
        steps = math.prod(input[:-1])  # (T, B, I)
        return 2 * steps * (w_ih[0] * w_ih[1] + w_hh[0] * w_hh[1])

    aten = torch.ops.aten
    return {
        aten._scaled_dot_product_flash_attention_for_cpu: flash_for_cpu,
        aten._transformer_encoder_layer_fwd: encoder_layer,
        aten._native_multi_head_attention: multi_head_attention,
        aten.mkldnn_rnn_layer: lstm_layer,
    }


def run_ours(args) -> dict:
    import torch

    from dualtalk.config import DualTalkConfig
    from dualtalk.features.audio_encoder import Wav2Vec2Encoder
    from dualtalk.inference.pipeline import InferenceOptions, bf16_encoder_weights, quantize_int8, run_model
    from dualtalk.model.checkpoint import load_official
    from dualtalk.model.dualtalk import DualTalk

    mode = args.child
    torch.manual_seed(0)
    t0 = time.perf_counter()
    if args.state_in:  # the reference's weights
        model = load_official(args.state_in).eval()
    else:
        model = DualTalk(DualTalkConfig()).eval()
    build_s = time.perf_counter() - t0
    if mode == "transformers":
        Wav2Vec2Encoder.time_major_cnn = False
    if mode == "int8":
        model = quantize_int8(model)
    if mode == "bf16":  # as generate/predict load a model for a bfloat16 run
        model = bf16_encoder_weights(model)
    a, b, m = inputs(args.seconds)
    opts = InferenceOptions(window=args.window, progress=False, dtype="bfloat16" if mode == "bf16" else "float32")
    in_turn = in_one_thread(opts)  # for the FLOP count and the profile
    run_model(model, a[: 5 * 16000], b[: 5 * 16000], m[:125], opts)  # warm-up (allocator, kernels)
    row: dict = {}
    if args.count_flops:  # one counted forward of the full input (also a warm-up at full length)
        from torch.utils.flop_counter import FlopCounterMode

        model.requires_grad_(False)  # the counter's module tracker hooks tensors that require grad
        counter = FlopCounterMode(display=False, custom_mapping=cpu_fused_flops())
        with counter:
            run_model(model, a, b, m, in_turn)
        row["flops"] = counter.get_total_flops()
        row["flops_per_group"] = flops_per_group(counter.get_flop_counts())
        row["flops_per_op_kind"] = flops_per_op_kind(counter.get_flop_counts().get("Global", {}))
    y, walls = timed(lambda: run_model(model, a, b, m, opts), args.repeats)
    if args.profile:  # one more forward, timed per module, the encoders in turn
        timer = ModuleTimer(model)
        t0 = time.perf_counter()
        run_model(model, a, b, m, in_turn)
        row["profile_wall_s"] = time.perf_counter() - t0
        row["profile_s"] = timer.table(row["profile_wall_s"])
        timer.remove()
        # and one under torch.profiler: the time of each kind of operation (products, attention kernel, vector
        # work, copies), against the arithmetic of each kind (where the time above the floor goes)
        row["ops_s"], row["ops_wall_s"] = op_seconds(lambda: run_model(model, a, b, m, in_turn))
    np.save(args.out_npy, y)
    return {**row, "build_s": build_s, "wall_s": min(walls), "walls_s": walls, "threads": torch.get_num_threads()}


def save_full_size(directory: str) -> dict:
    """A full-size model directory (random weights) for the loading measurement."""
    import torch

    from dualtalk.config import DualTalkConfig
    from dualtalk.model.checkpoint import save_model
    from dualtalk.model.dualtalk import DualTalk

    torch.manual_seed(0)
    save_model(DualTalk(DualTalkConfig()).eval(), directory)
    return {}


def time_loading(directory: str) -> dict:
    """Seconds to load a model directory (config + memory-mapped safetensors) and the memory it takes,
    before and after its weights are first read (the mapping's pages come in as they are touched)."""
    t0 = time.perf_counter()
    import torch
    import transformers.models.wav2vec2.modeling_wav2vec2  # noqa: F401 - the import, timed apart

    from dualtalk.model.checkpoint import WEIGHTS_NAME, load_model

    import_s = time.perf_counter() - t0

    def rss_mb() -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    before = rss_mb()
    t0 = time.perf_counter()
    model = load_model(directory)
    load_s = time.perf_counter() - t0
    after_load = rss_mb()
    t0 = time.perf_counter()
    with torch.no_grad():
        total = sum(float(p.sum()) for p in model.parameters())  # touch every weight once
    touch_s = time.perf_counter() - t0
    return {
        "import_s": import_s,
        "load_s": load_s,
        "first_read_s": touch_s,
        "weights_mb": os.path.getsize(Path(directory) / WEIGHTS_NAME) / 2**20,
        "rss_added_by_load_mb": after_load - before,
        "rss_added_after_reading_weights_mb": rss_mb() - before,
        "checksum": total,
    }


def run_from_directory(directory: str, dtype: str, seconds: float) -> dict:
    """What ``dualtalk generate`` does with a model directory (memory-mapped weights; for bfloat16 the
    encoders' weights converted), one forward of ``seconds``: time and peak memory against the weights' size."""
    import torch
    import transformers.models.wav2vec2.modeling_wav2vec2  # noqa: F401 - imported before the clock, as above

    from dualtalk.inference.pipeline import InferenceOptions, _as_model, run_model

    opts = InferenceOptions(dtype=dtype, progress=False)
    t0 = time.perf_counter()
    model = _as_model(directory, options=opts)
    load_s = time.perf_counter() - t0
    weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    a, b, m = inputs(seconds)
    t0 = time.perf_counter()
    run_model(model, a, b, m, opts)
    return {
        "dtype": dtype,
        "seconds": seconds,
        "load_s": load_s,
        "wall_s": time.perf_counter() - t0,
        "weights_in_memory_mb": weights_mb,
        "threads": torch.get_num_threads(),
    }


def matmul_probe(seconds_each: float) -> dict:
    """GFLOP/s of one large matrix product in float32 and bfloat16 (a wav2vec2-large feed-forward's shape:
    1,500 frames x 1,024 -> 4,096), best of repeated runs for ``seconds_each``."""
    import torch

    out = {}
    m, k, n = 1500, 1024, 4096
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        x = torch.randn(m, k).to(dtype)
        w = torch.randn(k, n).to(dtype)
        x @ w  # warm-up (one: an emulated bfloat16 product of this size takes seconds)
        best, until = math.inf, time.perf_counter() + seconds_each
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            x @ w
            best = min(best, time.perf_counter() - t0)
        out[f"{name}_gflops"] = 2 * m * k * n / best / 1e9
    out["threads"] = torch.get_num_threads()
    return out


def fixture_errors(fixtures: Path) -> dict:
    """Max abs error of each mode on the parity fixture, against the reference's stored output."""
    import torch

    from dualtalk.inference.pipeline import InferenceOptions, quantize_int8, run_model
    from dualtalk.io import load_audio, load_motion
    from dualtalk.model.checkpoint import load_model

    expected = np.load(fixtures / "expected.npz")["output"]
    a = load_audio(fixtures / "self_audio.wav")
    b = load_audio(fixtures / "partner_audio.wav")
    m = load_motion(fixtures / "partner_motion.npz").to_model()
    out = {}
    for mode in ("exact", "bf16", "int8"):
        model = load_model(fixtures / "official_layout_checkpoint.pth", config=fixtures / "config.json")
        if mode == "int8":
            model = quantize_int8(model)
        opts = InferenceOptions(progress=False, dtype="bfloat16" if mode == "bf16" else "float32")
        with torch.inference_mode():
            y = run_model(model, a, b, m, opts)
        out[mode] = float(np.abs(y - expected).max())
    return out


# ------------------------------------------------------------------------------------------------ parent
def child(args, mode: str, extra: list[str], python: str | None = None) -> dict:
    cmd = [python or sys.executable, __file__, "--child", mode, "--seconds", str(args.seconds)]
    cmd += ["--window", str(args.window), "--repeats", str(args.repeats), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument(
        "--modes",
        help=f"of {','.join(OUR_MODES)} (+ reference); default exact,bf16,int8, without bf16 on a CPU that has no "
        "native bfloat16 (emulated, its matrix products run hundreds of times slower than float32 there)",
    )
    ap.add_argument("--reference-dir", help="a checkout of the reference implementation (DualTalk.py, wav2vec.py)")
    ap.add_argument("--reference-python", help="interpreter with the reference's requirements (default: this one)")
    ap.add_argument("--reference-weights", help="DualTalk.pth for both (default: random weights, seed 0)")
    ap.add_argument("--window", type=float, default=0.0, help="seconds per window (0 = one sequence, exact)")
    ap.add_argument(
        "--repeats", type=int, default=3, help="forwards timed per mode after the warm-up; the fastest counts"
    )
    ap.add_argument("--profile", action="store_true", help="time per module (forward hooks) in our modes")
    ap.add_argument("--fixtures", default=str(DEFAULT_FIXTURES), help="parity fixture directory ('' = skip)")
    ap.add_argument("--no-probe", action="store_true", help="skip the matmul GFLOP/s probe")
    ap.add_argument("--probe-seconds", type=float, default=3.0, help="seconds per dtype of the matmul probe")
    ap.add_argument("--tag", default="", help="suffix of the result file name (generate_TAG.json)")
    ap.add_argument("--out", help="result JSON (default benchmarks/results/generate[_TAG].json)")
    ap.add_argument("--load", action="store_true", help="also time loading a full-size model directory")
    for hidden in ("--child", "--out-npy", "--state-in", "--state-out", "--w2v-config", "--model-dir", "--run-dtype"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    ap.add_argument("--feature-dim", type=int, default=256, help=argparse.SUPPRESS)
    ap.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        if args.child == "reference":
            row = run_reference(args)
        elif args.child == "matmul":
            row = matmul_probe(args.probe_seconds)
        elif args.child == "save":
            row = save_full_size(args.model_dir)
        elif args.child == "load":
            row = time_loading(args.model_dir)
        elif args.child == "dirrun":
            row = run_from_directory(args.model_dir, args.run_dtype, args.seconds)
        elif args.child == "fixtures":
            row = fixture_errors(Path(args.fixtures))
        else:
            row = run_ours(args)
        print(json.dumps({**row, "peak_rss_mb": peak_rss_mb()}))
        return

    from dualtalk.inference.pipeline import machine_record

    result_machine = machine_record()
    if args.modes is None:
        native = result_machine.get("native_bf16", True)  # no /proc/cpuinfo: time bf16 as well
        args.modes = "exact,bf16,int8" if native else "exact,int8"
        if not native:
            print(
                "bf16 left out: this CPU has no native bfloat16 (no avx512_bf16 / amx_bf16), so --dtype auto is "
                "float32 here and an emulated bfloat16 forward takes tens of minutes (--modes exact,bf16,int8 to time "
                "it anyway)",
                flush=True,
            )
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in OUR_MODES + ("reference",)]
    if unknown:
        raise SystemExit(f"unknown mode(s) {unknown} (of {', '.join(OUR_MODES)}, reference)")
    if args.reference_dir and "reference" not in modes:
        modes.insert(0, "reference")
    if "reference" in modes and not args.reference_dir:
        raise SystemExit("mode reference needs --reference-dir")
    if "reference" in modes:  # first: our modes load its weights
        modes = ["reference"] + [m for m in modes if m != "reference"]
    tmp = Path(tempfile.mkdtemp(prefix="dualtalk-generate-"))
    result: dict = {
        "benchmark": "generate",
        "model": "released architecture, random weights (2 x wav2vec2-large-lv60, d=256, 647 M parameters)",
        "command": "python benchmarks/generate.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "repeats": args.repeats,
        "machine": result_machine,
    }
    if args.reference_dir:  # which checkout was timed (its commit when it is a git checkout)
        ref = {"dir": str(args.reference_dir)}
        try:
            head = subprocess.run(
                ["git", "-C", args.reference_dir, "log", "-1", "--format=%H %s"], capture_output=True, text=True
            )
            if head.returncode == 0:
                ref["commit"] = head.stdout.strip()
        except OSError:
            pass
        result["reference"] = ref
    if not args.no_probe:
        result["matmul"] = child(args, "matmul", ["--probe-seconds", str(args.probe_seconds)])
        mm = result["matmul"]
        print(f"matmul: {mm['fp32_gflops']:.0f} GFLOP/s fp32, {mm['bf16_gflops']:.0f} GFLOP/s bf16", flush=True)
    rows, outputs = [], {}
    state = tmp / "reference_state.pth"
    try:
        for mode in modes:
            npy = tmp / f"{mode}.npy"
            extra = ["--out-npy", str(npy)]
            if mode == "reference":
                w2v = tmp / "wav2vec2.json"
                from dualtalk.config import DualTalkConfig  # wav2vec2-large-lv60: the released encoders

                w2v.write_text(json.dumps(DualTalkConfig().audio_encoder.wav2vec2))
                extra += ["--reference-dir", args.reference_dir, "--w2v-config", str(w2v), "--state-out", str(state)]
                if args.reference_weights:
                    extra += ["--reference-weights", args.reference_weights]
                row = child(args, mode, extra, python=args.reference_python)
            else:
                if state.exists():
                    extra += ["--state-in", str(state)]
                elif args.reference_weights:
                    extra += ["--state-in", args.reference_weights]
                if args.profile:
                    extra.append("--profile")
                if mode == "exact" and not args.no_probe:
                    extra.append("--count-flops")
                row = child(args, mode, extra)
            row = {
                "mode": mode,
                "seconds": args.seconds,
                "window_s": args.window,
                **row,
                "rtf": row["wall_s"] / args.seconds,
            }
            outputs[mode] = np.load(npy)
            rows.append(row)
            print(
                f"{mode:>13}: {row['wall_s']:7.2f} s for {args.seconds:g} s of audio  RTF {row['rtf']:.3f}  "
                f"peak RSS {row['peak_rss_mb']:,.0f} MB  (build/load {row['build_s']:.1f} s)",
                flush=True,
            )
            for name, secs in row.get("profile_s", {}).items():
                print(f"{'':>15}{secs:7.2f} s  {name}")
    finally:
        for f in tmp.iterdir():
            if f.is_file():
                f.unlink()
        if not args.load:
            tmp.rmdir()
    for base in ("reference", "exact"):
        if base not in outputs:
            continue
        for row in rows:
            if row["mode"] != base:
                ref, out = outputs[base], outputs[row["mode"]]
                n = min(len(ref), len(out))
                row[f"max_abs_diff_vs_{base}"] = float(np.abs(out[:n] - ref[:n]).max())
                print(f"{row['mode']:>13}: max |output - {base}| = {row[f'max_abs_diff_vs_{base}']:.2e}")
    flops = next((r["flops"] for r in rows if "flops" in r), None)
    if flops and "matmul" in result:
        per_second = flops / args.seconds
        floor = {k: per_second / (result["matmul"][f"{k}_gflops"] * 1e9) for k in ("fp32", "bf16")}
        result["arithmetic"] = {"gflop": flops / 1e9, "gflop_per_audio_second": per_second / 1e9}
        groups = next((r["flops_per_group"] for r in rows if "flops_per_group" in r), None)
        if groups:
            result["arithmetic"]["gflop_per_group"] = {k: v / 1e9 for k, v in groups.items()}
        kinds = next((r["flops_per_op_kind"] for r in rows if "flops_per_op_kind" in r), None)
        if kinds:
            result["arithmetic"]["gflop_per_op_kind"] = {k: v / 1e9 for k, v in kinds.items()}
        result["floor_rtf"] = floor
        print(
            f"arithmetic: {per_second / 1e9:.1f} GFLOP per second of audio -> floor RTF "
            f"{floor['fp32']:.3f} (fp32), {floor['bf16']:.3f} (bf16)"
        )
        for row in rows:  # int8 has no floor of its own (its matrix products are neither)
            if dtype := probe_dtype(row["mode"]):
                row["x_floor"] = row["rtf"] / floor[dtype]
    gflop = result.get("arithmetic", {}).get("gflop_per_group", {})
    for row in rows:  # how fast each group's arithmetic ran, beside the probe's speed in the mode's dtype
        if "profile_s" in row and gflop and (dtype := probe_dtype(row["mode"])):
            probe = result["matmul"][f"{dtype}_gflops"]
            row["gflops_per_group"] = group_speeds(row["profile_s"], gflop, probe)
            print(f"{row['mode']:>13}: GFLOP/s per module group (the probe: {probe:.0f})")
            for name, speed in row["gflops_per_group"].items():
                print(f"{'':>15}{speed['gflops']:7.0f} GFLOP/s  {gflop[name]:6.1f} GFLOP  {name}")
    op_gflop = result.get("arithmetic", {}).get("gflop_per_op_kind", {})
    for row in rows:  # by kind of operation, and what the vector work alone leaves above the floor
        if "ops_s" in row and op_gflop and (dtype := probe_dtype(row["mode"])):
            probe = result["matmul"][f"{dtype}_gflops"]
            row["ops"] = op_bound(row["ops_s"], op_gflop, probe)
            print(f"{row['mode']:>13}: by kind of operation ({row['ops_wall_s']:.2f} s profiled, encoders in turn)")
            for kind, k in row["ops"]["kinds"].items():
                speed = f"{k['gflops']:7.0f} GFLOP/s ({k['of_probe']:.0%})" if "gflops" in k else ""
                print(f"{'':>15}{k['s']:7.2f} s  {kind:<17} {speed}")
            print(
                f"{'':>15}every product at the probe's speed, no copies: {row['ops']['bound_s']:.2f} s "
                f"= {row['ops']['bound_x_floor']:.2f}x the floor ({row['ops']['floor_s']:.2f} s)"
            )
    if "reference" in outputs:
        ref_wall = next(r["wall_s"] for r in rows if r["mode"] == "reference")
        for row in rows:
            row["speedup_vs_reference"] = ref_wall / row["wall_s"]
    if args.load:
        model_dir = tmp / "model"
        child(args, "save", ["--model-dir", str(model_dir)])
        try:
            result["loading"] = child(args, "load", ["--model-dir", str(model_dir)])
            result["from_directory"] = [
                child(args, "dirrun", ["--model-dir", str(model_dir), "--run-dtype", d])
                for d in ("float32", "bfloat16")
                if d == "float32" or "bf16" in modes
            ]
        finally:
            for f in model_dir.iterdir():
                f.unlink()
            model_dir.rmdir()
            tmp.rmdir()
        ld = result["loading"]
        print(
            f"loading a full-size model directory: {ld['load_s']:.2f} s (after {ld['import_s']:.1f} s of imports), "
            f"+{ld['rss_added_by_load_mb']:,.0f} MB "
            f"(+{ld['rss_added_after_reading_weights_mb']:,.0f} MB once read; weights {ld['weights_mb']:,.0f} MB)"
        )
        for r in result.get("from_directory", []):
            print(
                f"generate from the directory, {r['dtype']}: {r['wall_s']:.1f} s, peak RSS {r['peak_rss_mb']:,.0f} MB "
                f"(weights in memory {r['weights_in_memory_mb']:,.0f} MB)"
            )
    if args.fixtures and Path(args.fixtures, "expected.npz").exists():
        result["fixture_max_abs_error_vs_reference"] = child(args, "fixtures", ["--fixtures", args.fixtures])
        result["fixture_max_abs_error_vs_reference"].pop("peak_rss_mb", None)
        print("parity fixture, max |output - reference|:", result["fixture_max_abs_error_vs_reference"])
    result["rows"] = rows
    if args.out:
        out = Path(args.out)
    else:
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / (f"generate_{args.tag}.json" if args.tag else "generate.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
