"""The service: a FastAPI app around one model, with live WebSocket sessions and one-shot generation.

    from dualtalk.serve.app import Limits, create_app
    app = create_app("demo-stream", token=None, max_sessions=16, limits=Limits(idle_seconds=30))

    from fastapi.testclient import TestClient
    client = TestClient(app)
    client.get("/v1/models").json()        # {"models": [{"name": "demo-stream", "streamable": true, ...}]}
    with client.websocket_connect("/v1/stream") as ws:
        ws.receive_json()                  # hello
        ...

Routes: ``GET /healthz``, ``GET /v1/models``, ``POST /v1/generate`` (multipart: ``self_audio``,
``partner_audio``, optional ``partner_motion`` .npz, ``format`` npz|json, ``both``; an ARKit model's motion as
``arkit`` + ``head``), ``WS /v1/stream``
(:mod:`dualtalk.serve.protocol`), ``GET /v1/head`` (the head the page draws: the built-in head's or, with
``flame``, the FLAME model's definition, :mod:`dualtalk.render.heads`) and the page itself: ``GET /`` and
its static files under ``/web/`` (``dualtalk/assets/web``; public: no data, so no token needed).
FastAPI resolves the routes' annotations at import, so this module imports FastAPI (the ``serve`` extra)
at the top; ``dualtalk.serve`` imports it only when serving.

Each session keeps its own state; its model calls run in worker threads, so the event loop stays
responsive and one session's input, stall or disconnect ends only that session. The queue of a
session's unprocessed messages is bounded: a client sending faster than real time is served as fast
as the CPU allows, then read more slowly (TCP backpressure), and the queued audio goes into one model
call.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import json
import logging
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import DualTalkError
from ..io.motion import motion_values_problem
from ..layout import get_layout
from .protocol import (
    CLOSE_DONE,
    SIDE_MOTION,
    SIDE_SELF,
    VERSION,
    End,
    Hello,
    Motion,
    ProtocolError,
    Ready,
    Start,
    decode_binary,
    parse_text,
)

log = logging.getLogger("dualtalk.serve")

#: environment variable carrying ``create_app``'s arguments to uvicorn's worker processes (``--workers``)
ENV_CONFIG = "DUALTALK_SERVE_CONFIG"
#: the browser page (index.html, its module, css and the vendored three.js), shipped in the wheel
WEB_DIR = Path(__file__).resolve().parents[1] / "assets" / "web"


@dataclass
class Limits:
    """Per-session limits (each breach closes that session with its own code, see ``protocol.CLOSE_CODES``)."""

    max_message_bytes: int = 1 << 20  # one WebSocket message (32 s of 16 kHz float32 audio)
    max_session_seconds: float = 3600.0  # audio per voice, and wall-clock time, of one session
    idle_seconds: float = 30.0  # no message for this long ends the session
    queue_messages: int = 64  # unprocessed messages held per session before reading pauses
    max_upload_bytes: int = 64 << 20  # each file of POST /v1/generate


def model_info(name: str, model) -> dict:
    """What ``/v1/models`` says about a model."""
    from ..inference.pipeline import needs_partner_motion

    cfg = model.config
    streamable = cfg.variant == "causal"
    return {
        "name": name,
        "variant": cfg.variant,
        "streamable": streamable,
        "needs_partner_motion": needs_partner_motion(model),
        "joint": streamable and cfg.use_partner_motion and cfg.partner_motion_delay >= 1,
        "sample_rate": cfg.sample_rate,
        "fps": cfg.fps,
        "latency_ms": 1000.0 * (cfg.lookahead_frames + 1) / cfg.fps if streamable else None,
        "motion_layout": cfg.motion_layout,
        "motion_dim": cfg.motion_dim,
    }


class _Runner:
    """One session's model state: listen (one generated person) or joint (both); runs in a worker thread."""

    def __init__(self, model, start: Start, convert=None):
        from ..inference.streaming import JointSession, StreamingSession

        self.mode = start.mode
        self.convert = convert  # model-order frames -> the frames the client asked for (None: as they are)
        self.fps = model.config.fps
        self.sent = {"self": 0} if start.mode == "listen" else {"self": 0, "partner": 0}
        if start.mode == "joint":
            self.joint: Any = JointSession(model, sample_rate=start.sample_rate)
        else:
            self.session = StreamingSession(model, partner_motion=start.partner_motion, sample_rate=start.sample_rate)

    def push(self, mine, partner, motion) -> dict[str, np.ndarray]:
        if self.mode == "joint":  # as stream_files: session a is the partner, b the person
            other, own = self.joint.push(partner, mine)
            return self._out({"self": own, "partner": other})
        return self._out({"self": self.session.push(mine, partner, motion)})

    def flush(self) -> dict[str, np.ndarray]:
        if self.mode == "joint":
            other, own = self.joint.flush()
            return self._out({"self": own, "partner": other})
        return self._out({"self": self.session.flush()})

    def _out(self, frames: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return frames if self.convert is None else {p: self.convert(x) for p, x in frames.items()}


class _Batcher:
    """Continuous batching of the live listen sessions' model calls (``streaming.push_many``): a call made
    while a batch computes waits for the next one, which takes every call waiting then (at most
    ``max_batch``). An idle server computes a call at once; a busy one pays the model's per-call overhead once
    per batch instead of once per session."""

    def __init__(self, max_batch: int):
        self.max_batch = max_batch
        self.waiting: list[tuple[Any, tuple, asyncio.Future]] = []
        self.task: asyncio.Task | None = None

    async def push(self, session, args: tuple) -> tuple[np.ndarray, float]:
        """``session.push(*args)`` in the next batch -> (frames, milliseconds of that batch's compute)."""
        fut = asyncio.get_running_loop().create_future()
        self.waiting.append((session, args, fut))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        from anyio import to_thread

        from ..inference.streaming import push_many

        while self.waiting:
            batch, self.waiting = self.waiting[: self.max_batch], self.waiting[self.max_batch :]
            began = time.perf_counter()
            results: list[Any]
            try:
                results = await to_thread.run_sync(push_many, [b[0] for b in batch], [b[1] for b in batch])
            except Exception as exc:  # noqa: BLE001 - a bug: each session of the batch reports it, the server goes on
                results = [exc] * len(batch)
            ms = 1000.0 * (time.perf_counter() - began)
            for (_, _, fut), result in zip(batch, results):
                if fut.done():  # its session ended meanwhile
                    continue
                if isinstance(result, BaseException):
                    fut.set_exception(result)
                else:
                    fut.set_result((result, ms))


async def send_within(ws, text: str, seconds: float) -> None:
    """Send a text message to a WebSocket client; one that has read nothing for ``seconds`` (its socket full, TCP
    holding the server's send back) is a :class:`ProtocolError` ``idle``, which ends its session as an idle one
    would, instead of holding its slot and memory for ever."""
    try:
        await asyncio.wait_for(ws.send_text(text), seconds)
    except asyncio.TimeoutError:
        raise ProtocolError("idle", f"the client read nothing for {seconds:g} s") from None


def _audio_seconds(path: Path) -> float | None:
    """The length of an uploaded audio file by its header (nothing decoded); None where it has none that
    libsndfile reads (the file is then refused when it is decoded, with its reason)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None
    return info.frames / info.samplerate if info.samplerate > 0 else None


def _join(parts: list[np.ndarray]) -> np.ndarray | None:
    return None if not parts else parts[0] if len(parts) == 1 else np.concatenate(parts)


def create_app(
    model_name: str = "demo-stream",
    token: str | None = None,
    max_sessions: int = 16,
    limits: Limits | None = None,
    allowed_origins: list[str] | None = None,
    model=None,
    flame: str | os.PathLike | None = None,
    arkit_map: str | os.PathLike | None = None,
    max_batch: int = 32,
):
    """The FastAPI app serving ``model_name`` (a packaged name, directory or preset; or ``model`` itself).

    ``token``: required on every HTTP request and WebSocket handshake (``Authorization: Bearer T`` or
    ``?token=T``), except the page's static files. ``allowed_origins``: browser origins allowed besides
    the server's own (a request without an ``Origin`` header, i.e. not from a browser, is allowed).
    ``flame``: the user's FLAME file (``generic_model.pkl``): the page draws it instead of the built-in head.
    ``arkit_map``: a FLAME -> ARKit map (``dualtalk fit-arkit-map``): sessions may ask for ``"output": "arkit"``
    (an ARKit model offers it without a map). ``max_batch``: live listen sessions whose model calls are
    computed together at most (continuous batching; 1: each on its own)."""
    from .. import __version__
    from ..model.checkpoint import load_model
    from ..render.heads import BuiltinHead, FlameHead

    if isinstance(model_name, os.PathLike):  # a model directory as a Path
        model_name = os.fspath(model_name)
    limits = limits or Limits()
    flame_model = None
    if flame is not None:
        from ..flame import load_flame

        flame_model = load_flame(flame)  # a bad file is one error line here, at start-up
    amap = None
    if arkit_map is not None:
        from ..export.arkit import load_arkit_map

        amap = load_arkit_map(arkit_map)  # a bad file is one error line here, at start-up
    net = model if model is not None else load_model(model_name)
    layout = get_layout(net.config.motion_layout)
    head_json: list[bytes] = []  # the definition, encoded at the first request
    public_name = Path(model_name).name if os.sep in model_name or "/" in model_name else model_name
    info = model_info(public_name, net)
    if amap is not None and layout.name != "flame":
        raise DualTalkError(f"--arkit-map maps FLAME motion, but the model {public_name!r} is an ARKit model already")
    info["outputs"] = ["motion", "arkit"] if (layout.name == "arkit" or amap is not None) else ["motion"]
    origins = {o.rstrip("/") for o in (allowed_origins or [])}
    secret = token.encode() if token else None
    active = {"sessions": 0}
    if not isinstance(max_batch, int) or max_batch < 1:
        raise DualTalkError(f"max_batch must be a positive whole number, got {max_batch!r}")
    batcher = _Batcher(max_batch) if max_batch > 1 else None

    app = FastAPI(title="dualtalk", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(RequestValidationError)
    async def bad_request_fields(_request: Request, exc: RequestValidationError) -> JSONResponse:
        """A missing or wrong-typed field: the documented error shape, not FastAPI's ``detail``."""
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        message = f"{where}: {first.get('msg', 'invalid request')}"
        return JSONResponse({"error": {"type": "error", "code": "bad_message", "message": message}}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Errors the framework raises (an unreadable multipart body, an unknown path): the same shape."""
        code = {404: "not_found", 405: "not_allowed", 413: "too_big"}.get(exc.status_code, "bad_message")
        message = str(exc.detail)[:200]
        return JSONResponse(
            {"error": {"type": "error", "code": code, "message": message}},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    def access_problem(headers, query, need_token: bool = True) -> ProtocolError | None:
        """The token (constant-time) and the Origin of a request or handshake."""
        if secret is not None and need_token:
            given = ""
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            given = given or query.get("token", "")
            if not hmac.compare_digest(given.encode(), secret):
                return ProtocolError("unauthorized", "missing or wrong token (Authorization: Bearer T or ?token=T)")
        origin = headers.get("origin")
        if origin is not None:
            same = urlsplit(origin).netloc.lower() == headers.get("host", "").lower() and origin != "null"
            if not same and origin.rstrip("/") not in origins:
                return ProtocolError("forbidden_origin", f"origin {origin[:100]!r} is not allowed (--allow-origin)")
        return None

    def acquire() -> bool:
        if active["sessions"] >= max_sessions:
            return False
        active["sessions"] += 1
        return True

    def release() -> None:
        active["sessions"] -= 1

    def is_page(path: str) -> bool:
        """The page and its static files: the same for everyone (they are in the wheel), so no token."""
        return path == "/" or path.startswith("/web/")

    @app.middleware("http")
    async def check_access(request: Request, call_next):
        problem = access_problem(request.headers, request.query_params, need_token=not is_page(request.url.path))
        if problem is not None:
            status = 401 if problem.code == "unauthorized" else 403
            return JSONResponse({"error": problem.payload()}, status_code=status)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > 3 * limits.max_upload_bytes + (1 << 20):
            return JSONResponse(
                {"error": {"type": "error", "code": "too_big", "message": "request body too large"}}, status_code=413
            )
        return await call_next(request)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {
            "status": "ok",
            "protocol": VERSION,
            "dualtalk": __version__,
            "model": public_name,
            "sessions": active["sessions"],
            "max_sessions": max_sessions,
        }

    @app.get("/v1/models")
    async def models() -> dict:
        return {"models": [info]}

    @app.get("/v1/head")
    async def head_definition() -> Response:
        """The head the page draws (:meth:`BuiltinHead.definition` or :meth:`FlameHead.definition`)."""
        if not head_json:
            from anyio import to_thread

            def encode() -> bytes:
                head = FlameHead(flame_model) if flame_model is not None else BuiltinHead()
                return json.dumps(head.definition()).encode()

            head_json.append(await to_thread.run_sync(encode))
        return Response(head_json[0], media_type="application/json", headers={"cache-control": "no-cache"})

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"cache-control": "no-cache"})

    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")

    @app.post("/v1/generate")
    async def generate(
        self_audio: Annotated[UploadFile, File()],
        partner_audio: Annotated[UploadFile, File()],
        partner_motion: Annotated[UploadFile | None, File()] = None,
        format: Annotated[str, Form()] = "npz",
        both: Annotated[bool, Form()] = False,
    ):
        from anyio import to_thread

        def fail(status: int, code: str, message: str):
            return JSONResponse({"error": {"type": "error", "code": code, "message": message}}, status_code=status)

        if format not in ("npz", "json"):
            return fail(422, "bad_message", f"format must be npz or json, got {format[:20]!r}")
        uploads = {"self_audio": self_audio, "partner_audio": partner_audio, "partner_motion": partner_motion}
        for field, upload in uploads.items():
            if upload is not None and (upload.size or 0) > limits.max_upload_bytes:
                return fail(413, "too_big", f"{field}: larger than {limits.max_upload_bytes} bytes")
        if not acquire():
            return fail(503, "busy", f"too many sessions ({max_sessions}): try again later")
        try:
            with tempfile.TemporaryDirectory(prefix="dualtalk-serve-") as tmp:
                paths: dict[str, Path | None] = {}
                for field, upload in uploads.items():  # fixed names: nothing the client sends is a path
                    if upload is None:
                        paths[field] = None
                        continue
                    paths[field] = Path(tmp) / field
                    paths[field].write_bytes(await upload.read())  # type: ignore[union-attr]
                for field in ("self_audio", "partner_audio"):  # by the header, before anything is decoded
                    given = paths[field]
                    seconds = _audio_seconds(given) if given is not None else None
                    if seconds is not None and seconds > limits.max_session_seconds:
                        return fail(
                            413, "too_long", f"{field}: {seconds:.0f} s of audio, more than the session limit "
                            f"({limits.max_session_seconds:g} s)",
                        )  # fmt: skip
                partner_out = Path(tmp) / "partner_out.npz" if both else None

                def work():
                    from ..inference.pipeline import generate as run
                    from ..io.motion import load_any_motion as load_motion

                    mine = run(
                        net, paths["self_audio"], paths["partner_audio"], paths["partner_motion"], None,
                        partner_out=partner_out,
                    )  # fmt: skip
                    return mine, (load_motion(partner_out) if partner_out is not None else None)

                try:
                    mine, other = await to_thread.run_sync(work)
                except DualTalkError as exc:
                    return fail(422, "bad_input", str(exc).replace(tmp + os.sep, ""))
        finally:
            release()

        def layout_arrays(m) -> dict[str, Any]:  # the motion file's keys: exp, pose or arkit, head
            if m.layout == "arkit":
                return {"arkit": m.weights, "head": m.head_rot}
            return {"exp": m.exp, "pose": m.flame_pose}

        arrays = layout_arrays(mine)
        if other is not None:
            arrays.update({f"partner_{k}": v for k, v in layout_arrays(other).items()})
        if not all(np.isfinite(v).all() for v in arrays.values()):  # never NaN in a reply (not even valid JSON)
            return fail(500, "internal", "the model computed NaN or infinite motion from these inputs")
        if format == "json":
            body: dict[str, Any] = {"fps": mine.fps, "frames": len(mine)}
            body.update({k: v.tolist() for k, v in layout_arrays(mine).items()})
            if other is not None:
                body["partner"] = {"frames": len(other), **{k: v.tolist() for k, v in layout_arrays(other).items()}}
            return JSONResponse(body)
        buffer = io.BytesIO()
        np.savez(buffer, **{k: v.astype(np.float32) for k, v in arrays.items()})
        return Response(
            buffer.getvalue(),
            media_type="application/octet-stream",
            headers={"content-disposition": 'attachment; filename="motion.npz"'},
        )

    # --- WS /v1/stream ------------------------------------------------------------------------------

    async def send_error(ws: WebSocket, err: ProtocolError) -> None:
        try:  # bounded: a client that reads nothing must not hold the session here either
            await asyncio.wait_for(ws.send_text(json.dumps(err.payload())), min(5.0, limits.idle_seconds))
            await asyncio.wait_for(ws.close(*err.close), min(5.0, limits.idle_seconds))
        except Exception:  # noqa: BLE001 - the client may already be gone
            pass

    async def send_text(ws: WebSocket, text: str) -> None:
        await send_within(ws, text, limits.idle_seconds)

    async def receive(ws: WebSocket, deadline: float) -> bytes | str | None:
        """The next message's bytes or text; None when the client disconnected."""
        loop = asyncio.get_running_loop()
        left = deadline - loop.time()
        if left <= 0:
            raise ProtocolError("too_long", f"the session lasted {limits.max_session_seconds:g} s (the limit)")
        try:
            message = await asyncio.wait_for(ws.receive(), min(limits.idle_seconds, left))
        except asyncio.TimeoutError:
            if loop.time() >= deadline:
                raise ProtocolError(
                    "too_long", f"the session lasted {limits.max_session_seconds:g} s (the limit)"
                ) from None
            raise ProtocolError("idle", f"no message for {limits.idle_seconds:g} s") from None
        if message["type"] == "websocket.disconnect":
            return None
        data = message.get("bytes")
        if data is not None:
            if len(data) > limits.max_message_bytes:
                raise ProtocolError("too_big", f"a message of {len(data)} bytes (at most {limits.max_message_bytes})")
            return data
        text = message.get("text") or ""
        if len(text) > limits.max_message_bytes or len(text.encode()) > limits.max_message_bytes:
            raise ProtocolError("too_big", f"a text message over {limits.max_message_bytes} bytes")
        return text

    dim = layout.dim

    async def reader(ws: WebSocket, start: Start, queue: asyncio.Queue, deadline: float) -> None:
        """Messages after ``start`` -> the session's bounded queue (decoded and checked here)."""
        most = int(limits.max_session_seconds * start.sample_rate)
        received = [0, 0]
        try:
            while True:
                data = await receive(ws, deadline)
                if data is None:
                    await queue.put(("disconnect",))
                    return
                if isinstance(data, bytes):
                    side, x = decode_binary(data, start.encoding, dim)
                    if side == SIDE_MOTION:
                        await queue.put(("motion", x))
                        continue
                    received[side] += len(x)
                    if received[side] > most:
                        raise ProtocolError(
                            "too_long", f"more than {limits.max_session_seconds:g} s of audio (the session limit)"
                        )
                    await queue.put(("audio", side, x))
                    continue
                msg = parse_text(data)
                if isinstance(msg, Start):
                    raise ProtocolError("bad_message", "start was already sent in this session")
                if isinstance(msg, Motion):
                    if any(len(row) != dim for row in msg.frames):
                        raise ProtocolError("bad_input", f"motion frames must be {dim} numbers each")
                    frames = np.asarray(msg.frames, dtype=np.float32).reshape(-1, dim)
                    problem = motion_values_problem(frames)
                    if problem is not None:
                        raise ProtocolError("bad_input", f"partner motion {problem}")
                    await queue.put(("motion", frames))
                    continue
                assert isinstance(msg, End)
                await queue.put(("end",))
                return
        except ProtocolError as exc:
            await queue.put(("error", exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug here must still end the session, not hang it
            log.exception("reading a session failed")
            await queue.put(("error", ProtocolError("internal", f"internal error ({type(exc).__name__})")))

    async def process(ws: WebSocket, runner: _Runner, queue: asyncio.Queue) -> None:
        from anyio import to_thread

        def timed(fn, *args):
            began = time.perf_counter()
            return fn(*args), 1000.0 * (time.perf_counter() - began)

        async def run(fn, *args) -> None:
            try:
                if batcher is not None and fn == runner.push and runner.mode == "listen":
                    frames, compute_ms = await batcher.push(runner.session, args)
                    out = runner._out({"self": frames})
                else:
                    out, compute_ms = await to_thread.run_sync(timed, fn, *args)
            except DualTalkError as exc:
                raise ProtocolError("bad_input", str(exc)) from None
            for person, frames in out.items():
                if len(frames) and not np.isfinite(frames).all():  # NaN is not JSON: the session ends, said why
                    raise ProtocolError("internal", "the model computed NaN or infinite motion from these inputs")
                if len(frames):
                    start = runner.sent[person]
                    runner.sent[person] += len(frames)
                    message = {"type": "frames", "person": person, "start": start, "t": start / runner.fps}
                    message["compute_ms"] = round(compute_ms, 3)  # the model call that made these frames
                    message["frames"] = frames.tolist()
                    await send_text(ws, json.dumps(message))

        while True:
            items = [await queue.get()]
            while not queue.empty():  # what arrived meanwhile: one model call
                items.append(queue.get_nowait())
            audio: list[list[np.ndarray]] = [[], []]
            motion: list[np.ndarray] = []
            terminal = None
            for item in items:
                if item[0] == "audio":
                    audio[item[1]].append(item[2])
                elif item[0] == "motion":
                    if runner.mode == "joint":
                        raise ProtocolError("bad_message", "joint mode generates both people: send no partner motion")
                    motion.append(item[1])
                else:
                    terminal = item
                    break
            if audio[0] or audio[1] or motion:
                await run(runner.push, _join(audio[SIDE_SELF]), _join(audio[1]), _join(motion))
            if terminal is None:
                continue
            if terminal[0] == "error":
                raise terminal[1]
            if terminal[0] == "disconnect":
                return
            await run(runner.flush)
            await send_text(ws, json.dumps({"type": "done", "frames": dict(runner.sent)}))
            await ws.close(*CLOSE_DONE)
            return

    async def session(ws: WebSocket) -> None:
        if not info["streamable"]:
            raise ProtocolError(
                "not_streamable",
                f"the served model {public_name!r} is {info['variant']!r}, not causal: use POST /v1/generate",
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.max_session_seconds
        hello = Hello(
            model=public_name,
            sample_rate=info["sample_rate"],
            fps=info["fps"],
            latency_ms=info["latency_ms"],
            needs_partner_motion=info["needs_partner_motion"],
            joint=info["joint"],
            motion_dim=layout.dim,
            motion_layout=layout.name,
            outputs=info["outputs"],
            max_message_bytes=limits.max_message_bytes,
            max_session_seconds=limits.max_session_seconds,
            idle_seconds=limits.idle_seconds,
        )
        await ws.send_text(hello.model_dump_json())
        first = await receive(ws, deadline)
        if first is None:
            return
        if isinstance(first, bytes):
            raise ProtocolError("bad_message", "binary message before start (send the start message first)")
        start = parse_text(first)
        if not isinstance(start, Start):
            raise ProtocolError("bad_message", f"the first message must be start, got {start.type!r}")
        if start.mode == "joint" and not info["joint"]:
            raise ProtocolError("bad_message", f"the served model {public_name!r} cannot generate both people")
        if start.mode == "joint" and start.partner_motion:
            raise ProtocolError("bad_message", "joint mode generates both people: partner_motion must be false")
        if start.output not in info["outputs"]:
            raise ProtocolError(
                "bad_message",
                f"output {start.output!r} is not available (outputs: {', '.join(info['outputs'])}): ARKit output "
                "needs an ARKit model or a server started with --arkit-map MAP.json",
            )
        convert, channels = None, list(layout.channels)
        if start.output == "arkit":
            from ..export.arkit import ARKIT_CHANNELS, arkit_channels

            convert, channels = (lambda x: arkit_channels(x, layout.name, amap)), list(ARKIT_CHANNELS)
        try:
            runner = _Runner(net, start, convert)
        except DualTalkError as exc:
            raise ProtocolError("bad_message", str(exc)) from None
        sid = uuid.uuid4().hex[:12]
        ready = Ready(
            session=sid, mode=start.mode, partner_motion=start.partner_motion, output=start.output, channels=channels
        )
        await ws.send_text(ready.model_dump_json())
        queue: asyncio.Queue = asyncio.Queue(maxsize=max(1, limits.queue_messages))
        task = asyncio.create_task(reader(ws, start, queue, deadline))
        try:
            await process(ws, runner, queue)
        finally:
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001 - its cancellation, or the error already reported
                pass

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        problem = access_problem(ws.headers, ws.query_params)
        await ws.accept()  # accepted first so that a browser sees the close code and reason
        if problem is not None:
            await send_error(ws, problem)
            return
        if not acquire():
            await send_error(ws, ProtocolError("busy", f"too many sessions ({max_sessions}): try again later"))
            return
        try:
            await session(ws)
        except ProtocolError as exc:
            await send_error(ws, exc)
        except Exception as exc:  # noqa: BLE001 - a bug or a vanished client ends this session only
            from starlette.websockets import WebSocketDisconnect

            if not isinstance(exc, (WebSocketDisconnect, OSError)):
                log.exception("session failed")
                await send_error(ws, ProtocolError("internal", f"internal error ({type(exc).__name__})"))
        finally:
            release()

    app.state.limits = limits
    app.state.model_info = info
    return app


def create_app_from_env():
    """The app of a uvicorn worker process (``dualtalk serve --workers N``): arguments from ``ENV_CONFIG``."""
    import torch

    config = json.loads(os.environ[ENV_CONFIG])
    config["limits"] = Limits(**config.get("limits", {}))
    torch.set_num_threads(int(config.pop("threads", 1)))  # what serve() set in the parent, for this process
    return create_app(**config)


def config_to_env(**kwargs) -> str:
    """``create_app``'s arguments as the JSON that :func:`create_app_from_env` reads."""
    if isinstance(kwargs.get("limits"), Limits):
        kwargs["limits"] = asdict(kwargs["limits"])
    return json.dumps(kwargs)


__all__ = ["ENV_CONFIG", "Limits", "config_to_env", "create_app", "create_app_from_env", "model_info"]
