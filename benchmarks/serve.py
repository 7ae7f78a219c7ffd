"""Load and soak of ``dualtalk serve``: concurrent live sessions at real-time pace, added latency, memory.

    python benchmarks/serve.py                                  # demo-stream, 1 worker -> results/serve.json
    python benchmarks/serve.py --seconds 4 --max-sessions 4 --soak-seconds 30 --out /tmp/serve.json  # quick

The real CLI (``dualtalk serve``) runs as a subprocess on a free loopback port; the clients live in this
process (one asyncio event loop, one coroutine pair per session, the ``websockets`` library with its
defaults, as ``dualtalk.client``). Each session sends two synthetic voices (alternating 3 s turns of noise
shaped by a syllable envelope, pre-encoded as f32le) in 40 ms chunks at real-time pace: chunk k is sent when
its last sample would have been spoken (``t0 + (k + 1) x 40 ms``, the sessions' clocks spread over one chunk).

- **added latency** of a frame: the time its ``frames`` message arrived minus the time the audio that made
  it final was sent. Frame t is final once both voices reached sample 640 x (t + 1 + lookahead) (the
  lookahead from the hello's ``latency_ms``), i.e. once chunk t + lookahead was sent; frames that need
  audio past the end are final when ``end`` is sent. The algorithmic latency (the lookahead) comes on top
  and is not counted.
- **a session count holds** when, over all frames of all its sessions, p95 added latency <= ``--p95-ms``
  (50), no session falls behind (its ``done`` arrives within ``--tail-ms`` of its ``end``), every session
  got all its frames without an error, and the audio really went out at real time (the clients' p95 send
  delay after the schedule <= one chunk). Counts 1, 2, 4, 8, 12, 16, ... up to ``--max-sessions``, each
  ``--seconds`` of audio, until one fails (or ``--series-budget`` seconds are used up).
- **soak**: ``--soak-sessions`` sessions back to back (each ``--seconds`` of audio, staggered) for
  ``--soak-seconds``, the server's resident memory (VmRSS of its processes) sampled every 10 s; flat when
  the end is within 5 % or 20 MB of the value at 1 minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SR = 16000
CHUNK = 640  # 40 ms at 16 kHz: one frame of audio
CHUNK_S = CHUNK / SR
GOAL = {"sessions": 8, "p95_added_ms": 50.0}
FLAT_FRACTION, FLAT_MB = 0.05, 20.0


def voices(seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two alternating synthetic voices: noise shaped by a 4 Hz syllable envelope, 3 s turns."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    turn = (np.floor(t / 3.0) % 2).astype(np.float32)
    env = (0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t)).astype(np.float32)
    a = (0.1 * rng.standard_normal(n) * env * turn).astype(np.float32)
    b = (0.1 * rng.standard_normal(n) * env * (1 - turn)).astype(np.float32)
    return a, b


def encoded_chunks(seconds: float = 60.0) -> tuple[list[bytes], list[bytes]]:
    """The binary messages of both voices, 40 ms each (tag byte + f32le samples), encoded once."""
    from dualtalk.serve.protocol import SIDE_PARTNER, SIDE_SELF, encode_audio

    a, b = voices(seconds)
    n = len(a) // CHUNK
    mine = [encode_audio(SIDE_SELF, a[i * CHUNK : (i + 1) * CHUNK]) for i in range(n)]
    other = [encode_audio(SIDE_PARTNER, b[i * CHUNK : (i + 1) * CHUNK]) for i in range(n)]
    return mine, other


# ------------------------------------------------------------------------------------- the server process
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(model: str, port: int, workers: int, max_sessions: int, max_batch: int = 32) -> list[str]:
    exe = Path(sys.executable).parent / "dualtalk"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "dualtalk"]
    return base + [
        "serve", "--model", model, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--max-sessions", str(max_sessions), "--max-batch", str(max_batch), "--log-level", "warning",
    ]  # fmt: skip


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dualtalk serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"dualtalk serve did not answer /healthz within {timeout:.0f} s")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()  # fields from 3 (state) on


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (uvicorn's worker processes with ``--workers`` > 1)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def rss_mb(root: int) -> float:
    """VmRSS of the server's processes, MB (1e6 bytes)."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total / 1e6


