"""The service's ARKit output (issue 13 part 4): ``"output": "arkit"`` in ``start`` gives named ARKit channels
(52 weights, head yaw/pitch/roll) with a FLAME model and ``--arkit-map``, or with an ARKit model; the hello
lists the outputs, the ready names the channels once; ``dualtalk.client`` and ``dualtalk stream --server
--format arkit-*`` ask for it. Old clients (no ``output``) get what they always got."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("websockets")

from fastapi.testclient import TestClient  # noqa: E402
from tests.serve.test_serve import collect, expect_error, running_server, signals  # noqa: E402

from dualtalk.errors import DualTalkError, InputError  # noqa: E402
from dualtalk.export.arkit import ARKIT_CHANNELS, arkit_channels  # noqa: E402
from dualtalk.inference.streaming import JointSession, StreamingSession  # noqa: E402
from dualtalk.layout import ARKIT, FLAME  # noqa: E402
from dualtalk.serve.app import create_app  # noqa: E402
from dualtalk.serve.protocol import SIDE_PARTNER, SIDE_SELF, encode_audio, encode_motion  # noqa: E402

SR = 16000


def tiny(layout: str):
    from dualtalk.model.dualtalk import build_model
    from dualtalk.model.presets import get_preset

    torch.manual_seed(0)
    m = build_model(get_preset("tiny-stream", [f"motion_layout={layout}"])).eval()
    dim = m.config.motion_dim
    m.set_motion_statistics(np.full(dim, 0.3), np.full(dim, 0.3))
    return m


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from dualtalk.model.checkpoint import load_model, save_model
    from dualtalk.train.toy import toy_arkit_map

    root = tmp_path_factory.mktemp("serve-arkit")
    toy_arkit_map().save(root / "MAP.json")
    dirs = {layout: save_model(tiny(layout), root / layout) for layout in ("flame", "arkit")}
    return {
        "map": root / "MAP.json",
        "dirs": dirs,
        "nets": {layout: load_model(str(d)) for layout, d in dirs.items()},
    }


def run_session(ws, a, b, motion=None, step=700, **start):
    hello = ws.receive_json()
    ws.send_text(json.dumps({"type": "start", "version": "1", **start}))
    ready = ws.receive_json()
    assert ready["type"] == "ready", ready
    pushed = 0
    for i in range(0, len(a), step):
        ws.send_bytes(encode_audio(SIDE_SELF, a[i : i + step]))
        ws.send_bytes(encode_audio(SIDE_PARTNER, b[i : i + step]))
        if motion is not None:
            upto = min(len(motion), (i + step) // 640)
            if upto > pushed:
                ws.send_bytes(encode_motion(motion[pushed:upto]))
                pushed = upto
    ws.send_text(json.dumps({"type": "end"}))
    frames, done = collect(ws)
    return hello, ready, frames


def local(net, a, b, motion=None, joint=False):
    from dualtalk.inference.streaming import feed

    target = JointSession(net) if joint else StreamingSession(net, partner_motion=motion is not None)
    return feed(target, a, b, motion, step=700)


def test_flame_model_with_a_map_sends_named_arkit_frames(models):
    from dualtalk.export.arkit import load_arkit_map

    net, amap = models["nets"]["flame"], load_arkit_map(models["map"])
    client = TestClient(create_app(str(models["dirs"]["flame"]), arkit_map=str(models["map"])))
    assert client.get("/v1/models").json()["models"][0]["motion_layout"] == "flame"
    a, b, motion = signals(1.2)
    with client.websocket_connect("/v1/stream") as ws:
        hello, ready, frames = run_session(ws, a, b, motion, partner_motion=True, output="arkit")
    assert hello["outputs"] == ["motion", "arkit"] and hello["motion_dim"] == 56 and hello["motion_layout"] == "flame"
    assert ready["output"] == "arkit" and ready["channels"] == list(ARKIT_CHANNELS)
    assert ready["channels"][17] == "jawOpen" and ready["channels"][52:] == ["HeadYaw", "HeadPitch", "HeadRoll"]
    mine, _ = local(net, a, b, motion)
    np.testing.assert_allclose(frames["self"], arkit_channels(mine, "flame", amap), atol=1e-5)
    assert frames["self"][:, :52].min() >= 0 and frames["self"][:, :52].max() <= 1
    # joint mode: both people's frames converted
    with client.websocket_connect("/v1/stream") as ws:
        _, _, frames = run_session(ws, a, b, mode="joint", output="arkit")
    own, other = local(net, b, a, joint=True)  # as the server: the person's session is "b" of the joint one
    np.testing.assert_allclose(frames["self"], arkit_channels(other, "flame", amap), atol=1e-5)
    np.testing.assert_allclose(frames["partner"], arkit_channels(own, "flame", amap), atol=1e-5)
    # a client that does not ask gets model-order frames, named in ready
    with client.websocket_connect("/v1/stream") as ws:
        _, ready, frames = run_session(ws, a, b)
    assert ready["output"] == "motion" and ready["channels"] == list(FLAME.channels)
    np.testing.assert_allclose(frames["self"], local(net, a, b)[0], atol=1e-5)


def test_arkit_output_without_a_map_is_refused(models):
    client = TestClient(create_app(str(models["dirs"]["flame"])))
    with client.websocket_connect("/v1/stream") as ws:
        hello = ws.receive_json()
        assert hello["outputs"] == ["motion"]
        ws.send_text(json.dumps({"type": "start", "version": "1", "output": "arkit"}))
        msg = expect_error(ws, "bad_message", 4400)
    assert "--arkit-map" in msg["message"]
    with client.websocket_connect("/v1/stream") as ws:  # an unknown output is a bad field
        ws.receive_json()
        ws.send_text(json.dumps({"type": "start", "version": "1", "output": "fbx"}))
        expect_error(ws, "bad_message", 4400)


def test_arkit_model_streams_in_its_layout_and_as_named_channels(models):
    net = models["nets"]["arkit"]
    client = TestClient(create_app(str(models["dirs"]["arkit"])))
    a, b, _ = signals(1.2)
    motion = np.clip(np.random.default_rng(1).uniform(0, 1, (len(a) // 640 + 1, 55)), 0, 1).astype(np.float32)
    with client.websocket_connect("/v1/stream") as ws:
        hello, ready, frames = run_session(ws, a, b, motion, partner_motion=True)
    assert hello["motion_dim"] == 55 and hello["motion_layout"] == "arkit" and hello["outputs"] == ["motion", "arkit"]
    assert ready["channels"] == list(ARKIT.channels)
    mine, _ = local(net, a, b, motion)
    np.testing.assert_allclose(frames["self"], mine, atol=1e-5)
    with client.websocket_connect("/v1/stream") as ws:
        _, ready, frames = run_session(ws, a, b, motion, partner_motion=True, output="arkit")
    assert ready["channels"] == list(ARKIT_CHANNELS)
    np.testing.assert_allclose(frames["self"], arkit_channels(mine, "arkit"), atol=1e-5)
    # FLAME-width partner motion is refused with the reason
    with client.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_text(json.dumps({"type": "start", "version": "1", "partner_motion": True}))
        ws.receive_json()
        ws.send_text(json.dumps({"type": "motion", "frames": [[0.0] * 56]}))
        assert "55 numbers" in expect_error(ws, "bad_input", 4422)["message"]


def test_generate_route_of_an_arkit_model(models):
    import io

    import soundfile as sf

    client = TestClient(create_app(str(models["dirs"]["arkit"])))
    a, b, _ = signals(1.0)
    files = {}
    for name, x in (("self_audio", a), ("partner_audio", b)):
        buf = io.BytesIO()
        sf.write(buf, x, SR, format="WAV", subtype="FLOAT")
        files[name] = (f"{name}.wav", buf.getvalue())
    r = client.post("/v1/generate", files=files, data={"format": "json"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(body) == ["arkit", "fps", "frames", "head"] and len(body["arkit"][0]) == 52
    r = client.post("/v1/generate", files=files, data={"both": "true"})
    with np.load(io.BytesIO(r.content)) as data:
        assert sorted(data.files) == ["arkit", "head", "partner_arkit", "partner_head"]


def test_bad_map_or_map_with_an_arkit_model_fail_at_start(models, tmp_path):
    (tmp_path / "bad.json").write_text('{"rows": {"jawOpn": {"weights": []}}}')
    with pytest.raises(InputError, match="unknown ARKit name 'jawOpn'"):
        create_app(str(models["dirs"]["flame"]), arkit_map=str(tmp_path / "bad.json"))
    with pytest.raises(DualTalkError, match="is an ARKit model already"):
        create_app(str(models["dirs"]["arkit"]), arkit_map=str(models["map"]))


# ----------------------------------------------------------------------------------------------------
# a real server: the client and dualtalk stream --server --format arkit-json


@pytest.fixture
def live_server(models):
    with running_server(create_app(str(models["dirs"]["flame"]), arkit_map=str(models["map"]))) as url:
        yield url


def test_stream_command_asks_the_server_for_arkit(tmp_path, models, live_server):
    import soundfile as sf

    from dualtalk.cli import main
    from dualtalk.client import StreamClient
    from dualtalk.export.arkit import load_arkit

    a, b, _ = signals(1.2, seed=5)
    sf.write(tmp_path / "A.wav", a, SR, subtype="FLOAT")
    sf.write(tmp_path / "B.wav", b, SR, subtype="FLOAT")
    common = ["stream", "--self-audio", str(tmp_path / "B.wav"), "--partner-audio", str(tmp_path / "A.wav")]
    remote, here = tmp_path / "remote.json", tmp_path / "local.json"
    assert main([*common, "--server", live_server, "--out", str(remote), "--format", "arkit-json"]) == 0
    local_args = ["--model", str(models["dirs"]["flame"]), "--arkit-map", str(models["map"])]
    assert main([*common, *local_args, "--out", str(here)]) == 0  # --format auto: .json -> arkit-json
    got, want = json.loads(remote.read_text()), json.loads(here.read_text())
    assert got["channels"] == want["channels"] and got["frames"] == want["frames"] > 0
    np.testing.assert_allclose(load_arkit(remote)[0], load_arkit(here)[0], atol=1e-5)
    for name in ("HeadYaw", "HeadPitch", "HeadRoll"):
        np.testing.assert_allclose(got["head"]["values"][name], want["head"]["values"][name], atol=1e-5)
    # the Live Link Face CSV, both people
    csv_out, partner = tmp_path / "B.csv", tmp_path / "A.csv"
    args = ["--server", live_server, "--out", str(csv_out), "--partner-out", str(partner), "--format", "arkit-csv"]
    assert main([*common, *args]) == 0
    assert load_arkit(csv_out)[0].shape == load_arkit(partner)[0].shape == (got["frames"], 52)
    # the client
    with StreamClient(live_server, output="arkit") as c:
        assert c.channels == list(ARKIT_CHANNELS)
        c.send(b[:6400], a[:6400])
        out = c.finish()
    assert out["self"].shape[1] == 55


def test_client_asking_for_arkit_from_a_server_without_it(models, tmp_path):
    import socket
    import threading
    import time

    import uvicorn

    from dualtalk.client import StreamClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(str(models["dirs"]["flame"])), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            time.sleep(0.02)
        with pytest.raises(DualTalkError, match=r"cannot send 'arkit' frames \(it offers: motion\)"):
            StreamClient(f"ws://127.0.0.1:{port}/v1/stream", output="arkit")
    finally:
        server.should_exit = True
        thread.join(timeout=30)
