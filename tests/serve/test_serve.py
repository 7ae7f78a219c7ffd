"""dualtalk serve: HTTP routes, the /v1/stream protocol (equal to the local sessions), bad input, limits,
security, and ``dualtalk stream --server`` through a real uvicorn on a free loopback port."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("websockets")

from fastapi.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from dualtalk.inference.streaming import JointSession, StreamingSession  # noqa: E402
from dualtalk.serve.app import Limits, create_app  # noqa: E402
from dualtalk.serve.protocol import SIDE_PARTNER, SIDE_SELF, encode_audio, encode_motion  # noqa: E402

SR = 16000


def tiny_model(seed: int = 0):
    from dualtalk.model.dualtalk import build_model
    from dualtalk.model.presets import get_preset

    torch.manual_seed(seed)
    m = build_model(get_preset("tiny-stream")).eval()  # partner_motion_dropout 0.3: audio alone is allowed
    m.set_motion_statistics(np.full(56, 0.1), np.full(56, 0.5))
    return m


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from dualtalk.model.checkpoint import save_model

    return save_model(tiny_model(), tmp_path_factory.mktemp("serve") / "model")


@pytest.fixture(scope="module")
def net(model_dir):
    from dualtalk.model.checkpoint import load_model

    return load_model(str(model_dir))


def make_app(model_dir, **kwargs):
    return create_app(str(model_dir), **kwargs)


def signals(seconds: float = 1.2, seed: int = 3):
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    a = (0.1 * rng.standard_normal(n) * (1 + np.sin(np.arange(n) / 900.0))).astype(np.float32)
    b = (0.1 * rng.standard_normal(n) * (1 + np.cos(np.arange(n) / 700.0))).astype(np.float32)
    motion = (0.3 * rng.standard_normal((-(-n // 640), 56))).astype(np.float32)
    return a, b, motion


def start(ws, **fields):
    hello = ws.receive_json()
    assert hello["type"] == "hello" and hello["version"] == "1"
    ws.send_text(json.dumps({"type": "start", "version": "1", **fields}))
    ready = ws.receive_json()
    assert ready["type"] == "ready", ready
    return hello


def collect(ws) -> tuple[dict[str, np.ndarray], dict]:
    """Frames until done; checks that each person's frames arrive in order."""
    out: dict[str, list] = {}
    while True:
        msg = ws.receive_json()
        if msg["type"] == "done":
            return {p: np.asarray(sum(f, []), np.float32) for p, f in out.items()}, msg
        assert msg["type"] == "frames", msg
        parts = out.setdefault(msg["person"], [])
        assert msg["start"] == sum(map(len, parts)) and msg["t"] == pytest.approx(msg["start"] / 25)
        parts.append(msg["frames"])


def expect_error(ws, code: str, close: int) -> dict:
    msg = ws.receive_json()
    assert msg["type"] == "error" and msg["code"] == code, msg
    with pytest.raises(WebSocketDisconnect) as info:
        ws.receive_json()
    assert info.value.code == close
    return msg


# ----------------------------------------------------------------------------------------------------
# HTTP


def test_healthz_and_models(model_dir):
    client = TestClient(make_app(model_dir))
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["protocol"] == "1" and health["sessions"] == 0
    (info,) = client.get("/v1/models").json()["models"]
    assert info["name"] == "model"  # the directory's name, not its path
    assert info["variant"] == "causal" and info["streamable"] and info["joint"]
    assert info["needs_partner_motion"] is False and info["latency_ms"] == 120.0


