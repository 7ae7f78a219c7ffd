"""benchmarks/generate.py: the side-by-side harness against a (fake) reference checkout, the matmul probe,
the fixture errors. No download: the test writes a tiny package with the reference's API to tmp."""

from __future__ import annotations

import json
import textwrap

import pytest
from tests.conftest import load_benchmark, shared_path

from dualtalk.inference.pipeline import machine_record

#: the reference repository's API: DualTalk.py with DualTalkModel(args) (args.blendshape_dim,
#: args.feature_dim), whose encoders come from wav2vec.Wav2Vec2Model.from_pretrained(NAME)
FAKE_WAV2VEC = """
import torch

class Wav2Vec2Model(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.hidden_size == 1024 and config.num_hidden_layers == 24  # the released encoders' config
        self.scale = torch.nn.Parameter(torch.ones(1))

    @classmethod
    def from_pretrained(cls, name):
        raise RuntimeError("the harness must not download " + name)
"""
FAKE_DUALTALK = """
import math
import torch
from wav2vec import Wav2Vec2Model

class DualTalkModel(torch.nn.Module):
    def __init__(self, args):
        super().__init__()
        self.enc = Wav2Vec2Model.from_pretrained("facebook/wav2vec2-large-960h-lv60-self")
        self.head = torch.nn.Linear(args.blendshape_dim, args.blendshape_dim)

    def forward(self, audio1, audio2, blendshape):
        t = math.ceil(audio1.shape[1] / 16000 * 25)
        assert abs(float(audio1.mean())) < 1e-4 and abs(float(audio1.std()) - 1) < 1e-2  # normalised input
        return self.head(blendshape[:, :t]) * self.enc.scale
"""


def load_script():
    return load_benchmark("generate")


def test_reference_side_by_side_with_a_fake_checkout(tmp_path, capsys):
    ref = tmp_path / "DualTalk-checkout"
    ref.mkdir()
    (ref / "wav2vec.py").write_text(textwrap.dedent(FAKE_WAV2VEC))
    (ref / "DualTalk.py").write_text(textwrap.dedent(FAKE_DUALTALK))
    out = tmp_path / "result.json"
    bench = load_script()
    bench.main(
        ["--modes", "reference", "--reference-dir", str(ref), "--seconds", "1", "--probe-seconds", "0.05"]
        + ["--fixtures", "", "--out", str(out)]
    )
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert row["mode"] == "reference" and row["wall_s"] > 0 and row["rtf"] == pytest.approx(row["wall_s"])
    assert row["peak_rss_mb"] > 0 and row["speedup_vs_reference"] == 1.0
    assert len(row["walls_s"]) == result["repeats"] == 3 and row["wall_s"] == min(row["walls_s"])  # the fastest
    assert result["matmul"]["fp32_gflops"] > 0 and result["matmul"]["bf16_gflops"] > 0
    assert "matmul:" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="needs --reference-dir"):
        bench.main(["--modes", "reference", "--out", str(out)])
    with pytest.raises(SystemExit, match="unknown mode"):
        bench.main(["--modes", "fast", "--out", str(out)])


def test_machine_record_names_the_cpu_and_its_native_bfloat16(tmp_path):
    """What a result was measured on: the CPU model, its matrix-relevant flags, and whether bfloat16 is native
    (the benchmark leaves the emulated bf16 mode out by default where it is not)."""
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx avx2 fma\n"
    )
    zen3 = machine_record(info)
    assert zen3["cpu_model"] == "AMD EPYC" and zen3["cpu_family_model"] == "25/1"
    assert zen3["isa"] == ["avx2", "fma"] and zen3["native_bf16"] is False
    info.write_text("model name\t: Xeon\nflags\t\t: avx2 fma avx512f avx512_bf16 amx_tile amx_bf16\n")
    assert machine_record(info)["native_bf16"] is True
    assert "native_bf16" not in machine_record(tmp_path / "missing")  # no cpuinfo: not claimed either way


def test_fixture_errors_of_each_mode():
    fixtures = shared_path("fixtures", "official_parity")
    errors = load_script().fixture_errors(fixtures)
    assert set(errors) == {"exact", "bf16", "int8"}
    assert errors["exact"] <= 1e-4 < errors["bf16"]  # float32 is the reference's arithmetic; bfloat16 is not


def test_module_timer_covers_the_forward():
    import torch

    from dualtalk.model.dualtalk import DualTalk
    from dualtalk.model.presets import get_preset

    bench = load_script()
    model = DualTalk(get_preset("tiny")).eval()
    timer = bench.ModuleTimer(model)
    assert timer.handles  # hooks were attached
    with torch.inference_mode():
        model(torch.randn(1, 16000), torch.randn(1, 16000), torch.randn(1, 25, 56))
    table = timer.table(wall=10.0)
    timer.remove()
    assert any(k.startswith("DualTalk interaction") for k in table)
    assert table["outside the modules (inputs, output)"] > 0


