"""``dualtalk export`` and ``dualtalk fit-arkit-map``: motion as glTF animation or ARKit blendshape weights.

    dualtalk export --motion B.npz --out B.glb [--flame generic_model.pkl] [--audio B.wav]
    dualtalk export --motion B.npz --out B.csv --format arkit-csv --arkit-map MAP.json
    dualtalk export --motion B.npz --out B.json --format arkit-json --arkit-map MAP.json
    dualtalk export --motion B_arkit.npz --out B.csv            # ARKit motion (an ARKit model's): no map
    dualtalk export --motion B.npz --out B_arkit.npz --format arkit-npz --arkit-map MAP.json   # ARKit data
    dualtalk fit-arkit-map --flame-motion A.npz B.npz --arkit A.csv B.csv --out MAP.json [--flame ...]

Reads motion files only (never a model). Library: :mod:`dualtalk.export`.
"""

from __future__ import annotations

import argparse

from ..errors import DualTalkError
from ..layout import frames_text
from . import output_file, positive

FORMATS = ("auto", "glb", "arkit-csv", "arkit-json", "arkit-npz")
_BY_SUFFIX = {".glb": "glb", ".csv": "arkit-csv", ".json": "arkit-json"}


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="motion to a glTF 2.0 animation (.glb) or ARKit blendshape weights (Live Link Face CSV, JSON)",
        description="Export motion (FLAME .npz or (T, 56) .npy; ARKit .npz or (T, 55) .npy) for other tools. glb: "
        "the head (your FLAME model with --flame: template, 50 expression morph targets, FLAME's skeleton and "
        "weights; else the built-in head, also for ARKit motion: jaw from jawOpen) with one 25 fps animation. "
        "arkit-csv / arkit-json: the 52 ARKit blendshapes (FLAME motion through a linear map, --arkit-map, see "
        "dualtalk fit-arkit-map; ARKit motion as it is) plus head yaw/pitch/roll; arkit-npz: ARKit motion "
        "(arkit, head), training data for motion_layout arkit. See docs/export.md.",
    )
    p.add_argument("--motion", required=True, metavar="B.npz", help="motion file (.npz dataset layout or .npy)")
    p.add_argument("--out", required=True, type=output_file, metavar="OUT", help="output file (.glb, .csv or .json)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="glb, arkit-csv, arkit-json or arkit-npz (default auto: from --out's suffix .glb, .csv or .json)",
    )
    p.add_argument("--flame", metavar="generic_model.pkl", help="glb: your FLAME model (default: the built-in head)")
    p.add_argument(
        "--audio", metavar="B.wav", help="glb: copied beside the .glb and named in asset.extras (glTF has no audio)"
    )
    p.add_argument(
        "--arkit-map", metavar="MAP.json", help="arkit-*: the FLAME -> ARKit map (needed for FLAME motion only)"
    )
    p.set_defaults(func=run_export)

    q = subparsers.add_parser(
        "fit-arkit-map",
        help="fit a FLAME -> ARKit map from paired FLAME motion and ARKit weights",
        description="Fit the linear FLAME -> ARKit map used by dualtalk export --format arkit-*: per ARKit name a "
        "censored ridge regression (outputs clipped to [0, 1]) on the 56 motion inputs, mirrored names tied. "
        "Pairs are given in order and must be at the same 25 fps. Prints the error on the held-out frames.",
    )
    q.add_argument("--flame-motion", required=True, nargs="+", metavar="M.npz", help="motion files (.npz or .npy)")
    q.add_argument(
        "--arkit", required=True, nargs="+", metavar="A.csv", help="ARKit files (Live Link Face CSV or JSON)"
    )
    q.add_argument("--out", required=True, type=output_file, metavar="MAP.json", help="the map to write")
    q.add_argument("--l2", type=positive(float, allow_zero=True), default=1e-3, help="ridge penalty (default 1e-3)")
    q.add_argument(
        "--symmetry",
        type=positive(float, allow_zero=True),
        default=1.0,
        help="weight tying mirrored names (...Left/...Right); 0 fits them independently (default 1)",
    )
    q.add_argument(
        "--holdout", type=_fraction, default=0.2, help="last fraction of each sequence held out (default 0.2)"
    )
    q.add_argument("--flame", metavar="generic_model.pkl", help="your FLAME model: ties expression weights too")
    q.set_defaults(func=run_fit)


def run_export(args) -> int:
    from pathlib import Path

    fmt = args.format
    if fmt == "auto":
        fmt = _BY_SUFFIX.get(Path(args.out).suffix.lower())
        if fmt is None:
            raise DualTalkError(
                f"--out {args.out}: cannot tell the format from the suffix; use .glb, .csv or .json, or --format"
            )
    if fmt == "glb":
        if args.arkit_map:
            raise DualTalkError("--arkit-map applies to --format arkit-csv / arkit-json, not glb")
        from ..export.gltf import export_gltf

        s = export_gltf(args.motion, args.out, flame=args.flame, audio=args.audio)
        extra = f", audio {s['audio']}" if "audio" in s else ""
        print(
            f"wrote {s['path']}: {s['head']} head, {frames_text(s['frames'])} at {s['fps']} fps, "
            f"channels {', '.join(s['channels'])}{extra}"
        )
        return 0
    for option in ("flame", "audio"):
        if getattr(args, option):
            raise DualTalkError(f"--{option} applies to --format glb, not {fmt}")
    from ..export.arkit import export_arkit

    s = export_arkit(args.motion, args.out, args.arkit_map, format=fmt)
    how = "mapped" if s["source_layout"] == "flame" else "from ARKit motion"
    frames = frames_text(s["frames"])
    print(f"wrote {s['path']}: {frames} at {s['fps']} fps, {s['channels']} of 52 ARKit channels {how}")
    return 0


def run_fit(args) -> int:
    from ..export.arkit import fit_arkit_map_files

    amap = fit_arkit_map_files(
        args.flame_motion,
        args.arkit,
        out=args.out,
        flame=args.flame,
        l2=args.l2,
        symmetry=args.symmetry,
        holdout=args.holdout,
    )
    fit = amap.fit
    held = fit.get("heldout")
    tail = (
        f"held-out RMSE {held['rmse']:.4f}, MAE {held['mae']:.4f} over {fit['heldout_frames']} frames"
        if held
        else "no held-out frames"
    )
    print(f"wrote {args.out}: {len(fit['names'])} ARKit names from {fit['train_frames']} frames; {tail}")
    return 0
