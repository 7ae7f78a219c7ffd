"""``dualtalk serve``: the model as an HTTP + WebSocket service (the ``serve`` extra: FastAPI, uvicorn).

dualtalk serve                                                 # demo-stream on http://127.0.0.1:8000
dualtalk serve --model M --port 9000 --max-sessions 32
dualtalk serve --flame generic_model.pkl                       # the page (http://127.0.0.1:8000/) draws FLAME
dualtalk serve --arkit-map MAP.json                            # clients may ask for ARKit weights ("output": "arkit")
DUALTALK_TOKEN=s3cret dualtalk serve --host 0.0.0.0 --workers 2   # other machines: a token is required
dualtalk stream --server ws://127.0.0.1:8000/v1/stream --self-audio B.wav --partner-audio A.wav --out B.npz
"""

from __future__ import annotations

import os

from . import positive


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model over HTTP and WebSocket (live sessions, one-shot generation)",
        description="GET /healthz, GET /v1/models, POST /v1/generate, the live WS /v1/stream "
        "(protocol: docs/serve.md) and a page at GET / that animates two heads live in the browser.",
    )
    p.add_argument("--model", default="demo-stream", help="directory, packaged name or preset (default: demo-stream)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=positive(int, maximum=65535), default=8000, help="port (default 8000)")
    p.add_argument(
        "--token",
        default=os.environ.get("DUALTALK_TOKEN"),
        help="required on every request (Authorization: Bearer T, or ?token=T); needed for a non-loopback "
        "--host (default: $DUALTALK_TOKEN)",
    )
    p.add_argument("--max-sessions", type=positive(int), default=16, help="concurrent sessions per worker (16)")
    p.add_argument("--workers", type=positive(int), default=1, help="uvicorn worker processes (default 1)")
    p.add_argument("--max-message-kb", type=positive(int), default=1024, help="largest WebSocket message in KiB (1024)")
    p.add_argument(
        "--max-session-seconds", type=positive(float), default=3600.0, help="audio and wall time per session (3600)"
    )
    p.add_argument("--idle-seconds", type=positive(float), default=30.0, help="close a silent session after (30)")
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin allowed besides the server's own, e.g. https://app.example (repeatable)",
    )
    p.add_argument(
        "--flame",
        default=None,
        metavar="PKL",
        help="your FLAME model file (generic_model.pkl): the page draws the FLAME head instead of the built-in one",
    )
    p.add_argument(
        "--arkit-map",
        default=None,
        metavar="MAP.json",
        help="a FLAME -> ARKit map (dualtalk fit-arkit-map): sessions may ask for named ARKit weights "
        '("output": "arkit"); an ARKit model offers them without a map',
    )
    p.add_argument("--threads", type=positive(int), default=1, help="CPU threads per model call (default 1)")
    p.add_argument(
        "--max-batch",
        type=positive(int),
        default=32,
        help="live sessions whose model calls are computed as one batch at most (default 32; 1: each on its own)",
    )
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import require

    require("fastapi", "serve")  # before the app module, which imports it: one line, not a traceback
    require("uvicorn", "serve")
    from ..serve import check_bind, serve
    from ..serve.app import Limits

    check_bind(args.host, args.token)  # before anything is loaded
    limits = Limits(
        max_message_bytes=args.max_message_kb * 1024,
        max_session_seconds=args.max_session_seconds,
        idle_seconds=args.idle_seconds,
    )
    serve(
        args.model,
        host=args.host,
        port=args.port,
        token=args.token,
        max_sessions=args.max_sessions,
        limits=limits,
        allowed_origins=args.allow_origin,
        workers=args.workers,
        log_level=args.log_level,
        threads=args.threads,
        flame=args.flame,
        arkit_map=args.arkit_map,
        max_batch=args.max_batch,
    )
    return 0
