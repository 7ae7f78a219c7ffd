"""generate / predict end to end (CLI and API), on real conversations, plus windowing of long inputs."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.conftest import shared_path

from dualtalk.cli import main
from dualtalk.errors import DualTalkError
from dualtalk.inference.pipeline import InferenceOptions, blend_weights, plan_windows, run_model
from dualtalk.io import load_audio, load_motion
from dualtalk.model.checkpoint import save_model
from dualtalk.model.dualtalk import DualTalk
from dualtalk.model.presets import get_preset

CONV = "xkHwlcDSOjc_sub_video_109_000"  # speaker1 has motion, so speaker2 can be generated


def generate_args(demo, model_dir, quiet: bool = True) -> list[str]:
    """``dualtalk generate`` of CONV's speaker 2 from the demo conversation (add ``--out`` and options)."""
    return [
        "generate",
        "--model",
        str(model_dir),
        "--self-audio",
        str(demo / f"{CONV}_speaker2.wav"),
        "--partner-audio",
        str(demo / f"{CONV}_speaker1.wav"),
        "--partner-motion",
        str(demo / f"{CONV}_speaker1.npz"),
    ] + (["--quiet"] if quiet else [])


@pytest.fixture(scope="module")
def demo():
    return shared_path("data", "dualtalk_demo")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny")
    save_model(DualTalk(get_preset("tiny")).eval(), path)
    return path


