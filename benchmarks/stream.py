"""Live use: latency, compute per chunk, concurrent real-time sessions and memory of a streaming model.

    python benchmarks/stream.py                         # the shipped demo-stream model -> results/stream.json
    python benchmarks/stream.py --model stream-small --seconds 30 --hour-seconds 600   # quicker, random weights

Measured on this machine (one process per measurement, one thread each unless said):

- algorithmic latency: from the start of a frame's 40 ms of audio to the moment its motion can be computed,
  that frame plus the model's lookahead: (lookahead + 1) x 40 ms (compute comes on top);
- compute per 40 ms chunk for one session (pushing both voices, audio only and with the partner's face):
  p50 / p95 / max over ``--seconds`` of a synthetic conversation;
- concurrent sessions at real time: N sessions share the machine (``--cores`` processes, one thread each,
  sessions round-robin within a process), each fed 40 ms chunks; real time holds if every process gets
  through its sessions' audio in less wall time than the audio lasts. The largest N that holds;
- memory after an hour: one session fed ``--hour-seconds`` of audio in 1 s chunks: the bytes of its state
  and buffers, and the process's resident memory, after the first minute and at the end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SR = 16000


def voices(seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two alternating synthetic voices (noise shaped by a syllable envelope) and a partner motion."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    turn = (np.floor(t / 3.0) % 2).astype(np.float32)  # 3 s turns
    env = (0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t)).astype(np.float32)
    a = (0.1 * rng.standard_normal(n) * env * turn).astype(np.float32)
    b = (0.1 * rng.standard_normal(n) * env * (1 - turn)).astype(np.float32)
    motion = (0.2 * rng.standard_normal((-(-n // 640), 56))).astype(np.float32)
    return a, b, motion


def load(model: str):
    import torch

    torch.set_num_threads(1)
    from dualtalk.model.checkpoint import load_model

    return load_model(model)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def one_session(model: str, seconds: float, with_motion: bool, chunk_ms: float = 40.0) -> dict:
    from dualtalk.inference.streaming import StreamingSession

    net = load(model)
    a, b, motion = voices(seconds)
    step = int(SR * chunk_ms / 1000)
    session = StreamingSession(net, partner_motion=with_motion)
    times = []
    pushed = 0
    for i in range(0, len(a), step):
        m = None
        if with_motion:
            upto = min(len(motion), (i + step) // 640)
            m, pushed = motion[pushed:upto], upto
        t0 = time.perf_counter()
        session.push(a[i : i + step], b[i : i + step], m)
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times[25:]) * 1000  # the first second warms up
    return {
        "chunks": len(ms),
        "compute_ms_p50": float(np.percentile(ms, 50)),
        "compute_ms_p95": float(np.percentile(ms, 95)),
        "compute_ms_max": float(ms.max()),
        "real_time_factor": float(ms.sum() / 1000 / (len(ms) * chunk_ms / 1000)),
    }


def _worker(model: str, sessions: int, seconds: float, out) -> None:
    from dualtalk.inference.streaming import StreamingSession

    net = load(model)
    a, b, _ = voices(seconds, seed=1)
    step = 640
    live = [StreamingSession(net, partner_motion=False) for _ in range(sessions)]
    started = time.perf_counter()
    for i in range(0, len(a), step):
        for s in live:
            s.push(a[i : i + step], b[i : i + step])
    out.put(time.perf_counter() - started)


def concurrent(model: str, per_core: int, cores: int, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(model, per_core, seconds, q)) for _ in range(cores)]
    for p in procs:
        p.start()
    walls = [q.get() for _ in procs]
    for p in procs:
        p.join()
    return {
        "sessions": per_core * cores,
        "audio_seconds": seconds,
        "wall_seconds_max": max(walls),
        "real_time": max(walls) < seconds,
    }


def memory(model: str, hour_seconds: float) -> dict:
    from dualtalk.inference.streaming import StreamingSession
    from dualtalk.model.causal import state_nbytes

    net = load(model)
    a, b, _ = voices(60.0, seed=2)  # one minute of audio, looped
    session = StreamingSession(net, partner_motion=False)
    out = {}
    step = SR
    fed = 0
    while fed < hour_seconds * SR:
        i = fed % len(a)
        session.push(a[i : i + step], b[i : i + step])
        fed += step
        if fed in (60 * SR, int(hour_seconds) * SR):
            key = "after_1_min" if fed == 60 * SR else "at_end"
            out[key] = {
                "seconds": fed / SR,
                "state_bytes": state_nbytes(session.state),
                "buffer_samples": sum(len(v.buffer) for v in session.voices.values()),
                "rss_mb": rss_mb(),
            }
    out["flat"] = (
        out["after_1_min"]["state_bytes"] == out["at_end"]["state_bytes"]
        and out["after_1_min"]["buffer_samples"] == out["at_end"]["buffer_samples"]
    )
    return out


def run_in_process(fn, *args):
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(fn, args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo-stream")
    ap.add_argument("--seconds", type=float, default=60.0, help="audio per single-session measurement")
    ap.add_argument("--hour-seconds", type=float, default=3600.0, help="audio for the memory measurement")
    ap.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--out", type=Path, default=RESULTS / "stream.json")
    args = ap.parse_args()

    from dualtalk.model.checkpoint import load_model

    net = load_model(args.model)
    cfg = net.config
    result: dict = {
        "model": args.model,
        "parameters": sum(p.numel() for p in net.parameters()),
        "lookahead_frames": cfg.lookahead_frames,
        "partner_motion_delay": cfg.partner_motion_delay,
        "attention_window": cfg.attention_window,
        "algorithmic_latency_ms": 1000.0 * (cfg.lookahead_frames + 1) / cfg.fps,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": args.cores},
        "command": "python benchmarks/stream.py" + ("" if args.model == "demo-stream" else f" --model {args.model}"),
    }
    print(f"model {args.model}: {result['parameters']} parameters, latency {result['algorithmic_latency_ms']:.0f} ms")
    result["one_session"] = {
        "audio_only": run_in_process(one_session, args.model, args.seconds, False),
        "with_partner_motion": run_in_process(one_session, args.model, args.seconds, True),
    }
    print("one session:", json.dumps(result["one_session"]))
    runs = []
    per_core = 1
    while True:
        r = concurrent(args.model, per_core, args.cores, min(args.seconds, 20.0))
        runs.append(r)
        print(f"{r['sessions']} sessions: {r['wall_seconds_max']:.1f} s for {r['audio_seconds']:.0f} s of audio")
        if not r["real_time"] or per_core >= 64:
            break
        per_core *= 2
    if not runs[-1]["real_time"]:  # refine between the last count that held and the first that did not
        lo, hi = per_core // 2, per_core
        while hi - lo > 1:
            mid = (lo + hi) // 2
            r = concurrent(args.model, mid, args.cores, min(args.seconds, 20.0))
            runs.append(r)
            print(f"{r['sessions']} sessions: {r['wall_seconds_max']:.1f} s for {r['audio_seconds']:.0f} s of audio")
            lo, hi = (mid, hi) if r["real_time"] else (lo, mid)
    ok = [r["sessions"] for r in runs if r["real_time"]]
    result["concurrent"] = {"runs": runs, "max_real_time_sessions": max(ok) if ok else 0}
    result["memory"] = run_in_process(memory, args.model, args.hour_seconds)
    print("memory:", json.dumps(result["memory"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
