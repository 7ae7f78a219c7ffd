"""Fixtures of the export tests: the Khronos glTF Validator (node) and three.js in headless Chromium.

Both are test-only tools pinned in ``tools/gltf/package.json`` (``npm ci --prefix tools/gltf``, which
``.ci/run`` does); Chromium is Debian's ``chromium`` driven by Playwright. A test that needs a tool that is
absent is skipped with the reason.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools" / "gltf"
THREE = TOOLS / "node_modules" / "three"
#: the three.js build the service ships (src/dualtalk/assets/web/vendor/three-VERSION/); the test page loads it
#: with the GLTFLoader of the same version from tools/gltf
VENDORED = sorted((REPO / "src" / "dualtalk" / "assets" / "web" / "vendor").glob("three-*"))
THREE_BUILD = VENDORED[-1] if VENDORED else THREE / "build"
PAGE = Path(__file__).with_name("gltf_page.html")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _node_tools() -> str | None:
    """None when ready, else why not (tries ``npm ci`` once when node_modules is missing)."""
    if shutil.which("node") is None:
        return "node is not installed (the glTF checks need node and npm: apt-get install nodejs npm)"
    if not (TOOLS / "node_modules" / "gltf-validator").exists() or not THREE.exists():
        if shutil.which("npm") is None:
            return "npm is not installed, so tools/gltf cannot be installed"
        proc = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(TOOLS)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            return f"npm ci --prefix tools/gltf failed: {proc.stderr.strip().splitlines()[-1:]}"
    return None


@pytest.fixture(scope="session")
def validate_gltf():
    """``validate_gltf(path) -> report`` (the Khronos validator's JSON report of one file)."""
    reason = _node_tools()
    if reason:
        pytest.skip(reason)

    def run(path: Path) -> dict:
        proc = subprocess.run(
            ["node", str(TOOLS / "validate_gltf.mjs"), str(path)], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)[0]

    return run


@pytest.fixture(scope="module")  # not session: Playwright's sync API allows one instance at a time, and
def three_render():  # tests/serve/test_page.py starts its own after this module
    """``three_render(glb, t, center, radius, size) -> (mask (size, size) bool, info)``: three.js's
    GLTFLoader loads the file in headless Chromium, the animation is set to time ``t`` and the silhouette
    drawn with the project's camera (:class:`dualtalk.render.scene.Camera`)."""
    reason = _node_tools()
    if reason:
        pytest.skip(reason)
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install 'dualtalk[dev]')")
    from PIL import Image

    pw = sync_playwright().start()
    browser = pw.chromium.launch(
        executable_path=CHROMIUM,
        args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"],
    )
    current: dict[str, Path] = {}

    def serve(route):
        path = route.request.url.split("?")[0].split("http://export.test", 1)[1]
        if path == "/model.glb":
            body, kind = current["glb"].read_bytes(), "model/gltf-binary"
        elif path == "/page.html":
            body, kind = PAGE.read_bytes(), "text/html"
        elif path.startswith("/three-build/") and ".." not in path:
            body, kind = (THREE_BUILD / path[len("/three-build/") :]).read_bytes(), "text/javascript"
        elif path.startswith("/three/") and ".." not in path:
            body, kind = (THREE / path[len("/three/") :]).read_bytes(), "text/javascript"
        else:
            return route.fulfill(status=404, body="")
        return route.fulfill(status=200, body=body, headers={"content-type": kind})

    def render(glb: Path, t: float, center, radius: float, size: int, distance: float = 6.0):
        current["glb"] = Path(glb)
        page = browser.new_page()
        try:
            page.route("http://export.test/**", serve)
            c = ",".join(f"{float(x):.9g}" for x in center)
            page.goto(f"http://export.test/page.html?size={size}&t={t}&center={c}&radius={radius}&distance={distance}")
            page.wait_for_function("window.result !== undefined", timeout=120_000)
            result = page.evaluate("window.result")
        finally:
            page.close()
        assert result["ok"], result.get("error")
        png = base64.b64decode(result["png"].split(",", 1)[1])
        image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        return image[..., 0] > 127, result["info"]

    yield render
    browser.close()
    pw.stop()
