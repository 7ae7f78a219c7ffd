"""A synchronous client of ``dualtalk serve``'s ``/v1/stream`` (the ``websockets`` library, the ``serve`` extra).

    from dualtalk.client import StreamClient, stream_files_remote

    stream_files_remote("ws://127.0.0.1:8000/v1/stream", "B.wav", "A.wav", "B.npz")   # = dualtalk stream
    stream_files_remote(url, "B.wav", "A.wav", "B.npz", partner_out="A.npz", token="s3cret")  # both heads

    with StreamClient(url, mode="listen") as client:     # live: push audio as it arrives
        client.send(self_chunk, partner_chunk)           # 16 kHz mono float32 (the hello's sample_rate)
        client.frames("self")                            # (n, 56) model order: the frames received so far
        motion = client.finish()                         # {"self": (T, 56)}; the server flushed and closed

    with StreamClient(url, output="arkit") as client:    # named ARKit weights (an ARKit model, or --arkit-map)
        client.channels                                  # ["eyeBlinkLeft", ..., "tongueOut", "HeadYaw", ...]
        ...                                              # frames (n, 55): 52 weights, head yaw/pitch/roll

A receiving thread reads the server's messages while the caller sends, so a client sending faster than
real time never blocks the server. Every problem, the server's included, is one :class:`DualTalkError`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

import numpy as np

from .errors import DualTalkError, require
from .layout import FLAME, MOTION_DIM
from .serve.protocol import SIDE_PARTNER, SIDE_SELF, VERSION, encode_audio, encode_motion


class StreamClient:
    """One ``/v1/stream`` session: ``hello`` read and ``start`` sent on construction; ``send`` audio (and
    motion), ``finish()`` -> the motion of each generated person, (T, 56) model order (``motion_dim`` of the
    hello: 55 for an ARKit model). ``output="arkit"``: frames of named ARKit channels instead
    (:attr:`channels`, from the ready message: 52 weights, then head yaw, pitch, roll)."""

    def __init__(
        self,
        url: str,
        *,
        mode: str = "listen",
        partner_motion: bool = False,
        sample_rate: int | None = None,
        encoding: str = "f32le",
        token: str | None = None,
        open_timeout: float = 10.0,
        output: str = "motion",
    ):
        require("websockets", "serve")
        from websockets.sync.client import connect

        self.url = url
        self.encoding = encoding
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._exit = contextlib.ExitStack()  # websockets >= 17 wants the connection entered as a context
        try:
            self.ws = self._exit.enter_context(
                connect(url, additional_headers=headers, open_timeout=open_timeout, max_size=64 << 20)
            )
        except Exception as exc:  # noqa: BLE001 - refused, bad URI, HTTP status, timeout: one line each
            raise DualTalkError(f"{url}: cannot connect ({_first_line(exc)})") from None
        self.hello = self._expect("hello")
        if output != "motion" and output not in self.hello.get("outputs", ["motion"]):
            self.ws.close()
            self._exit.close()
            raise DualTalkError(
                f"{url}: the server cannot send {output!r} frames (it offers: "
                f"{', '.join(self.hello.get('outputs', ['motion']))}); ARKit output needs an ARKit model or "
                "dualtalk serve --arkit-map MAP.json"
            )
        self.motion_dim = int(self.hello.get("motion_dim", MOTION_DIM))
        self.sample_rate = int(sample_rate or self.hello["sample_rate"])
        start = {
            "type": "start",
            "version": VERSION,
            "sample_rate": self.sample_rate,
            "encoding": encoding,
            "mode": mode,
            "partner_motion": partner_motion,
        }
        if output != "motion":  # only when asked: a server before outputs existed refuses unknown fields
            start["output"] = output
        self.ws.send(json.dumps(start))
        self.ready = self._expect("ready")
        #: the names of the frames' columns (a server before named channels: the model order of FLAME)
        self.channels: list[str] = list(self.ready.get("channels") or FLAME.channels)
        self.width = len(self.channels)
        self.people = ["self"] if mode == "listen" else ["self", "partner"]
        self._frames: dict[str, list[np.ndarray]] = {p: [] for p in self.people}
        self._count = {p: 0 for p in self.people}
        #: when each frames message arrived: (person, first frame, frames, perf_counter time, server compute ms)
        self.arrivals: list[tuple[str, int, int, float, float | None]] = []
        #: after each send of audio: (perf_counter time, samples of the person so far, of the partner so far)
        self.sent: list[tuple[float, int, int]] = []
        self._samples = [0, 0]
        self._ended: float | None = None
        self._lock = threading.Lock()
        self.error: dict | None = None
        self.done: dict | None = None
        self.close_code: int | None = None
        self._thread = threading.Thread(target=self._receive, daemon=True, name="dualtalk-client")
        self._thread.start()

    # --- receiving ----------------------------------------------------------------------------------

    def _expect(self, kind: str) -> dict:
        try:
            message = json.loads(self.ws.recv(timeout=60))
        except Exception as exc:  # noqa: BLE001
            self.ws.close()
            raise DualTalkError(f"{self.url}: no {kind} message from the server ({_first_line(exc)})") from None
        if message.get("type") == "error":
            self.ws.close()
            raise DualTalkError(f"{self.url}: {message.get('code')}: {message.get('message')}")
        if message.get("type") != kind:
            self.ws.close()
            raise DualTalkError(f"{self.url}: expected a {kind} message, got {str(message.get('type'))[:40]!r}")
        return message

    def _receive(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                message = json.loads(self.ws.recv())
                kind = message.get("type")
                if kind == "frames":
                    person = message["person"]
                    frames = np.asarray(message["frames"], dtype=np.float32).reshape(-1, self.width)
                    with self._lock:
                        if message["start"] != self._count[person]:
                            self.error = {"code": "client", "message": f"frames of {person} out of order"}
                            return
                        self._frames[person].append(frames)
                        self.arrivals.append(
                            (person, self._count[person], len(frames), time.perf_counter(), message.get("compute_ms"))
                        )
                        self._count[person] += len(frames)
                elif kind == "error":
                    self.error = message
                elif kind == "done":
                    self.done = message
        except ConnectionClosed as exc:
            rcvd = getattr(exc, "rcvd", None)
            self.close_code = rcvd.code if rcvd is not None else None
        except Exception as exc:  # noqa: BLE001 - a garbled message ends the session on this side
            self.error = {"code": "client", "message": _first_line(exc)}

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise DualTalkError(f"{self.url}: {self.error.get('code')}: {self.error.get('message')}")

    def frames(self, person: str = "self") -> np.ndarray:
        """The frames of ``person`` received so far, (n, len(channels)): model order, or ARKit channels."""
        if person not in self._frames:
            raise DualTalkError(f"no frames of {person!r} in this session (its people: {', '.join(self._frames)})")
        with self._lock:
            parts = list(self._frames[person])
        return np.concatenate(parts) if parts else np.zeros((0, self.width), np.float32)

    # --- sending ------------------------------------------------------------------------------------

    def _send(self, data) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            self.ws.send(data)
        except ConnectionClosed:
            self._thread.join(timeout=10)
            self._raise_if_failed()
            raise DualTalkError(f"{self.url}: the server closed the session (code {self.close_code})") from None

    def send(self, self_pcm=None, partner_pcm=None, partner_motion=None) -> None:
        """Audio of either or both voices (mono, at ``sample_rate``) and/or partner motion frames (k, motion_dim),
        model order."""
        self._raise_if_failed()
        # a chunk larger than the server takes in one message (its hello's max_message_bytes) goes as several
        limit = int(self.hello.get("max_message_bytes") or 1 << 20) - 1  # the side tag's byte
        per_message = max(1, limit // (2 if self.encoding == "s16le" else 4))
        for side, pcm in ((SIDE_SELF, self_pcm), (SIDE_PARTNER, partner_pcm)):
            if pcm is not None and len(pcm):
                x = np.asarray(pcm)
                for i in range(0, len(x), per_message):
                    self._send(encode_audio(side, x[i : i + per_message], self.encoding))
                self._samples[side] += len(pcm)
        if (self_pcm is not None and len(self_pcm)) or (partner_pcm is not None and len(partner_pcm)):
            self.sent.append((time.perf_counter(), self._samples[SIDE_SELF], self._samples[SIDE_PARTNER]))
        if partner_motion is not None and len(partner_motion):
            m = np.asarray(partner_motion, np.float32)
            m = m[None] if m.ndim == 1 and len(m) == self.motion_dim else m  # one frame
            if m.ndim != 2 or m.shape[1] != self.motion_dim:
                raise DualTalkError(
                    f"partner motion frames must be (k, {self.motion_dim}) in model order, got shape {m.shape}"
                )
            rows = max(1, limit // (4 * self.motion_dim))
            for i in range(0, len(m), rows):
                self._send(encode_motion(m[i : i + rows]))

    def latency(self) -> dict:
        """After :meth:`finish`: the added latency of each frame (its arrival minus the moment the audio that
        made it final was sent: frame t is final once both voices reached sample ``spf (t + 1 + lookahead)``;
        frames that need audio past the end are final at ``end``) and the server's compute per model call,
        as p50 / p95 / max in ms. The lookahead itself (``hello["latency_ms"]``) comes on top."""
        fps = int(self.hello["fps"])
        spf = self.sample_rate // fps
        lookahead = round(float(self.hello.get("latency_ms") or 0.0) * fps / 1000.0) - 1
        ended = self._ended if self._ended is not None else np.inf
        times = np.array([t for t, _, _ in self.sent] + [ended])
        reached = np.array([min(a, b) for _, a, b in self.sent] + [np.iinfo(np.int64).max])
        added: list[float] = []
        compute: list[float] = []
        for _person, first, n, arrived, compute_ms in self.arrivals:
            need = spf * (np.arange(first, first + n) + 1 + lookahead)  # (n,) samples each frame waits for
            final = times[np.searchsorted(reached, need, side="left")]  # reached never decreases
            added.extend((1000.0 * (arrived - final)).tolist())
            if compute_ms is not None:
                compute.append(float(compute_ms))

        def summary(x: list[float]) -> dict | None:
            if not x:
                return None
            return {k: float(v) for k, v in zip(("p50", "p95", "max"), np.percentile(x, [50, 95, 100]))}

        return {"added_latency_ms": summary(added), "compute_ms_per_call": summary(compute), "calls": len(compute)}

    def finish(self, timeout: float = 600.0) -> dict[str, np.ndarray]:
        """Send ``end``, wait for the rest and ``done``: -> {person: (T, len(channels))}."""
        self._ended = time.perf_counter()
        self._send(json.dumps({"type": "end"}))
        self._thread.join(timeout=timeout)
        self._raise_if_failed()
        if self.done is None:
            why = (
                f"close code {self.close_code}"
                if self.close_code is not None
                else "the connection was lost: the server stopped answering (no reply to keepalive pings) or the "
                "network went down"
            )
            raise DualTalkError(f"{self.url}: the session ended without 'done' ({why})")
        return {p: self.frames(p) for p in self.people}

    def close(self) -> None:
        self._exit.close()
        self._thread.join(timeout=10)

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def stream_files_remote(
    url: str,
    self_audio,
    partner_audio,
    out,
    *,
    partner_motion=None,
    partner_out=None,
    chunk_ms: float = 40.0,
    realtime: bool = False,
    stats=None,
    token: str | None = None,
    format: str = "npz",
) -> dict:
    """:func:`dualtalk.inference.streaming.stream_files` through a server: the files are fed in ``chunk_ms``
    chunks over ``/v1/stream`` and the frames it sends back are written to ``out`` (and ``partner_out``:
    joint mode). ``format``: ``npz`` (motion files of the model's layout) or ``arkit-csv`` / ``arkit-json``
    (the server is asked for ARKit output: Live Link Face CSV / JSON). -> the stats: frames, seconds, wall
    time, real-time factor (wall / audio)."""
    from .io.conversation import load_generation_inputs
    from .io.files import atomic_group, atomic_write_text
    from .io.motion import motion_from_model, save_motion

    if format not in ("npz", "arkit-csv", "arkit-json"):
        raise DualTalkError(f"format must be npz, arkit-csv or arkit-json, got {format!r}")
    if partner_out is not None and partner_motion is not None:
        raise DualTalkError("--partner-out generates the partner's motion: leave out --partner-motion")
    if not chunk_ms > 0:
        raise DualTalkError(f"--chunk-ms must be > 0, got {chunk_ms}")
    joint = partner_out is not None
    started = time.perf_counter()
    with StreamClient(
        url,
        mode="joint" if joint else "listen",
        partner_motion=partner_motion is not None,
        token=token,
        output="motion" if format == "npz" else "arkit",
    ) as c:
        sr, fps = c.sample_rate, int(c.hello["fps"])
        layout = c.hello.get("motion_layout", "flame")
        inputs = load_generation_inputs(self_audio, partner_audio, partner_motion, sr, fps, layout)
        step = max(1, int(round(chunk_ms * sr / 1000.0)))
        spf = sr // fps
        a, b, motion = inputs.self_audio, inputs.partner_audio, inputs.partner_motion
        pushed = chunks = 0
        begun = time.perf_counter()
        for i in range(0, len(a), step):
            if realtime:
                wait = begun + (i + step) / sr - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            m = None
            if motion is not None:
                upto = min(len(motion), (i + step) // spf)
                m, pushed = motion[pushed:upto], upto
            c.send(a[i : i + step], b[i : i + step], m)
            chunks += 1
        if motion is not None and pushed < len(motion):
            c.send(partner_motion=motion[pushed:])
        result = c.finish()
        hello = c.hello
        timing = c.latency()
    wall = time.perf_counter() - started
    seconds = len(a) / sr
    summary = {
        "server": url,
        "model": hello["model"],
        "seconds": seconds,
        "frames": len(result["self"]),
        "algorithmic_latency_ms": hello["latency_ms"],
        "chunks": chunks,
        "chunk_ms": chunk_ms,
        "realtime": realtime,
        "heads": 2 if joint else 1,
        "partner_motion": motion is not None,
        "format": format,
        "wall_seconds": wall,
        # as the local run's: the compute (here the server's, per model call) over the audio's duration
        "real_time_factor": _compute_seconds(c) / seconds if seconds else 0.0,
        "wall_real_time_factor": wall / seconds if seconds else 0.0,
        **timing,
    }
    with atomic_group():  # the motion (both people's) and the stats: all of them or none, as the local run
        if format == "npz":
            save_motion(out, motion_from_model(result["self"], layout, fps))
            if joint:
                save_motion(partner_out, motion_from_model(result["partner"], layout, fps))
        else:
            from .export.arkit import write_arkit_channels

            write_arkit_channels(out, result["self"], fps, format)
            if joint:
                write_arkit_channels(partner_out, result["partner"], fps, format)
        if stats is not None:
            atomic_write_text(stats, json.dumps(summary, indent=2) + "\n")
    return summary


def _compute_seconds(client: StreamClient) -> float:
    """The server's compute over the session: the sum of its model calls' times (each call once)."""
    calls = [
        ms for person, *_, ms in client.arrivals if person == "self" and ms is not None
    ]  # joint: one call, 2 heads
    return sum(float(ms) for ms in calls) / 1000.0


__all__ = ["StreamClient", "stream_files_remote"]