def wav_bytes(x: np.ndarray) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def test_generate_multipart_npz_and_json(model_dir, net):
    from dualtalk.inference.pipeline import run_causal, run_joint
    from dualtalk.io.motion import Motion

    a, b, motion = signals()
    client = TestClient(make_app(model_dir))
    buf = io.BytesIO()
    np.savez(buf, exp=Motion.from_model(motion).exp, pose=Motion.from_model(motion).flame_pose)
    files = {"self_audio": ("B.wav", wav_bytes(a)), "partner_audio": ("../../etc/passwd", wav_bytes(b))}
    r = client.post("/v1/generate", files={**files, "partner_motion": ("A.npz", buf.getvalue())})
    assert r.status_code == 200, r.text
    got = np.load(io.BytesIO(r.content))
    expected = run_causal(net, a, b, motion)
    np.testing.assert_allclose(Motion.from_layout(got["exp"], got["pose"]).to_model(), expected, atol=1e-5)

    r = client.post("/v1/generate", files=files, data={"format": "json"})  # audio only
    body = r.json()
    assert r.status_code == 200 and body["fps"] == 25 and body["frames"] == len(expected)
    alone = Motion.from_layout(np.asarray(body["exp"]), np.asarray(body["pose"])).to_model()
    np.testing.assert_allclose(alone, run_causal(net, a, b, None), atol=1e-5)

    r = client.post("/v1/generate", files=files, data={"format": "json", "both": "true"})  # joint
    body = r.json()
    other, mine = run_joint(net, b, a)
    np.testing.assert_allclose(
        Motion.from_layout(np.asarray(body["exp"]), np.asarray(body["pose"])).to_model(), mine, atol=1e-5
    )
    p = body["partner"]
    np.testing.assert_allclose(
        Motion.from_layout(np.asarray(p["exp"]), np.asarray(p["pose"])).to_model(), other, atol=1e-5
    )

    bad = client.post("/v1/generate", files={**files, "self_audio": ("x.wav", b"not audio")})
    assert bad.status_code == 422 and "self_audio" in bad.json()["error"]["message"]
    assert "dualtalk-serve-" not in bad.text  # the server's temporary paths are not shown