def cpu_seconds(root: int) -> float:
    """User + system CPU time of the server's processes so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in process_tree(root):
        try:
            f = _stat(pid)
            total += int(f[11]) + int(f[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / tick


# ----------------------------------------------------------------------------------------- the clients
class Session:
    """One live session: connect, hello/start/ready, then ``run`` sends paced audio and reads frames."""

    def __init__(self, url: str, mine: list[bytes], other: list[bytes], offset: int, chunks: int):
        self.url = url
        total = len(mine)
        order = [(offset + k) % total for k in range(chunks)]
        self.mine = [mine[i] for i in order]
        self.other = [other[i] for i in order]
        self.chunks = chunks
        self.sent = np.zeros(chunks)  # when both voices of chunk k were sent
        self.lag = np.zeros(chunks)  # how late that was after the schedule
        self.end_sent = 0.0
        self.arrivals: list[tuple[float, int, int]] = []  # (time, start, count) of each frames message
        self.done_at = 0.0
        self.done: dict | None = None
        self.error: str | None = None
        self.lookahead = 0

    async def open(self) -> None:
        from websockets.asyncio.client import connect  # websockets >= 13

        self.ws = await connect(self.url, max_size=64 << 20, open_timeout=60)
        hello = json.loads(await self.ws.recv())
        self.lookahead = int(round(hello["latency_ms"] * hello["fps"] / 1000.0)) - 1
        start = {"type": "start", "version": "1", "sample_rate": SR, "encoding": "f32le", "mode": "listen"}
        await self.ws.send(json.dumps(start))
        ready = json.loads(await self.ws.recv())
        if ready.get("type") != "ready":
            raise RuntimeError(f"expected ready, got {ready}")

    async def _send(self, t0: float) -> None:
        ws = self.ws
        for k in range(self.chunks):
            due = t0 + (k + 1) * CHUNK_S  # the chunk's last sample has been spoken
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            await ws.send(self.mine[k])
            await ws.send(self.other[k])
            now = time.perf_counter()
            self.sent[k], self.lag[k] = now, now - due
        await ws.send('{"type": "end"}')
        self.end_sent = time.perf_counter()

    async def _receive(self) -> None:
        async for message in self.ws:
            now = time.perf_counter()
            m = json.loads(message)
            kind = m.get("type")
            if kind == "frames":
                self.arrivals.append((now, m["start"], len(m["frames"])))
            elif kind == "done":
                self.done_at, self.done = now, m
            elif kind == "error":
                self.error = f"{m.get('code')}: {m.get('message')}"

    async def run(self, t0: float) -> None:
        try:
            receiving = asyncio.create_task(self._receive())
            await self._send(t0)
            await asyncio.wait_for(receiving, timeout=60)
        except Exception as exc:  # noqa: BLE001 - recorded: the count does not hold
            self.error = self.error or f"{type(exc).__name__}: {exc}"
        finally:
            await self.ws.close()

    def added_latency_ms(self) -> np.ndarray:
        out = []
        for arrived, start, count in self.arrivals:
            for t in range(start, start + count):
                k = t + self.lookahead
                ref = self.sent[k] if k < self.chunks else self.end_sent
                out.append(arrived - ref)
        return np.asarray(out) * 1000.0

    def frames(self) -> int:
        return sum(c for _, _, c in self.arrivals)


def summarize(sessions: list[Session], expect_frames: bool = True) -> dict:
    lat = np.concatenate([s.added_latency_ms() for s in sessions] or [np.zeros(0)])
    lag = np.concatenate([s.lag * 1000.0 for s in sessions] or [np.zeros(0)])
    tails = [(s.done_at - s.end_sent) * 1000.0 if s.done else float("inf") for s in sessions]
    errors = [s.error for s in sessions if s.error]
    incomplete = [
        s for s in sessions if s.done is None or s.done["frames"].get("self") != s.frames() or s.frames() < s.chunks
    ]
    pct = (lambda q: float(np.percentile(lat, q))) if len(lat) else (lambda q: float("nan"))
    return {
        "frames": int(len(lat)),
        "added_latency_ms_p50": pct(50),
        "added_latency_ms_p95": pct(95),
        "added_latency_ms_max": float(lat.max()) if len(lat) else float("nan"),
        "worst_session_p95_ms": max(
            (float(np.percentile(x, 95)) for s in sessions if len(x := s.added_latency_ms())), default=float("nan")
        ),
        "added_latency_ms_min": float(lat.min()) if len(lat) else float("nan"),  # >= 0: frames never come early
        "tail_ms_max": float(max(tails)) if tails and max(tails) < float("inf") else None,  # None: a done missing
        "send_delay_ms_p95": float(np.percentile(lag, 95)) if len(lag) else 0.0,
        "send_delay_ms_max": float(lag.max()) if len(lag) else 0.0,
        "errors": errors[:5],
        "error_count": len(errors),
        "incomplete_sessions": len(incomplete) if expect_frames else 0,
    }


async def load_run(url: str, count: int, seconds: float, enc, server_pid: int) -> dict:
    """``count`` sessions at once, each ``seconds`` of audio at real time."""
    mine, other = enc
    chunks = int(round(seconds / CHUNK_S))
    sessions = [Session(url, mine, other, offset=(i * 137) % len(mine), chunks=chunks) for i in range(count)]
    await asyncio.gather(*(s.open() for s in sessions))
    cpu0, ccpu0, wall0 = cpu_seconds(server_pid), time.process_time(), time.perf_counter()
    t0 = time.perf_counter() + 0.2
    await asyncio.gather(*(s.run(t0 + i * CHUNK_S / count) for i, s in enumerate(sessions)))
    wall = time.perf_counter() - wall0
    out: dict[str, Any] = {"sessions": count, "audio_seconds": chunks * CHUNK_S}
    out.update(summarize(sessions))
    out["server_cpu_cores"] = (cpu_seconds(server_pid) - cpu0) / wall
    out["client_cpu_cores"] = (time.process_time() - ccpu0) / wall
    out["server_rss_mb"] = rss_mb(server_pid)
    return out


def verdict(r: dict, p95_ms: float, tail_ms: float) -> tuple[bool, list[str]]:
    why = []
    if not r["added_latency_ms_p95"] <= p95_ms:
        why.append(f"p95 added latency {r['added_latency_ms_p95']:.1f} ms > {p95_ms:g} ms")
    if r["tail_ms_max"] is None:
        why.append("a session ended without done")
    elif not r["tail_ms_max"] <= tail_ms:
        why.append(f"a session fell behind (done {r['tail_ms_max']:.0f} ms after end > {tail_ms:g} ms)")
    if r["error_count"] or r["incomplete_sessions"]:
        why.append(f"{r['error_count']} errors, {r['incomplete_sessions']} sessions without all their frames")
    if not r["send_delay_ms_p95"] <= CHUNK_S * 1000:
        why.append(f"audio not sent at real time (p95 send delay {r['send_delay_ms_p95']:.0f} ms)")
    return not why, why


async def soak(url: str, sessions: int, seconds: float, soak_seconds: float, enc, server_pid: int) -> dict:
    """``sessions`` slots, each running sessions of ``seconds`` back to back until ``soak_seconds``."""
    mine, other = enc
    begun = time.perf_counter()
    deadline = begun + soak_seconds
    done: list[Session] = []
    samples: list[tuple[float, float]] = [(0.0, rss_mb(server_pid))]
    counter = [0]

    async def slot(i: int) -> None:
        await asyncio.sleep(i * seconds / sessions)  # staggered: sessions open and close all the time
        while True:
            left = deadline - time.perf_counter()
            chunks = int(min(seconds, left) / CHUNK_S)
            if chunks < 25:
                return
            counter[0] += 1
            s = Session(url, mine, other, offset=(counter[0] * 211) % len(mine), chunks=chunks)
            try:
                await s.open()
            except Exception as exc:  # noqa: BLE001
                s.error = f"{type(exc).__name__}: {exc}"
                done.append(s)
                await asyncio.sleep(1.0)
                continue
            await s.run(time.perf_counter() + 0.05)
            done.append(s)

    async def sampler() -> None:
        k = 1
        while True:
            await asyncio.sleep(max(0.0, begun + 10.0 * k - time.perf_counter()))
            samples.append((time.perf_counter() - begun, rss_mb(server_pid)))
            k += 1

    sampling = asyncio.create_task(sampler())
    cpu0, ccpu0 = cpu_seconds(server_pid), time.process_time()
    await asyncio.gather(*(slot(i) for i in range(sessions)))
    wall = time.perf_counter() - begun
    sampling.cancel()
    await asyncio.sleep(1.0)  # the last sessions' state released
    samples.append((time.perf_counter() - begun, rss_mb(server_pid)))
    at_1 = min(samples, key=lambda s: abs(s[0] - 60.0))
    end = samples[-1]
    growth = end[1] - at_1[1]
    out: dict[str, Any] = {
        "sessions": sessions,
        "session_seconds": seconds,
        "soak_seconds": soak_seconds,
        "sessions_run": len(done),
        "audio_seconds": float(sum(s.chunks for s in done) * CHUNK_S),
    }
    out.update(summarize(done))
    out["server_cpu_cores"] = (cpu_seconds(server_pid) - cpu0) / wall
    out["client_cpu_cores"] = (time.process_time() - ccpu0) / wall
    out["rss_mb_samples"] = [[round(t, 1), round(m, 2)] for t, m in samples]
    out["rss_mb_start"] = samples[0][1]
    out["rss_mb_at_1_min"] = at_1[1]
    out["rss_mb_at_1_min_time_s"] = at_1[0]
    out["rss_mb_at_end"] = end[1]
    out["rss_mb_max"] = max(m for _, m in samples)
    out["rss_growth_mb"] = growth
    out["flat_rule"] = f"end - 1 min <= max({FLAT_FRACTION:.0%} of the 1 min value, {FLAT_MB:g} MB)"
    out["flat"] = bool(growth <= max(FLAT_FRACTION * at_1[1], FLAT_MB))
    return out


def counts(limit: int) -> list[int]:
    out = [c for c in (1, 2, 4, 8) if c <= limit]
    c = 12
    while c <= limit:
        out.append(c)
        c += 4
    return out


async def main_async(args, base: str, pid: int, result: dict) -> None:
    url = base.replace("http://", "ws://") + "/v1/stream"
    enc = encoded_chunks(60.0)
    await load_run(url, 1, 2.0, enc, pid)  # warm-up: the first session's lazy initialisation
    runs: list[dict] = []
    started = time.perf_counter()
    for count in counts(args.max_sessions):
        elapsed = time.perf_counter() - started
        if runs and elapsed + (args.seconds + 3.0) > args.series_budget:
            print(f"series budget of {args.series_budget:g} s used up: stopping before {count} sessions")
            result["series_stopped_by_budget"] = True
            break
        r = await load_run(url, count, args.seconds, enc, pid)
        r["holds"], r["why_not"] = verdict(r, args.p95_ms, args.tail_ms)
        runs.append(r)
        tail = "-" if r["tail_ms_max"] is None else f"{r['tail_ms_max']:.0f}"
        print(
            f"{count:3d} sessions: added latency p50 {r['added_latency_ms_p50']:6.1f}  p95 "
            f"{r['added_latency_ms_p95']:6.1f}  max {r['added_latency_ms_max']:7.1f} ms, tail "
            f"{tail:>6} ms, send delay p95 {r['send_delay_ms_p95']:5.1f} ms, server "
            f"{r['server_cpu_cores']:.2f} cores, client {r['client_cpu_cores']:.2f} cores"
            + ("" if r["holds"] else "  -> does not hold: " + "; ".join(r["why_not"])),
            flush=True,
        )
        if not r["holds"]:
            break
        await asyncio.sleep(1.0)
    held = [r["sessions"] for r in runs if r["holds"]]
    best = max(held) if held else 0
    at = next((r for r in runs if r["sessions"] == best), None)
    result["runs"] = runs
    result["max_real_time_sessions"] = best
    result["sessions_per_core"] = best / result["machine"]["cores"]
    result["at_max"] = (
        {k: at[k] for k in ("added_latency_ms_p50", "added_latency_ms_p95", "added_latency_ms_max")} if at else None
    )
    result["goal"] = dict(GOAL, met=bool(best >= GOAL["sessions"]))
    if args.soak_seconds > 0:
        print(f"soak: {args.soak_sessions} sessions back to back for {args.soak_seconds:g} s ...", flush=True)
        result["soak"] = await soak(url, args.soak_sessions, args.seconds, args.soak_seconds, enc, pid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo-stream")
    ap.add_argument("--workers", type=int, default=1, help="dualtalk serve --workers")
    ap.add_argument("--max-batch", type=int, default=32, help="dualtalk serve --max-batch (1: no batching)")
    ap.add_argument("--seconds", type=float, default=20.0, help="audio per session of each count")
    ap.add_argument("--max-sessions", type=int, default=48, help="the largest count tried")
    ap.add_argument("--series-budget", type=float, default=480.0, help="wall seconds for the step series")
    ap.add_argument("--soak-seconds", type=float, default=600.0)
    ap.add_argument("--soak-sessions", type=int, default=4)
    ap.add_argument("--p95-ms", type=float, default=GOAL["p95_added_ms"], help="p95 added latency bound")
    ap.add_argument("--tail-ms", type=float, default=500.0, help="done at most this long after end")
    ap.add_argument("--out", type=Path, default=RESULTS / "serve.json")
    args = ap.parse_args()

    defaults = {"model": "demo-stream", "workers": 1, "max_batch": 32, "seconds": 20.0, "max_sessions": 48,
                "soak_seconds": 600.0, "soak_sessions": 4}  # fmt: skip
    extra = [
        f"--{k.replace('_', '-')} {getattr(args, k):g}"
        if isinstance(v, (int, float))
        else f"--{k.replace('_', '-')} {getattr(args, k)}"
        for k, v in defaults.items()
        if getattr(args, k) != v
    ]
    port = free_port()
    cmd = server_command(args.model, port, args.workers, max(args.max_sessions, args.soak_sessions) + 4, args.max_batch)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import websockets

    result: dict = {
        "command": " ".join(["python benchmarks/serve.py", *extra]),
        "server_command": " ".join(["dualtalk", *cmd[cmd.index("serve") :]]).replace(str(port), "PORT"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model": args.model,
        "workers": args.workers,
        "max_batch": args.max_batch,
        "machine": {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "python": platform.python_version()},
        "client": f"websockets {websockets.__version__} asyncio, one event loop in the benchmark process, "
        "default options (permessage-deflate)",
        "chunk_ms": CHUNK_S * 1000,
        "session_seconds": args.seconds,
        "criteria": {
            "p95_added_latency_ms": args.p95_ms,
            "tail_ms": args.tail_ms,
            "send_delay_ms_p95": CHUNK_S * 1000,
        },
    }
    log = tempfile.NamedTemporaryFile(prefix="dualtalk-serve-bench-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        health = wait_healthy(base, proc)
        with urllib.request.urlopen(base + "/v1/models", timeout=10) as r:
            info = json.loads(r.read())["models"][0]
        result["latency_ms_algorithmic"] = info["latency_ms"]
        result["server_rss_mb_idle"] = rss_mb(proc.pid)
        print(f"server {health['model']} pid {proc.pid} on port {port}, {args.workers} worker(s), "
              f"algorithmic latency {info['latency_ms']:.0f} ms, {result['server_rss_mb_idle']:.0f} MB")  # fmt: skip
        asyncio.run(main_async(args, base, proc.pid, result))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    tail = Path(log.name).read_text(errors="replace").strip().splitlines()[-20:]
    if any("Traceback" in line or "ERROR" in line for line in tail):
        print("server log (last lines):\n" + "\n".join(tail))
    os.unlink(log.name)

    best, at = result["max_real_time_sessions"], result["at_max"]
    print(f"largest real-time count: {best} sessions ({result['sessions_per_core']:.1f} per core)", end="")
    if at:
        print(f", added latency p50 {at['added_latency_ms_p50']:.1f} / p95 {at['added_latency_ms_p95']:.1f} ms")
    else:
        print()
    print(f"goal ({GOAL['sessions']} sessions, p95 <= {GOAL['p95_added_ms']:g} ms): "
          f"{'met' if result['goal']['met'] else 'NOT met'}")  # fmt: skip
    if "soak" in result:
        s = result["soak"]
        print(f"soak: {s['sessions_run']} sessions in {s['soak_seconds']:g} s, RSS {s['rss_mb_at_1_min']:.1f} MB "
              f"at 1 min, {s['rss_mb_at_end']:.1f} MB at the end ({'flat' if s['flat'] else 'NOT flat'}), "
              f"added latency p95 {s['added_latency_ms_p95']:.1f} ms")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
