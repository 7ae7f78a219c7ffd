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
        x = conv.audio[k][int((seg.start + 0.3) * sr) : int((seg.start + 0.3) * sr) + 4096].astype(np.float64)
        ac = np.correlate(x, x, "full")[len(x) - 1 :]
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
            curves.append(pitch[idx] - pitch[n0 - 5 : n0].mean())
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
    smile = conv.scenario.causes[2]
    assert smile.name == "smile" and smile.targets == [3] + list(range(20, 36)) and smile.carrier == "motion"
    d = int(round(smile.delay * 25))
    assert d == 12
    peak = smile.peak(conv.scenario.idle)  # (17,) displacement at intensity 1
    assert peak[0] == pytest.approx(0.5)
    for k in (1, 2):
        listen = rules.listening(times, conv.segments, k)
        own = rules.bump_train(times, conv.activity[k].own["smile"])
        partner_own = rules.bump_train(times - smile.delay, conv.activity[3 - k].own["smile"])
        # the documented equation holds exactly: smile_k = (own_k + L_k x partner's own smiles 0.48 s earlier) x peak
        np.testing.assert_allclose(
            conv.components[k]["smile"][:, smile.targets], (own + listen * partner_own)[:, None] * peak, atol=1e-9
        )
        np.testing.assert_allclose(conv.responses[k]["smile"], listen * partner_own, atol=1e-12)
        other = np.setdiff1d(np.arange(56), smile.targets)
        assert np.all(conv.components[k]["smile"][:, other] == 0)
    # the delay is visible in the observed motion: regressing (mine - idle - own smiles) on the partner's observed
    # exp3 while listening, the best lag is the documented one
    for k in (1, 2):
        listen = rules.listening(times, conv.segments, k)
        mine = conv.model_motion(k)[:, 3] - conv.components[k]["idle"][:, 3]
        mine = mine - rules.bump_train(times, conv.activity[k].own["smile"]) * peak[0]
        partner = conv.model_motion(3 - k)[:, 3]
        m = listen > 0.99
        m[:25] = False
        errs = []
        for lag in range(0, 25):
            x = np.roll(partner, lag)
            coef = np.dot(x[m], mine[m]) / np.dot(x[m], x[m])
            errs.append(np.mean((mine[m] - coef * x[m]) ** 2))
        assert abs(int(np.argmin(errs)) - d) <= 1
    # the mirror is visible only in the partner's motion: nothing in anyone's audio moves the smile dims,
    # and the standard scenario has no laughs
    for k in (1, 2):
        for name in ("speech", "prosody", "nod", "turn", "rest"):
            assert np.all(conv.components[k][name][:, smile.targets] == 0)
        assert len(conv.activity[k].audible(conv.scenario)) == 0


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


def test_noise_floor_is_the_oracle_error(conv):
    floor = conv.noise_floor()
    err = np.concatenate([conv.model_motion(k) - conv.clean_motion(k) for k in (1, 2)])  # (2T, 56)
    assert floor["exp"] == pytest.approx(np.mean(err[:, :50] ** 2), rel=1e-3)
    assert floor["jaw"] == pytest.approx(np.mean(err[:, 50:53] ** 2), rel=1e-3)
    assert floor["pose"] == pytest.approx(np.mean(err[:, 53:] ** 2), rel=1e-3)
    # jaw and pose: only the idle noise is unpredictable, of the documented size
    idle = conv.scenario.idle
    assert floor["jaw"] == pytest.approx(idle.jitter_std_jaw**2, rel=0.25)
    assert floor["pose"] == pytest.approx(idle.jitter_std_pose**2 + idle.drift_std**2, rel=0.6)
    # exp: the idle jitter plus the silent spontaneous smiles (the oracle knows only their mean)
    assert floor["exp"] > idle.jitter_std_exp**2
    low = conv.noise_floor(lower_bound=True)
    assert low["exp"] < floor["exp"] and low["jaw"] == pytest.approx(floor["jaw"])
    assert low["exp"] == pytest.approx(idle.jitter_std_exp**2, rel=0.25)