def test_generate_errors_have_the_documented_shape(model_dir):
    """Missing or wrong-typed fields, a body that is not multipart, audio longer than the session limit (by
    its header: a few kB declaring hours at a low rate are not decoded) and a rate no recording has: each
    ``{"error": {"code", "message"}}`` with its status, never FastAPI's ``detail``."""
    import soundfile as sf

    a, b, _ = signals()
    client = TestClient(make_app(model_dir, limits=Limits(max_session_seconds=60)))
    cases = {
        "missing field": ({"files": {"self_audio": ("B.wav", wav_bytes(a))}}, 422, "partner_audio"),
        "wrong type": (
            {"files": {"self_audio": ("B.wav", wav_bytes(a)), "partner_audio": ("A.wav", wav_bytes(b))},
             "data": {"both": "maybe"}},
            422,
            "both",
        ),
        "not multipart": ({"content": b"x", "headers": {"content-type": "text/plain"}}, 422, "self_audio"),
    }  # fmt: skip
    long = io.BytesIO()
    sf.write(long, np.zeros(2 * 3600 * 4000, np.int16), 4000, format="WAV", subtype="PCM_16")  # 2 hours
    for name, (kwargs, status, text) in cases.items():
        r = client.post("/v1/generate", **kwargs)
        assert r.status_code == status and "detail" not in r.json(), (name, r.text)
        assert r.json()["error"]["code"] == "bad_message" and text in r.json()["error"]["message"], name
    r = client.post(
        "/v1/generate", files={"self_audio": ("B.wav", long.getvalue()), "partner_audio": ("A.wav", wav_bytes(b))}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_long" and "self_audio" in r.text
    slow = io.BytesIO()
    sf.write(slow, np.zeros(100, np.float32), 1000, format="WAV", subtype="FLOAT")
    r = client.post(
        "/v1/generate", files={"self_audio": ("B.wav", slow.getvalue()), "partner_audio": ("A.wav", wav_bytes(b))}
    )
    assert r.status_code == 422 and "sample rate 1000 Hz" in r.json()["error"]["message"]


def test_a_client_that_reads_nothing_ends_its_session_as_idle():
    """A send the client never reads (its socket full: TCP holds the server back) ends the session after the
    idle time, with the idle error, instead of holding its slot for ever."""
    import asyncio

    from dualtalk.serve.app import send_within
    from dualtalk.serve.protocol import ProtocolError

    class NeverReads:
        async def send_text(self, text: str) -> None:
            await asyncio.Event().wait()  # blocked for good

    class Reads:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send_text(self, text: str) -> None:
            self.sent.append(text)

    with pytest.raises(ProtocolError) as info:
        asyncio.run(send_within(NeverReads(), "{}", 0.05))
    assert info.value.code == "idle" and "read nothing" in str(info.value)
    reads = Reads()
    asyncio.run(send_within(reads, "{}", 0.05))
    assert reads.sent == ["{}"]


# ----------------------------------------------------------------------------------------------------
# the stream protocol equals the local sessions


def chunks(n: int, rng) -> list[tuple[int, int]]:
    cuts, i = [], 0
    while i < n:
        j = min(n, i + int(rng.integers(1, 2000)))
        cuts.append((i, j))
        i = j
    return cuts


def test_concurrent_listen_calls_are_computed_as_one_batch(model_dir):
    """The service's continuous batching: model calls of live sessions that arrive while a batch computes go
    together (one forward for all of them) and give each session what it gets alone; an idle server
    computes a call at once."""
    import asyncio

    from dualtalk.model.checkpoint import load_model
    from dualtalk.serve.app import _Batcher

    net = load_model(str(model_dir))
    sizes: list[int] = []
    real = net.forward_frames

    def counting(*args, **kw):
        sizes.append(args[0].shape[0])
        return real(*args, **kw)

    net.forward_frames = counting
    cases = [signals(1.0, seed=s) for s in (21, 22, 23, 24)]
    sessions = [StreamingSession(net, partner_motion=False) for _ in cases]

    async def main() -> list[list[np.ndarray]]:
        batcher = _Batcher(32)
        outs: list[list[np.ndarray]] = [[] for _ in cases]
        for i in range(0, len(cases[0][0]), 640):  # a 40 ms chunk of every session at once, as real time does
            calls = [batcher.push(s, (a[i : i + 640], b[i : i + 640], None)) for s, (a, b, _) in zip(sessions, cases)]
            for k, (frames, ms) in enumerate(await asyncio.gather(*calls)):
                assert ms >= 0
                outs[k].append(frames)
        a, b, _ = signals(0.2, seed=25)
        before = len(sizes)
        await batcher.push(StreamingSession(net, partner_motion=False), (a, b, None))  # alone: at once
        assert sizes[before:] == [1]
        return outs

    outs = asyncio.run(main())
    assert max(sizes) == len(cases) and sizes.count(len(cases)) > 10
    for out, session, (a, b, _) in zip(outs, sessions, cases):
        local = StreamingSession(load_model(str(model_dir)), partner_motion=False)
        want = np.concatenate([local.push(a, b, None), local.flush()])
        np.testing.assert_allclose(np.concatenate(out + [session.flush()]), want, atol=1e-5)


@pytest.mark.parametrize("with_motion", [False, True])
def test_listen_mode_equals_streaming_session(model_dir, net, with_motion):
    a, b, motion = signals()
    local = StreamingSession(net, partner_motion=with_motion)
    expected = np.concatenate([local.push(a, b, motion if with_motion else None), local.flush()])
    rng = np.random.default_rng(1)
    with TestClient(make_app(model_dir)) as client, client.websocket_connect("/v1/stream") as ws:
        start(ws, mode="listen", partner_motion=with_motion, sample_rate=SR, encoding="f32le")
        for i, j in chunks(len(a), rng):  # the two voices cut differently
            ws.send_bytes(encode_audio(SIDE_SELF, a[i:j]))
        for i, j in chunks(len(b), rng):
            ws.send_bytes(encode_audio(SIDE_PARTNER, b[i:j]))
        if with_motion:
            ws.send_bytes(encode_motion(motion[:10]))
            ws.send_text(json.dumps({"type": "motion", "frames": motion[10:].tolist()}))
        ws.send_text(json.dumps({"type": "end"}))
        got, done = collect(ws)
        assert done["frames"] == {"self": len(expected)}
    np.testing.assert_allclose(got["self"], expected, atol=1e-5)


def test_joint_mode_equals_joint_session_and_int16(model_dir, net):
    a, b, _ = signals(seed=5)
    a16 = np.round(a * 32768).clip(-32768, 32767).astype(np.int16)
    b16 = np.round(b * 32768).clip(-32768, 32767).astype(np.int16)
    local = JointSession(net)
    pushed, flushed = local.push(b16, a16), local.flush()  # (partner, self) as stream_files orders them
    expected = {"partner": np.concatenate([pushed[0], flushed[0]]), "self": np.concatenate([pushed[1], flushed[1]])}
    with TestClient(make_app(model_dir)) as client, client.websocket_connect("/v1/stream") as ws:
        start(ws, mode="joint", encoding="s16le")
        for i in range(0, len(a), 640):
            ws.send_bytes(encode_audio(SIDE_SELF, a16[i : i + 640], "s16le"))
            ws.send_bytes(encode_audio(SIDE_PARTNER, b16[i : i + 640], "s16le"))
        ws.send_text(json.dumps({"type": "end"}))
        got, _ = collect(ws)
    for person in ("self", "partner"):
        np.testing.assert_allclose(got[person], expected[person], atol=1e-5)


# ----------------------------------------------------------------------------------------------------
# bad input ends only its own session


BAD = {
    "malformed JSON": (lambda ws: ws.send_text("{not json"), "bad_message", 4400),
    "JSON nested too deeply": (lambda ws: ws.send_text("[" * 5_000), "bad_message", 4400),
    "unknown type": (lambda ws: ws.send_text(json.dumps({"type": "dance"})), "bad_message", 4400),
    "binary before start": (lambda ws: ws.send_bytes(b"\x00" + bytes(64)), "bad_message", 4400),
    "wrong sample rate": (
        lambda ws: ws.send_text(json.dumps({"type": "start", "version": "1", "sample_rate": 12})),
        "bad_message",
        4400,
    ),
    "sample rate as a string": (
        lambda ws: ws.send_text(json.dumps({"type": "start", "version": "1", "sample_rate": "16000"})),
        "bad_message",
        4400,
    ),
    "partner_motion not a boolean": (
        lambda ws: ws.send_text(json.dumps({"type": "start", "version": "1", "partner_motion": "yes"})),
        "bad_message",
        4400,
    ),
    "wrong version": (lambda ws: ws.send_text(json.dumps({"type": "start", "version": "0"})), "bad_message", 4400),
    "NaN audio": (
        lambda ws: (start_raw(ws), ws.send_bytes(encode_audio(SIDE_SELF, np.full(640, np.nan, np.float32)))),
        "bad_input",
        4422,
    ),
    "huge audio samples": (  # finite, but their squares overflow float32: NaN motion if let through
        lambda ws: (start_raw(ws), ws.send_bytes(encode_audio(SIDE_SELF, np.full(640, 1e20, np.float32)))),
        "bad_input",
        4422,
    ),
    "oversized frame": (
        lambda ws: (start_raw(ws), ws.send_bytes(encode_audio(SIDE_SELF, np.zeros(5000, np.float32)))),
        "too_big",
        1009,
    ),
    "ragged motion": (
        lambda ws: (start_raw(ws, partner_motion=True), ws.send_text('{"type": "motion", "frames": [[1, 2]]}')),
        "bad_input",
        4422,
    ),
    "NaN motion": (
        lambda ws: (start_raw(ws, partner_motion=True), ws.send_bytes(encode_motion(np.full((1, 56), np.nan)))),
        "bad_input",
        4422,
    ),
    "huge motion values": (
        lambda ws: (start_raw(ws, partner_motion=True), ws.send_bytes(encode_motion(np.full((1, 56), 1e30)))),
        "bad_input",
        4422,
    ),
    "motion not whole frames": (
        lambda ws: (start_raw(ws, partner_motion=True), ws.send_bytes(b"\x02" + bytes(100))),
        "bad_message",
        4400,
    ),
    "bad encoding": (
        lambda ws: ws.send_text(json.dumps({"type": "start", "version": "1", "encoding": "mp3"})),
        "bad_message",
        4400,
    ),
    "odd byte count": (lambda ws: (start_raw(ws), ws.send_bytes(b"\x01abc")), "bad_message", 4400),
    "unknown side": (lambda ws: (start_raw(ws), ws.send_bytes(b"\x07" + bytes(8))), "bad_message", 4400),
    "second start": (
        lambda ws: (start_raw(ws), ws.send_text(json.dumps({"type": "start", "version": "1"}))),
        "bad_message",
        4400,
    ),
    "motion in joint mode": (
        lambda ws: (start_raw(ws, mode="joint"), ws.send_bytes(encode_motion(np.zeros((2, 56))))),
        "bad_message",
        4400,
    ),
}


def start_raw(ws, **fields) -> None:
    ws.send_text(json.dumps({"type": "start", "version": "1", **fields}))
    assert ws.receive_json()["type"] == "ready"


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_an_error_and_another_session_keeps_working(model_dir, net, case):
    send, code, close = BAD[case]
    a, b, _ = signals(0.6)
    local = StreamingSession(net, partner_motion=False)
    expected = np.concatenate([local.push(a, b), local.flush()])
    with TestClient(make_app(model_dir, limits=Limits(max_message_bytes=16 * 1024))) as client:
        with client.websocket_connect("/v1/stream") as good:
            start(good)
            good.send_bytes(encode_audio(SIDE_SELF, a[:3000]))
            good.send_bytes(encode_audio(SIDE_PARTNER, b[:3000]))
            with client.websocket_connect("/v1/stream") as bad:
                assert bad.receive_json()["type"] == "hello"
                send(bad)
                msg = expect_error(bad, code, close)
                assert msg["message"] and "\n" not in msg["message"]
            for i in range(3000, len(a), 4000):
                good.send_bytes(encode_audio(SIDE_SELF, a[i : i + 4000]))
                good.send_bytes(encode_audio(SIDE_PARTNER, b[i : i + 4000]))
            good.send_text(json.dumps({"type": "end"}))
            got, _ = collect(good)
        assert client.get("/healthz").json()["sessions"] == 0
    np.testing.assert_allclose(got["self"], expected, atol=1e-5)


def test_session_length_limit(model_dir):
    with TestClient(make_app(model_dir, limits=Limits(max_session_seconds=2.0))) as client:
        with client.websocket_connect("/v1/stream") as ws:
            start(ws)
            for _ in range(3):  # 3 s of audio for one voice (or, on a very slow machine, 2 s of wall time)
                ws.send_bytes(encode_audio(SIDE_SELF, np.zeros(SR, np.float32)))
            expect_error(ws, "too_long", 4413)


def test_a_stalled_then_vanished_session_leaves_the_server_serving(model_dir, net):
    a, b, _ = signals(0.6)
    local = StreamingSession(net, partner_motion=False)
    expected = np.concatenate([local.push(a, b), local.flush()])
    with TestClient(make_app(model_dir, max_sessions=2)) as client:
        with client.websocket_connect("/v1/stream") as stalled:
            start(stalled)
            stalled.send_bytes(encode_audio(SIDE_SELF, a))  # the partner's voice never comes
            with client.websocket_connect("/v1/stream") as ws:
                start(ws)
                ws.send_bytes(encode_audio(SIDE_SELF, a))
                ws.send_bytes(encode_audio(SIDE_PARTNER, b))
                ws.send_text(json.dumps({"type": "end"}))
                got, _ = collect(ws)
            np.testing.assert_allclose(got["self"], expected, atol=1e-5)
        assert client.get("/healthz").json()["sessions"] == 0  # the vanished session's slot was released
    with TestClient(make_app(model_dir, max_sessions=1)) as client:
        with client.websocket_connect("/v1/stream") as ws:
            start(ws)
            ws.send_bytes(encode_audio(SIDE_SELF, a))
        with client.websocket_connect("/v1/stream") as ws:  # the slot was released
            start(ws)
            ws.send_bytes(encode_audio(SIDE_SELF, a))
            ws.send_bytes(encode_audio(SIDE_PARTNER, b))
            ws.send_text(json.dumps({"type": "end"}))
            got, _ = collect(ws)
    assert len(got["self"]) == 15


def test_too_many_sessions(model_dir):
    a, b, _ = signals(0.6)
    with TestClient(make_app(model_dir, max_sessions=1)) as client:
        with client.websocket_connect("/v1/stream") as first:
            start(first)
            with client.websocket_connect("/v1/stream") as second:
                expect_error(second, "busy", 1013)
            first.send_bytes(encode_audio(SIDE_SELF, a))
            first.send_bytes(encode_audio(SIDE_PARTNER, b))
            first.send_text(json.dumps({"type": "end"}))
            got, _ = collect(first)
    assert len(got["self"]) == 15


def test_token_and_origin(model_dir):
    client = TestClient(make_app(model_dir, token="s3cret", allowed_origins=["https://app.example"]))
    assert client.get("/healthz").status_code == 401
    assert client.get("/healthz", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/healthz", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/v1/models?token=s3cret").status_code == 200
    with client.websocket_connect("/v1/stream") as ws:
        expect_error(ws, "unauthorized", 4401)
    with client.websocket_connect("/v1/stream?token=nope") as ws:
        expect_error(ws, "unauthorized", 4401)
    evil = {"Authorization": "Bearer s3cret", "Origin": "https://evil.example"}
    assert client.get("/healthz", headers=evil).status_code == 403
    with client.websocket_connect("/v1/stream", headers=evil) as ws:
        expect_error(ws, "forbidden_origin", 4403)
    for origin in ("https://app.example", "http://testserver"):  # allowed, and the server's own
        with client.websocket_connect("/v1/stream?token=s3cret", headers={"Origin": origin}) as ws:
            start(ws)
            ws.send_text(json.dumps({"type": "end"}))
            assert collect(ws)[1]["frames"] == {"self": 0}


def test_idle_session_is_closed(model_dir):
    with TestClient(make_app(model_dir, limits=Limits(idle_seconds=0.2))) as client:
        with client.websocket_connect("/v1/stream") as ws:
            start(ws)
            expect_error(ws, "idle", 4408)


def test_offline_model_is_not_streamable(tmp_path):
    from dualtalk.model.checkpoint import save_model
    from dualtalk.model.dualtalk import build_model
    from dualtalk.model.presets import get_preset

    cfg = get_preset("tiny-stream", ["variant=paper", "partner_motion_dropout=0"])
    d = save_model(build_model(cfg).eval(), tmp_path / "offline")
    client = TestClient(create_app(str(d)))
    (info,) = client.get("/v1/models").json()["models"]
    assert not info["streamable"] and info["needs_partner_motion"]
    with client.websocket_connect("/v1/stream") as ws:
        expect_error(ws, "not_streamable", 4501)


def test_non_loopback_host_without_token_refuses_to_start(capsys):
    from dualtalk.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--token", ""]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --host 0.0.0.0") and "--token" in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------------------------------
