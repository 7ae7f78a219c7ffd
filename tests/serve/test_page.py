"""The page of ``dualtalk serve`` (GET /): its routes, and a real browser end to end.

The browser tests start the service (uvicorn in a thread, the packaged ``demo-stream`` model) on a free
loopback port and drive the page in headless Chromium with Playwright: two voices of a synthetic
conversation are set on the file inputs, the page streams them over WS /v1/stream and everything is
checked from the page's own state (``window.dualtalk``): its frames equal what ``dualtalk.client`` gets
for the same audio, the jaw opens more while a person speaks than while they listen, its mesh is
``BuiltinHead``'s (or the FLAME model's) and is posed as the Python renderer poses it. The microphone
path uses Chromium's fake capture device fed with one of the voices.

They need Playwright (the ``dev`` extra) and Debian's Chromium at /usr/bin/chromium (``apt-get install -y
chromium``; Playwright's own browser download is not used) and skip with the reason otherwise.
``DUALTALK_PAGE_SCREENSHOT=docs/img/serve_page.png`` also writes the screenshot of the page there.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("websockets")

from fastapi.testclient import TestClient  # noqa: E402
from tests.serve.test_serve import LiveServer  # noqa: E402

from dualtalk.render.heads import BuiltinHead, FlameHead, unpack_array  # noqa: E402
from dualtalk.serve.app import WEB_DIR, create_app  # noqa: E402

SR = 16000
FPS = 25
CHROMIUM = os.environ.get("DUALTALK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
WAIT_MS = 600_000  # how long to wait for the page at most (a loaded 2-core machine renders in software)


@pytest.fixture(scope="module")
def net():
    from dualtalk.model.checkpoint import load_model

    return load_model("demo-stream")


# ----------------------------------------------------------------------------------------------------
# the routes (no browser)


def test_page_and_its_files_are_served(net):
    client = TestClient(create_app("demo-stream", model=net))
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    imports = json.loads(page.text.split('<script type="importmap">')[1].split("</script>")[0])["imports"]
    three = imports["three"]
    assert three.startswith("/web/vendor/three-") and three.endswith("/three.module.min.js")
    for path in (three, three.replace("three.module", "three.core"), "/web/app.js", "/web/capture.js"):
        r = client.get(path)
        assert r.status_code == 200 and "javascript" in r.headers["content-type"], path
    assert client.get("/web/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/web/../serve/app.py").status_code == 404
    assert client.get("/web/nothing.js").status_code == 404
    # the vendored three.js is what scripts/vendor_three.sh recorded, with its licence
    vendor = WEB_DIR / three.removeprefix("/web/")
    sums = (vendor.parent / "SHA256SUMS").read_text().split("\n")
    import hashlib

    for line in filter(None, sums):
        digest, name = line.split()
        assert hashlib.sha256((vendor.parent / name).read_bytes()).hexdigest() == digest, name
    assert "MIT License" in (vendor.parent / "LICENSE").read_text()
    for name in ("index.html", "app.js", "capture.js", "style.css"):  # nothing loaded from elsewhere (offline)
        assert not re.search(r"https?://\w", (WEB_DIR / name).read_text()), name


def test_head_definition_is_the_builtin_head(net):
    client = TestClient(create_app("demo-stream", model=net))
    d = client.get("/v1/head").json()
    head = BuiltinHead()
    assert d["kind"] == "builtin" and d["num_vertices"] == len(head.rest) and d["num_faces"] == len(head.faces)
    np.testing.assert_array_equal(unpack_array(d["rest"]), head.rest)
    np.testing.assert_array_equal(unpack_array(d["faces"]), head.faces)
    np.testing.assert_array_equal(unpack_array(d["base_colors"]), head.base_colors)
    np.testing.assert_array_equal(unpack_array(d["jaw_idx"]), head.jaw_idx)
    np.testing.assert_array_equal(unpack_array(d["head_idx"]), head.head_idx)
    assert d["jaw_hinge"] == pytest.approx([0.0, -0.005, 0.0]) and len(d["neck_pivot"]) == 3


def test_flame_definition_reproduces_flame_vertices(tmp_path, net):
    """The arrays of the FLAME definition, run through the page's algorithm in numpy, give
    FlameModel.vertices (the browser test checks the page's own JavaScript against it too)."""
    from dualtalk.flame import load_flame, rodrigues, write_synthetic_flame

    path = write_synthetic_flame(tmp_path / "flame.pkl")
    client = TestClient(create_app("demo-stream", model=net, flame=str(path)))
    d = client.get("/v1/head").json()
    a = {k: unpack_array(v) for k, v in d.items() if isinstance(v, dict) and "base64" in v}
    rng = np.random.default_rng(0)
    exp, jaw, rot = rng.normal(0, 1, 50), np.array([0.2, 0.01, -0.02]), np.array([0.1, -0.2, 0.05])
    shaped = a["v_template"] + np.einsum("e,evc->vc", exp, a["expdirs"])
    joints = a["joints_template"] + np.einsum("e,ejc->jc", exp, a["joints_expdirs"])
    R = np.stack([np.eye(3)] * 5)
    R[d["joints"]["neck"]], R[d["joints"]["jaw"]] = rodrigues(rot), rodrigues(jaw)
    shaped = shaped + np.einsum("f,fvc->vc", (R[1:] - np.eye(3)).reshape(36), a["posedirs"])
    G = np.zeros((5, 3, 4))
    for j, p in enumerate(d["parents"]):
        if p < 0:
            G[j] = np.c_[R[j], joints[j]]
        else:
            G[j] = np.c_[G[p, :, :3] @ R[j], G[p, :, :3] @ (joints[j] - joints[p]) + G[p, :, 3]]
    G[:, :, 3] -= np.einsum("jab,jb->ja", G[:, :, :3], joints)
    M = np.einsum("vj,jab->vab", a["weights"], G)
    posed = np.einsum("vab,vb->va", M[:, :, :3], shaped) + M[:, :, 3]
    expected = FlameHead(load_flame(path)).vertices(exp[None], jaw[None], rot[None])[0]
    np.testing.assert_allclose(posed, expected, atol=1e-5)


def test_page_needs_no_token_but_the_data_does(net):
    client = TestClient(create_app("demo-stream", model=net, token="s3cret"))
    assert client.get("/").status_code == 200 and client.get("/web/app.js").status_code == 200
    assert client.get("/v1/head").status_code == 401 and client.get("/v1/models").status_code == 401
    assert client.get("/v1/head", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/", headers={"Origin": "https://evil.example"}).status_code == 403


def test_serve_with_a_bad_flame_file_is_one_error_line(tmp_path, capsys):
    from dualtalk.cli import main

    bad = tmp_path / "generic_model.pkl"
    bad.write_bytes(b"not a pickle")
    assert main(["serve", "--flame", str(bad), "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "FLAME" in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------------------------------
# a real server and a real browser


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    """Two voices (8 s) with who-speaks-when, as float wavs; a 3 s cut; the first voice as 16-bit PCM (the
    fake microphone's input); a file that is not audio."""
    import soundfile as sf

    from dualtalk.synth import make_conversation

    d = tmp_path_factory.mktemp("page")
    conv = make_conversation(8, seed=3)
    a, b = conv.audio[1], conv.audio[2]
    sf.write(d / "A.wav", a, SR, subtype="FLOAT")
    sf.write(d / "B.wav", b, SR, subtype="FLOAT")
    sf.write(d / "A3.wav", a[: 3 * SR], SR, subtype="FLOAT")
    sf.write(d / "B3.wav", b[: 3 * SR], SR, subtype="FLOAT")
    sf.write(d / "mic.wav", a, SR, subtype="PCM_16")
    (d / "notes.wav").write_text("these are not audio samples\n")
    speaking = {}
    for person, k in (("A", 1), ("B", 2)):
        mask = np.zeros(conv.num_frames, bool)
        for s in conv.segments:
            if s.speaker == k:
                mask[int(s.start * FPS) : int(math.ceil(s.end * FPS))] = True
        speaking[person] = mask
    return {"dir": d, "a": a, "b": b, "speaking": speaking}


@pytest.fixture(scope="module")
def playwright():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright: the dev extra has it)"
    )
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    pw = sync_api.sync_playwright().start()
    yield pw
    pw.stop()


BROWSER_ARGS = [
    "--use-angle=swiftshader",  # WebGL without a GPU
    "--enable-unsafe-swiftshader",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",  # a microphone that plays a file
]


@pytest.fixture(scope="module")
def browser(playwright, conversation):
    mic = conversation["dir"] / "mic.wav"
    args = [*BROWSER_ARGS, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={mic}"]
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    yield b
    b.close()


@pytest.fixture(scope="module")
def server(net):
    s = LiveServer(create_app("demo-stream", model=net))
    yield s
    s.stop()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1100, "height": 820})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.dualtalk && ['ready', 'error'].includes(window.dualtalk.state)", timeout=WAIT_MS)
    page.problems = problems  # type: ignore[attr-defined]
    return page


def run(page, a=None, b=None, mic: str | None = None, until: str = "['done', 'error']"):
    for person, path in (("A", a), ("B", b)):
        if mic == person:
            page.check(f"input[name=kind-{person}][value=mic]")
        elif path is not None:
            page.set_input_files(f"#file-{person}", str(path))
    page.click("#start")
    page.wait_for_function(f"{until}.includes(window.dualtalk.state)", timeout=WAIT_MS)


def page_error(page) -> str:
    text = page.evaluate("document.getElementById('error').textContent")
    assert page.is_visible("#error") and text == page.evaluate("window.dualtalk.error")
    assert "\n" not in text
    return text


def test_page_streams_a_conversation_and_both_heads_move(browser, server, conversation, tmp_path):
    from dualtalk.client import StreamClient

    d, a, b = conversation["dir"], conversation["a"], conversation["b"]
    # what dualtalk.client gets for the same audio (A is "self", B "partner")
    with StreamClient(server.ws, mode="joint") as client:
        for i in range(0, len(a), 640):
            client.send(a[i : i + 640], b[i : i + 640])
        expected = client.finish()
    # for the screenshot: A's widest open mouth while B listens
    sa, sb = conversation["speaking"]["A"], conversation["speaking"]["B"]
    moment = int(np.argmax(np.where((sa & ~sb)[: len(expected["self"])], expected["self"][:, 50], -np.inf)))

    page = open_page(browser, server.url)
    assert page.evaluate("window.dualtalk.state") == "ready", page.evaluate("window.dualtalk.error")
    run(page, d / "A.wav", d / "B.wav", until="['streaming', 'done', 'error']")
    page.wait_for_function(f"window.dualtalk.shown.A >= {moment} || window.dualtalk.state === 'error'", timeout=WAIT_MS)
    shot = tmp_path / "serve_page.png"
    page.screenshot(path=str(shot))
    page.wait_for_function("['done', 'error'].includes(window.dualtalk.state)", timeout=WAIT_MS)
    state = page.evaluate(
        "(({state, error, mode, sampleRate, frames, jaw, speaking, done, latency, head, hello}) =>"
        " ({state, error, mode, sampleRate, frames, jaw, speaking, done, latency, head, hello}))(window.dualtalk)"
    )
    assert state["state"] == "done", state["error"]
    assert state["mode"] == "joint" and state["sampleRate"] == SR and not page.problems
    if os.environ.get("DUALTALK_PAGE_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["DUALTALK_PAGE_SCREENSHOT"])

    # the page's frames are what dualtalk.client got
    frames = {p: np.asarray(state["frames"][p], np.float32) for p in "AB"}
    assert state["done"] == {"self": len(expected["self"]), "partner": len(expected["partner"])}
    np.testing.assert_allclose(frames["A"], expected["self"], atol=1e-4)
    np.testing.assert_allclose(frames["B"], expected["partner"], atol=1e-4)
    for p in "AB":
        np.testing.assert_array_equal(np.asarray(state["jaw"][p]), frames[p][:, 50:53])

    # both heads moved as a conversation: the jaw opens more while that person speaks than while they listen;
    # the page's speaking badges follow the voices
    for p in "AB":
        truth = conversation["speaking"][p][: len(frames[p])]
        opening = frames[p][:, 50]
        assert opening[truth].mean() > opening[~truth].mean(), p
        badge = np.asarray(state["speaking"][p][: len(truth)], bool)
        assert badge[truth[: len(badge)]].mean() > badge[~truth[: len(badge)]].mean(), p

    # the mesh is BuiltinHead's, posed as BuiltinHead.vertices poses it, and the mesh drawn is the frame shown
    head = BuiltinHead()
    assert state["head"] == {"kind": "builtin", "vertices": len(head.rest), "faces": len(head.faces)}
    k = int(np.argmax(frames["A"][:, 50]))  # the widest open mouth of A
    posed = np.asarray(page.evaluate(f"window.dualtalk.posed('A', {k})")).reshape(-1, 3)
    f = frames["A"][k]
    np.testing.assert_allclose(posed, head.vertices(f[None, :50], f[None, 50:53], f[None, 53:])[0], atol=1e-4)
    last = len(frames["B"]) - 1
    page.wait_for_function(f"window.dualtalk.shown.B === {last}", timeout=WAIT_MS)  # the playback's end
    drawn = np.asarray(page.evaluate("window.dualtalk.drawn('B')")).reshape(-1, 3)
    f = frames["B"][last]
    np.testing.assert_allclose(drawn, head.vertices(f[None, :50], f[None, 50:53], f[None, 53:])[0], atol=1e-4)
    assert page.evaluate("window.dualtalk.rendered") > 0

    # the latency the page measured (reported, not judged: this machine is shared)
    lat = state["latency"]
    assert lat["n"] == len(frames["A"]) + len(frames["B"]) and 0 <= lat["p50"] <= lat["p95"]
    assert "p50" in page.inner_text("#latency")
    drew, cost = page.evaluate("[window.dualtalk.rendered, window.dualtalk.cost]")
    print(
        f"\npage latency over {lat['n']} frames: p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms; {drew} draws, "
        f"{cost['pose'] / drew:.1f} ms posing and {cost['draw'] / drew:.1f} ms in WebGL calls per draw"
    )
    page.close()


def test_page_with_a_microphone(browser, server, conversation):
    """A from Chromium's fake microphone (playing voice A), B from a 3 s file: the session runs at the
    microphone's rate, both heads get every frame of the file's length, A's badge hears speech."""
    page = open_page(browser, server.url)
    run(page, b=conversation["dir"] / "B3.wav", mic="A")
    state = page.evaluate(
        "(({state, error, frames, speaking, done, sampleRate}) => ({state, error, frames, speaking, done, sampleRate}))"
        "(window.dualtalk)"
    )
    assert state["state"] == "done", state["error"]
    assert state["done"] == {"self": len(state["frames"]["A"]), "partner": len(state["frames"]["B"])}
    assert abs(len(state["frames"]["A"]) - 3 * FPS) <= 1  # 3 s of audio, resampled by the server
    assert any(state["speaking"]["A"]) and state["sampleRate"] == page.evaluate("new AudioContext().sampleRate")
    assert np.ptp(np.asarray(state["frames"]["A"])[:, 50]) > 0
    page.close()


def test_page_errors_are_one_line(browser, server, conversation, net):
    d = conversation["dir"]
    page = open_page(browser, server.url)
    run(page, d / "notes.wav", d / "B.wav")
    assert page_error(page).startswith('person A: cannot decode "notes.wav" as audio')
    page.reload()
    page.wait_for_function("window.dualtalk.state === 'ready'", timeout=WAIT_MS)
    run(page, a=d / "A3.wav")
    assert page_error(page) == "person B: choose an audio file (or the microphone)"
    page.reload()
    page.wait_for_function("window.dualtalk.state === 'ready'", timeout=WAIT_MS)
    page.check("input[name=kind-A][value=mic]")
    page.check("input[name=kind-B][value=mic]")
    page.click("#start")
    assert page_error(page).startswith("only one person can use the microphone")
    page.close()

    page = browser.new_page()  # three.js cannot be loaded: still one line, not a blank page
    page.route("**/three.module.min.js", lambda route: route.abort())
    page.goto(server.url)
    page.wait_for_selector("#error:not([hidden])", timeout=WAIT_MS)
    assert page.inner_text("#error") == "the page script could not be loaded (/web/app.js or the three.js it imports)"
    page.close()

    # the server's close code and reason: a full server (busy, 1013), a wrong token (HTTP 401)
    from dualtalk.client import StreamClient

    full = LiveServer(create_app("demo-stream", model=net, token="tok", max_sessions=1))
    try:
        page = open_page(browser, full.url + "?token=wrong")
        error = page_error(page)
        assert error.startswith("GET /v1/") and "401 unauthorized" in error and "?token=" in error
        page.close()
        with StreamClient(full.ws, token="tok"):  # takes the only session
            page = open_page(browser, full.url + "?token=tok")
            run(page, d / "A3.wav", d / "B3.wav")
            busy = "server: busy: too many sessions (1): try again later (close 1013 too many sessions)"
            assert page_error(page) == busy
            page.close()
    finally:
        full.stop()


def test_page_says_when_the_microphone_is_refused(playwright, server, conversation):
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)  # no fake permission prompt
    try:
        page = open_page(b, server.url)
        run(page, b=conversation["dir"] / "B3.wav", mic="A")
        assert page_error(page).startswith("microphone: permission refused (NotAllowedError")
    finally:
        b.close()


def test_page_draws_the_flame_head(browser, conversation, net, tmp_path):
    from dualtalk.flame import load_flame, write_synthetic_flame

    path = write_synthetic_flame(tmp_path / "generic_model.pkl")
    s = LiveServer(create_app("demo-stream", model=net, flame=str(path)))
    try:
        page = open_page(browser, s.url)
        run(page, conversation["dir"] / "A3.wav", conversation["dir"] / "B3.wav")
        state = page.evaluate("({state: dualtalk.state, error: dualtalk.error, head: dualtalk.head})")
        assert state["state"] == "done", state["error"]
        flame = FlameHead(load_flame(path))
        assert state["head"] == {"kind": "flame", "vertices": flame.model.num_vertices, "faces": len(flame.faces)}
        frames = np.asarray(page.evaluate("window.dualtalk.frames.B"), np.float32)
        k = int(np.argmax(np.abs(frames[:, 50]) + np.abs(frames[:, 53:]).sum(1)))  # jaw and neck well away from 0
        posed = np.asarray(page.evaluate(f"window.dualtalk.posed('B', {k})")).reshape(-1, 3)
        f = frames[k]
        expected = flame.vertices(f[None, :50], f[None, 50:53], f[None, 53:])[0]
        np.testing.assert_allclose(posed, expected, atol=1e-4)  # pose correctives included
        page.screenshot(path=str(tmp_path / "serve_page_flame.png"))
        page.close()
    finally:
        s.stop()


def test_page_with_a_model_that_generates_one_person(browser, conversation):
    """A causal model that does not read the partner's face (so no joint mode): listen mode, A generated
    as the local StreamingSession generates it, B only heard. A model that is not causal: one error line
    when the page loads, Start disabled."""
    import torch

    from dualtalk.inference.streaming import StreamingSession
    from dualtalk.io.audio import load_audio
    from dualtalk.model.dualtalk import build_model
    from dualtalk.model.presets import get_preset

    torch.manual_seed(0)
    one = build_model(get_preset("tiny-stream", ["use_partner_motion=false"])).eval()
    one.set_motion_statistics(np.full(56, 0.1), np.full(56, 0.5))
    d = conversation["dir"]
    a, b = load_audio(d / "A3.wav", SR), load_audio(d / "B3.wav", SR)
    local = StreamingSession(one, partner_motion=False)
    expected = np.concatenate([local.push(a, b), local.flush()])
    s = LiveServer(create_app("one-person", model=one))
    try:
        page = open_page(browser, s.url)
        run(page, d / "A3.wav", d / "B3.wav")
        state = page.evaluate("(({state, error, mode, frames}) => ({state, error, mode, frames}))(window.dualtalk)")
        assert state["state"] == "done" and state["mode"] == "listen", state["error"]
        assert state["frames"]["B"] == [] and "voice only" in page.inner_text("#person-B")
        np.testing.assert_allclose(np.asarray(state["frames"]["A"], np.float32), expected, atol=1e-4)
        page.close()
    finally:
        s.stop()

    offline = build_model(get_preset("tiny-stream", ["variant=paper", "partner_motion_dropout=0"])).eval()
    s = LiveServer(create_app("offline", model=offline))
    try:
        page = open_page(browser, s.url)
        assert page_error(page).startswith("the served model offline is paper, not causal")
        assert page.is_disabled("#start")
        page.close()
    finally:
        s.stop()


def test_page_stop_ends_the_session_with_what_was_sent(browser, server, conversation):
    from dualtalk.client import StreamClient

    d, a, b = conversation["dir"], conversation["a"], conversation["b"]
    page = open_page(browser, server.url)
    run(page, d / "A.wav", d / "B.wav", until="['streaming', 'error']")
    page.wait_for_function("window.dualtalk.frames.A.length >= 20", timeout=WAIT_MS)
    page.click("#stop")
    page.wait_for_function("['done', 'error'].includes(window.dualtalk.state)", timeout=WAIT_MS)
    state = page.evaluate("(({state, error, frames, sent}) => ({state, error, frames, sent}))(window.dualtalk)")
    assert state["state"] == "done", state["error"]
    n = state["sent"]
    assert 0 < n < len(a)
    with StreamClient(server.ws, mode="joint") as client:
        client.send(a[:n], b[:n])
        expected = client.finish()
    np.testing.assert_allclose(np.asarray(state["frames"]["A"], np.float32), expected["self"], atol=1e-4)
    np.testing.assert_allclose(np.asarray(state["frames"]["B"], np.float32), expected["partner"], atol=1e-4)
    assert page.is_enabled("#start") and page.is_disabled("#stop")
    page.close()
