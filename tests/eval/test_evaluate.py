"""``evaluate`` on generated conversations: roles from audio, transitions, the pooled protocol, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from dualtalk.cli import main
from dualtalk.errors import InputError
from dualtalk.eval import evaluate
from dualtalk.eval import metrics as M
from dualtalk.eval.core import pooled_metrics, reference_metrics
from dualtalk.eval.data import load_item, pair_files
from dualtalk.eval.roles import transition_window
from dualtalk.io.audio import save_audio
from dualtalk.io.motion import Motion, save_model_motion, save_motion

SR, FPS = 16000, 25


def vowel_like(seconds, f0=140.0):
    """Speech-like sound: sawtooth source through /a/ formants, 4 Hz syllable envelope."""
    t = np.arange(int(seconds * SR)) / SR
    src = signal.sawtooth(2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / SR)
    out = np.zeros_like(t)
    for fc, bw in ((700, 110), (1220, 120), (2600, 160)):
        r, th = np.exp(-np.pi * bw / SR), 2 * np.pi * fc / SR
        out += signal.lfilter([1 - r], [1, -2 * r * np.cos(th), r * r], src)
    return out * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2)


def smooth_motion(rng, t):
    x = rng.standard_normal((t, 56))
    return signal.lfilter([0.2], [1, -0.8], x, axis=0).astype(np.float32)  # (T, 56) AR(1)-smoothed


def write_conversation(gt_dir, pred_dir, name, seconds=8.0, seed=0, speakers=(1, 2), audio=True):
    """Both people alternate turns of 2 s (speaker 1 first); predictions = ground truth + noise."""
    rng = np.random.default_rng(seed)
    t = int(seconds * FPS)
    turn = (np.arange(int(seconds * SR)) // (2 * SR)) % 2  # 0: speaker 1 speaks, 1: speaker 2
    for k in (1, 2):
        gt = smooth_motion(rng, t)
        save_motion(gt_dir / f"{name}_speaker{k}.npz", Motion.from_model(gt))
        if audio:
            voice = vowel_like(seconds, 120.0 if k == 1 else 200.0)[: len(turn)] * (turn == k - 1)
            save_audio(
                gt_dir / f"{name}_speaker{k}.wav",
                0.4 * voice / np.abs(voice).max() + 1e-4 * rng.standard_normal(len(turn)),
            )
        if k in speakers:
            save_model_motion(pred_dir / f"{name}_speaker{k}.npy", gt + 0.3 * smooth_motion(rng, t))


@pytest.fixture
def dataset(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    write_conversation(gt, pred, "a", seed=1)
    write_conversation(gt, pred, "b", seed=2, speakers=(2,))
    return pred, gt


def test_structure_and_roles(dataset):
    pred, gt = dataset
    r = evaluate(pred, gt, workers=1)
    assert list(r["per_file"]) == ["a_speaker1.npy", "a_speaker2.npy", "b_speaker2.npy"]
    assert len(r["mean"]) == 21 and all(np.isfinite(v) for v in r["mean"].values())
    # voice activity on the person's own audio: speaker 1 speaks in 0-2 s and 4-6 s, i.e. half the time
    assert 0.4 < r["info"]["speaking_fraction"]["a_speaker1.npy"] < 0.6
    for role in ("speaking", "listening"):
        block = r["by_role"][role]
        assert block["files"] == 3 and set(block["per_file"]) == set(r["per_file"])
        assert set(block["mean"]) == set(r["mean"])
    # role numbers are the reference metrics on that role's frames
    items = pair_files(pred, gt)
    a = load_item(items[0])
    from dualtalk.eval.roles import role_mask

    mask = role_mask(items[0].audio, len(a.pred))
    direct = reference_metrics(a, mask)
    for key, value in r["by_role"]["speaking"]["per_file"]["a_speaker1.npy"].items():
        assert np.isclose(value, float(direct[key]), rtol=1e-9), key
    p, g = a.group("pred", "exp")[mask], a.group("gt", "exp")[mask]
    assert np.isclose(direct["fid_exp"], M.frechet_distance(p, g))
    # turn changes every 2 s: transitions in an 8 s clip, smoothness numbers reported
    tr = r["transitions"]["per_file"]["a_speaker1.npy"]
    assert tr["transitions"] == 3
    assert tr["trans_jerk_ratio_exp"] > 0 and tr["trans_vel_err_jaw"] > 0
    assert r["transitions"]["mean"]["transitions"] == 9 and isinstance(r["transitions"]["mean"]["transitions"], int)


def test_roles_off_and_required(dataset, tmp_path):
    pred, gt = dataset
    r = evaluate(pred, gt, roles="off", workers=1)
    assert r["by_role"] is None and r["transitions"] is None
    (gt / "b_speaker2.wav").unlink()
    r = evaluate(pred, gt, workers=1)  # auto: skipped with a note
    assert r["by_role"] is None and "skipped" in r["info"]["notes"][0]
    with pytest.raises(Exception, match="b_speaker2.wav: audio not found"):
        evaluate(pred, gt, roles="on", workers=1)


def test_roles_refuse_audio_of_another_length_than_its_motion(dataset):
    """Speaking / listening frames come from the ground truth's audio: a clip of another length (beyond the
    tolerated few frames) would place them wrongly, so it is an error naming it."""
    import soundfile as sf

    pred, gt = dataset
    wav = gt / "a_speaker1.wav"
    wave, sr = sf.read(str(wav))
    sf.write(str(wav), wave[: len(wave) // 3], sr)
    with pytest.raises(InputError, match="its ground-truth motion .*npz has") as info:
        evaluate(pred, gt, roles="on", workers=1)
    assert str(wav) in str(info.value)


def test_a_short_prediction_is_cut_not_blamed_on_the_audio(dataset):
    """A prediction shorter than its ground truth is cut to it as the reference does (a note says so); the
    ground truth's audio, which matches its motion, is not the culprit."""
    pred, gt = dataset
    p = sorted(pred.glob("*.npy"))[0]
    np.save(p, np.load(p)[:150])
    r = evaluate(pred, gt, roles="on", workers=1)
    assert r["by_role"] is not None and any("prediction 150" in n for n in r["info"]["notes"])