def test_generate_cli_on_real_conversation(demo, tiny_dir, tmp_path):
    out = tmp_path / "sub" / "B.npz"
    exe = Path(sys.executable).with_name("dualtalk")
    proc = subprocess.run(
        # --exact: the API's default (float32); the command's is --dtype auto
        [str(exe), *generate_args(demo, tiny_dir, quiet=False), "--out", str(out), "--exact"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout
    samples = len(load_audio(demo / f"{CONV}_speaker2.wav"))
    t = -(-samples // 640)
    with np.load(out) as data:
        assert set(data.files) == {"exp", "pose"}
        assert data["exp"].shape == (t, 50) and data["pose"].shape == (t, 6)
        assert data["exp"].dtype == np.float32 and np.isfinite(data["exp"]).all()
    # the same through the API
    from dualtalk.inference.pipeline import generate

    motion = generate(
        tiny_dir,
        demo / f"{CONV}_speaker2.wav",
        demo / f"{CONV}_speaker1.wav",
        demo / f"{CONV}_speaker1.npz",
        options=InferenceOptions(progress=False),
    )
    with np.load(out) as data:
        np.testing.assert_allclose(motion.flame_pose, data["pose"], atol=1e-6)


def test_predict_cli_writes_every_generatable_side(demo, tiny_dir, tmp_path):
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(tiny_dir), "--data", str(demo), "--out", str(out), "--quiet"]) == 0
    names = sorted(p.name for p in out.iterdir())
    # each demo conversation has motion for one side only: the other side is generated
    assert names == ["UbjUDM1MiGE_sub_video_72_speaker1.npy", f"{CONV}_speaker2.npy"]
    y = np.load(out / f"{CONV}_speaker2.npy")
    assert y.shape == (-(-len(load_audio(demo / f"{CONV}_speaker2.wav")) // 640), 56)
    # predictions equal generate's output in model order [exp, jaw, global]
    gen = tmp_path / "B.npz"
    main(generate_args(demo, tiny_dir) + ["--out", str(gen)])
    m = load_motion(gen)
    np.testing.assert_allclose(y, m.to_model(), atol=1e-6)


def test_predict_errors_on_bad_split(tmp_path, tiny_dir, capsys):
    d = tmp_path / "split"
    d.mkdir()
    assert main(["predict", "--model", str(tiny_dir), "--data", str(d), "--out", str(tmp_path / "p")]) == 2
    assert "no conversations found" in capsys.readouterr().err
    import soundfile as sf

    sf.write(str(d / "c_speaker1.wav"), np.zeros(6400, np.float32), 16000)
    np.savez(d / "c_speaker1.npz", exp=np.zeros((10, 50)), pose=np.zeros((10, 6)))
    assert main(["predict", "--model", str(tiny_dir), "--data", str(d), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "c_speaker2.wav" in err and "audio file not found" in err
    assert not (tmp_path / "p").exists()


def test_bfloat16_and_device_options(demo, tiny_dir, tmp_path, capsys):
    args = generate_args(demo, tiny_dir)
    assert main(args + ["--out", str(tmp_path / "bf16.npz"), "--dtype", "bfloat16"]) == 0
    assert main(args + ["--out", str(tmp_path / "fp32.npz"), "--exact"]) == 0
    with np.load(tmp_path / "bf16.npz") as a, np.load(tmp_path / "fp32.npz") as b:
        assert a["exp"].dtype == np.float32
        err = np.abs(a["exp"] - b["exp"]).max()
        assert 0 < err < 0.5  # lower precision, same model
    if not torch.cuda.is_available():
        assert main(args + ["--out", str(tmp_path / "c.npz"), "--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err
        assert not (tmp_path / "c.npz").exists()


# ---------------------------------------------------------------------------------------------------
# windowing


def test_windows_cover_and_blend_to_one():
    for t, w, o in [(100, 40, 10), (1000, 300, 25), (50, 60, 10), (301, 300, 25)]:
        windows = plan_windows(t, w, o)
        weights = blend_weights(windows)
        total = np.zeros(t)
        for (s, e), wt in zip(windows, weights):
            assert e - s == min(w, t) and len(wt) == e - s
            total[s:e] += wt
        np.testing.assert_allclose(total, 1.0)
        assert windows[0][0] == 0 and windows[-1][1] == t
    with pytest.raises(DualTalkError, match="overlap"):
        plan_windows(100, 10, 10)


class FrameLocalModel(torch.nn.Module):
    """A stand-in whose output at frame t depends only on the inputs at frame t: windowing must then be
    exactly invisible (no seam, no offset)."""

    def __init__(self):
        super().__init__()
        self.config = get_preset("tiny")

    def forward(self, a, b, m):
        t = m.shape[1]
        energy = a.reshape(1, t, 640).square().mean(-1, keepdim=True)  # (1, T, 1)
        return m * 0.5 + energy + b.reshape(1, t, 640).mean(-1, keepdim=True)


def test_windowed_inference_has_no_seam():
    rng = np.random.default_rng(0)
    t = 25 * 40  # 40 s
    a = rng.normal(size=t * 640).astype(np.float32)
    b = rng.normal(size=t * 640).astype(np.float32)
    m = rng.normal(size=(t, 56)).astype(np.float32)
    model = FrameLocalModel()
    exact = run_model(model, a, b, m, InferenceOptions(window=0, progress=False))
    windowed = run_model(model, a, b, m, InferenceOptions(window=10, overlap=2, progress=False))
    np.testing.assert_allclose(windowed, exact, atol=1e-5)


def test_ten_minute_conversation_runs_windowed():
    torch.manual_seed(0)
    model = DualTalk(get_preset("tiny")).eval()
    rng = np.random.default_rng(0)
    t = 25 * 600
    a = (0.1 * rng.normal(size=t * 640)).astype(np.float32)
    m = rng.normal(size=(t, 56)).astype(np.float32)
    y = run_model(model, a, a[::-1].copy(), m, InferenceOptions(progress=False))
    assert y.shape == (t, 56) and np.isfinite(y).all()
    # windows are 120 s with 10 s overlaps: the output at a window boundary is continuous
    jumps = np.abs(np.diff(y, axis=0)).max(axis=1)
    assert jumps[2990:3010].max() < 5 * np.median(jumps) + 1e-3


def test_int8_mode_runs_and_stays_close(demo, tiny_dir, tmp_path, capsys):
    args = generate_args(demo, tiny_dir)
    assert main(args + ["--out", str(tmp_path / "q.npz"), "--int8"]) == 0
    assert main(args + ["--out", str(tmp_path / "f.npz")]) == 0
    with np.load(tmp_path / "q.npz") as q, np.load(tmp_path / "f.npz") as f:
        err = np.abs(q["exp"] - f["exp"]).max()
        assert 0 < err < 0.5 * np.abs(f["exp"]).max()


# ---------------------------------------------------------------------------------------------------
# --dtype auto


def test_native_bf16_detection_reads_cpu_flags_and_cuda(tmp_path, monkeypatch):
    from dualtalk.inference import pipeline

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n")
    assert "avx512f" in pipeline.cpu_flags(info) and pipeline.cpu_flags(tmp_path / "missing") == set()
    for flags, native in [(set(), False), ({"avx512f", "avx2"}, False), ({"avx512_bf16"}, True), ({"amx_bf16"}, True)]:
        monkeypatch.setattr(pipeline, "cpu_flags", lambda path=None, f=flags: f)
        assert pipeline.has_native_bf16("cpu") is native
        assert pipeline.resolve_dtype("auto", "cpu") == (torch.bfloat16 if native else torch.float32)
        assert pipeline.resolve_dtype("float32", "cpu") == torch.float32  # explicit choices stay
        assert pipeline.resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for native in (False, True):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True, n=native: n)
        assert pipeline.has_native_bf16("cuda") is native
    assert pipeline.has_native_bf16("mps") is False
    with pytest.raises(DualTalkError, match="unsupported dtype"):
        pipeline.resolve_dtype("float16")


def test_auto_dtype_rules_and_exact_flag(demo, tiny_dir, tmp_path, monkeypatch, capsys):
    from dualtalk.inference import pipeline

    monkeypatch.setattr(pipeline, "cpu_flags", lambda path=None: {"avx512_bf16"})
    offline = DualTalk(get_preset("tiny"))
    assert pipeline.model_dtype(offline, InferenceOptions(dtype="auto")) == torch.bfloat16
    assert pipeline.model_dtype(offline, InferenceOptions(dtype="auto", int8=True)) == torch.float32
    assert pipeline.model_dtype(offline, InferenceOptions()) == torch.float32  # the library's default: exact
    from dualtalk.model.checkpoint import load_model

    causal = load_model("demo-stream")
    assert pipeline.model_dtype(causal, InferenceOptions(dtype="auto")) == torch.float32
    assert pipeline.model_dtype(causal, InferenceOptions(dtype="bfloat16")) == torch.bfloat16
    args = generate_args(demo, tiny_dir)
    assert main(args + ["--out", str(tmp_path / "auto.npz")]) == 0  # the default: auto
    assert main(args + ["--out", str(tmp_path / "bf16.npz"), "--dtype", "bfloat16"]) == 0
    assert main(args + ["--out", str(tmp_path / "exact.npz"), "--exact"]) == 0
    with np.load(tmp_path / "auto.npz") as a, np.load(tmp_path / "bf16.npz") as b, np.load(tmp_path / "exact.npz") as c:
        np.testing.assert_array_equal(a["exp"], b["exp"])
        assert np.abs(a["exp"] - c["exp"]).max() > 0
    monkeypatch.setattr(pipeline, "cpu_flags", lambda path=None: set())  # no native bf16: auto is exact
    assert main(args + ["--out", str(tmp_path / "auto32.npz")]) == 0
    with np.load(tmp_path / "auto32.npz") as a, np.load(tmp_path / "exact.npz") as c:
        np.testing.assert_array_equal(a["exp"], c["exp"])
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "bf16e.npz"), "--dtype", "bfloat16"]) == 0  # asked for: emulated
    err = capsys.readouterr().err
    assert "warning: cpu has no native bfloat16" in err and "emulated" in err and "Traceback" not in err
    with np.load(tmp_path / "bf16e.npz") as e, np.load(tmp_path / "bf16.npz") as b:
        np.testing.assert_array_equal(e["exp"], b["exp"])  # the same arithmetic, only slower
    assert main(args + ["--out", str(tmp_path / "x.npz"), "--exact", "--dtype", "bfloat16"]) == 2
    assert "--exact is float32" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------
# predict over many processes and machines


def _split(demo, tmp_path, n=4):
    """A split of ``n`` conversations (copies of the demo's two, under new names)."""
    import shutil

    d = tmp_path / "split"
    d.mkdir()
    sources = sorted({p.name.rsplit("_speaker", 1)[0] for p in demo.iterdir() if "_speaker" in p.name})
    for i in range(n):
        src = sources[i % len(sources)]
        for f in demo.glob(f"{src}_speaker*"):
            shutil.copy(f, d / f.name.replace(src, f"c{i}"))
    return d


def test_predict_shards_by_torchrun_env_and_workers(demo, tiny_dir, tmp_path, monkeypatch):
    from dualtalk.inference.pipeline import predict, shard_from_env

    split = _split(demo, tmp_path)
    opts = InferenceOptions(progress=False)
    whole = predict(tiny_dir, split, tmp_path / "one", options=opts)
    assert [p.name for p in whole] == [f"c{i}_speaker{k}.npy" for i, k in ((0, 1), (1, 2), (2, 1), (3, 2))]
    # under torchrun: each rank takes every WORLD_SIZE-th conversation, into one shared directory
    names = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        assert shard_from_env() == (rank, 2)
        names.append([p.name for p in predict(tiny_dir, split, tmp_path / "ranks", options=opts)])
    assert names == [["c0_speaker1.npy", "c2_speaker1.npy"], ["c1_speaker2.npy", "c3_speaker2.npy"]]
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(DualTalkError, match="RANK=2"):
        shard_from_env()
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    # a process per core: the same files, the same values
    assert (
        main(
            ["predict", "--model", str(tiny_dir), "--data", str(split), "--out", str(tmp_path / "w")]
            + ["--workers", "2", "--quiet", "--exact"]
        )
        == 0
    )
    for p in whole:
        np.testing.assert_allclose(np.load(tmp_path / "w" / p.name), np.load(p), atol=1e-6)
        np.testing.assert_allclose(np.load(tmp_path / "ranks" / p.name), np.load(p), atol=1e-6)
    with pytest.raises(DualTalkError, match="path or a name"):
        predict(DualTalk(get_preset("tiny")), split, tmp_path / "x", options=opts, workers=2)


def test_bf16_encoder_weights_change_nothing_under_autocast():
    """A model loaded for a bfloat16 run keeps its encoders' matrix weights in bfloat16: same output as
    autocast's casts at every call, half the memory; a model passed in by the caller is left as it is."""
    from dualtalk.inference.pipeline import _as_model, bf16_encoder_weights

    fixtures = shared_path("fixtures", "official_parity")
    src, cfg = fixtures / "official_layout_checkpoint.pth", fixtures / "config.json"
    a = load_audio(fixtures / "self_audio.wav")
    b = load_audio(fixtures / "partner_audio.wav")
    m = load_motion(fixtures / "partner_motion.npz").to_model()
    opts = InferenceOptions(dtype="bfloat16", progress=False)
    loaded = _as_model(str(src), cfg, options=opts)
    enc = loaded.joint_encoder.audio_encoder1.model
    assert enc.encoder.layers[0].feed_forward.intermediate_dense.weight.dtype == torch.bfloat16
    assert enc.feature_extractor.conv_layers[0].conv.weight.dtype == torch.bfloat16
    assert loaded.joint_encoder.audio_projection.weight.dtype == torch.float32  # outside the encoders: as loaded
    from dualtalk.model.checkpoint import load_model

    plain = load_model(src, config=cfg)
    assert _as_model(plain, options=opts) is plain
    assert plain.joint_encoder.audio_encoder1.model.encoder.layers[0].attention.q_proj.weight.dtype == torch.float32
    np.testing.assert_array_equal(run_model(loaded, a, b, m, opts), run_model(plain, a, b, m, opts))
    assert bf16_encoder_weights(plain) is plain


class _Recorder(torch.nn.Module):
    """An audio encoder wrapped to record the thread state it ran in (or to fail)."""

    def __init__(self, inner: torch.nn.Module, fail: bool = False):
        super().__init__()
        self.inner, self.fail = inner, fail
        self.seen: dict = {}

    def forward(self, wave, num_frames):
        import threading

        if self.fail:
            raise DualTalkError("encoder failed")
        self.seen = {
            "thread": threading.current_thread().name,
            "threads": torch.get_num_threads(),
            "autocast": torch.is_autocast_enabled("cpu"),
            "inference": torch.is_inference_mode_enabled(),
        }
        return self.inner(wave, num_frames)


def test_encoders_run_side_by_side_as_they_would_one_after_the_other():
    """With two or more threads the two audio encoders run at the same time, each on half of the threads, the
    partner's in a second thread that keeps the caller's autocast and inference mode; the output is the one of
    the encoders one after the other (up to the rounding of another thread count); the caller's thread count
    comes back, also when an encoder fails; with one thread, or called from another thread than the main one,
    nothing changes."""
    torch.manual_seed(0)
    model = DualTalk(get_preset("tiny")).eval()
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(32000).astype(np.float32), rng.standard_normal(32000).astype(np.float32)
    m = (0.1 * rng.standard_normal((50, 56))).astype(np.float32)
    opts = InferenceOptions(window=0, progress=False)
    enc = model.joint_encoder
    mine, other = _Recorder(enc.audio_encoder1), _Recorder(enc.audio_encoder2)
    enc.audio_encoder1, enc.audio_encoder2 = mine, other
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        one_after_the_other = run_model(model, a, b, m, dataclasses.replace(opts, concurrent_encoders=False))
        assert other.seen["thread"] == mine.seen["thread"] and other.seen["threads"] == 2
        side_by_side = run_model(model, a, b, m, opts)
        np.testing.assert_allclose(side_by_side, one_after_the_other, atol=1e-5)
        assert other.seen["thread"].startswith("dualtalk-encoder") and other.seen["thread"] != mine.seen["thread"]
        assert other.seen["threads"] == mine.seen["threads"] == 1 and other.seen["inference"]
        assert torch.get_num_threads() == 2
        run_model(model, a, b, m, InferenceOptions(window=0, progress=False, dtype="bfloat16"))
        assert other.seen["autocast"] and mine.seen["autocast"]
        enc.audio_encoder2 = _Recorder(other.inner, fail=True)
        with pytest.raises(DualTalkError, match="encoder failed"):
            run_model(model, a, b, m, opts)
        assert torch.get_num_threads() == 2
        enc.audio_encoder2 = other
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:  # a program's own thread (a server's request): in turn
            pool.submit(run_model, model, a, b, m, opts).result()
        assert other.seen["thread"] == mine.seen["thread"] != "MainThread"
        torch.set_num_threads(1)
        run_model(model, a, b, m, opts)
        assert other.seen["thread"] == mine.seen["thread"] == "MainThread"
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------------
# wav2vec2 CNN features shared between the two directions of a conversation


def _same_cnns(model: DualTalk) -> DualTalk:
    """Both encoders' CNNs the same weights, as in the released model (benchmarks/predict.py's ``same_cnns``)."""
    from tests.conftest import load_benchmark

    load_benchmark("predict").same_cnns(model)
    enc = model.joint_encoder
    first, second = (e.model.feature_extractor.state_dict() for e in (enc.audio_encoder1, enc.audio_encoder2))
    assert all(torch.equal(first[k], second[k]) for k in first)
    return model


def test_cnn_features_are_looked_up_for_the_same_weights_and_clip():
    """Generating both people of a conversation: each voice's CNN features are computed once when the two
    encoders' CNNs are the same weights, and the motion is what it is without the cache (side by side and in
    turn); encoders with different CNNs, another dtype or another clip never share; the cache keeps to its size."""
    from dualtalk.inference.pipeline import CnnFeatureCache

    torch.manual_seed(0)
    model = _same_cnns(DualTalk(get_preset("tiny")).eval())
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(32000).astype(np.float32), rng.standard_normal(32000).astype(np.float32)
    ma, mb = (0.1 * rng.standard_normal((2, 50, 56))).astype(np.float32)
    opts = InferenceOptions(window=0, progress=False)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for concurrent in (True, False):
            o = dataclasses.replace(opts, concurrent_encoders=concurrent)
            plain = run_model(model, a, b, mb, o), run_model(model, b, a, ma, o)
            cache = CnnFeatureCache()
            cached = run_model(model, a, b, mb, o, cache), run_model(model, b, a, ma, o, cache)
            assert (cache.misses, cache.hits) == (2, 2), concurrent
            for x, y in zip(cached, plain):
                np.testing.assert_allclose(x, y, atol=1e-5)
            run_model(model, a, b, mb, dataclasses.replace(o, dtype="bfloat16"), cache)  # another dtype
            assert (cache.misses, cache.hits) == (4, 2)
            run_model(model, a[:16000], b[:16000], mb[:25], o, cache)  # another clip
            assert (cache.misses, cache.hits) == (6, 2)
        small = CnnFeatureCache(max_bytes=1)  # nothing fits: computed every time, nothing kept
        run_model(model, a, b, mb, opts, small), run_model(model, b, a, ma, opts, small)
        assert (small.misses, small.hits, len(small._entries)) == (4, 0, 0)
        enc2 = model.joint_encoder.audio_encoder2.model.feature_extractor
        with torch.no_grad():
            next(enc2.parameters()).add_(1e-3)  # the CNNs now differ
        cache = CnnFeatureCache()
        run_model(model, a, b, mb, opts, cache), run_model(model, b, a, ma, opts, cache)
        assert (cache.misses, cache.hits) == (4, 0)
    finally:
        torch.set_num_threads(threads)


def test_predict_computes_each_voices_cnn_features_once(tmp_path, monkeypatch):
    """predict generates both people of a conversation with one cache of CNN features: with the released
    model's shared CNN each voice's features are computed once, and the files are run_model's."""
    import soundfile as sf

    from dualtalk.inference import pipeline
    from dualtalk.io.motion import Motion, save_motion

    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    save_model(_same_cnns(DualTalk(get_preset("tiny")).eval()), model_dir)
    split = tmp_path / "split"
    split.mkdir()
    rng = np.random.default_rng(0)
    for k in (1, 2):
        sf.write(split / f"c0_speaker{k}.wav", (0.1 * rng.standard_normal(32000)).astype(np.float32), 16000)
        save_motion(split / f"c0_speaker{k}.npz", Motion.from_model(0.3 * rng.standard_normal((50, 56))))
    made = []
    original = pipeline.CnnFeatureCache

    def recording():
        made.append(original())
        return made[-1]

    monkeypatch.setattr(pipeline, "CnnFeatureCache", recording)
    opts = InferenceOptions(progress=False, dtype="float32")
    paths = pipeline.predict(model_dir, split, tmp_path / "out", options=opts)
    assert [p.name for p in paths] == ["c0_speaker1.npy", "c0_speaker2.npy"]
    assert len(made) == 1 and (made[0].misses, made[0].hits) == (2, 2)
    a, b = load_audio(split / "c0_speaker1.wav"), load_audio(split / "c0_speaker2.wav")
    net = pipeline.load_model(model_dir)
    for path, (mine, theirs, k) in zip(paths, ((a, b, 2), (b, a, 1))):
        motion = load_motion(split / f"c0_speaker{k}.npz").to_model()
        np.testing.assert_allclose(np.load(path), run_model(net, mine, theirs, motion, opts), atol=1e-5)


@pytest.mark.parametrize("workers", [1, 2])
def test_predict_checks_the_whole_split_before_writing(demo, tiny_dir, tmp_path, capsys, workers):
    """A bad file in the last conversation of a split is an error before any prediction is written (with a
    process per core too: the parent checks the inputs of all of them)."""
    split = _split(demo, tmp_path)
    bad = sorted(split.glob("c3_speaker*.npz"))[0]
    np.savez(bad, exp=np.zeros((7, 50), np.float32), pose=np.zeros((7, 6), np.float32))  # far too short
    out = tmp_path / "pred"
    args = ["predict", "--model", str(tiny_dir), "--data", str(split), "--out", str(out), "--quiet"]
    assert main(args + ["--workers", str(workers)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "7 frames" in err[0]
    assert not out.exists() or not list(out.iterdir())


def test_joint_generate_writes_both_people_or_neither(demo, tmp_path, monkeypatch):
    """--out and --partner-out are one write: when the second cannot be written, the first is not left."""
    from dualtalk.inference import pipeline

    calls = []
    real = pipeline.save_motion

    def failing_second(path, motion):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(path))
        real(path, motion)

    monkeypatch.setattr(pipeline, "save_motion", failing_second)
    a, b = demo / f"{CONV}_speaker1.wav", demo / f"{CONV}_speaker2.wav"
    out, partner_out = tmp_path / "B.npz", tmp_path / "A.npz"
    with pytest.raises(OSError):
        pipeline.generate(
            "tiny-stream", a, b, None, out, partner_out=partner_out, options=InferenceOptions(progress=False)
        )
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []


def test_outputs_never_replace_inputs_and_follow_their_suffix(tiny_dir, tmp_path):
    """An output naming an input (or the other output) is refused before any work; ``.npy`` is the
    model-order array, ``.npz`` the dataset layout, anything else an error."""
    import soundfile as sf

    from dualtalk.errors import InputError
    from dualtalk.inference.pipeline import generate
    from dualtalk.io.motion import Motion, save_motion

    rng = np.random.default_rng(0)
    a, b, m = tmp_path / "A.wav", tmp_path / "B.wav", tmp_path / "A.npz"
    sf.write(a, 0.1 * rng.standard_normal(16000).astype(np.float32), 16000)
    sf.write(b, 0.1 * rng.standard_normal(16000).astype(np.float32), 16000)
    save_motion(m, Motion.from_model(0.1 * rng.standard_normal((25, 56)).astype(np.float32)))
    before = m.read_bytes()
    with pytest.raises(InputError, match="is both out and partner_motion"):
        generate(str(tiny_dir), b, a, m, out=m)
    assert m.read_bytes() == before
    with pytest.raises(InputError, match=r"a motion file is .npz \(the dataset layout\) or .npy"):
        generate(str(tiny_dir), b, a, m, out=tmp_path / "B.txt")
    motion = generate(str(tiny_dir), b, a, m, out=tmp_path / "B.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "B.npy"), motion.to_model())
    with pytest.raises(InputError, match="not written: the motion contains NaN"):
        save_motion(tmp_path / "nan.npz", Motion.from_model(np.full((3, 56), np.nan, np.float32)))
    assert not (tmp_path / "nan.npz").exists()