def test_too_short_is_an_error():
    with pytest.raises(DualTalkError, match="at least"):
        make_conversation(0.5, 0)


# ------------------------------------------------------------------------------------------- corpus


def test_split_parsing_and_counts():
    assert parse_splits("train=0.8,val=0.1,test=0.1") == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert split_counts(parse_splits("train=0.8,val=0.1,test=0.1"), 10) == {"train": 8, "val": 1, "test": 1}
    assert split_counts(parse_splits("train=0.5,test=0.5"), 3) == {"train": 2, "test": 1}
    assert split_counts(parse_splits("train=3,val=1,test=1"), 5) == {"train": 3, "val": 1, "test": 1}
    for bad, msg in [
        ("train", "NAME=VALUE"),
        ("train=x", "not a number"),
        ("train=0.5,val=0.2", "add up"),
        ("train=0.9,val=0.1", "no conversation"),
        ("train=4,val=2", "add up"),
        ("a=1,a=2", "twice"),
    ]:
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
    np.testing.assert_allclose(
        load_motion(tmp_path / "c" / "test" / "synth_0002_speaker2.npz").to_model(), again.model_motion(2), atol=1e-6
    )
    np.testing.assert_allclose(
        load_audio(tmp_path / "c" / "test" / "synth_0002_speaker1.wav"), again.audio[1], atol=1e-6
    )
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
    # a manifest of ours is not enough: files synth did not write (a user's notes, a run) are never deleted
    (tmp_path / "c" / "runs").mkdir()
    (tmp_path / "c" / "runs" / "metrics.csv").write_text("keep me")
    with pytest.raises(DualTalkError, match=r"runs/metrics.csv: was not written by dualtalk synth"):
        make_corpus(tmp_path / "c", 1, 2, overwrite=True, progress=False)
    assert (tmp_path / "c" / "runs" / "metrics.csv").read_text() == "keep me"
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "manifest.json").write_text('{"generator": "dualtalk.synth"}')
    (fake / "mydata.txt").write_text("keep me")
    with pytest.raises(DualTalkError, match="mydata.txt: was not written by dualtalk synth"):
        make_corpus(fake, 1, 2, overwrite=True, progress=False)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "corpus"
    code = main(["synth", "--out", str(out), "--conversations", "2", "--seconds", "2.5", "--seed", "1", "--quiet"])
    assert code == 0
    assert "noise floor" in capsys.readouterr().out
    man = json.loads((out / "manifest.json").read_text())
    assert man["conversations"] == 2 and man["splits"] is None
    assert len(discover_conversations(out, require_motion="both")) == 2
    # errors: one line, exit 2
    assert main(["synth", "--out", str(out), "--conversations", "2", "--quiet"]) == 2
    assert (
        main(["synth", "--out", str(tmp_path / "x"), "--conversations", "3", "--splits", "train=0.5", "--quiet"]) == 2
    )
    assert main(["synth", "--out", str(tmp_path / "y"), "--conversations", "0", "--quiet"]) == 2
    (tmp_path / "file").write_text("x")
    assert main(["synth", "--out", str(tmp_path / "file" / "sub"), "--conversations", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("error: ") for line in err)
    assert "cannot be created" in err[3] and str(tmp_path / "file" / "sub") in err[3]
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_subprocess(tmp_path):
    exe = Path(sys.executable).parent / "dualtalk"
    out = tmp_path / "s"
    proc = subprocess.run(
        [
            str(exe),
            "synth",
            "--out",
            str(out),
            "--conversations",
            "3",
            "--seconds",
            "2",
            "--splits",
            "train=0.34,val=0.33,test=0.33",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test", "train", "val"]
    proc = subprocess.run(
        [str(exe), "synth", "--out", str(out), "--conversations", "3"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------ random causes


def test_random_scenario_amplitude_range_keeps_the_plan():
    """Another amplitude range draws the same causes (targets, delays, carriers, idle noise) at other strengths."""
    import dataclasses

    from dualtalk.synth import causes

    for seed in (109, 3):
        base, weak = causes.random_scenario(seed), causes.random_scenario(seed, (1.0, 2.0))
        assert base.idle == weak.idle and len(base.causes) == len(weak.causes)
        for a, b in zip(base.causes, weak.causes):
            assert dataclasses.replace(a, amplitude=0.0) == dataclasses.replace(b, amplitude=0.0)
            assert 1.0 <= b.amplitude <= 2.0 and b.amplitude == pytest.approx(1 + (a.amplitude - 3) / 3, abs=2e-3)
    for bad in ((0.0, 1.0), (2.0, 1.0)):
        with pytest.raises(DualTalkError, match="amplitude range"):
            causes.random_scenario(1, bad)


def test_random_scenarios_cover_the_documented_ranges():
    from dualtalk.synth import causes

    seen = {"carrier": set(), "composition": set(), "many": set(), "pose": set(), "driver": set()}
    for seed in range(40):
        sc = causes.random_scenario(seed)
        assert sc == causes.random_scenario(seed)  # deterministic
        targets = [t for c in sc.causes for t in c.targets]
        assert len(targets) == len(set(targets))  # disjoint
        drivers = [c.driver for c in sc.causes]
        assert drivers[:3] == ["phrase_end", "partner_event", "partner_event"]
        assert sc.causes[1].carrier != sc.causes[2].carrier
        for c in sc.causes:
            assert causes.DELAY[0] <= c.delay <= causes.DELAY[1]
            assert causes.AMPLITUDE[0] <= c.amplitude <= causes.AMPLITUDE[1]
            assert set(c.targets) <= set(causes.FREE_EXP) | set(causes.FREE_POSE)
            assert np.sqrt(np.mean(np.square(c.loadings))) == pytest.approx(1.0)
            seen["carrier"].add(c.carrier)
            seen["composition"].add(c.composition)
            seen["many"].add(len(c.targets) > 1)
            seen["pose"].add(c.targets[0] >= 53)
            seen["driver"].add(c.driver)
        # round trip through the manifest's JSON
        assert causes.Scenario.from_dict(json.loads(json.dumps(sc.to_dict()))) == sc
    assert seen == {
        "carrier": {"audio", "motion", "both"},
        "composition": {"add", "max"},
        "many": {True, False},
        "pose": {True, False},
        "driver": set(causes.DRIVERS),
    }


def _scenario(**kw):
    from dualtalk.synth.causes import ListeningCause, Scenario

    base = dict(
        name="c",
        driver="partner_event",
        carrier="motion",
        targets=[30],
        loadings=[1.0],
        delay=0.6,
        duration=0.5,
        amplitude=5.0,
        composition="add",
        own_rate=6.0,
    )
    base.update(kw)
    return Scenario("test", [ListeningCause(**base)]).validate()


@pytest.mark.parametrize("carrier", ["audio", "motion", "both"])
def test_carriers_put_the_driver_where_they_say(carrier):
    """audio: the partner's laughs are heard, not seen; motion: seen, not heard; both: both."""
    sc = _scenario(carrier=carrier, laugh_rate=8.0 if carrier == "audio" else 0.0)
    conv = make_conversation(60, 11, sc)
    times = _times(conv)
    c = sc.causes[0]
    for k in (1, 2):
        act = conv.activity[3 - k]
        events = act.laughs["c"] if carrier == "audio" else act.own["c"]
        drive = rules.bump_train(times - c.delay, events)
        listen = rules.listening(times, conv.segments, k)
        np.testing.assert_allclose(conv.responses[k]["c"], listen * drive, atol=1e-12)
        # the partner's own motion on the target shows their own activations, never their laughs
        partner_target = conv.components[3 - k]["c"][:, 30] / c.peak(sc.idle)[0]
        own = rules.bump_train(times, act.own["c"])
        np.testing.assert_allclose(partner_target, own + conv.responses[3 - k]["c"], atol=1e-9)
        # the partner's audio: louder than their speech alone where they laugh (audio, both), unchanged otherwise
        laughs = act.audible(sc)
        speech_only = make_conversation(60, 11, _scenario(carrier="motion")).audio[3 - k]
        if carrier == "motion":
            assert len(laughs) == 0
            np.testing.assert_array_equal(conv.audio[3 - k], speech_only)
        else:
            assert len(laughs) > 0
            extra = rms_envelope(conv.audio[3 - k] - speech_only)
            inside = rules.bump_train(times, laughs) > 0.2
            assert extra[inside].mean() > 10 * extra[~inside].mean()  # outside: the laugh track's faint hiss


def test_max_composition_saturates():
    sc = _scenario(composition="max")
    conv = make_conversation(60, 3, sc)
    times = _times(conv)
    for k in (1, 2):
        own = rules.bump_train(times, conv.activity[k].own["c"])
        got = conv.components[k]["c"][:, 30] / sc.causes[0].peak(sc.idle)[0]
        np.testing.assert_allclose(got, np.maximum(own, conv.responses[k]["c"]), atol=1e-9)


def test_bad_scenarios_are_one_clear_error(tmp_path):
    from dualtalk.synth.causes import resolve

    for kw, msg in [
        ({"driver": "wink"}, "driver"),
        ({"carrier": "smell"}, "carrier"),
        ({"targets": [0]}, "free coefficients"),
        ({"targets": [30, 31]}, "same length"),
        ({"composition": "mul"}, "add or max"),
        ({"driver": "phrase_end", "carrier": "motion"}, "voice"),
        ({"carrier": "audio"}, "laugh_rate"),
    ]:
        with pytest.raises(DualTalkError, match=msg):
            _scenario(**kw)
    bad = tmp_path / "bad.json"
    bad.write_text('{"causes": [{"name": "x"}]}')
    with pytest.raises(DualTalkError, match="bad.json"):
        resolve(str(bad))
    with pytest.raises(DualTalkError, match="standard, random"):
        resolve(str(tmp_path / "missing.json"))


def test_cli_random_causes_and_scenario_files(tmp_path, capsys):
    out = tmp_path / "r"
    assert (
        main(
            [
                "synth",
                "--out",
                str(out),
                "--conversations",
                "2",
                "--seconds",
                "3",
                "--seed",
                "4",
                "--causes",
                "random",
                "--quiet",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    man = load_manifest(out)
    from dualtalk.synth.causes import random_scenario
    from dualtalk.synth.corpus import manifest_scenario

    assert manifest_scenario(man) == random_scenario(4)
    assert printed.count("cause ") == len(man["scenario"]["causes"])
    # the manifest (its "scenario") is a scenario file: the same causes again, with another seed
    again = tmp_path / "again"
    assert (
        main(
            [
                "synth",
                "--out",
                str(again),
                "--conversations",
                "1",
                "--seconds",
                "3",
                "--seed",
                "9",
                "--causes",
                str(out / "manifest.json"),
                "--quiet",
            ]
        )
        == 0
    )
    assert load_manifest(again)["scenario"] == man["scenario"]
    (tmp_path / "bad.json").write_text("{not json")
    assert (
        main(
            [
                "synth",
                "--out",
                str(tmp_path / "z"),
                "--conversations",
                "1",
                "--causes",
                str(tmp_path / "bad.json"),
                "--quiet",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "bad.json" in err[0]
    assert not (tmp_path / "z").exists()


def test_corpus_directory_has_the_usual_permissions(tmp_path):
    import os
    import stat

    make_corpus(tmp_path / "c", 1, 2, progress=False)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o777 & ~umask  # not mkdtemp's private 0700
