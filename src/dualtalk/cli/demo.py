"""``dualtalk demo``: the offline end-to-end demo (see :mod:`dualtalk.demo`)."""

from __future__ import annotations

from . import output_dir, positive


def _demo(args) -> int:
    from ..demo import run_demo, summary

    result = run_demo(
        out_dir=args.out,
        seconds=args.seconds,
        seed=args.seed,
        model=args.model,
        self_audio=args.self_audio,
        partner_audio=args.partner_audio,
        partner_motion=args.partner_motion,
        ground_truth=args.ground_truth,
        video=not args.no_video,
        size=args.size,
        progress=not args.quiet,
    )
    print(summary(result))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="offline demo: synthetic conversation -> generated motion, plot, metrics, video",
        description="Without options: a fresh synthetic conversation, the small model shipped in "
        "the package, and every output in --out. With --model and real files: the same "
        "on your inputs.",
    )
    p.add_argument("--out", default="demo_output", type=output_dir, help="output directory (default demo_output)")
    p.add_argument(
        "--seconds", type=positive(float), default=20.0, help="length of the synthetic conversation (default 20)"
    )
    p.add_argument(
        "--seed", type=positive(int, allow_zero=True), help="seed of the synthetic conversation (default: a fresh one)"
    )
    p.add_argument("--model", help="a model (directory, hf-hub: id, .pth) instead of the shipped demo model")
    p.add_argument("--self-audio", help="audio of the person to generate (real-input mode)")
    p.add_argument("--partner-audio", help="audio of the partner (real-input mode)")
    p.add_argument("--partner-motion", help="motion of the partner (real-input mode)")
    p.add_argument("--ground-truth", help="recorded motion of the generated person, for metrics (real-input mode)")
    p.add_argument("--size", type=positive(int), default=384, help="video panel size in pixels (default 384)")
    p.add_argument("--no-video", action="store_true", help="skip the video")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_demo)
