"""What the glTF export loses against FLAME, and what an export costs.

    .venv/bin/python benchmarks/export.py                                  # synthetic FLAME, the demo motion
    .venv/bin/python benchmarks/export.py --flame generic_model.pkl --motion B.npz   # your FLAME file

glTF has no pose-corrective blendshapes (FLAME's vertex offsets driven by the joint rotations) and its joints
do not move with the expression. Over a motion, per frame, over the vertices used by faces:

- ``correctives``: ``FlameModel.vertices`` with against without the pose correctives (mean and max mm);
- ``gltf``: ``FlameModel.vertices`` against what a glTF viewer shows (``dualtalk.export.skinned_vertices``:
  no correctives, joints fixed at the template, top-4 weights).

No real FLAME file is available to this project (it is licensed by MPI and never shipped), so by default the
model is the synthetic one of ``dualtalk.flame.write_synthetic_flame`` (FLAME's layout and joint positions;
random smooth pose correctives of ~0.2 mm per unit of the rotation feature): the numbers show the method, not
FLAME's real loss; pass ``--flame`` for yours. The motion defaults to the real tracked sample of the shared
demo data (``../shared/data/dualtalk_demo``), else a synthetic conversation's.

Also the export's time and the ``.glb`` sizes (FLAME and built-in head). Writes benchmarks/results/export.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from dualtalk.export import export_gltf, pose_corrective_error
from dualtalk.flame import load_flame, write_synthetic_flame
from dualtalk.io.motion import Motion, load_motion

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO.parent / "shared" / "data" / "dualtalk_demo" / "xkHwlcDSOjc_sub_video_109_000_speaker1.npz"


def demo_motion() -> tuple[Motion, str]:
    if DEMO.exists():
        return load_motion(DEMO), f"shared demo data: {DEMO.name} (real tracked FLAME motion)"
    from dualtalk.synth import make_conversation

    conv = make_conversation(seconds=30, seed=0)
    return conv.motion[1], "synthetic conversation (dualtalk.synth, seed 0, speaker 1)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flame", help="a FLAME model file (default: a synthetic one)")
    ap.add_argument("--motion", help="a motion .npz (default: the shared demo sample)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "export.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.flame:
            flame_path, flame_note = Path(args.flame), f"user FLAME file {Path(args.flame).name}"
        else:
            flame_path = write_synthetic_flame(Path(tmp) / "generic_model.pkl")
            flame_note = "synthetic (dualtalk.flame.write_synthetic_flame, seed 0): not FLAME's real correctives"
        model = load_flame(flame_path)
        motion, motion_note = (load_motion(args.motion), args.motion) if args.motion else demo_motion()
        t0 = time.perf_counter()
        loss = pose_corrective_error(model, motion)
        measure_s = time.perf_counter() - t0
        sizes, times = {}, {}
        for kind, flame in (("flame", model), ("builtin", None)):
            out = Path(tmp) / f"{kind}.glb"
            t0 = time.perf_counter()
            export_gltf(motion, out, flame=flame)
            times[kind] = time.perf_counter() - t0
            sizes[kind] = out.stat().st_size
    rot = np.linalg.norm(motion.global_rot, axis=1)
    jaw = np.linalg.norm(motion.jaw, axis=1)
    result = {
        "flame": flame_note,
        "motion": motion_note,
        "frames": len(motion),
        "rotation_deg": {
            "head_mean": float(np.degrees(rot.mean())),
            "head_max": float(np.degrees(rot.max())),
            "jaw_mean": float(np.degrees(jaw.mean())),
            "jaw_max": float(np.degrees(jaw.max())),
        },
        "vertices": loss["vertices"],
        "correctives_mm": {k: loss["correctives"][k] for k in ("mean_mm", "max_mm")},
        "gltf_vs_flame_mm": {k: loss["gltf"][k] for k in ("mean_mm", "max_mm")},
        "worst_frame_mean_mm": {
            "correctives": max(loss["correctives"]["per_frame_mean_mm"]),
            "gltf": max(loss["gltf"]["per_frame_mean_mm"]),
        },
        "glb_bytes": sizes,
        "export_seconds": times,
        "measure_seconds": measure_s,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    c, g = result["correctives_mm"], result["gltf_vs_flame_mm"]
    print(f"{result['frames']} frames of {motion_note}; FLAME: {flame_note}")
    print(f"pose correctives: mean {c['mean_mm']:.4f} mm, max {c['max_mm']:.4f} mm")
    print(f"glTF vs FLAME (all of it): mean {g['mean_mm']:.4f} mm, max {g['max_mm']:.4f} mm")
    mb = {k: v / 1e6 for k, v in sizes.items()}
    print(f"export: {times['flame']:.2f} s, {mb['flame']:.2f} MB (FLAME); {mb['builtin']:.2f} MB (built-in)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
