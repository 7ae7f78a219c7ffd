"""The ``export_*`` rows of ``bad_inputs.tsv``: bad inputs of ``dualtalk export`` and ``dualtalk fit-arkit-map``.

Each case writes its files into the test's directory and runs the command with outputs under ``out/``, which
must stay empty (no half-written .glb/.csv/.json).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

from dualtalk.cli import main

T = 30


def _good_map() -> dict:
    return {"rows": {"jawOpen": {"weights": [0.0] * 50 + [2.0, 0, 0, 0, 0, 0], "bias": 0.0}}}


def make_export_case(case: str, tmp: Path, motion: Path) -> dict:
    """Files of an export case; ``motion`` is a valid motion .npz already written (T frames)."""
    files: dict = {"motion": motion, "arkit_map": tmp / "MAP.json", "format": None}
    files["arkit_map"].write_text(json.dumps(_good_map()))
    if case == "export_map_unknown_name":
        files["arkit_map"].write_text(json.dumps({"rows": {"jawOpn": _good_map()["rows"]["jawOpen"]}}))
    elif case == "export_map_wrong_width":
        files["arkit_map"].write_text(json.dumps({"rows": {"jawOpen": {"weights": [0.0] * 50}}}))
    elif case == "export_map_name_twice":  # json itself would keep the second silently
        row = json.dumps(_good_map()["rows"]["jawOpen"])
        files["arkit_map"].write_text(f'{{"rows": {{"jawOpen": {row}, "jawOpen": {row}}}}}')
    elif case == "export_map_not_json":
        files["arkit_map"].write_text("jawOpen: [1, 2]\n")
    elif case == "export_motion_layout":
        np.savez(motion, exp=np.zeros((T, 50), np.float32), pose=np.zeros((T, 3), np.float32))
    elif case == "export_flame_no_expression":
        from dualtalk.flame import write_synthetic_flame

        path = write_synthetic_flame(tmp / "generic_model.pkl", num_vertices=300, num_faces=None)
        with open(path, "rb") as fh:
            data = pickle.load(fh, encoding="latin1")  # our own synthetic file: numpy and scipy only
        data["shapedirs"] = data["shapedirs"][:, :, :300]  # shape blendshapes only, no expression
        path.write_bytes(pickle.dumps(data, protocol=2))
        files["flame"] = path
    elif case == "export_audio_not_audio":
        files["audio"] = tmp / "B.wav"
        files["audio"].write_text("not audio\n")
    elif case == "export_bad_format":
        files["option"] = "--format"
    elif case == "export_arkit_without_map":
        files["option"] = "--arkit-map"
    elif case == "export_unknown_suffix":
        files["option"] = "--out"
    elif case in ("export_arkit_motion_with_map", "export_arkit_motion_flame_head"):  # an ARKit model's output
        rng = np.random.default_rng(0)
        np.savez(motion, arkit=rng.uniform(0, 1, (T, 52)).astype(np.float32), head=np.zeros((T, 3), np.float32))
        files["flame"] = tmp / "generic_model.pkl"  # never read: the motion is refused first
    elif case in ("export_fit_length_mismatch", "export_fit_out_of_range"):
        frames = T + 30 if case == "export_fit_length_mismatch" else T
        value = 0.5 if case == "export_fit_length_mismatch" else 1.5
        files["arkit"] = tmp / "A.csv"
        files["arkit"].write_text("Timecode,BlendShapeCount,JawOpen\n" + f"00:00:00:00.000,1,{value}\n" * frames)
    elif case in ("export_fit_misspelt_column", "export_fit_column_twice", "export_fit_l2_infinite"):
        files["arkit"] = tmp / "A.csv"
        header = {"export_fit_misspelt_column": "Timecode,BlendShapeCount,JawOpn,HeadYaw"}.get(case, "JawOpen,jawOpen")
        header = "Timecode,BlendShapeCount,JawOpen,HeadYaw" if case == "export_fit_l2_infinite" else header
        files["option"] = "--l2"
        files["arkit"].write_text(header + "\n" + "00:00:00:00.000,1,0.5,0\n" * T)
    else:  # pragma: no cover
        raise AssertionError(f"unknown case {case}")
    return files


def run_export_case(case: str, files: dict, out: Path) -> int:
    """Run the command of an export case with its outputs in ``out.parent``."""
    d = out.parent
    motion = str(files["motion"])
    if case.startswith("export_fit_"):
        extra = ["--l2", "inf"] if case == "export_fit_l2_infinite" else []
        return main(
            ["fit-arkit-map", "--flame-motion", motion, "--arkit", str(files["arkit"]), "--out", str(d / "MAP.json")]
            + extra
        )
    if case == "export_bad_format":
        return main(["export", "--motion", motion, "--out", str(d / "B.glb"), "--format", "fbx"])
    if case == "export_unknown_suffix":
        return main(["export", "--motion", motion, "--out", str(d / "B.fbx")])
    if case == "export_arkit_motion_with_map":
        return main(["export", "--motion", motion, "--out", str(d / "B.csv"), "--arkit-map", str(files["arkit_map"])])
    if case == "export_arkit_motion_flame_head":
        return main(["export", "--motion", motion, "--out", str(d / "B.glb"), "--flame", str(files["flame"])])
    if case.startswith("export_map_") or case == "export_arkit_without_map":
        options = [] if case == "export_arkit_without_map" else ["--arkit-map", str(files["arkit_map"])]
        return main(["export", "--motion", motion, "--out", str(d / "B.csv"), "--format", "arkit-csv", *options])
    options = []
    if "flame" in files:
        options += ["--flame", str(files["flame"])]
    if "audio" in files:
        options += ["--audio", str(files["audio"])]
    return main(["export", "--motion", motion, "--out", str(d / "B.glb"), *options])
