"""glTF export: structure, the Khronos validator (zero errors), three.js's GLTFLoader in headless Chromium
against the project's renderer (silhouette IoU), the sidecar audio, atomic writes, the FLAME math."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from dualtalk.errors import InputError
from dualtalk.export import export_gltf, pose_corrective_error, skinned_vertices
from dualtalk.export.gltf import FLAME_JOINTS, TARGET_NAMES, joint_translations, quaternions, top4_weights
from dualtalk.flame import load_flame, write_synthetic_flame
from dualtalk.io.motion import Motion, save_motion
from dualtalk.render.heads import BuiltinHead, FlameHead
from dualtalk.render.raster import SoftwareRasterizer
from dualtalk.render.scene import Camera

FRAME = 20  # the frame compared with three.js (a key: no interpolation in between)
SIZE = 192


def lively_motion(T: int = 30, exp_scale: float = 1.0) -> Motion:
    """Smooth motion with a wide-open jaw and a clear head turn by frame 20."""
    t = np.arange(T)[:, None] / T
    rng = np.random.default_rng(3)
    exp = exp_scale * np.sin(2 * np.pi * (t * rng.uniform(0.5, 2, 50) + rng.uniform(0, 1, 50)))
    jaw = np.concatenate([0.4 * t, 0.02 * t, 0 * t], 1)
    rot = np.concatenate([-0.15 * t, 0.45 * t, 0.1 * t], 1)
    return Motion(exp=exp.astype(np.float32), jaw=jaw.astype(np.float32), global_rot=rot.astype(np.float32))


@pytest.fixture(scope="module")
def flame_file(tmp_path_factory):
    return write_synthetic_flame(tmp_path_factory.mktemp("flame") / "generic_model.pkl")


def silhouette(head, motion: Motion, frame: int, size: int = SIZE) -> np.ndarray:
    """The project's renderer: the head's vertices at ``frame``, its camera, the software rasteriser."""
    cam = Camera(head.center, head.radius, size)
    sl = slice(frame, frame + 1)
    v = head.vertices(motion.exp[sl], motion.jaw[sl], motion.global_rot[sl])[0]
    xy, depth = cam.project(v)
    image = SoftwareRasterizer(size, size).draw(xy, depth, np.ones((len(v), 3)), head.faces, np.zeros(3))
    return image[..., 0] > 127


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def read_glb(path):
    from pygltflib import GLTF2

    doc = GLTF2().load_binary(str(path))
    blob = doc.binary_blob()

    def array(index: int) -> np.ndarray:
        acc = doc.accessors[index]
        view = doc.bufferViews[acc.bufferView]
        dtype = {5126: np.float32, 5121: np.uint8, 5123: np.uint16, 5125: np.uint32}[acc.componentType]
        width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
        a = np.frombuffer(blob, dtype, acc.count * width, view.byteOffset + (acc.byteOffset or 0))
        return a.reshape(acc.count, width) if width > 1 else a

    return doc, array


# ----------------------------------------------------------------------------------------------------
# what is in the file


def test_flame_file_holds_mesh_targets_skeleton_animation(tmp_path, flame_file):
    motion = lively_motion()
    out = tmp_path / "B.glb"
    summary = export_gltf(motion, out, flame=flame_file)
    model = load_flame(flame_file)
    doc, array = read_glb(out)
    assert summary["head"] == "flame" and summary["frames"] == 30
    mesh = doc.meshes[0]
    prim = mesh.primitives[0]
    assert mesh.extras["targetNames"] == list(TARGET_NAMES) and len(prim.targets) == 50
    np.testing.assert_allclose(array(prim.attributes.POSITION), model.v_template, atol=1e-7)
    np.testing.assert_allclose(array(prim.targets[7]["POSITION"]), model.expdirs[:, :, 7], atol=1e-7)
    assert array(prim.indices).reshape(-1, 3).tolist() == model.faces.tolist()
    # skeleton: FLAME's joints, the top-4 weights summing to 1, inverse bind = translate by -joint
    skin = doc.skins[0]
    assert [doc.nodes[j].name for j in skin.joints] == list(FLAME_JOINTS)
    w = array(prim.attributes.WEIGHTS_0)
    assert np.abs(w.sum(1) - 1).max() < 1e-6
    ibm = array(skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    joints = model.J_regressor @ model.v_template
    np.testing.assert_allclose(ibm[:, :3, 3], -joints, atol=1e-6)
    # animation: key times at 25 fps, weights = exp, neck rotation = global rotation, jaw = jaw
    anim = doc.animations[0]
    by_path = {(doc.nodes[c.target.node].name, c.target.path): anim.samplers[c.sampler] for c in anim.channels}
    assert set(by_path) == {
        ("head", "weights"),
        ("neck", "rotation"),
        ("jaw", "rotation"),
        ("neck", "translation"),
        ("jaw", "translation"),
    }
    # frame t at t / 25 and the last frame held to 30 / 25: the clip lasts as long as 30 frames of audio
    np.testing.assert_allclose(array(by_path["head", "weights"].input), np.arange(31) / 25, atol=1e-6)
    assert summary["seconds"] == 30 / 25

    def held(x):
        return np.concatenate([x, x[-1:]])

    np.testing.assert_allclose(array(by_path["head", "weights"].output).reshape(31, 50), held(motion.exp), atol=1e-6)
    rotations = quaternions(motion.global_rot)
    np.testing.assert_allclose(array(by_path["neck", "rotation"].output), held(rotations), atol=1e-6)
    np.testing.assert_allclose(array(by_path["jaw", "rotation"].output), held(quaternions(motion.jaw)), atol=1e-6)
    trans = joint_translations(model, motion.exp, motion.jaw, motion.global_rot)
    np.testing.assert_allclose(array(by_path["jaw", "translation"].output), held(trans[:, 2]), atol=1e-7)


def test_builtin_file_holds_rigid_parts_and_jaw_neck_animation(tmp_path):
    out = tmp_path / "B.glb"
    summary = export_gltf(lively_motion(), out)
    doc, array = read_glb(out)
    head = BuiltinHead()
    prim = doc.meshes[0].primitives[0]
    assert summary["head"] == "builtin" and not prim.targets
    assert array(prim.attributes.COLOR_0).shape == (len(head.rest), 3)
    j = array(prim.attributes.JOINTS_0)[:, 0]
    assert (j[head.jaw_idx] == 2).all() and (np.bincount(j, minlength=3) > 0).all()
    assert set(np.unique(array(prim.attributes.WEIGHTS_0))) == {0.0, 1.0}
    assert summary["channels"] == ["neck.rotation", "jaw.rotation"]


def test_skinned_vertices_is_flame_without_correctives(flame_file):
    """glTF's skinning (morph targets, animated joint translations, fixed inverse bind matrices) is FLAME's
    forward pass without the pose correctives (the synthetic model has at most 4 weights per vertex)."""
    model = load_flame(flame_file)
    motion = lively_motion(exp_scale=3.0)
    flat = dataclasses.replace(model, posedirs=np.zeros_like(model.posedirs))
    want = flat.vertices(motion.exp, motion.jaw, motion.global_rot)
    np.testing.assert_allclose(skinned_vertices(model, motion.exp, motion.jaw, motion.global_rot), want, atol=2e-6)


def test_top4_weights_renormalised():
    w = np.array([[0.1, 0.2, 0.3, 0.25, 0.15], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]])
    joints, weights = top4_weights(w)
    assert joints[0].tolist() == [2, 3, 1, 4] and abs(weights[0].sum() - 1) < 1e-7
    np.testing.assert_allclose(weights[0], np.array([0.3, 0.25, 0.2, 0.15]) / 0.9, rtol=1e-6)
    assert joints[1].tolist() == [2, 0, 0, 0] and weights[1].tolist() == [1, 0, 0, 0]
    assert weights[2].tolist() == [1, 0, 0, 0]  # no weights: follows the root


def test_pose_corrective_error_measures_what_is_lost(flame_file):
    model = load_flame(flame_file)
    zero = np.zeros((5, 3), np.float32)
    still = pose_corrective_error(model, Motion(exp=np.ones((5, 50), np.float32), jaw=zero, global_rot=zero))
    assert still["correctives"]["max_mm"] < 1e-3 and still["gltf"]["max_mm"] < 1e-3  # no rotation, no correctives
    moving = pose_corrective_error(model, lively_motion())
    assert 0 < moving["correctives"]["mean_mm"] <= moving["correctives"]["max_mm"]
    assert len(moving["correctives"]["per_frame_max_mm"]) == 30
    # all glTF loses on this model (at most 4 weights per vertex) is the correctives, to float32 rounding
    assert abs(moving["gltf"]["mean_mm"] - moving["correctives"]["mean_mm"]) < 1e-3


# ----------------------------------------------------------------------------------------------------
# the Khronos glTF Validator


@pytest.mark.parametrize("kind", ["flame", "builtin"])
def test_khronos_validator_reports_no_errors(kind, tmp_path, flame_file, validate_gltf):
    out = tmp_path / "B.glb"
    export_gltf(lively_motion(), out, flame=flame_file if kind == "flame" else None)
    report = validate_gltf(out)
    issues = report["issues"]
    assert issues["numErrors"] == 0, issues["messages"][:10]
    assert issues["numWarnings"] == 0, issues["messages"][:10]
    info = report["info"]
    assert info["animationCount"] == 1 and info["hasSkins"] and info["maxInfluences"] == 4
    assert info["hasMorphTargets"] == (kind == "flame")


# ----------------------------------------------------------------------------------------------------
# three.js's GLTFLoader in headless Chromium against the project's renderer


@pytest.mark.parametrize("kind", ["flame", "builtin"])
def test_threejs_frame_matches_project_renderer(kind, tmp_path, flame_file, three_render):
    motion = lively_motion(exp_scale=12.0 if kind == "flame" else 1.0)  # large: the synthetic targets are ~1 mm/unit
    out = tmp_path / "B.glb"
    export_gltf(motion, out, flame=flame_file if kind == "flame" else None)
    head = FlameHead(load_flame(flame_file)) if kind == "flame" else BuiltinHead()
    mask, info = three_render(out, FRAME / 25, head.center, head.radius, SIZE)
    assert info["animations"] == 1 and info["skinned"] == 1
    assert info["duration"] == pytest.approx(len(motion) / 25)  # as long as the motion's audio, not a frame less
    if kind == "flame":
        assert info["morphTargets"] == 50 and info["firstTarget"] == "exp00"
    ours = silhouette(head, motion, FRAME)
    score = iou(mask, ours)
    print(f"three.js vs the project renderer, {kind} head, frame {FRAME}: silhouette IoU {score:.4f}")
    assert score >= 0.95, score
    # the check can fail: the rest pose (and, for FLAME, the frame without its expression) scores lower
    rest = Motion(
        exp=np.zeros((1, 50), np.float32), jaw=np.zeros((1, 3), np.float32), global_rot=np.zeros((1, 3), np.float32)
    )
    assert iou(mask, silhouette(head, rest, 0)) < score - 0.03
    if kind == "flame":
        no_exp = dataclasses.replace(motion, exp=np.zeros_like(motion.exp))
        assert iou(mask, silhouette(head, no_exp, FRAME)) < score - 0.01


def test_threejs_of_the_checks_is_the_vendored_version():
    """GLTFLoader (tools/gltf/package.json) must be the same three.js version the service vendors."""
    import json

    from tests.export.conftest import TOOLS, VENDORED

    pinned = json.loads((TOOLS / "package.json").read_text())["dependencies"]["three"]
    if not VENDORED:
        pytest.skip("no vendored three.js in src/dualtalk/assets/web/vendor")
    assert [p.name for p in VENDORED] == [f"three-{pinned}"]


# ----------------------------------------------------------------------------------------------------
# files


def test_audio_is_copied_beside_the_glb_and_referenced(tmp_path):
    import soundfile as sf

    from dualtalk.export.gltf import build_gltf  # noqa: F401  (the module the command uses)

    wav = tmp_path / "in" / "speech.wav"
    wav.parent.mkdir()
    sf.write(str(wav), np.zeros(30 * 640, np.float32), 16000)
    out = tmp_path / "out" / "B.glb"
    summary = export_gltf(lively_motion(), out, audio=wav)
    assert (tmp_path / "out" / "B.wav").read_bytes() == wav.read_bytes() and summary["audio"].endswith("B.wav")
    doc, _ = read_glb(out)
    assert doc.asset.extras["dualtalk"]["audio"] == {"uri": "B.wav", "start_seconds": 0.0}
    export_gltf(lively_motion(), out, audio=wav)  # again: its copy is there already
    # another recording already named B.wav is not the user's output: refused, nothing written
    other = tmp_path / "in" / "other.wav"
    sf.write(str(other), np.ones(30 * 640, np.float32) * 0.1, 16000)
    before = out.read_bytes()
    with pytest.raises(InputError, match="B.wav: exists and is not a copy of .*other.wav"):
        export_gltf(lively_motion(), out, audio=other)
    assert (tmp_path / "out" / "B.wav").read_bytes() == wav.read_bytes() and out.read_bytes() == before


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    from pygltflib import GLTF2

    def broken(self, path):
        with open(path, "wb") as fh:
            fh.write(b"glTF half")
        raise RuntimeError("disk gone")

    monkeypatch.setattr(GLTF2, "save_binary", broken)
    with pytest.raises(RuntimeError):
        export_gltf(lively_motion(), tmp_path / "B.glb")
    assert list(tmp_path.iterdir()) == []


def test_export_reads_motion_files_and_never_loads_a_model(tmp_path):
    """The library path of ``dualtalk export`` imports no torch (the CLI's other commands may)."""
    path = tmp_path / "B.npz"
    save_motion(path, lively_motion())
    code = (
        "import sys; from dualtalk.export import export_gltf; "
        f"export_gltf({str(path)!r}, {str(tmp_path / 'B.glb')!r}); "
        "assert 'torch' not in sys.modules, 'export imported torch'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "B.glb").stat().st_size > 1000


def test_cli_export_glb(tmp_path, capsys):
    from dualtalk.cli import main

    path = tmp_path / "B.npz"
    save_motion(path, lively_motion())
    assert main(["export", "--motion", str(path), "--out", str(tmp_path / "B.glb")]) == 0
    assert "builtin head, 30 frames at 25 fps" in capsys.readouterr().out


def test_motion_objects_are_checked_as_files_are(tmp_path):
    """A Motion with no frames or NaN was written into a .glb the validator rejects; other types are named."""
    from dualtalk.errors import DualTalkError

    for motion, message in (
        (Motion.from_model(np.zeros((0, 56), np.float32)), "has no frames"),
        (Motion.from_model(np.full((3, 56), np.nan, np.float32)), "NaN"),
        (np.zeros((3, 56)), "got ndarray"),
    ):
        with pytest.raises(DualTalkError, match=message):
            export_gltf(motion, tmp_path / "B.glb")
    assert not list(tmp_path.iterdir())
