"""The causal model and its streaming session: chunked == offline, causality, constant memory, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dualtalk.errors import DualTalkError
from dualtalk.inference.streaming import JointSession, StreamingSession, push_many
from dualtalk.model.causal import state_nbytes
from dualtalk.model.dualtalk import build_model
from dualtalk.model.presets import get_preset

SR = 16000


def model(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    cfg = get_preset("tiny-stream", [f"{k}={v}" for k, v in overrides.items()])
    m = build_model(cfg).eval()
    m.set_motion_statistics(np.full(56, 0.1), np.full(56, 0.5))  # not the identity: the path is exercised
    return m


def signals(seconds: float, seed: int):
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    a = (0.1 * rng.standard_normal(n) * (1 + np.sin(np.arange(n) / 900.0))).astype(np.float32)
    b = (0.1 * rng.standard_normal(n) * (1 + np.cos(np.arange(n) / 700.0))).astype(np.float32)
    t = -(-n // 640)
    motion = (0.3 * rng.standard_normal((t, 56))).astype(np.float32)
    return a, b, motion


def offline(m, a, b, motion):
    with torch.inference_mode():
        mo = None if motion is None else torch.from_numpy(motion)[None]
        return m(torch.from_numpy(a)[None], torch.from_numpy(b)[None], mo)[0].numpy()


def random_cuts(n: int, rng, largest: int) -> list[int]:
    cuts, i = [], 0
    while i < n:
        step = int(rng.choice([1, rng.integers(1, 700), rng.integers(1, largest + 1)]))
        cuts.append(min(n, i + step))
        i = cuts[-1]
    return cuts


def stream(m, a, b, motion, rng, *, with_motion: bool):
    """Both voices (and the motion) chunked independently, from 1 sample to 2 s."""
    session = StreamingSession(m, partner_motion=with_motion)
    ca, cb = random_cuts(len(a), rng, 2 * SR), random_cuts(len(b), rng, 2 * SR)
    cm = random_cuts(len(motion), rng, 50) if with_motion else []
    ia = ib = im = 0
    outs = []
    while ia < len(ca) or ib < len(cb) or im < len(cm):
        sa = a[(ca[ia - 1] if ia else 0) : ca[ia]] if ia < len(ca) else None
        sb = b[(cb[ib - 1] if ib else 0) : cb[ib]] if ib < len(cb) else None
        sm = motion[(cm[im - 1] if im else 0) : cm[im]] if im < len(cm) else None
        outs.append(session.push(sa, sb, sm))
        ia, ib, im = ia + (sa is not None), ib + (sb is not None), im + (sm is not None)
    outs.append(session.flush())
    return np.concatenate(outs), session


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_streamed_equals_offline_for_random_chunkings(seed):
    rng = np.random.default_rng(100 + seed)
    m = model(seed)
    a, b, motion = signals(3.0 + seed * 0.37, seed)  # crosses the attention window (12 frames) many times
    want = offline(m, a, b, motion)
    got, session = stream(m, a, b, motion, rng, with_motion=True)
    assert got.shape == want.shape == (-(-len(a) // 640), 56)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    # the partner's face unseen: the same for audio alone
    want = offline(m, a, b, None)
    got, _ = stream(m, a, b, None, rng, with_motion=False)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_sessions_pushed_together_equal_each_pushed_alone():
    """push_many (the service's batching of concurrent sessions): sessions started at different times, with
    and without the partner's face, in 40 ms chunks and one in odd chunks, give the frames each gives alone
    (and the offline model's); steps of sessions in the same state are one batched forward."""
    m = model(3)
    sigs = [signals(2.2, 10 + k) for k in range(5)]
    with_motion = [True, False, True, False, True]
    starts = [0, 0, 3, 20, 1]  # chunk index at which each session begins
    sizes = [640, 640, 640, 640, 900]  # the last one's steps differ in size: never batched with the others
    calls: list[int] = []
    real = m.forward_frames

    def counting(*args, **kw):
        calls.append(args[0].shape[0])  # the batch size
        return real(*args, **kw)

    alone = [StreamingSession(m, partner_motion=w) for w in with_motion]
    together = [StreamingSession(m, partner_motion=w) for w in with_motion]
    outs_alone: list[list[np.ndarray]] = [[] for _ in sigs]
    outs_together: list[list[np.ndarray]] = [[] for _ in sigs]
    m.forward_frames = counting
    try:
        for tick in range(200):
            batch, inputs, idx = [], [], []
            for k, (a, b, motion) in enumerate(sigs):
                i = tick - starts[k]
                lo, hi = i * sizes[k], (i + 1) * sizes[k]
                if i < 0 or lo >= len(a):
                    continue
                mo = motion[lo // 640 : min(hi // 640, len(motion))] if with_motion[k] else None
                args = (a[lo:hi], b[lo:hi], mo)
                outs_alone[k].append(alone[k].push(*args))
                batch.append(together[k])
                inputs.append(args)
                idx.append(k)
            if not batch:
                break
            for k, got in zip(idx, push_many(batch, inputs)):
                assert isinstance(got, np.ndarray)
                outs_together[k].append(got)
    finally:
        del m.forward_frames
    assert max(calls) >= 3  # sessions in step were computed together
    for k, (a, b, motion) in enumerate(sigs):
        if with_motion[k]:
            rest = motion[alone[k].motion_received :]
            alone[k].push_motion(rest)
            together[k].push_motion(rest)
        got = np.concatenate(outs_together[k] + [together[k].flush()])
        want = np.concatenate(outs_alone[k] + [alone[k].flush()])
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        np.testing.assert_allclose(got, offline(m, a, b, motion if with_motion[k] else None), atol=1e-5, rtol=0)


def test_a_bad_input_in_a_batch_ends_only_its_session():
    m = model()
    (a, b, _), bad = signals(1.0, 1), np.full(640, np.nan, np.float32)
    sessions = [StreamingSession(m, partner_motion=False) for _ in range(3)]
    for i in range(10):
        chunk = (a[i * 640 : (i + 1) * 640], b[i * 640 : (i + 1) * 640], None)
        inputs = [chunk, (bad, chunk[1], None) if i == 5 else chunk, chunk]
        out = push_many(sessions, inputs)
        if i == 5:
            assert isinstance(out[1], DualTalkError) and "NaN" in str(out[1])
        np.testing.assert_allclose(out[0], out[2], atol=1e-6)
        assert isinstance(out[0], np.ndarray)


def test_frames_depend_only_on_the_past_and_the_lookahead():
    m = model()
    a, b, motion = signals(2.0, 5)
    base = offline(m, a, b, motion)
    t = 20
    cut = 640 * (t + 1 + m.config.lookahead_frames)  # frame t reads samples before this one
    a2, b2, motion2 = a.copy(), b.copy(), motion.copy()
    a2[cut:] = 0.5
    b2[cut:] = -0.5
    motion2[t + 1 - m.config.partner_motion_delay :] = 3.0  # frame t reads motion of frame t - delay
    changed = offline(m, a2, b2, motion2)
    np.testing.assert_allclose(changed[: t + 1], base[: t + 1], atol=1e-6)
    assert np.abs(changed[t + 1 :] - base[t + 1 :]).max() > 1e-3


def test_memory_is_constant_over_a_long_stream():
    m = model()
    session = StreamingSession(m, partner_motion=False)
    sizes = []
    chunk = np.zeros(640 * 25, np.float32)  # one second
    rng = np.random.default_rng(0)
    for second in range(40):
        x = (0.1 * rng.standard_normal(len(chunk))).astype(np.float32)
        session.push(x, x[::-1].copy())
        if second in (5, 39):
            sizes.append((state_nbytes(session.state), sum(len(v.buffer) for v in session.voices.values())))
    assert sizes[0] == sizes[1], sizes


def test_joint_mode_feeds_each_head_the_others_motion():
    m = model()
    a, b, _ = signals(2.0, 7)
    joint = JointSession(m)
    outs_a, outs_b = [], []
    for i in range(0, len(a), 3000):
        oa, ob = joint.push(a[i : i + 3000], b[i : i + 3000])
        outs_a.append(oa)
        outs_b.append(ob)
    oa, ob = joint.flush()
    gen_a, gen_b = np.concatenate(outs_a + [oa]), np.concatenate(outs_b + [ob])
    assert gen_a.shape == gen_b.shape == (-(-len(a) // 640), 56)
    # each head is what the offline model makes of its voices and the other's generated motion
    np.testing.assert_allclose(offline(m, b, a, gen_a), gen_b, atol=1e-5)
    np.testing.assert_allclose(offline(m, a, b, gen_b), gen_a, atol=1e-5)


def test_resampled_and_stereo_input_runs():
    m = model()
    a, b, _ = signals(1.0, 3)
    session = StreamingSession(m, partner_motion=False, sample_rate=48000, channels=2)
    a48 = np.repeat(a, 3)
    b48 = np.repeat(b, 3)
    out = session.push(np.stack([a48, a48], 1), np.stack([b48, b48], 1))
    out = np.concatenate([out, session.flush()])
    assert out.shape == (25, 56) and np.isfinite(out).all()


@pytest.mark.parametrize(
    "case,message",
    [
        ("rate", "sample rate must be a whole number of Hz"),
        ("channels", "channel count must be 1 or 2"),
        ("nan", "audio contains NaN"),
        ("huge", "audio has samples up to 1e\\+20"),
        ("motion_huge", "partner motion holds values up to 1e\\+30"),
        ("shape", "expected mono samples"),
        ("motion_width", "partner motion frames must be (k, 56)"),
        ("after_flush", "the stream was flushed"),
        ("ended_early", "the partner's audio ended"),
        ("stalled", "the partner's audio stalled"),
        ("motion_ended", "the partner's motion ended"),
        ("not_causal", "streaming needs a causal model"),
        ("audio_only_not_trained", "trained with the partner's motion always present"),
    ],
)
def test_bad_input_while_streaming(case, message):
    m = model()
    a, b, motion = signals(1.0, 1)
    with pytest.raises(DualTalkError, match=message.replace("(", r"\(").replace(")", r"\)")):
        if case == "rate":
            StreamingSession(m, sample_rate=0)
        elif case == "channels":
            StreamingSession(m, channels=3)
        elif case == "not_causal":
            StreamingSession(build_model(get_preset("tiny-mel")))
        elif case == "audio_only_not_trained":
            StreamingSession(model(partner_motion_dropout=0.0), partner_motion=False)
        else:
            s = StreamingSession(m, partner_motion=case in ("motion_width", "motion_ended", "motion_huge"))
            if case == "nan":
                a[10] = np.nan
                s.push(a, b)
            elif case == "huge":
                a[10] = 1e20
                s.push(a, b)
            elif case == "motion_huge":
                s.push(a, b, np.full((25, 56), 1e30, np.float32))
            elif case == "shape":
                s.push(a[:, None], b)
            elif case == "motion_width":
                s.push(a, b, np.zeros((3, 50), np.float32))
            elif case == "after_flush":
                s.push(a, b)
                s.flush()
                s.push(a, b)
            elif case == "ended_early":
                s.push(a, b[: len(b) // 2])
                s.flush()
            elif case == "stalled":
                long = np.zeros(SR * 11, np.float32)
                s.push(long, None)
            elif case == "motion_ended":
                s.push(a, b, motion[:5])
                s.flush()


# ----------------------------------------------------------------------------------------------------
# files and commands


def write_pair(tmp_path, seconds=1.5, seed=4):
    import soundfile as sf

    from dualtalk.io.motion import Motion, save_motion

    a, b, motion = signals(seconds, seed)
    sf.write(tmp_path / "A.wav", a, SR, subtype="FLOAT")
    sf.write(tmp_path / "B.wav", b, SR, subtype="FLOAT")
    save_motion(tmp_path / "A.npz", Motion.from_model(motion))
    return a, b, motion


def saved_model(tmp_path):
    from dualtalk.model.checkpoint import save_model

    return save_model(model(), tmp_path / "model")


def test_stream_command_equals_generate_and_writes_stats(tmp_path, capsys):
    import json

    from dualtalk.cli import main
    from dualtalk.io.motion import load_motion

    write_pair(tmp_path)
    m = saved_model(tmp_path)
    for motion in ([], ["--partner-motion", str(tmp_path / "A.npz")]):
        assert (
            main(
                [
                    "stream",
                    "--model",
                    str(m),
                    "--self-audio",
                    str(tmp_path / "B.wav"),
                    "--partner-audio",
                    str(tmp_path / "A.wav"),
                    *motion,
                    "--out",
                    str(tmp_path / "s.npz"),
                    "--chunk-ms",
                    "13",
                    "--stats",
                    str(tmp_path / "stats.json"),
                ]
            )
            == 0
        )
        assert (
            main(
                [
                    "generate",
                    "--model",
                    str(m),
                    "--self-audio",
                    str(tmp_path / "B.wav"),
                    "--partner-audio",
                    str(tmp_path / "A.wav"),
                    *motion,
                    "--out",
                    str(tmp_path / "g.npz"),
                    "--quiet",
                ]
            )
            == 0
        )
        s, g = load_motion(tmp_path / "s.npz"), load_motion(tmp_path / "g.npz")
        np.testing.assert_allclose(s.to_model(), g.to_model(), atol=1e-5)
        stats = json.loads((tmp_path / "stats.json").read_text())
        assert stats["algorithmic_latency_ms"] == 120.0 and stats["frames"] == len(s)
        assert stats["compute_ms_per_chunk"]["p95"] > 0 and stats["partner_motion"] == bool(motion)
    assert "latency 120 ms" in capsys.readouterr().out


def test_both_heads_from_two_voices(tmp_path):
    from dualtalk.cli import main
    from dualtalk.io.motion import load_motion

    write_pair(tmp_path)
    m = saved_model(tmp_path)
    for command in ("generate", "stream"):
        assert (
            main(
                [
                    command,
                    "--model",
                    str(m),
                    "--self-audio",
                    str(tmp_path / "B.wav"),
                    "--partner-audio",
                    str(tmp_path / "A.wav"),
                    "--partner-out",
                    str(tmp_path / f"{command}_A.npz"),
                    "--out",
                    str(tmp_path / f"{command}_B.npz"),
                ]
                + (["--quiet"] if command == "generate" else [])
            )
            == 0
        )
    for who in ("A", "B"):
        a = load_motion(tmp_path / f"generate_{who}.npz").to_model()
        b = load_motion(tmp_path / f"stream_{who}.npz").to_model()
        assert a.shape == (38, 56)
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_offline_model_without_partner_motion_is_one_error_line(tmp_path, capsys):
    from dualtalk.cli import main

    write_pair(tmp_path)
    code = main(
        [
            "generate",
            "--model",
            "tiny",
            "--self-audio",
            str(tmp_path / "B.wav"),
            "--partner-audio",
            str(tmp_path / "A.wav"),
            "--out",
            str(tmp_path / "x.npz"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "needs the partner's motion (--partner-motion)" in err[0]
    assert not (tmp_path / "x.npz").exists()
    code = main(
        [
            "stream",
            "--model",
            "tiny",
            "--self-audio",
            str(tmp_path / "B.wav"),
            "--partner-audio",
            str(tmp_path / "A.wav"),
            "--out",
            str(tmp_path / "x.npz"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "streaming needs a causal model" in err[0]


class _FakeInputStream:
    """sounddevice.InputStream stand-in: plays a prepared signal through the callback, block by block."""

    signal = np.zeros(0, np.float32)

    def __init__(self, device=None, channels=1, samplerate=16000, blocksize=640, dtype="float32", callback=None):
        assert channels == 1 and dtype == "float32"
        self.callback, self.block = callback, blocksize

    def start(self):
        x = self.signal
        for i in range(0, len(x), self.block):
            self.callback(x[i : i + self.block, None], len(x[i : i + self.block]), None, None)

    def stop(self):
        pass

    def close(self):
        pass


def test_live_microphone_input_is_streamed(tmp_path, monkeypatch):
    import sys
    import types

    from dualtalk.cli import main
    from dualtalk.io.motion import load_motion

    a, b, _ = write_pair(tmp_path, seconds=1.0)
    m = saved_model(tmp_path)
    _FakeInputStream.signal = b
    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(InputStream=_FakeInputStream))
    assert (
        main(
            [
                "stream",
                "--model",
                str(m),
                "--self-audio",
                "mic",
                "--partner-audio",
                str(tmp_path / "A.wav"),
                "--out",
                str(tmp_path / "live.npz"),
                "--seconds",
                "0.8",
            ]
        )
        == 0
    )
    live = load_motion(tmp_path / "live.npz").to_model()
    n = int(0.8 * SR)  # what the microphone gave before --seconds stopped it
    want = offline(model(), b[:n], a[:n], None)
    np.testing.assert_allclose(live, want, atol=1e-5)


def test_live_input_without_sounddevice_is_one_error_line(tmp_path, monkeypatch, capsys):
    import sys

    from dualtalk.cli import main

    write_pair(tmp_path)
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails
    code = main(
        [
            "stream",
            "--self-audio",
            "mic",
            "--partner-audio",
            str(tmp_path / "A.wav"),
            "--out",
            str(tmp_path / "x.npz"),
            "--model",
            str(saved_model(tmp_path)),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install 'dualtalk[live]'" in err[0]
    assert not (tmp_path / "x.npz").exists()


def test_stream_dtype_options(tmp_path, capsys):
    """--dtype auto keeps a causal model exact (float32); --dtype bfloat16 runs it under autocast, close."""
    from dualtalk.cli import main
    from dualtalk.io.motion import load_motion

    write_pair(tmp_path)
    m = saved_model(tmp_path)
    common = ["stream", "--model", str(m), "--self-audio", str(tmp_path / "B.wav")]
    common += ["--partner-audio", str(tmp_path / "A.wav"), "--partner-motion", str(tmp_path / "A.npz"), "--out"]
    for name, extra in [("auto", []), ("exact", ["--exact"]), ("bf16", ["--dtype", "bfloat16"])]:
        assert main(common + [str(tmp_path / f"{name}.npz"), *extra]) == 0
    auto, exact, bf16 = (load_motion(tmp_path / f"{n}.npz").to_model() for n in ("auto", "exact", "bf16"))
    np.testing.assert_array_equal(auto, exact)
    assert 0 < np.abs(bf16 - exact).max() < 0.5
    capsys.readouterr()
    assert main(common + [str(tmp_path / "x.npz"), "--exact", "--dtype", "bfloat16"]) == 2
    assert "--exact is float32" in capsys.readouterr().err


def test_joint_mode_with_voices_of_different_rates_and_channels():
    """A's voice at 48 kHz stereo, B's at 16 kHz mono: each head reads its own voice at its own rate (B's
    session had A's settings for both, and made 26 frames of wrong motion from 1 s)."""
    m = model()
    a, b, _ = signals(1.0, 7)
    a48 = np.repeat(a, 3)
    mixed = JointSession(m, sample_rate=48000, channels=2, partner_sample_rate=16000, partner_channels=1)
    oa, ob = mixed.push(np.stack([a48, a48], 1), b)
    fa, fb = mixed.flush()
    gen_a, gen_b = np.concatenate([oa, fa]), np.concatenate([ob, fb])
    assert gen_a.shape == gen_b.shape == (25, 56)
    same = JointSession(m)  # the same voices given at 16 kHz: A's resampled from 48 kHz first
    import soxr

    ra, rb = same.push(soxr.resample(a48, 48000, 16000, quality="HQ").astype(np.float32), b)
    sa, sb = same.flush()
    np.testing.assert_allclose(gen_a, np.concatenate([ra, sa]), atol=1e-3)
    np.testing.assert_allclose(gen_b, np.concatenate([rb, sb]), atol=1e-3)


def test_a_push_that_raises_takes_nothing():
    """Good self audio beside a bad partner chunk (or bad motion): the error leaves the session as it was, so
    the corrected push carries on; ragged or non-numeric motion is a DualTalkError."""
    m = model()
    a, b, motion = signals(1.0, 5)
    s = StreamingSession(m, partner_motion=True)
    bad = b.copy()
    bad[3] = np.nan
    with pytest.raises(DualTalkError, match="partner audio: audio contains NaN"):
        s.push(a, bad, motion)
    with pytest.raises(DualTalkError, match="partner motion frames must be numbers"):
        s.push(a, b, [[0.0] * 56, [0.0] * 3])
    with pytest.raises(DualTalkError, match="partner motion frames must be numbers"):
        s.push(a, b, [["x"] * 56])
    out = np.concatenate([s.push(a, b, motion), s.flush()])
    np.testing.assert_allclose(out, offline(m, a, b, motion), atol=1e-5)
