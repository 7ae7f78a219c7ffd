"""Every bad input gives one error line naming the file (or key, or option), exit 2, and no output:
``dualtalk generate``'s files and model directories, its options, ``dualtalk train``'s config files
and ``key=value`` overrides, ``dualtalk export`` / ``fit-arkit-map``'s files and options (``export_*``),
``dualtalk evaluate``'s (``eval_*``), and motion files of the other layout than the model's (FLAME / ARKit).

The cases and their expected messages are listed in ``bad_inputs.tsv`` beside this file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dualtalk.cli import main

HERE = Path(__file__).parent
CASES = [
    line.rstrip("\n").split("\t")
    for line in (HERE / "bad_inputs.tsv").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
SR = 16000
T = 30  # frames; 30 * 640 samples


def write_wav(path, wave, sr=SR):
    sf.write(str(path), np.asarray(wave, np.float32), sr, subtype="FLOAT")


def write_motion(path, t=T, exp_w=50, pose_w=6, **kw):
    rng = np.random.default_rng(0)
    data = {
        "exp": rng.normal(size=(t, exp_w)).astype(np.float32),
        "pose": 0.1 * rng.normal(size=(t, pose_w)).astype(np.float32),
    }
    data.update(kw)
    np.savez(path, **data)


def write_arkit_motion(path, t=T, head_t=None, head_w=3, **kw):
    rng = np.random.default_rng(0)
    data = {
        "arkit": rng.uniform(0, 1, size=(t, 52)).astype(np.float32),
        "head": 0.1 * rng.normal(size=(t if head_t is None else head_t, head_w)).astype(np.float32),
    }
    data.update(kw)
    np.savez(path, **data)


def arkit_model(tmp: Path) -> Path:
    """A tiny model (random weights) with motion_layout arkit, saved as a model directory."""
    from dualtalk.model.checkpoint import save_model
    from dualtalk.model.dualtalk import build_model
    from dualtalk.model.presets import get_preset

    return save_model(build_model(get_preset("tiny", ["motion_layout=arkit"])), tmp / "arkit_model")


def make_case(case: str, tmp: Path) -> dict:
    rng = np.random.default_rng(1)
    files = {
        "self_audio": tmp / "B.wav",
        "partner_audio": tmp / "A.wav",
        "partner_motion": tmp / "A.npz",
        "model": "tiny",
    }
    write_wav(files["self_audio"], 0.1 * rng.normal(size=T * 640))
    write_wav(files["partner_audio"], 0.1 * rng.normal(size=T * 640))
    write_motion(files["partner_motion"])
    sa, pa, pm = files["self_audio"], files["partner_audio"], files["partner_motion"]
    if case == "self_audio_missing":
        sa.unlink()
    elif case == "self_audio_is_directory":
        sa.unlink()
        sa.mkdir()
    elif case == "self_audio_not_audio":
        sa.write_text("this is not audio\n")
    elif case == "self_audio_empty":
        write_wav(sa, np.zeros(0))
    elif case == "self_audio_nan":
        w = np.zeros(T * 640)
        w[100] = np.nan
        write_wav(sa, w)
    elif case == "self_audio_huge_samples":  # finite, but no recording's: their squares overflow float32
        w = np.zeros(T * 640)
        w[100] = 1e20
        write_wav(sa, w)
    elif case == "self_audio_truncated":  # a copy cut short: libsndfile would read a shorter clip silently
        write_wav(sa, 0.1 * rng.normal(size=T * 640))
        sa.write_bytes(sa.read_bytes()[:2000])
    elif case == "partner_audio_missing":
        pa.unlink()
    elif case == "partner_audio_length_mismatch":
        write_wav(pa, 0.1 * rng.normal(size=(T + 10) * 640))
    elif case == "self_audio_impossible_rate":  # 1 kHz: no speech fits under its Nyquist frequency
        write_wav(sa, 0.1 * rng.normal(size=T * 40), sr=1000)
    elif case == "self_audio_much_shorter":  # the message names both files: either may be the wrong one
        write_wav(sa, 0.1 * rng.normal(size=1600))
    elif case == "output_is_directory":
        files["out"] = tmp / "out"
        files["out"].mkdir()
    elif case == "output_parent_is_file":
        (tmp / "afile").write_text("x")
        files["out"] = tmp / "afile" / "B.npz"
    elif case == "output_not_writable":  # /proc takes no new files, even for root
        files["out"] = Path("/proc/dualtalk-test/B.npz")
    elif case == "motion_missing":
        pm.unlink()
    elif case == "motion_not_npz":
        pm.write_text("exp,pose\n1,2\n")
    elif case == "motion_single_npy":
        with open(pm, "wb") as fh:
            np.save(fh, np.zeros((T, 56), np.float32))
    elif case == "motion_truncated":
        data = pm.read_bytes()
        pm.write_bytes(data[: len(data) // 2])
    elif case == "motion_missing_key":
        np.savez(pm, exp=np.zeros((T, 50), np.float32), shape=np.zeros((T, 100)))
    elif case == "motion_wrong_exp_dims":
        write_motion(pm, exp_w=40)
    elif case == "motion_wrong_pose_ndim":
        np.savez(pm, exp=np.zeros((T, 50), np.float32), pose=np.zeros(T, np.float32))
    elif case == "motion_no_frames":
        write_motion(pm, t=0)
    elif case == "motion_nan":
        pose = np.zeros((T, 6), np.float32)
        pose[3, 2] = np.inf
        np.savez(pm, exp=np.zeros((T, 50), np.float32), pose=pose)
    elif case == "motion_float64_beyond_float32":  # finite in float64, infinite once read as float32
        pose = np.zeros((T, 6))
        pose[3, 4] = 1e300
        np.savez(pm, exp=np.zeros((T, 50)), pose=pose)
    elif case == "motion_huge_values":
        exp = np.zeros((T, 50), np.float32)
        exp[5, 0] = 1e30
        np.savez(pm, exp=exp, pose=np.zeros((T, 6), np.float32))
    elif case == "motion_object_array":
        exp = np.empty((T, 50), object)
        exp[:] = 0.0
        np.savez(pm, exp=exp, pose=np.zeros((T, 6), np.float32))
    elif case == "motion_exp_pose_lengths":
        np.savez(pm, exp=np.zeros((T, 50), np.float32), pose=np.zeros((T - 1, 6), np.float32))
    elif case == "motion_length_mismatch":
        write_motion(pm, t=T + 20)
    elif case == "motion_arkit_for_flame_model":
        write_arkit_motion(pm)
    elif case.startswith(("motion_flame_for_arkit", "motion_arkit_")):  # an ARKit model's partner motion
        files["model"] = arkit_model(tmp)
        if case == "motion_arkit_out_of_range":
            w = np.random.default_rng(2).uniform(0, 0.9, size=(T, 52)).astype(np.float32)
            w[4, 17] = -0.2
            write_arkit_motion(pm, arkit=w)
        elif case == "motion_arkit_unknown_name":
            from dualtalk.layout import ARKIT_NAMES

            names = np.array([("jawOpn" if n == "jawOpen" else n) for n in ARKIT_NAMES])
            write_arkit_motion(pm, names=names)
        elif case == "motion_arkit_head_width":
            write_arkit_motion(pm, head_w=6)
        elif case == "motion_arkit_lengths":
            write_arkit_motion(pm, head_t=T - 1)
    elif case == "model_missing":
        files["model"] = tmp / "no_such_model"
    elif case in ("model_bad_config", "model_future_format", "model_format_as_text", "model_missing_weights"):
        d = tmp / "model"
        d.mkdir()
        files["model"] = d
        if case == "model_bad_config":
            (d / "config.json").write_text("{not json")
        elif case == "model_future_format":
            (d / "config.json").write_text(json.dumps({"format_version": 99, "model": {}}))
        elif case == "model_format_as_text":
            (d / "config.json").write_text(json.dumps({"format_version": "1", "model": {}}))
        else:
            from dualtalk.config import FORMAT_VERSION, to_dict
            from dualtalk.model.presets import get_preset

            (d / "config.json").write_text(
                json.dumps({"format_version": FORMAT_VERSION, "model": to_dict(get_preset("tiny"))})
            )
    elif case.startswith("model_config_"):
        from dualtalk.config import FORMAT_VERSION, to_dict
        from dualtalk.model.presets import get_preset

        d = tmp / "model"
        d.mkdir()
        files["model"] = d
        model = to_dict(get_preset("tiny"))
        if case == "model_config_not_integer":
            model["feature_dim"] = "abc"
        elif case == "model_config_unknown_key":
            model["feature_dims"] = model.pop("feature_dim")
        elif case == "model_config_out_of_range":
            model["dropout"] = 1.5
        elif case == "model_config_bad_choice":
            model["variant"] = "other"
        elif case == "model_config_layout_dim":
            model["motion_layout"], model["motion_dim"] = "arkit", 50
        else:
            model["output_gain"], model["normalize_motion"] = True, False
        (d / "config.json").write_text(json.dumps({"format_version": FORMAT_VERSION, "model": model}))
    elif case == "option_out_same_as_partner_out":
        files["option"] = "--partner-out"
    elif case == "option_device_unknown":
        files["option"] = "--device"
    elif case.startswith("option_"):
        files["option"] = "--window"
    elif case.startswith("train_override_"):
        files["override"] = {
            "train_override_not_integer": "model.feature_dim=1.28e2",
            "train_override_out_of_range": "data.batch_size=0",
            "train_override_unknown_key": "optim.gama=0.5",
            "train_override_not_a_number": "optim.lr=fast",
            "train_override_boolean_for_number": "data.batch_size=true",
            "train_override_negative_seed": "seed=-1",
        }[case]
    elif case == "train_data_layout":  # an ARKit model on FLAME data: refused before the run directory exists
        files["override"] = "model.motion_layout=arkit"
        files["data"] = tmp / "data"
        (tmp / "data" / "train").mkdir(parents=True)
        files["data_motion"] = tmp / "data" / "train" / "c_speaker1.npz"
        write_motion(files["data_motion"])
    elif case.startswith("eval_"):  # ARKit ground truth, predictions (T=45 >= the metrics' 40 frames)
        gt, pred = tmp / "gt", tmp / "pred"
        gt.mkdir()
        pred.mkdir()
        for k in (1, 2):
            write_arkit_motion(gt / f"c_speaker{k}.npz", t=45)
        files.update(gt=gt, pred=pred / "c_speaker1.npy", partner_gt=gt / "c_speaker2.npz")
        np.save(files["pred"], np.random.default_rng(3).uniform(0, 1, (45, 55)).astype(np.float32))
        if case == "eval_pred_layout":
            np.save(files["pred"], np.zeros((45, 56), np.float32))
        elif case == "eval_partner_layout":
            write_motion(files["partner_gt"], t=45)
        elif case == "eval_arkit_mesh":
            files["option"] = "--flame"
    elif case.startswith(("train_yaml_", "train_json_")):
        path = tmp / ("config.json" if "json" in case else "config.yaml")
        path.write_text(
            {
                "train_yaml_not_integer": "preset: tiny\nmodel:\n  feature_dim: 1.28e2\n",
                "train_yaml_bad_choice": "optim: {optimizer: sgd, lr: 1e-3}\n",
                "train_yaml_not_a_mapping": "- preset\n- tiny\n",
                "train_yaml_unreadable": "data: {batch_size: [1\n",
                "train_json_bad_type": '{"data": {"feature_cache": "maybe"}}',
                "train_json_unreadable": '{"data": ',
                "train_yaml_key_twice": "max_steps: 5\ndata:\n  batch_size: 4\nmax_steps: 6\n",
                "train_json_key_twice": '{"data": {"batch_size": 4, "batch_size": 8}}',
            }[case]
        )
        files["config"] = path
    elif case.startswith("export_"):  # dualtalk export / fit-arkit-map: tests/io/export_cases.py
        from tests.io.export_cases import make_export_case

        files.update(make_export_case(case, tmp, pm))
    elif case == "model_bad_pth":
        files["model"] = tmp / "DualTalk.pth"
        files["model"].write_bytes(b"\x80\x04garbage that is not a checkpoint")
    else:  # pragma: no cover
        raise AssertionError(f"unknown case {case}")
    return files


def run_generate(files, out, *options):
    return main(
        [
            "generate",
            "--model",
            str(files["model"]),
            "--self-audio",
            str(files["self_audio"]),
            "--partner-audio",
            str(files["partner_audio"]),
            "--partner-motion",
            str(files["partner_motion"]),
            "--out",
            str(out),
            "--quiet",
            *options,
        ]
    )


def run_case(case: str, files: dict, out: Path) -> int:
    if case.startswith("export_"):
        from tests.io.export_cases import run_export_case

        return run_export_case(case, files, out)
    if case.startswith("eval_"):
        options = ["--flame", str(out.parent.parent / "generic_model.pkl")] if case == "eval_arkit_mesh" else []
        pred_dir = str(files["pred"].parent)
        return main(["evaluate", "--pred", pred_dir, "--gt", str(files["gt"]), "--json", str(out), *options])
    if case.startswith("train_"):  # nothing may be written: the config is checked before the run starts
        data = files.get("data", out.parent / "data")
        options = ["--config", str(files["config"])] if "config" in files else []
        return main(
            [
                "train",
                "--data",
                str(data),
                "--out",
                str(out),
                *options,
                *([files["override"]] if "override" in files else []),
            ]
        )
    if case == "option_window_negative":
        return run_generate(files, out, "--window", "-5")
    if case == "option_out_same_as_partner_out":
        return run_generate(files, out, "--partner-out", str(out))
    if case == "option_device_unknown":
        return run_generate(files, out, "--device", "gpu0")
    return run_generate(files, files.get("out", out))


@pytest.mark.parametrize("case,culprit,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, culprit, message, tmp_path, capsys):
    files = make_case(case, tmp_path)
    out = tmp_path / "out" / "B.npz"
    code = run_case(case, files, out)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    assert message in err[0]
    assert str(files[culprit]) in err[0]
    assert not out.exists()
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_window_zero_is_one_sequence(tmp_path):
    """--window 0 (documented: always one sequence) is accepted, and equals a window longer than the input."""
    from dualtalk.model.checkpoint import save_model
    from dualtalk.model.dualtalk import build_model
    from dualtalk.model.presets import get_preset

    files = make_case("motion_missing_key", tmp_path)
    write_motion(files["partner_motion"])  # repaired
    files["model"] = save_model(build_model(get_preset("tiny")), tmp_path / "model")  # one set of weights
    assert run_generate(files, tmp_path / "zero.npz", "--window", "0") == 0
    assert run_generate(files, tmp_path / "long.npz", "--window", "100") == 0
    with np.load(tmp_path / "zero.npz") as a, np.load(tmp_path / "long.npz") as b:
        np.testing.assert_array_equal(a["exp"], b["exp"])


def test_a_text_file_given_as_motion_is_not_called_a_pickle(tmp_path, capsys):
    files = make_case("motion_missing_key", tmp_path)
    files["partner_motion"].write_text("not an npz at all")
    assert run_generate(files, tmp_path / "out.npz") == 2
    err = capsys.readouterr().err
    assert "not a zip archive" in err and "pickle" not in err


def test_every_case_in_table_is_distinct():
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names)) and len(names) >= 36


def test_silent_self_audio_is_valid(tmp_path):
    files = make_case("motion_missing_key", tmp_path)  # then repair the motion
    write_motion(files["partner_motion"])
    write_wav(files["self_audio"], np.zeros(T * 640))  # B only listens
    out = tmp_path / "B.npz"
    assert run_generate(files, out) == 0
    with np.load(out) as data:
        assert data["exp"].shape == (T, 50) and data["pose"].shape == (T, 6)


def test_lengths_within_tolerance_are_accepted(tmp_path):
    files = make_case("motion_missing_key", tmp_path)
    write_motion(files["partner_motion"], t=T - 2)  # tracker dropped two frames
    out = tmp_path / "B.npz"
    assert run_generate(files, out) == 0
    with np.load(out) as data:
        assert data["exp"].shape == (T, 50)


def test_error_through_the_console_script(tmp_path):
    files = make_case("motion_nan", tmp_path)
    exe = Path(sys.executable).with_name("dualtalk")
    proc = subprocess.run(
        [
            str(exe),
            "generate",
            "--model",
            "tiny",
            "--self-audio",
            str(files["self_audio"]),
            "--partner-audio",
            str(files["partner_audio"]),
            "--partner-motion",
            str(files["partner_motion"]),
            "--out",
            str(tmp_path / "B.npz"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "contains NaN" in proc.stderr and str(files["partner_motion"]) in proc.stderr