# a real server: dualtalk stream --server == dualtalk stream


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``app`` served by a real uvicorn in a thread on a free loopback port: ``url`` (the page), ``ws``
    (/v1/stream); ``stop()`` ends it."""

    def __init__(self, app):
        import threading
        import time

        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", ws_max_size=1 << 21)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(1000):
            if self.server.started:
                break
            time.sleep(0.02)
        assert self.server.started
        self.url = f"http://127.0.0.1:{self.port}/"
        self.ws = f"ws://127.0.0.1:{self.port}/v1/stream"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@contextlib.contextmanager
def running_server(app):
    """:class:`LiveServer` for a ``with`` block -> its /v1/stream URL."""
    server = LiveServer(app)
    try:
        yield server.ws
    finally:
        server.stop()


@pytest.fixture
def live_server(model_dir):
    with running_server(make_app(model_dir, token="tok")) as url:
        yield url


def test_stream_command_through_a_server_equals_local(tmp_path, model_dir, live_server):
    import soundfile as sf

    from dualtalk.cli import main
    from dualtalk.io.motion import Motion, load_motion, save_motion

    a, b, motion = signals(1.5, seed=8)
    sf.write(tmp_path / "A.wav", a, SR, subtype="FLOAT")
    sf.write(tmp_path / "B.wav", b, SR, subtype="FLOAT")
    save_motion(tmp_path / "A.npz", Motion.from_model(motion))
    common = ["stream", "--self-audio", str(tmp_path / "B.wav"), "--partner-audio", str(tmp_path / "A.wav")]
    variants = {
        "audio": [],
        "motion": ["--partner-motion", str(tmp_path / "A.npz")],
        "joint": ["--partner-out", "{where}_A.npz"],
    }
    for name, extra in variants.items():
        outs = {}
        for where, how in (
            ("local", ["--model", str(model_dir)]),
            ("remote", ["--server", live_server, "--token", "tok"]),
        ):
            args = [x.format(where=tmp_path / f"{name}_{where}") for x in extra]
            out = tmp_path / f"{name}_{where}_B.npz"
            assert main([*common, *args, *how, "--out", str(out), "--chunk-ms", "30"]) == 0
            outs[where] = out
        np.testing.assert_allclose(
            load_motion(outs["remote"]).to_model(), load_motion(outs["local"]).to_model(), atol=1e-5
        )
        if name == "joint":
            np.testing.assert_allclose(
                load_motion(tmp_path / "joint_remote_A.npz").to_model(),
                load_motion(tmp_path / "joint_local_A.npz").to_model(),
                atol=1e-5,
            )


def test_remote_stats_have_latency_and_compute(tmp_path, live_server):
    """dualtalk stream --server --stats: the added latency of every frame (client clock) and the server's
    compute per model call (the frames messages' compute_ms)."""
    import soundfile as sf

    from dualtalk.cli import main

    a, b, _ = signals(1.2, seed=9)
    sf.write(tmp_path / "A.wav", a, SR, subtype="FLOAT")
    sf.write(tmp_path / "B.wav", b, SR, subtype="FLOAT")
    args = ["stream", "--self-audio", str(tmp_path / "B.wav"), "--partner-audio", str(tmp_path / "A.wav")]
    stats = tmp_path / "stats.json"
    out = tmp_path / "B.npz"
    assert main([*args, "--server", live_server, "--token", "tok", "--out", str(out), "--stats", str(stats)]) == 0
    summary = json.loads(stats.read_text())
    assert summary["calls"] >= 1
    lat, comp = summary["added_latency_ms"], summary["compute_ms_per_call"]
    assert 0 < comp["p50"] <= comp["p95"] <= comp["max"]
    assert lat["p50"] <= lat["p95"] <= lat["max"] and lat["max"] > 0


def test_client_errors_are_one_line(tmp_path, live_server):
    from dualtalk.client import StreamClient
    from dualtalk.errors import DualTalkError

    with pytest.raises(DualTalkError, match="unauthorized"):
        StreamClient(live_server, token="wrong")
    with StreamClient(live_server, token="tok") as c:
        with pytest.raises(DualTalkError, match="bad_input"):
            c.send(np.full(640, np.nan, np.float32))
            c.finish()


def _children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (Linux /proc)."""
    from pathlib import Path

    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not __import__("os").path.isdir("/proc"), reason="counts worker processes in /proc (Linux)")
def test_workers_serve_concurrent_sessions_like_one_process(model_dir, net):
    """`dualtalk serve --workers 2` (the real command, a subprocess): two worker processes, and sessions open
    at the same time through it give what the local session gives."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    from dualtalk.client import StreamClient

    port = free_port()
    cmd = [sys.executable, "-m", "dualtalk", "serve", "--model", str(model_dir), "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "2", "--log-level", "warning"], env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        for _ in range(600):
            assert proc.poll() is None, "dualtalk serve --workers 2 exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if json.loads(r.read())["status"] == "ok":
                        break
            except OSError:
                time.sleep(0.1)
        for _ in range(300):  # uvicorn's supervisor starts the workers one after the other
            if len(_children(proc.pid)) >= 2:
                break
            time.sleep(0.1)
        assert len(_children(proc.pid)) >= 2
        cases = [signals(1.2, seed=s) for s in (11, 12, 13)]
        clients = [StreamClient(f"ws://127.0.0.1:{port}/v1/stream") for _ in cases]  # all open at once
        for c, (a, b, _) in zip(clients, cases):
            c.send(a[:8000], b[:8000])
        for c, (a, b, _) in zip(clients, cases):
            c.send(a[8000:], b[8000:])
        got = [c.finish(timeout=120)["self"] for c in clients]
        for c in clients:
            c.close()
        for out, (a, b, _) in zip(got, cases):
            local = StreamingSession(net, partner_motion=False)
            np.testing.assert_allclose(out, np.concatenate([local.push(a, b, None), local.flush()]), atol=1e-5)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_a_model_that_computes_nan_never_sends_it(tmp_path):
    """NaN is not JSON (a client's parser throws on it): a broken model's NaN ends the request / session with
    the documented internal error instead."""
    from dualtalk.model.checkpoint import save_model

    broken = tiny_model()
    broken.set_motion_statistics(np.full(56, np.nan), np.full(56, 0.5))  # every output frame NaN
    model = save_model(broken, tmp_path / "model")
    a, b, _ = signals()
    client = TestClient(make_app(model))
    files = {"self_audio": ("B.wav", wav_bytes(a)), "partner_audio": ("A.wav", wav_bytes(b))}
    for fmt in ("json", "npz"):
        r = client.post("/v1/generate", files=files, data={"format": fmt})
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal", r.text
    with client.websocket_connect("/v1/stream") as ws:
        start(ws)
        ws.send_bytes(encode_audio(SIDE_SELF, a))
        ws.send_bytes(encode_audio(SIDE_PARTNER, b))
        error = expect_error(ws, "internal", 1011)
    assert "NaN" in error["message"]


def test_client_encodes_int16_like_a_file_and_refuses_stereo_and_odd_motion():
    """int16 samples are scaled by 1/32768 in f32le messages (as files and local sessions do), not sent as
    numbers up to 32767; stereo (n, 2) is refused, not interleaved into twice as many mono samples."""
    from dualtalk.errors import DualTalkError
    from dualtalk.serve.protocol import decode_binary

    x = np.array([0.5, -0.25, 0.0], np.float32)
    pcm = (x * 32768).astype(np.int16)
    side, got = decode_binary(encode_audio(SIDE_SELF, pcm, "f32le"), "f32le")
    np.testing.assert_allclose(got, x, atol=1e-6)
    assert np.array_equal(decode_binary(encode_audio(SIDE_SELF, pcm, "s16le"), "s16le")[1], x)
    with pytest.raises(DualTalkError, match=r"mono, shape \(n,\); got shape \(3, 2\)"):
        encode_audio(SIDE_SELF, np.stack([x, x], 1))
    with pytest.raises(DualTalkError, match="float or int16, got int32"):
        encode_audio(SIDE_SELF, pcm.astype(np.int32))


def test_client_splits_a_chunk_larger_than_a_message(model_dir, net):
    """--chunk-ms longer than one WebSocket message holds (1 KiB here): the client sends it as several
    messages (the server closed the session with 1009), and the frames are the local session's."""
    from dualtalk.client import StreamClient

    a, b, motion = signals(1.2, seed=4)
    with running_server(make_app(model_dir, limits=Limits(max_message_bytes=1024))) as url:
        with StreamClient(url, partner_motion=True) as c:
            c.send(b, a, motion)
            got = c.finish()["self"]
    s = StreamingSession(net, partner_motion=True)
    expected = np.concatenate([s.push(b, a, motion), s.flush()])
    np.testing.assert_allclose(got, expected, atol=1e-5)
