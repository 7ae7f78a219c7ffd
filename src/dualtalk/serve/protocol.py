"""The ``/v1/stream`` WebSocket protocol, version ``"1"``: message schemas, binary audio framing, close codes.

A session, as the client sees it (text messages are JSON objects with a ``type``)::

    server: {"type": "hello", "version": "1", "model": "demo-stream", "sample_rate": 16000, "fps": 25, ...}
    client: {"type": "start", "version": "1", "sample_rate": 16000, "encoding": "f32le", "mode": "listen"}
    server: {"type": "ready", "version": "1", "session": "3f2a...", "mode": "listen", "partner_motion": false}
    client: <binary> b"\\x00" + 640 float32 samples of the person      (side 0: self / A)
    client: <binary> b"\\x01" + 640 float32 samples of the partner     (side 1: partner / B)
    server: {"type": "frames", "person": "self", "start": 0, "t": 0.0, "frames": [[56 floats], ...]}
    client: {"type": "end"}
    server: {"type": "frames", ...}                                   (the rest)
    server: {"type": "done", "frames": {"self": 38}}                  then close 1000

    encode_audio(SIDE_SELF, samples, "f32le")      # -> the binary message of one chunk
    decode_audio(message, "s16le")                 # -> (side, float32 samples)

Binary messages: byte 0 is the side tag (:data:`SIDE_SELF` 0, :data:`SIDE_PARTNER` 1, :data:`SIDE_MOTION` 2),
the rest is little-endian samples in the declared encoding (``f32le`` or ``s16le``), mono; tag 2 carries the
partner's motion frames as float32 little-endian, ``k x motion_dim`` values in model order (``motion_dim`` of
``hello``: 56 for a FLAME model, 55 for an ARKit one). Every problem closes the session with one
``{"type": "error", "code": ..., "message": ...}`` message and the close code of :data:`CLOSE_CODES`.

Outputs (optional fields, still version ``"1"``): ``hello.outputs`` lists what the server can send,
``"motion"`` (the default: frames in the model's order) and ``"arkit"`` when the model is an ARKit model or
the server has a map (``dualtalk serve --arkit-map``); ``start.output`` chooses; ``ready.channels`` names the
columns of every frame once (for ``"arkit"``: the 52 ARKit names, then ``HeadYaw``, ``HeadPitch``,
``HeadRoll`` in radians).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import DualTalkError
from ..io.audio import samples_problem
from ..io.motion import motion_values_problem
from ..layout import MOTION_DIM

#: the protocol version this server speaks (the ``version`` of ``hello``, ``start`` and ``ready``)
VERSION = "1"

SIDE_SELF = 0  # the person (listen mode: the generated one; joint mode: person A)
SIDE_PARTNER = 1  # the partner (joint mode: person B, also generated)
SIDE_MOTION = 2  # the partner's motion frames (listen mode with partner_motion)

ENCODINGS: dict[str, np.dtype] = {"f32le": np.dtype("<f4"), "s16le": np.dtype("<i2")}

#: close code and short reason of each error code (4000-4999 are the application's own range)
CLOSE_CODES: dict[str, tuple[int, str]] = {
    "bad_message": (4400, "bad message"),  # malformed JSON, unknown type, binary before start, bad field
    "unauthorized": (4401, "unauthorized"),  # missing or wrong token
    "forbidden_origin": (4403, "origin not allowed"),  # a browser page from another origin
    "idle": (4408, "idle timeout"),  # no message for the idle time
    "too_long": (4413, "session too long"),  # more audio (or wall time) than the session limit
    "bad_input": (4422, "bad input"),  # NaN audio, motion of the wrong width, a stalled voice, ...
    "not_streamable": (4501, "model not streamable"),  # the served model is not causal
    "too_big": (1009, "message too big"),  # a message over the size limit (the standard code)
    "busy": (1013, "too many sessions"),  # the session limit is reached: try again later (standard)
    "internal": (1011, "internal error"),  # a bug: the session ends, the server keeps serving
}
CLOSE_DONE = (1000, "done")


class ProtocolError(Exception):
    """A problem that ends one session: sent as an ``error`` message, then the close code of ``code``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def close(self) -> tuple[int, str]:
        return CLOSE_CODES[self.code]

    def payload(self) -> dict:
        return Error(code=self.code, message=self.message).model_dump()


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Start(_Message):
    """The client's first message: what it will send and what it wants back. Strict: a field of the wrong
    JSON type (``"sample_rate": "16000"``, ``"partner_motion": "yes"``) is a bad message, not converted."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["start"]
    version: Literal["1"]
    sample_rate: Annotated[int, Field(ge=4000, le=384000)] = 16000  # of both voices; resampled to the model's
    encoding: Literal["f32le", "s16le"] = "f32le"
    mode: Literal["listen", "joint"] = "listen"  # listen: generate the person (side 0); joint: both sides
    partner_motion: bool = False  # listen mode: the partner's motion frames will be sent (tag 2 / "motion")
    #: what the frames hold: "motion" (model order, the default) or "arkit" (named ARKit weights + head angles)
    output: Literal["motion", "arkit"] = "motion"


class Motion(_Message):
    """The partner's motion frames as JSON (the binary tag 2 is the compact form; numbers only, strictly)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["motion"]
    frames: list[list[float]]


class End(_Message):
    """No more input: the server flushes the remaining frames, sends ``done`` and closes (1000)."""

    type: Literal["end"]


