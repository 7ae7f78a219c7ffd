"""``dualtalk render`` and ``dualtalk plot``: watch a conversation, or see its motion curves.

    dualtalk render --motion B.npz --audio B.wav --partner-motion A.npz --partner-audio A.wav \\
                    --out conversation.mp4 [--flame generic_model.pkl] [--size 512] [--smooth] \\
                    [--ground-truth B_gt.npz] [--backend auto|egl|software] [--workers N]
    dualtalk plot --motion B.npz --audio B.wav --partner-motion A.npz --partner-audio A.wav --out curves.png

Motion files are dataset ``.npz`` (``exp``, ``pose``) or (T, 56) model-order ``.npy``.
"""

from __future__ import annotations

import sys

from ..layout import frames_text
from . import output_file, positive


def _common(p) -> None:
    p.add_argument(
        "--motion", required=True, metavar="B.npz", help="the (generated) person's motion, .npz or (T, 56) .npy"
    )
    p.add_argument("--audio", metavar="B.wav", help="that person's audio (speaking/listening, and the soundtrack)")
    p.add_argument("--partner-motion", metavar="A.npz", help="the conversation partner's motion (drawn on the left)")
    p.add_argument("--partner-audio", metavar="A.wav", help="the partner's audio")
    p.add_argument("--name", metavar="TEXT", help="caption of the person (default: 'B · generated')")
    p.add_argument("--partner-name", metavar="TEXT", help="caption of the partner (default: 'A · partner')")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "render",
        help="render motion to an mp4 (one head, or both people side by side, with audio)",
        description="Render FLAME motion to an H.264 + AAC mp4 at 25 fps, headless on CPU. Without --flame the "
        "built-in head shows jaw and head rotation and a heat strip of the 50 expression "
        "coefficients; with --flame (your own FLAME generic_model.pkl) the full face.",
    )
    _common(p)
    p.add_argument("--out", required=True, type=output_file, metavar="OUT.mp4", help="output video")
    p.add_argument("--ground-truth", metavar="B_gt.npz", help="recorded motion of the same person, drawn on the right")
    p.add_argument(
        "--flame", metavar="generic_model.pkl", help="your FLAME model file (converted once to a cached .npz)"
    )
    p.add_argument(
        "--size", type=positive(int), default=512, help="panel size in pixels, a multiple of 16 (default 512)"
    )
    p.add_argument(
        "--smooth",
        action="store_true",
        help="Savitzky-Golay smoothing of expression and head rotation for display (files untouched)",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "egl", "software"),
        default="auto",
        help="rasteriser: auto = moderngl on headless EGL if available, else the built-in software one",
    )
    p.add_argument("--workers", type=positive(int), default=None, help="frame-rendering processes (default: automatic)")
    p.set_defaults(func=run_render)

    q = subparsers.add_parser(
        "plot",
        help="plot jaw, head rotation and expression curves with speaking bands",
        description="Plot jaw opening, head rotation (3 axes) and the leading expression coefficients over time "
        "for one or both people, with speaking/listening bands from voice activity.",
    )
    _common(q)
    q.add_argument(
        "--out", required=True, type=output_file, metavar="OUT.png", help="output image (.png, .pdf or .svg)"
    )
    q.add_argument(
        "--num-exp",
        type=positive(int, maximum=50),  # FLAME's expression coefficients in the motion files
        default=3,
        help="how many leading expression coefficients (1 to 50, default 3)",
    )
    q.set_defaults(func=run_plot)


def _names(args) -> dict:
    names = {}
    if args.name:
        names["self"] = args.name
    if args.partner_name:
        names["partner"] = args.partner_name
    return names


def run_render(args) -> int:
    from ..render import render_video

    result = render_video(
        args.motion,
        args.out,
        audio=args.audio,
        partner_motion=args.partner_motion,
        partner_audio=args.partner_audio,
        ground_truth=args.ground_truth,
        flame=args.flame,
        size=args.size,
        smooth=args.smooth,
        backend=args.backend,
        workers=args.workers,
        names=_names(args),
        progress=sys.stderr.isatty(),
    )
    print(
        f"wrote {result['path']}: {frames_text(result['frames'])} ({result['seconds']:.2f} s) in "
        f"{result['render_seconds']:.1f} s with the {result['backend']} backend"
    )
    return 0


def run_plot(args) -> int:
    from ..render import plot_motion

    path = plot_motion(
        args.motion,
        args.out,
        audio=args.audio,
        partner_motion=args.partner_motion,
        partner_audio=args.partner_audio,
        names=_names(args),
        num_exp=args.num_exp,
    )
    print(f"wrote {path}")
    return 0