def test_flops_per_group_add_up_to_the_forward():
    """The arithmetic per module group (the profile's GFLOP/s) is disjoint: its parts sum to the whole."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from dualtalk.model.dualtalk import DualTalk
    from dualtalk.model.presets import get_preset

    bench = load_script()
    model = DualTalk(get_preset("tiny")).eval().requires_grad_(False)
    counter = FlopCounterMode(display=False, custom_mapping=bench.cpu_fused_flops())
    with counter, torch.inference_mode():
        model(torch.randn(1, 16000), torch.randn(1, 16000), torch.randn(1, 25, 56))
    groups = bench.flops_per_group(counter.get_flop_counts())
    assert sum(groups.values()) == pytest.approx(counter.get_total_flops(), rel=1e-9)
    assert all(v >= 0 for v in groups.values())
    assert groups["wav2vec2 feed-forward"] > 0 and groups["wav2vec2 attention projections"] > 0
    assert groups["wav2vec2 attention kernel (scores, softmax)"] > 0
    assert groups["wav2vec2 CNN (+ normalisation, interpolation)"] > 0
    assert groups["DualTalk synthesis module (decoder layer + heads)"] > 0
    assert groups["DualTalk interaction module (3 encoder layers + attention)"] > 0  # fused fast paths
    assert groups["DualTalk temporal enhancer (cross-attention + BiLSTM)"] > 0


def test_attention_scores_are_counted_on_cpu():
    """The CPU flash kernel of scaled dot-product attention counts as its CUDA kernels do (4 * T^2 * d per
    head and batch), so the floor includes the encoders' attention scores."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    q = torch.randn(1, 16, 75, 64)
    counter = FlopCounterMode(display=False, custom_mapping=load_script().cpu_fused_flops())
    with counter, torch.inference_mode():
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert counter.get_total_flops() == 4 * 75 * 75 * 64 * 16