def test_transition_window():
    mask = np.array([0] * 10 + [1] * 10 + [0] * 10, bool)
    near, n = transition_window(mask, 2)
    assert n == 2
    assert np.flatnonzero(near).tolist() == [8, 9, 10, 11, 18, 19, 20, 21]
    assert transition_window(np.ones(10, bool), 2)[1] == 0


def test_pooled_protocol(dataset):
    pred, gt = dataset
    r = evaluate(pred, gt, protocol="pooled", workers=1, seed=0)
    assert r["protocol"] == "pooled"
    for g in ("exp", "jaw", "pose"):
        for m in ("fid", "p_fid", "sid", "sid_gt", "diversity_pre", "diversity_gt", "variance_gt"):
            assert np.isfinite(r["mean"][f"{m}_{g}"])
    assert set(r["per_file"]["a_speaker1.npy"]) == {
        f"{m}_{g}" for m in ("mse", "sts", "variance_pre", "rpcc") for g in ("exp", "jaw", "pose")
    }
    # FD over all frames of all files at once
    arrays = [load_item(it) for it in pair_files(pred, gt)]
    allp = np.concatenate([a.group("pred", "exp") for a in arrays])
    allg = np.concatenate([a.group("gt", "exp") for a in arrays])
    assert np.isclose(r["mean"]["fid_exp"], M.frechet_distance(allp, allg))
    assert np.isclose(
        r["mean"]["sid_gt_jaw"],
        M.sid(
            np.concatenate([a.group("gt", "jaw") for a in arrays]),
            np.concatenate([a.group("pred", "jaw") for a in arrays]),
            10,
        ),
    )
    # seeded: the same seed gives the same diversity, another seed another
    again = evaluate(pred, gt, protocol="pooled", workers=1, seed=0)
    assert again["mean"] == r["mean"]
    other = pooled_metrics(arrays, seed=1)
    assert other["diversity_pre_exp"] != r["mean"]["diversity_pre_exp"]
    assert r["by_role"]["speaking"]["mean"]["fid_exp"] is not None