class Hello(_Message):
    type: Literal["hello"] = "hello"
    version: str = VERSION
    model: str
    sample_rate: int  # the model's rate (any declared rate is resampled to it)
    fps: int
    motion_dim: int = MOTION_DIM  # numbers per model-order frame (partner motion in, "motion" frames out)
    motion_layout: str = "flame"  # "flame" or "arkit" (dualtalk.layout)
    outputs: list[str] = ["motion"]  # what start.output may ask for
    latency_ms: float  # algorithmic latency: (lookahead + 1) frames
    needs_partner_motion: bool
    joint: bool  # whether joint mode is available
    max_message_bytes: int
    max_session_seconds: float
    idle_seconds: float


class Ready(_Message):
    type: Literal["ready"] = "ready"
    version: str = VERSION
    session: str
    mode: str
    partner_motion: bool
    output: str = "motion"
    #: the name of every column of the frames that will follow
    channels: list[str] | None = None


class Frames(_Message):
    """Motion frames that became final, columns as ``ready.channels`` (model order [exp 50, jaw 3, global 3]
    for a FLAME model's "motion" output)."""

    type: Literal["frames"] = "frames"
    person: Literal["self", "partner"]
    start: int  # index of the first frame
    t: float  # its time in seconds (start / fps)
    frames: list[list[float]]


class Done(_Message):
    type: Literal["done"] = "done"
    frames: dict[str, int]  # frames sent per person


class Error(_Message):
    type: Literal["error"] = "error"
    code: str
    message: str


CLIENT_MESSAGES: dict[str, type[_Message]] = {"start": Start, "motion": Motion, "end": End}


def parse_text(text: str) -> Start | Motion | End:
    """A client's text message -> its model; :class:`ProtocolError` ``bad_message`` otherwise."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("bad_message", f"malformed JSON ({exc})") from None
    except RecursionError:  # nested deeper than the decoder goes: no message of the protocol is
        raise ProtocolError("bad_message", "malformed JSON (nested too deeply)") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("bad_message", "a text message must be a JSON object with a string 'type'")
    kind = CLIENT_MESSAGES.get(data["type"])
    if kind is None:
        raise ProtocolError(
            "bad_message", f"unknown message type {data['type'][:40]!r} (expected one of: {', '.join(CLIENT_MESSAGES)})"
        )
    try:
        return kind.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or data["type"]
        raise ProtocolError("bad_message", f"{data['type']}: {where}: {first['msg']}") from None


def encode_audio(side: int, samples: np.ndarray, encoding: str = "f32le") -> bytes:
    """One binary message: the side tag + mono samples (n,) in ``encoding``: float samples within +-1 or int16
    (scaled by 1/32768 for f32le, as a file's are; float input is rounded and clipped for s16le)."""
    x = np.asarray(samples)
    if x.ndim != 1:
        raise DualTalkError(f"audio samples must be mono, shape (n,); got shape {x.shape} (mix the channels first)")
    if x.dtype != np.int16 and x.dtype.kind != "f":
        raise DualTalkError(f"audio samples must be float or int16, got {x.dtype}")
    if encoding == "s16le" and x.dtype != np.int16:
        x = np.clip(np.round(np.asarray(x, np.float64) * 32768.0), -32768, 32767)
    elif encoding == "f32le" and x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    return bytes([side]) + np.ascontiguousarray(x, dtype=ENCODINGS[encoding]).tobytes()


def encode_motion(frames: np.ndarray) -> bytes:
    """The partner's motion frames (k, motion_dim) model order as one binary message (tag 2, float32 LE)."""
    return bytes([SIDE_MOTION]) + np.ascontiguousarray(frames, dtype="<f4").tobytes()


def decode_binary(data: bytes, encoding: str, motion_dim: int = MOTION_DIM) -> tuple[int, np.ndarray]:
    """A client's binary message -> (side, float32 samples (n,)) or (:data:`SIDE_MOTION`, (k, motion_dim)
    frames)."""
    if not data:
        raise ProtocolError("bad_message", "an empty binary message (expected a side tag and samples)")
    side, body = data[0], data[1:]
    if side == SIDE_MOTION:
        width = 4 * motion_dim
        if len(body) % width:
            raise ProtocolError("bad_message", f"motion message of {len(body)} bytes: not a whole number of frames")
        frames = np.frombuffer(body, "<f4").astype(np.float32).reshape(-1, motion_dim)
        problem = motion_values_problem(frames)
        if problem is not None:
            raise ProtocolError("bad_input", f"partner motion {problem}")
        return side, frames
    if side not in (SIDE_SELF, SIDE_PARTNER):
        raise ProtocolError("bad_message", f"unknown side tag {side} (0 self, 1 partner, 2 partner motion)")
    dtype = ENCODINGS[encoding]
    if len(body) % dtype.itemsize:
        raise ProtocolError("bad_message", f"audio message of {len(body)} bytes: not whole {encoding} samples")
    x = np.frombuffer(body, dtype)
    samples = x.astype(np.float32) / 32768.0 if dtype.kind == "i" else x.astype(np.float32)
    problem = samples_problem(samples)
    if problem is not None:
        raise ProtocolError("bad_input", f"{'self' if side == SIDE_SELF else 'partner'} audio {problem}")
    return side, samples


__all__ = [
    "CLOSE_CODES",
    "CLOSE_DONE",
    "ENCODINGS",
    "SIDE_MOTION",
    "SIDE_PARTNER",
    "SIDE_SELF",
    "VERSION",
    "Done",
    "End",
    "Error",
    "Frames",
    "Hello",
    "Motion",
    "ProtocolError",
    "Ready",
    "Start",
    "decode_binary",
    "encode_audio",
    "encode_motion",
    "parse_text",
]
