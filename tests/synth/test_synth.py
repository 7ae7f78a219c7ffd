"""The synthetic conversation generator: its documented rules hold on its output; determinism; corpus; CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dualtalk.cli import main
from dualtalk.errors import DualTalkError
from dualtalk.io.audio import load_audio
from dualtalk.io.conversation import discover_conversations
from dualtalk.io.motion import load_motion
from dualtalk.synth import GENERATOR_VERSION, make_conversation, make_corpus, parse_splits
from dualtalk.synth import motion as rules
from dualtalk.synth.corpus import load_manifest, split_counts
from dualtalk.synth.timeline import segment_mask
from dualtalk.synth.voice import rms_envelope


@pytest.fixture(scope="module")
def conv():
    return make_conversation(seconds=90, seed=7)


def _times(c):
    return rules.frame_times(c.num_frames)


def test_shapes_and_magnitudes(conv):
    t = conv.num_frames
    assert t == 90 * 25
    for k in (1, 2):
        assert conv.audio[k].shape == (90 * 16000,) and conv.audio[k].dtype == np.float32
        m = conv.model_motion(k)
        assert m.shape == (t, 56) and np.isfinite(m).all()
        assert np.abs(m[:, :50]).max() < 3.0  # exp within the range of real FLAME tracking
        assert 0.0 < m[:, 50].max() < 0.3  # jaw opening: a few hundredths to ~0.2 rad
        assert np.abs(m[:, 53:56]).max() < 0.4  # head rotation within about +-0.3 rad
        assert 0.0 < np.abs(conv.audio[k]).max() < 1.0
        # the motion is exactly the sum of the documented components
        np.testing.assert_allclose(sum(conv.components[k].values()), m, atol=1e-5)
    kinds = {s.kind for s in conv.segments}
    assert kinds == {"phrase", "backchannel"}
    assert {s.speaker for s in conv.segments} == {1, 2}


def test_turns_have_pauses_and_overlaps(conv):
    times = _times(conv)
    p1 = segment_mask(times, conv.segments, 1, ("phrase",))
    p2 = segment_mask(times, conv.segments, 2, ("phrase",))
    assert ((p1 + p2) == 0).mean() > 0.05  # pauses
    assert ((p1 * p2) > 0).sum() > 0  # occasional overlaps
    assert ((p1 * p2) > 0).mean() < 0.1


def test_deterministic_given_seed():
    a, b, c = make_conversation(8, 3), make_conversation(8, 3), make_conversation(8, 4)
    for k in (1, 2):
        np.testing.assert_array_equal(a.audio[k], b.audio[k])
        np.testing.assert_array_equal(a.model_motion(k), b.model_motion(k))
        assert not np.array_equal(a.model_motion(k), c.model_motion(k))
    assert [s.to_dict() for s in a.segments] == [s.to_dict() for s in b.segments]


def test_voices_are_distinct(conv):
    f0 = {k: conv.voices[k]["f0"] for k in (1, 2)}
    assert min(f0.values()) < 140 < 170 < max(f0.values())
    # the audio's pitch (autocorrelation peak on voiced stretches) is the voice's f0 within ~20 %
    sr = 16000
    for k in (1, 2):
        seg = next(s for s in conv.segments if s.speaker == k and s.kind == "phrase" and s.end - s.start > 1.0)
        x = conv.audio[k][int((seg.start + 0.3) * sr): int((seg.start + 0.3) * sr) + 4096].astype(np.float64)
        ac = np.correlate(x, x, "full")[len(x) - 1:]
        lo, hi = sr // 300, sr // 70
        lag = lo + int(np.argmax(ac[lo:hi]))
        assert abs(sr / lag - f0[k]) / f0[k] < 0.2


def test_silent_person_has_only_hiss(conv):
    for k in (1, 2):
        rms = rms_envelope(conv.audio[k])
        voiced = segment_mask(_times(conv), conv.segments, k) > 0
        assert rms[~voiced].mean() < 0.1 * rms[voiced].mean()


def test_jaw_tracks_own_speech_envelope(conv):
    for k in (1, 2):
        rms = rms_envelope(conv.audio[k])
        jaw = conv.model_motion(k)[:, 50]
        lags = range(-5, 6)
        corr = [np.corrcoef(np.roll(rms, lag)[10:-10], jaw[10:-10])[0, 1] for lag in lags]
        best = list(lags)[int(np.argmax(corr))]
        assert max(corr) > 0.7
        assert abs(best) <= 2  # within ~80 ms
        # the partner's speech does not move the jaw: low correlation with the partner's envelope
        assert np.corrcoef(rms_envelope(conv.audio[3 - k]), jaw)[0, 1] < 0.2


def test_lip_rounding_follows_vowels_in_own_speech(conv):
    # exp1 (rounding) is large only while the person says o / u: a speech-only, own-audio cause
    for k in (1, 2):
        speech = conv.components[k]["speech"]
        voiced = segment_mask(_times(conv), conv.segments, k) > 0
        assert np.all(speech[~voiced] == 0)
        assert speech[voiced, rules.EXP_ROUND].max() > 1.0


def test_nods_follow_partner_phrase_ends(conv):
    times = _times(conv)
    window = np.arange(-5, 30)  # frames around the partner's phrase end
    curves = []
    for k in (1, 2):
        pitch = conv.model_motion(k)[:, rules.PITCH]
        own = segment_mask(times, conv.segments, k, ("phrase",))
        for s in conv.segments:
            if s.speaker == k or s.kind != "phrase":
                continue
            n0 = int(s.end * 25)
            idx = n0 + window
            if idx[0] < 0 or idx[-1] >= conv.num_frames or own[idx].any():
                continue  # only fully listening stretches
            curves.append(pitch[idx] - pitch[n0 - 5:n0].mean())
    assert len(curves) >= 10
    mean = np.mean(curves, axis=0)
    peak_s = (window[int(np.argmax(mean))] + 0.5) / 25
    assert 0.4 <= peak_s <= 0.7  # documented peak: 0.55 s after the phrase end
    assert mean.max() > 0.05  # a clear nod (0.08 rad documented), above the drift


def test_head_turns_toward_speaking_partner(conv):
    times = _times(conv)
    for k in (1, 2):
        yaw = conv.model_motion(k)[:, rules.YAW]
        partner = segment_mask(times, conv.segments, 3 - k, ("phrase",))
        own = segment_mask(times, conv.segments, k, ("phrase",))
        settled = np.convolve(partner * (1 - own), np.ones(15), "full")[: len(partner)] >= 15  # 0.6 s in
        speaking = np.convolve(own, np.ones(15), "full")[: len(own)] >= 15
        assert yaw[settled].mean() > 0.1  # ~0.15 rad toward the partner
        assert abs(yaw[speaking].mean()) < 0.05


def test_mirrored_smile_rule_and_delay(conv):
    times = _times(conv)
    d = rules.MIRROR_DELAY_FRAMES
    pattern = rules.smile_pattern()  # (50,)
    assert pattern[3] == 1.0 and np.count_nonzero(pattern) == 17  # exp 3 and exp 20-35
    assert np.flatnonzero(pattern)[1:].tolist() == list(range(20, 36))
    for k in (1, 2):
        listen = rules.listening(times, conv.segments, k)
        partner_smile = conv.smile[3 - k]
        mirror = conv.components[k]["mirror"]
        # the documented equation holds exactly: mirror_k[n] = 0.8 L_k[n] smile_partner[n - 12] x pattern
        np.testing.assert_allclose(mirror[d:, :50], (0.8 * listen[d:] * partner_smile[:-d])[:, None] * pattern,
                                   atol=1e-6)
        assert np.all(mirror[:, 50:] == 0) and np.all(mirror[:d] == 0)
        # the smile is the mood (idle) plus the mirror, and it is what the motion shows on the smile dims
        mood = conv.smile[k] - mirror[:, 3]
        jitter = conv.components[k]["idle"][:, 3] - mood  # what is left of exp3's idle: the jitter (std 0.05)
        assert 0.02 < np.std(jitter) < 0.1 and np.std(mood) > 0.1
    s1, s2 = conv.model_motion(1)[:, 3], conv.model_motion(2)[:, 3]
    for k, mine, partner in ((1, s1, s2), (2, s2, s1)):
        listen = rules.listening(times, conv.segments, k)
        # the delay is visible in the observed motion: regressing (mine - idle) on the partner's observed
        # past exp3 while listening, the best lag is the documented one
        residual = mine - conv.components[k]["idle"][:, 3]
        full = listen > 0.99
        errs = []
        for lag in range(0, 25):
            x = np.roll(partner, lag)
            m = full.copy()
            m[:25] = False
            coef = np.dot(x[m], residual[m]) / np.dot(x[m], x[m])
            errs.append(np.mean((residual[m] - coef * x[m]) ** 2))
        assert int(np.argmin(errs)) == d
    # the mirror is visible only in the partner's motion: nothing in anyone's audio moves the smile dims
    smile_dims = np.flatnonzero(pattern)
    for k in (1, 2):
        for name in ("speech", "prosody", "nod", "turn", "rest"):
            assert np.all(conv.components[k][name][:, smile_dims] == 0)


def test_speaker_and_listener_causes_are_separated(conv):
    times = _times(conv)
    for k in (1, 2):
        own_phrase = segment_mask(times, conv.segments, k, ("phrase",))
        listen = rules.listening(times, conv.segments, k)
        assert np.all(conv.components[k]["nod"][listen == 0] == 0)  # no nods while speaking
        assert np.all(conv.components[k]["turn"][:, :54] == 0) and np.all(conv.components[k]["turn"][:, 55] == 0)
        voiced = segment_mask(times, conv.segments, k) > 0
        assert np.all(conv.components[k]["speech"][~voiced] == 0)
        assert np.all(conv.components[k]["prosody"][own_phrase == 0][:, :53] == 0)


def test_noise_floor_matches_idle_noise(conv):
    floor = conv.noise_floor()
    err = np.concatenate([conv.model_motion(k) - conv.clean_motion(k) for k in (1, 2)])  # (2T, 56)
    assert floor["exp"] == pytest.approx(np.mean(err[:, :50] ** 2), rel=1e-3)
    assert floor["jaw"] == pytest.approx(np.mean(err[:, 50:53] ** 2), rel=1e-3)
    assert floor["pose"] == pytest.approx(np.mean(err[:, 53:] ** 2), rel=1e-3)
    # and the size is what the documented standard deviations imply
    # (the mood moves every smile coefficient: |pattern|^2 = 1 + 16 x 0.6^2)
    expected_exp = rules.JITTER_STD["exp"] ** 2 + rules.MOOD_STD**2 * np.sum(rules.smile_pattern() ** 2) / 50
    assert floor["exp"] == pytest.approx(expected_exp, rel=0.25)
    expected_pose = rules.JITTER_STD["pose"] ** 2 + rules.DRIFT_STD**2
    assert floor["pose"] == pytest.approx(expected_pose, rel=0.6)
    low = conv.noise_floor(lower_bound=True)
    assert low["exp"] < floor["exp"] and low["jaw"] == floor["jaw"]


def test_too_short_is_an_error():
    with pytest.raises(DualTalkError, match="at least"):
        make_conversation(0.5, 0)


# ------------------------------------------------------------------------------------------- corpus


def test_split_parsing_and_counts():
    assert parse_splits("train=0.8,val=0.1,test=0.1") == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert split_counts(parse_splits("train=0.8,val=0.1,test=0.1"), 10) == {"train": 8, "val": 1, "test": 1}
    assert split_counts(parse_splits("train=0.5,test=0.5"), 3) == {"train": 2, "test": 1}
    assert split_counts(parse_splits("train=3,val=1,test=1"), 5) == {"train": 3, "val": 1, "test": 1}
    for bad, msg in [("train", "NAME=VALUE"), ("train=x", "not a number"), ("train=0.5,val=0.2", "add up"),
                     ("train=0.9,val=0.1", "no conversation"), ("train=4,val=2", "add up"),
                     ("a=1,a=2", "twice")]:
        with pytest.raises(DualTalkError, match=msg):
            split_counts(parse_splits(bad), 5)


def test_make_corpus_layout_manifest_and_determinism(tmp_path):
    m = make_corpus(tmp_path / "c", conversations=3, seconds=3, seed=5, splits="train=2,test=1", progress=False)
    assert m["splits"] == {"train": 2, "test": 1}
    train = discover_conversations(tmp_path / "c" / "train", require_motion="both")
    test = discover_conversations(tmp_path / "c" / "test", require_motion="both")
    assert [c.name for c in train] == ["synth_0000", "synth_0001"] and [c.name for c in test] == ["synth_0002"]
    man = load_manifest(tmp_path / "c")
    assert man["seed"] == 5 and man["version"] == GENERATOR_VERSION and len(man["items"]) == 3
    item = man["items"][2]
    assert item["split"] == "test" and item["segments"] and set(item["voices"]) == {"1", "2"}
    # the manifest's per-conversation seed regenerates that conversation exactly
    again = make_conversation(3, item["seed"])
    np.testing.assert_allclose(load_motion(tmp_path / "c" / "test" / "synth_0002_speaker2.npz").to_model(),
                               again.model_motion(2), atol=1e-6)
    np.testing.assert_allclose(load_audio(tmp_path / "c" / "test" / "synth_0002_speaker1.wav"), again.audio[1],
                               atol=1e-6)
    # the corpus noise floor is the frame-weighted mean of the conversations' floors
    exp = np.mean([it["noise_floor"]["exp"] for it in man["items"]])
    assert man["noise_floor"]["exp"] == pytest.approx(exp, rel=1e-6)
    # same seed, same corpus
    m2 = make_corpus(tmp_path / "d", conversations=3, seconds=3, seed=5, splits="train=2,test=1", progress=False)
    assert m2["noise_floor"] == m["noise_floor"]
    assert [i["segments"] for i in m2["items"]] == [i["segments"] for i in m["items"]]


def test_make_corpus_refuses_to_clobber(tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(DualTalkError, match="not empty"):
        make_corpus(other, 1, 2, progress=False)
    with pytest.raises(DualTalkError, match="refusing"):
        make_corpus(other, 1, 2, overwrite=True, progress=False)
    assert (other / "notes.txt").read_text() == "keep me"
    make_corpus(tmp_path / "c", 1, 2, progress=False)
    with pytest.raises(DualTalkError, match="--overwrite"):
        make_corpus(tmp_path / "c", 2, 2, progress=False)
    make_corpus(tmp_path / "c", 2, 2, overwrite=True, progress=False)
    assert len(discover_conversations(tmp_path / "c")) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "corpus"
    code = main(["synth", "--out", str(out), "--conversations", "2", "--seconds", "2.5", "--seed", "1",
                 "--quiet"])
    assert code == 0
    assert "noise floor" in capsys.readouterr().out
    man = json.loads((out / "manifest.json").read_text())
    assert man["conversations"] == 2 and man["splits"] is None
    assert len(discover_conversations(out, require_motion="both")) == 2
    # errors: one line, exit 2
    assert main(["synth", "--out", str(out), "--conversations", "2", "--quiet"]) == 2
    assert main(["synth", "--out", str(tmp_path / "x"), "--conversations", "3", "--splits", "train=0.5",
                 "--quiet"]) == 2
    assert main(["synth", "--out", str(tmp_path / "y"), "--conversations", "0", "--quiet"]) == 2
    (tmp_path / "file").write_text("x")
    assert main(["synth", "--out", str(tmp_path / "file" / "sub"), "--conversations", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("error: ") for line in err)
    assert "cannot create" in err[3] and str(tmp_path / "file" / "sub") in err[3]
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_subprocess(tmp_path):
    exe = Path(sys.executable).parent / "dualtalk"
    out = tmp_path / "s"
    proc = subprocess.run([str(exe), "synth", "--out", str(out), "--conversations", "3", "--seconds", "2",
                           "--splits", "train=0.34,val=0.33,test=0.33", "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test", "train", "val"]
    proc = subprocess.run([str(exe), "synth", "--out", str(out), "--conversations", "3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