def test_fused_cpu_kernels_count_as_their_parts():
    """The inference fast paths of nn.TransformerEncoderLayer and nn.MultiheadAttention count what their
    unfused computation counts, and nn.LSTM's kernel 2 * steps * 4H * (I + H) per layer and direction."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    def count(fn) -> int:
        counter = FlopCounterMode(display=False, custom_mapping=load_script().cpu_fused_flops())
        with counter, torch.inference_mode():
            fn()
        return counter.get_total_flops()

    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(32, 4, 64, 0.1, batch_first=True).eval().requires_grad_(False)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval().requires_grad_(False)
    x = torch.randn(2, 10, 32)
    counts = []
    for fast in (True, False):
        torch.backends.mha.set_fastpath_enabled(fast)
        try:
            counts.append((count(lambda: layer(x)), count(lambda: mha(x, x, x, need_weights=False))))
        finally:
            torch.backends.mha.set_fastpath_enabled(True)
    assert counts[0] == counts[1] and min(counts[0]) > 0
    plain = FlopCounterMode(display=False)  # the fast paths are taken: PyTorch's own formulas miss them
    with plain, torch.inference_mode():
        layer(x), mha(x, x, x, need_weights=False)
    assert plain.get_total_flops() == 0
    lstm = torch.nn.LSTM(32, 16, num_layers=2, bidirectional=True, batch_first=True).eval().requires_grad_(False)
    per_direction = 2 * 2 * 10 * 4 * 16 * (32 + 16)  # both layers read 32 values: 32 in, then 2 x 16
    assert count(lambda: lstm(x)) == 2 * 2 * per_direction


def test_group_speeds_against_the_probe_of_the_modes_dtype():
    """Each group's GFLOP/s and share of the probe is computed once (stored in the result, read by the docs);
    groups without arithmetic are left out; int8 has no probe to be measured against."""
    bench = load_script()
    speeds = bench.group_speeds({"ff": 2.0, "norms": 0.5, "idle": 0.0}, {"ff": 600.0, "norms": 0.1}, 400.0)
    assert speeds == {"ff": {"gflops": 300.0, "of_probe": 0.75}}
    assert [bench.probe_dtype(m) for m in ("reference", "exact", "bf16", "int8")] == ["fp32", "fp32", "bf16", None]


def test_counted_forward_sees_both_encoders():
    """The FLOP counter is per thread: the benchmark's counted forward runs the encoders in turn, so what it
    counts through run_model is the whole model's arithmetic (the partner's encoder included)."""
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from dualtalk.inference.pipeline import InferenceOptions, run_model
    from dualtalk.model.dualtalk import DualTalk
    from dualtalk.model.presets import get_preset

    bench = load_script()
    model = DualTalk(get_preset("tiny")).eval().requires_grad_(False)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(16000).astype(np.float32), rng.standard_normal(16000).astype(np.float32)
    m = np.zeros((25, 56), np.float32)
    direct = FlopCounterMode(display=False)
    with direct, torch.inference_mode():
        model(torch.from_numpy(a)[None], torch.from_numpy(b)[None], torch.from_numpy(m)[None])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        counted = FlopCounterMode(display=False)
        with counted:
            run_model(model, a, b, m, bench.in_one_thread(InferenceOptions(window=0, progress=False)))
    finally:
        torch.set_num_threads(threads)
    assert counted.get_total_flops() == direct.get_total_flops() > 0


def test_inputs_are_the_seconds_asked_for_with_the_frames_they_imply():
    gen = load_script()
    a, b, m = gen.inputs(30)  # whole frames: 480,000 samples, 750 frames
    assert a.shape == b.shape == (480_000,) and m.shape == (750, 56)
    a, b, m = gen.inputs(29.98)  # ends inside frame 750: T = ceil(S / 640)
    assert a.shape == (479_680,) and m.shape == (750, 56)


def test_op_kinds_by_either_name():
    """The profiler (aten::addmm) and the FLOP counter (aten.addmm, aten.addmm.default) name an operation
    differently; both land in the same kind, anything unlisted is vector work, non-operators in none."""
    gen = load_script()
    assert gen.op_kind("aten::addmm") == gen.op_kind("aten.addmm.default") == "matrix products"
    assert gen.op_kind("aten::mkldnn_convolution") == gen.op_kind("aten.convolution") == "matrix products"
    assert gen.op_kind("aten::_scaled_dot_product_flash_attention_for_cpu") == "attention kernel"
    assert gen.op_kind("aten::copy_") == "copies"
    assert gen.op_kind("aten::native_layer_norm") == gen.op_kind("aten::gelu") == "vector work"
    assert gen.op_kind("ProfilerStep#1") is None


def test_op_seconds_and_flops_per_kind_of_a_small_forward():
    """One profiled call: products, attention kernel and vector work each get time; the counter's FLOPs of
    the same call fall into the products and the attention kernel only."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    gen = load_script()
    torch.manual_seed(0)
    x, w = torch.randn(64, 128), torch.randn(128, 128)
    q = torch.randn(1, 4, 64, 32)

    def fn():
        y = torch.nn.functional.gelu(x @ w)
        return torch.nn.functional.scaled_dot_product_attention(q, q, q), torch.nn.functional.layer_norm(y, (128,))

    with torch.inference_mode():
        seconds, wall = gen.op_seconds(fn)
        counter = FlopCounterMode(display=False, custom_mapping=gen.cpu_fused_flops())
        with counter:
            fn()
    assert {"matrix products", "attention kernel", "vector work"} <= set(seconds)
    assert all(v >= 0 for v in seconds.values()) and wall >= sum(seconds.values()) * 0.5
    flops = gen.flops_per_op_kind(counter.get_flop_counts()["Global"])
    assert flops == {"matrix products": 2 * 64 * 128 * 128, "attention kernel": 4 * 64 * 64 * 32 * 4}


def test_op_bound_adds_only_what_is_not_arithmetic():
    """The bound is the floor plus the vector work plus the attention kernel's time beyond its products at the
    probe's speed; slow products and copies do not raise it."""
    gen = load_script()
    seconds = {"matrix products": 3.0, "attention kernel": 0.5, "vector work": 0.2, "copies": 0.4}
    gflop = {"matrix products": 800.0, "attention kernel": 100.0}
    out = gen.op_bound(seconds, gflop, probe_gflops=400.0)
    assert out["floor_s"] == pytest.approx(2.25)
    assert out["bound_s"] == pytest.approx(2.25 + 0.2 + (0.5 - 0.25))
    assert out["bound_x_floor"] == pytest.approx(out["bound_s"] / out["floor_s"])
    assert out["kinds"]["matrix products"] == {"s": 3.0, "gflop": 800.0, "gflops": 800 / 3, "of_probe": 800 / 3 / 400}
    assert "gflops" not in out["kinds"]["copies"]
    fast_attention = gen.op_bound({**seconds, "attention kernel": 0.1}, gflop, probe_gflops=400.0)
    assert fast_attention["bound_s"] == pytest.approx(2.25 + 0.2)  # never below the floor's share
