"""``dualtalk generate``, ``dualtalk predict``, ``dualtalk convert-official``."""

from __future__ import annotations

import argparse
import sys

from ..errors import DualTalkError
from ..inference.pipeline import DEFAULT_OVERLAP_SECONDS, DEFAULT_WINDOW_SECONDS, InferenceOptions, has_native_bf16
from ..layout import frames_text
from . import distinct_outputs, motion_output, output_dir, positive


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        required=True,
        help="model directory, packaged model (demo, demo-stream), hf-hub:ORG/NAME, released-layout "
        ".pth, or preset name (random weights)",
    )
    p.add_argument("--config", help="config json of a released-layout .pth whose shapes are not the released ones")
    p.add_argument("--device", default="cpu", help="cpu (default, the reference), cuda, mps")
    dtype_args(p)
    p.add_argument(
        "--window",
        type=positive(float, allow_zero=True),
        default=DEFAULT_WINDOW_SECONDS,
        help=f"inputs longer than this many seconds run in overlapping windows (default "
        f"{DEFAULT_WINDOW_SECONDS:g}; 0 = always one sequence)",
    )
    p.add_argument(
        "--overlap",
        type=positive(float, allow_zero=True),
        default=DEFAULT_OVERLAP_SECONDS,
        help=f"seconds shared by neighbouring windows, cross-faded (default {DEFAULT_OVERLAP_SECONDS:g})",
    )
    p.add_argument(
        "--int8", action="store_true", help="int8 dynamic quantisation of the linear layers (CPU): faster, not exact"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def dtype_args(p: argparse.ArgumentParser, int8: bool = True) -> None:
    """``--dtype auto|float32|bfloat16`` (default auto) and ``--exact`` (float32, the reference arithmetic)."""
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="arithmetic: auto (default) = bfloat16 where the device has it natively (CPU with AVX512-BF16 or "
        f"AMX, CUDA GPUs from Ampere on; not causal models{', not with --int8' if int8 else ''}), else float32",
    )
    p.add_argument(
        "--exact",
        action="store_true",
        help="float32: the reference implementation's arithmetic (same as --dtype float32)",
    )


def resolved_dtype_arg(args) -> str:
    """The ``--dtype`` the options ask for, ``--exact`` applied (an error if it contradicts them). Asking for
    bfloat16 on a device without native bfloat16 is allowed (the output is the same) with one warning line:
    emulated, it is far slower than float32 (about 380x in matrix products on an AVX2 CPU,
    ``benchmarks/results/generate_avx2.json``)."""
    if not args.exact:
        if args.dtype == "bfloat16":
            device = getattr(args, "device", "cpu") or "cpu"
            if not has_native_bf16(device):
                print(
                    f"warning: {device} has no native bfloat16 (a CPU needs avx512_bf16 or amx_bf16): --dtype "
                    "bfloat16 runs emulated there, far slower than float32 (--dtype auto picks float32 here)",
                    file=sys.stderr,
                )
        return args.dtype
    if args.dtype == "bfloat16" or getattr(args, "int8", False):
        raise DualTalkError("--exact is float32 arithmetic: leave out --dtype bfloat16 / --int8")
    return "float32"


def _options(args) -> InferenceOptions:
    return InferenceOptions(
        device=args.device,
        dtype=resolved_dtype_arg(args),
        window=args.window,
        overlap=args.overlap,
        progress=not args.quiet,
        int8=args.int8,
    )


def _generate(args) -> int:
    from ..inference.pipeline import generate

    distinct_outputs(args, "--out", "--partner-out")
    motion = generate(
        args.model,
        args.self_audio,
        args.partner_audio,
        args.partner_motion,
        args.out,
        config=args.config,
        options=_options(args),
        partner_out=args.partner_out,
    )
    also = f" and {args.partner_out}" if args.partner_out else ""
    print(f"wrote {args.out}{also}: {frames_text(len(motion))} ({len(motion) / motion.fps:.2f} s)")
    return 0


def _predict(args) -> int:
    from ..inference.pipeline import predict, shard_from_env

    index, count = shard_from_env()
    written = predict(args.model, args.data, args.out, config=args.config, options=_options(args), workers=args.workers)
    where = f" (shard {index + 1} of {count})" if count > 1 else ""
    print(f"wrote {len(written)} prediction(s) to {args.out}{where}")
    return 0


def _convert(args) -> int:
    from ..model.checkpoint import convert_official

    out = convert_official(args.src, args.out_dir, args.config, overwrite=args.overwrite)
    print(f"wrote {out}/config.json and {out}/model.safetensors")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="generate one person's motion from both audios and the partner's motion",
        description="Write the motion of the person speaking in --self-audio (dataset layout npz).",
    )
    _model_args(p)
    p.add_argument("--self-audio", required=True, help="audio of the person to generate (WAV, FLAC, OGG, ...)")
    p.add_argument("--partner-audio", required=True, help="audio of the conversation partner")
    p.add_argument(
        "--partner-motion",
        help="partner motion (.npz: exp (T,50), pose (T,6); or a (T,56) model-order .npy, what predict "
        "writes); without it, a causal "
        "model trained for it (e.g. demo-stream) runs on the two voices alone",
    )
    p.add_argument(
        "--partner-out",
        type=motion_output,
        help="also generate the partner (joint mode, causal models): output .npz (or .npy, model order)",
    )
    p.add_argument(
        "--out",
        required=True,
        type=motion_output,
        help="output .npz (exp (T,50), pose (T,6) = [global, jaw]), or .npy (the (T,56) model-order array)",
    )
    p.set_defaults(func=_generate)

    p = sub.add_parser(
        "predict",
        help="generate every conversation of a split (both directions)",
        description="Write PRED_DIR/NAME_speakerK.npy (T,56) [exp, jaw, global] for every side "
        "whose partner has motion.",
    )
    _model_args(p)
    p.add_argument("--data", required=True, help="split directory with NAME_speaker{1,2}.{wav,npz}")
    p.add_argument("--out", required=True, type=output_dir, help="prediction directory")
    p.add_argument(
        "--workers",
        type=positive(int),
        default=1,
        help="processes on this machine, each with its share of the cores and of the conversations (default 1); "
        "under torchrun each rank takes every WORLD_SIZE-th conversation",
    )
    p.set_defaults(func=_predict)

    p = sub.add_parser("convert-official", help="convert a released-layout DualTalk .pth to a model directory")
    p.add_argument("src", help="released-layout checkpoint (.pth), loaded with weights_only=True")
    p.add_argument("out_dir", type=output_dir, help="output model directory (config.json + model.safetensors)")
    p.add_argument("--config", help="config json (form of the parity fixture's); default: released shapes")
    p.add_argument("--overwrite", action="store_true", help="replace a model directory already at out_dir")
    p.set_defaults(func=_convert)
