"""``dualtalk serve``: the model as an HTTP + WebSocket service (FastAPI + uvicorn; the ``serve`` extra).

    from dualtalk.serve import serve
    serve("demo-stream", host="127.0.0.1", port=8000)                     # blocks; Ctrl-C stops it
    serve("demo-stream", host="0.0.0.0", port=8000, token="s3cret", workers=2)
    serve("demo-stream", flame="generic_model.pkl")                      # the page draws the FLAME head
    serve("demo-stream", arkit_map="MAP.json")                           # clients may ask for ARKit weights

    from dualtalk.serve.app import create_app                            # the app itself (tests, embedding)

The protocol is in :mod:`dualtalk.serve.protocol`, the client in :mod:`dualtalk.client`, the recipe for
running replicas behind a load balancer in docs/serve.md. ``GET /`` is a page that streams two audio files
(or a microphone and a file) and animates both heads live in the browser (``dualtalk/assets/web``).
"""

from __future__ import annotations

import ipaddress

from ..errors import DualTalkError, require


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(host: str, token: str | None) -> None:
    """A non-loopback address needs a token: one :class:`DualTalkError` line otherwise."""
    if not is_loopback(host) and not token:
        raise DualTalkError(
            f"--host {host} is reachable from other machines: give --token (or DUALTALK_TOKEN), or bind 127.0.0.1"
        )


def check_port(host: str, port: int) -> None:
    """The address can be listened on (not taken by another server, a port this user may open): one
    :class:`DualTalkError` line otherwise, before the model is loaded. Checked by binding it once, as
    uvicorn then does (with ``SO_REUSEADDR``: a port whose last connections are closing is free)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise DualTalkError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise DualTalkError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(
    model: str = "demo-stream",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    max_sessions: int = 16,
    limits=None,
    allowed_origins: list[str] | None = None,
    workers: int = 1,
    log_level: str = "info",
    flame: str | None = None,
    threads: int = 1,
    arkit_map: str | None = None,
    max_batch: int = 32,
) -> None:
    """Run the service until interrupted. ``workers`` > 1: that many uvicorn processes on one port (each
    loads the model and has its own ``max_sessions``). ``flame``: the user's FLAME file, drawn by the page
    instead of the built-in head. ``arkit_map``: a FLAME -> ARKit map; sessions may then ask for
    ``"output": "arkit"`` (named ARKit weights; an ARKit model offers it without a map). ``threads``: torch's
    CPU threads per process (one model call of a live session is small: more threads per call only compete
    with the other sessions' calls). ``max_batch``: live sessions whose model calls are computed as one batch
    at most (1: each on its own)."""
    import os

    import torch

    require("fastapi", "serve")
    uvicorn = require("uvicorn", "serve")
    from .app import ENV_CONFIG, Limits, config_to_env, create_app

    check_bind(host, token)
    check_port(host, port)
    torch.set_num_threads(threads)
    limits = limits or Limits()
    common = dict(
        host=host,
        port=port,
        log_level=log_level,
        ws_max_size=limits.max_message_bytes + 4096,  # larger ones are cut by the server: close 1009
        proxy_headers=True,
        # no permessage-deflate: audio (float samples) does not compress, and compressing every frame message
        # cost the server more CPU than the model (benchmarks/serve.py); clients that offer it just go without
        ws_per_message_deflate=False,
    )
    if workers > 1:
        from ..model.checkpoint import load_model

        load_model(model)  # a bad --model (or --flame, --arkit-map) is one error line here, not one per worker
        if flame is not None:
            from ..flame import load_flame

            load_flame(flame)
        if arkit_map is not None:
            from ..export.arkit import load_arkit_map

            load_arkit_map(arkit_map)
        os.environ[ENV_CONFIG] = config_to_env(
            model_name=model,
            token=token,
            max_sessions=max_sessions,
            limits=limits,
            allowed_origins=allowed_origins,
            flame=None if flame is None else os.path.abspath(flame),
            threads=threads,
            arkit_map=None if arkit_map is None else os.path.abspath(arkit_map),
            max_batch=max_batch,
        )
        uvicorn.run("dualtalk.serve.app:create_app_from_env", factory=True, workers=workers, **common)
        return
    app = create_app(
        model,
        token=token,
        max_sessions=max_sessions,
        limits=limits,
        allowed_origins=allowed_origins,
        flame=flame,
        arkit_map=arkit_map,
        max_batch=max_batch,
    )
    uvicorn.run(app, **common)


__all__ = ["check_bind", "check_port", "is_loopback", "serve"]
