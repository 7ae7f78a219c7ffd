"""``dualtalk stream``: feed audio files to a causal model in chunks, as a live source would.

    dualtalk stream --self-audio B.wav --partner-audio A.wav --out B.npz                 # demo-stream, audio only
    dualtalk stream --model M --self-audio B.wav --partner-audio A.wav --partner-motion A.npz --out B.npz \\
        --chunk-ms 40 --realtime --stats stats.json
    dualtalk stream --self-audio B.wav --partner-audio A.wav --partner-out A.npz --out B.npz   # both heads
    dualtalk stream --self-audio mic --partner-audio A.wav --out B.npz --seconds 30   # live (extra 'live')
    dualtalk stream --server ws://127.0.0.1:8000/v1/stream --self-audio B.wav --partner-audio A.wav --out B.npz
    dualtalk stream --server URL --self-audio B.wav --partner-audio A.wav --out B.json --format arkit-json  # ARKit
    dualtalk stream --self-audio B.wav --partner-audio A.wav --out B.csv --arkit-map MAP.json   # local, mapped
"""

from __future__ import annotations

import os

from ..layout import frames_text
from . import distinct_outputs, output_file, positive
from .inference import dtype_args


def register(sub) -> None:
    p = sub.add_parser(
        "stream",
        help="stream two audio files through a causal model (live use, measured)",
        description="Feed the files in chunks as a live source would and write the motion that "
        "the streaming model makes final, plus latency and compute statistics.",
    )
    p.add_argument(
        "--model",
        default="demo-stream",
        help="a causal model: directory, packaged name or preset (default: demo-stream, shipped)",
    )
    p.add_argument(
        "--self-audio",
        required=True,
        help="audio of the person to generate (WAV, FLAC, OGG, ...), or mic / mic:DEVICE for a live microphone",
    )
    p.add_argument("--partner-audio", required=True, help="audio of the conversation partner (a file, or mic[:DEVICE])")
    p.add_argument("--partner-motion", help="partner motion (.npz); without it the model runs on audio alone")
    p.add_argument("--partner-out", type=output_file, help="also generate the partner (joint mode): output .npz")
    p.add_argument(
        "--out",
        required=True,
        type=output_file,
        help="output: .npz motion (exp (T,50), pose (T,6) = [global, jaw]; an ARKit model's: arkit, head), or "
        "with --format arkit-csv / arkit-json the ARKit weights and head angles",
    )
    p.add_argument(
        "--format",
        choices=("auto", "npz", "arkit-csv", "arkit-json"),
        default="auto",
        help="npz (motion), arkit-csv (Live Link Face CSV) or arkit-json; default auto: .csv and .json by the "
        "suffix of --out, else npz. ARKit output of a FLAME model: --arkit-map (local) or a server started with one",
    )
    p.add_argument(
        "--arkit-map", metavar="MAP.json", help="local FLAME model, --format arkit-*: the FLAME -> ARKit map"
    )
    dtype_args(p, int8=False)
    p.add_argument("--chunk-ms", type=positive(float), default=40.0, help="chunk length in ms (default 40)")
    p.add_argument("--realtime", action="store_true", help="pace the chunks at the clock, as a live source")
    p.add_argument(
        "--stats", type=output_file, help="write the statistics (latency, compute per chunk, real-time factor) as JSON"
    )
    p.add_argument(
        "--threads",
        type=positive(int),
        default=1,
        help="CPU threads for the model (default 1: a frame's small operations gain nothing from more, and "
        "concurrent sessions each take a core)",
    )
    p.add_argument(
        "--seconds",
        type=positive(float),
        help="with a microphone: stop after this long (default: at the file's end or Ctrl-C)",
    )
    p.add_argument(
        "--server",
        metavar="URL",
        help="stream through a dualtalk serve instead of a local model (ws://HOST:PORT/v1/stream; --model is "
        "the server's)",
    )
    p.add_argument("--token", default=os.environ.get("DUALTALK_TOKEN"), help="the server's token ($DUALTALK_TOKEN)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    import torch

    from ..errors import DualTalkError
    from ..inference.streaming import is_microphone, stream_files, stream_live
    from .inference import resolved_dtype_arg

    torch.set_num_threads(args.threads)
    dtype = resolved_dtype_arg(args)
    distinct_outputs(args, "--out", "--partner-out", "--stats")
    fmt = args.format
    if fmt == "auto":
        fmt = {".csv": "arkit-csv", ".json": "arkit-json"}.get(Path(args.out).suffix.lower(), "npz")
    if fmt == "npz":  # a motion file is read back by its suffix: .npz (or .npy), not whatever --out says
        from ..io.motion import check_motion_suffix

        for out in (args.out, args.partner_out):
            if out is not None:
                check_motion_suffix(out)
    if args.server and (args.model != "demo-stream" or args.dtype != "auto" or args.exact):
        raise DualTalkError("--server runs the server's model: leave out --model, --dtype and --exact")

    if is_microphone(args.self_audio) or is_microphone(args.partner_audio):
        if args.server:
            raise DualTalkError("--server streams files: a microphone is streamed by the local model")
        if args.partner_motion:
            raise DualTalkError("--partner-motion is a file: with a microphone the partner's face is not tracked")
        s = stream_live(
            args.model,
            args.self_audio,
            args.partner_audio,
            args.out,
            partner_out=args.partner_out,
            seconds=args.seconds,
            stats=args.stats,
            chunk_ms=args.chunk_ms,
            format=fmt,
            arkit_map=args.arkit_map,
            dtype=dtype,
        )
        print(f"wrote {args.out}: {frames_text(s['frames'])} of live audio ({s['seconds']:.1f} s)")
        return 0
    if args.seconds is not None:
        raise DualTalkError("--seconds bounds a microphone recording: give --self-audio or --partner-audio mic")
    if args.server:
        from ..client import stream_files_remote

        if args.arkit_map:
            raise DualTalkError(
                "--arkit-map is for a local model: a server maps with its own (dualtalk serve --arkit-map)"
            )

        r = stream_files_remote(
            args.server,
            args.self_audio,
            args.partner_audio,
            args.out,
            partner_motion=args.partner_motion,
            partner_out=args.partner_out,
            chunk_ms=args.chunk_ms,
            realtime=args.realtime,
            stats=args.stats,
            token=args.token,
            format=fmt,
        )
        print(
            f"wrote {args.out}{' and ' + args.partner_out if args.partner_out else ''}: {r['frames']} frames from "
            f"{args.server} ({r['model']}); {r['wall_seconds']:.2f} s for {r['seconds']:.2f} s of audio"
        )
        return 0
    s = stream_files(
        args.model,
        args.self_audio,
        args.partner_audio,
        args.out,
        partner_motion=args.partner_motion,
        partner_out=args.partner_out,
        chunk_ms=args.chunk_ms,
        realtime=args.realtime,
        stats=args.stats,
        format=fmt,
        arkit_map=args.arkit_map,
        dtype=dtype,
    )
    c = s["compute_ms_per_chunk"]
    print(
        f"wrote {args.out}{' and ' + args.partner_out if args.partner_out else ''}: {s['frames']} frames; "
        f"latency {s['algorithmic_latency_ms']:.0f} ms, compute per {args.chunk_ms:g} ms chunk p50 {c['p50']:.2f} ms "
        f"p95 {c['p95']:.2f} ms, real-time factor {s['real_time_factor']:.3f}"
    )
    return 0