def test_npz_predictions_and_length_notes(dataset):
    pred, gt = dataset
    before = evaluate(pred, gt, roles="off", workers=1)
    x = np.load(pred / "a_speaker1.npy")
    (pred / "a_speaker1.npy").unlink()
    save_motion(pred / "a_speaker1.npz", Motion.from_model(x))  # dataset layout: pose = [global, jaw]
    after = evaluate(pred, gt, roles="off", workers=1)
    assert after["per_file"]["a_speaker1.npz"] == before["per_file"]["a_speaker1.npy"]
    assert after["info"]["notes"] == []
    save_motion(pred / "a_speaker1.npz", Motion.from_model(x[:150]))  # 50 frames short: cut, with a note
    r = evaluate(pred, gt, roles="off", workers=1)
    assert r["info"]["frames"]["a_speaker1.npz"]["evaluated"] == 150
    assert "a_speaker1.npz: prediction 150, ground truth 200, partner 200 frames: all cut to 150" in r["info"]["notes"]


def test_parallel_equals_serial(dataset):
    pred, gt = dataset
    assert evaluate(pred, gt, workers=2) == {
        **evaluate(pred, gt, workers=1),
        "info": evaluate(pred, gt, workers=2)["info"],
    }


# ----------------------------------------------------------------------------- bad input


def _run(pred, gt, out, capsys):
    code = main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--json", str(out), "--workers", "1"])
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    "case, expected",
    [
        ("mismatched_name", "c_speaker1.npz: ground truth for prediction c_speaker1.npy not found"),
        ("missing_partner", "a_speaker2.npz: partner ground truth for prediction a_speaker1.npy not found"),
        ("nan", "a_speaker1.npy: 'array' contains NaN or infinite values"),
        ("wrong_width", "a_speaker1.npy: 'array' must have shape (T, 56), got (200, 55)"),
        ("empty_pred", "no predictions found"),
        ("empty_gt", "no ground-truth motion files"),
        ("bad_name", "x.npy: prediction name must be NAME_speaker1 or NAME_speaker2"),
        ("too_short", "a_speaker1.npy: only 10 frames in common"),
    ],
)
def test_bad_input_one_line_no_json(tmp_path, capsys, case, expected):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    write_conversation(gt, pred, "a", speakers=(1,), audio=False)
    x = np.load(pred / "a_speaker1.npy")
    if case == "mismatched_name":
        save_model_motion(pred / "c_speaker1.npy", x)
    elif case == "missing_partner":
        (gt / "a_speaker2.npz").unlink()
    elif case == "nan":
        x[5, 3] = np.nan
        np.save(pred / "a_speaker1.npy", x)
    elif case == "wrong_width":
        np.save(pred / "a_speaker1.npy", x[:, :55])
    elif case == "empty_pred":
        (pred / "a_speaker1.npy").unlink()
    elif case == "empty_gt":
        for f in gt.iterdir():
            f.unlink()
    elif case == "bad_name":
        np.save(pred / "x.npy", x)
    elif case == "too_short":
        np.save(pred / "a_speaker1.npy", x[:10])
    out = tmp_path / "out.json"
    code, err = _run(pred, gt, out, capsys)
    assert code != 0
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and expected in err, err
    assert not out.exists() and not list(tmp_path.glob(".out.json*"))


def test_missing_directories(tmp_path, capsys):
    code, err = _run(tmp_path / "nope", tmp_path, tmp_path / "o.json", capsys)
    assert code == 2 and "nope: prediction directory not found" in err


def test_mesh_needs_masks(dataset, tmp_path, capsys):
    pred, gt = dataset
    code = main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--flame", str(tmp_path / "generic_model.pkl")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--flame-masks" in err
