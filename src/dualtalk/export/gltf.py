"""glTF 2.0 (``.glb``) export of FLAME motion: a skinned head with one animation at 25 fps.

    from dualtalk.export import export_gltf
    export_gltf("B.npz", "B.glb", flame="generic_model.pkl", audio="B.wav")   # -> summary dict

With the user's FLAME model the file holds

- the template mesh (FLAME's vertex order, so vertex ``i`` of the glTF is FLAME vertex ``i``) with normals;
- the 50 expression blendshapes as morph targets named ``exp00`` .. ``exp49`` (``mesh.extras.targetNames``,
  the name list three.js, Babylon.js and Blender read);
- a skeleton of FLAME's five joints (``root``, ``neck``, ``jaw``, ``left_eye``, ``right_eye``) at the
  template's joint positions, FLAME's skinning weights (the 4 largest per vertex, renormalised to sum to 1)
  and inverse bind matrices;
- one animation, one key per motion frame (linear interpolation): the morph-target ``weights`` channel
  (the expression coefficients), the rotation channels of ``neck`` (the motion's global rotation, as
  :meth:`dualtalk.flame.FlameModel.vertices` applies it by default) and ``jaw``, and the translation
  channels of ``neck`` and ``jaw`` that carry FLAME's expression-dependent joint positions
  (:func:`joint_translations`).

Without FLAME the built-in head (:class:`dualtalk.render.heads.BuiltinHead`) is exported: its rigid parts
as one skinned mesh with vertex colours, joints ``root`` (neck and shoulders), ``neck`` (the head, pivot
at :data:`~dualtalk.render.heads.NECK_PIVOT`) and ``jaw`` (hinge at :data:`~dualtalk.render.heads.JAW_HINGE`),
weights 0/1, and the jaw and neck rotations animated. It has no expression blendshapes (as in the video).

ARKit motion (``arkit`` + ``head`` files, :class:`~dualtalk.io.motion.ArkitMotion`) is exported on the
built-in head (:func:`builtin_motion`): the head rotation as it is and the jaw opened by ``jawOpen`` x
:data:`ARKIT_JAW_OPEN_RADIANS` about x; the other 51 weights have no shape to drive (export them with
``--format arkit-csv`` / ``arkit-json``). A FLAME head (``flame=``) needs FLAME motion: an error otherwise.

What glTF cannot carry: FLAME's pose-corrective blendshapes (vertex offsets driven by the joint
rotations); a viewer shows :func:`skinned_vertices`, which is FLAME without them (measured by
:func:`pose_corrective_error`). Skinning weights beyond the 4 largest per vertex are dropped too.

Audio: glTF 2.0 has no standard audio. ``audio=`` copies the file beside the ``.glb`` under the same stem
(``B.glb`` + ``B.wav``) and names it in ``asset.extras.dualtalk.audio`` (uri, start 0 s at the
animation's time 0); a player that knows this plays it alongside.

The container is written with ``pygltflib`` (extra ``export``); every file is written atomically (a temp
file renamed into place), the ``.glb`` last.
"""

from __future__ import annotations

import dataclasses
import filecmp
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import DualTalkError, InputError, require
from ..flame import JAW, N_JOINTS, NECK, FlameModel, load_flame, rodrigues
from ..io.audio import load_audio
from ..io.conversation import check_length
from ..io.files import atomic_group, atomic_path
from ..io.motion import (
    AnyMotion,
    ArkitMotion,
    Motion,
    load_any_motion,
    load_model_motion,
    motion_from_model,
    motion_values_problem,
)
from ..layout import ARKIT_NAMES, LAYOUTS, N_EXP, frames_for

#: FLAME's joints in its order (``dualtalk.flame``: 0 root, 1 neck, 2 jaw, 3 left eye, 4 right eye)
FLAME_JOINTS = ("root", "neck", "jaw", "left_eye", "right_eye")
#: the built-in head's joints: root (neck and shoulders, still), neck (the head), jaw
BUILTIN_JOINTS = ("root", "neck", "jaw")
#: morph target names, in the order of the motion's ``exp`` columns
TARGET_NAMES = tuple(f"exp{i:02d}" for i in range(N_EXP))
FLAME_COLOR = (0.78, 0.77, 0.76)  # the renderer's FLAME grey (sRGB)
#: ARKit motion on the built-in head: the jaw's opening (radians about x, FLAME's sign) at ``jawOpen`` = 1
ARKIT_JAW_OPEN_RADIANS = 0.3

# glTF constants
_FLOAT, _UBYTE, _USHORT, _UINT = 5126, 5121, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_TYPES = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}
_COMPONENTS = {np.dtype(np.float32): _FLOAT, np.dtype(np.uint8): _UBYTE, np.dtype(np.uint16): _USHORT}
_COMPONENTS[np.dtype(np.uint32)] = _UINT


# ----------------------------------------------------------------------------------------------------
# what a glTF viewer computes, and what it loses against FLAME


def template_joints(model: FlameModel) -> np.ndarray:
    """(5, 3) FLAME's joints at zero expression: where the glTF skeleton's joints sit."""
    return (model.J_regressor @ model.v_template).astype(np.float64)


def top4_weights(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per vertex the 4 largest skinning weights and their joints, renormalised to sum to 1.

    Returns ``joints`` (V, 4) uint8 and ``weights`` (V, 4) float32 (unused slots: joint 0, weight 0). The
    float32 weights are corrected so that each row sums to 1 to float32 precision (what glTF validators
    check)."""
    w = np.clip(np.asarray(weights, np.float64), 0, None)  # (V, J)
    J = w.shape[1]
    if J < 4:
        w = np.concatenate([w, np.zeros((len(w), 4 - J))], axis=1)
    order = np.argsort(-w, axis=1, kind="stable")[:, :4]  # (V, 4) largest first
    top = np.take_along_axis(w, order, axis=1)
    total = top.sum(1, keepdims=True)
    empty = total[:, 0] <= 0
    top[empty] = [1, 0, 0, 0]  # a vertex without weights follows the root
    order[empty] = 0
    top = (top / top.sum(1, keepdims=True)).astype(np.float32)
    top[:, 0] = 1 - top[:, 1:].sum(1, dtype=np.float32)  # largest weight takes the rounding
    order = np.where(top > 0, order, 0)
    return order.astype(np.uint8), top


def _pose(T: int, jaw: np.ndarray, global_rot: np.ndarray) -> np.ndarray:
    """(T, 5, 3) per-joint axis-angle: the global rotation at the neck, the jaw at the jaw, the rest zero."""
    pose = np.zeros((T, N_JOINTS, 3))
    pose[:, NECK] = np.atleast_2d(global_rot)
    pose[:, JAW] = np.atleast_2d(jaw)
    return pose


def joint_translations(model: FlameModel, exp: np.ndarray, jaw: np.ndarray, global_rot: np.ndarray) -> np.ndarray:
    """(T, 5, 3) the local translations of the glTF joints that make glTF's skinning equal FLAME's.

    In FLAME the joints move with the expression (``J = J_regressor @ (template + expdirs @ e)``), while a
    glTF skin's inverse bind matrices are fixed (at the template's joints ``J0``). Joint ``j`` rotating by
    ``R_j`` about ``J_j`` instead of ``J0_j`` is the same rigid motion as rotating about ``J0_j`` and
    translating: with the local translation ``J_j - J0_parent + R_j (J0_j - J_j)`` (``J0_parent`` = 0 for
    the root) the glTF world matrix times the inverse bind matrix equals FLAME's ``G_j (v - J_j)`` exactly.
    It is constant (the rest offset) for joints that do not rotate.
    """
    exp = np.atleast_2d(np.asarray(exp, np.float64))
    T = len(exp)
    J0 = template_joints(model)  # (5, 3)
    JE = np.einsum("jv,vce->jce", model.J_regressor.astype(np.float64), model.expdirs[:, :, : exp.shape[1]])
    J = J0[None] + np.einsum("jce,te->tjc", JE, exp)  # (T, 5, 3) FLAME's joints per frame
    rot = rodrigues(_pose(T, jaw, global_rot))  # (T, 5, 3, 3)
    parent = np.where(model.parents[:, None] >= 0, J0[np.maximum(model.parents, 0)], 0.0)  # (5, 3)
    return J - parent[None] + np.einsum("tjab,tjb->tja", rot, J0[None] - J)


def skinned_vertices(model: FlameModel, exp: np.ndarray, jaw: np.ndarray, global_rot: np.ndarray) -> np.ndarray:
    """(T, V, 3) the vertices a glTF viewer shows for the exported FLAME file, computed the way glTF defines
    it: morph targets (the expression), joint world matrices from the animated local rotations and
    translations (:func:`joint_translations`), inverse bind matrices at the template's joints, the top-4
    weights. Equal to :meth:`FlameModel.vertices` without the pose correctives (and the weights beyond 4)."""
    exp = np.atleast_2d(np.asarray(exp, np.float64))
    T, V = len(exp), model.num_vertices
    morphed = model.v_template[None] + np.einsum("vce,te->tvc", model.expdirs[:, :, : exp.shape[1]], exp)
    rot = rodrigues(_pose(T, jaw, global_rot))  # (T, 5, 3, 3) local rotations
    trans = joint_translations(model, exp, jaw, global_rot)  # (T, 5, 3) local translations
    world = np.zeros((T, N_JOINTS, 4, 4))
    world[..., 3, 3] = 1
    for j in range(N_JOINTS):
        local = np.zeros((T, 4, 4))
        local[:, :3, :3], local[:, :3, 3], local[:, 3, 3] = rot[:, j], trans[:, j], 1
        p = model.parents[j]
        world[:, j] = local if p < 0 else world[:, p] @ local
    ibm = np.tile(np.eye(4), (N_JOINTS, 1, 1))
    ibm[:, :3, 3] = -template_joints(model)
    skin = world @ ibm[None]  # (T, 5, 4, 4) joint matrices
    idx, w = top4_weights(model.weights)  # (V, 4)
    dense = np.zeros((V, N_JOINTS))
    np.add.at(dense, (np.arange(V)[:, None], idx.astype(np.int64)), w)  # unused slots add 0 to joint 0
    blended = np.einsum("vj,tjab->tvab", dense, skin[:, :, :3])  # (T, V, 3, 4)
    out = np.einsum("tvab,tvb->tva", blended[..., :3], morphed) + blended[..., 3]
    return out.astype(np.float32)


def pose_corrective_error(model: FlameModel, motion: Motion) -> dict[str, Any]:
    """What the glTF export loses against FLAME over a motion, in millimetres per frame.

    - ``correctives``: :meth:`FlameModel.vertices` with against without the pose-corrective blendshapes
      (the part glTF cannot express at all);
    - ``gltf``: :meth:`FlameModel.vertices` against :func:`skinned_vertices` (what a glTF viewer shows: the
      correctives, plus the weights beyond the 4 largest, plus float32 rounding).

    Each holds ``mean_mm`` / ``max_mm`` (per frame: mean and max vertex distance over the vertices used by
    faces; then averaged and maxed over frames) and the per-frame arrays ``per_frame_mean_mm`` / ``per_frame_max_mm``.
    """
    used = np.unique(model.faces)
    full = model.vertices(motion.exp, motion.jaw, motion.global_rot)[:, used]  # (T, U, 3)
    flat = dataclasses.replace(model, posedirs=np.zeros_like(model.posedirs))
    without = flat.vertices(motion.exp, motion.jaw, motion.global_rot)[:, used]
    gltf = skinned_vertices(model, motion.exp, motion.jaw, motion.global_rot)[:, used]
    out: dict[str, Any] = {"frames": len(motion), "vertices": int(len(used))}
    for key, other in (("correctives", without), ("gltf", gltf)):
        d = np.linalg.norm(full.astype(np.float64) - other, axis=-1) * 1000.0  # (T, U) mm
        out[key] = {
            "mean_mm": float(d.mean()),
            "max_mm": float(d.max()),
            "per_frame_mean_mm": d.mean(1).tolist(),
            "per_frame_max_mm": d.max(1).tolist(),
        }
    return out


# ----------------------------------------------------------------------------------------------------
# building the container


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """glTF vertex colours and colour factors are linear; the renderer's colours are sRGB display values."""
    c = np.clip(np.asarray(c, np.float64), 0, 1)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def quaternions(rotvec: np.ndarray) -> np.ndarray:
    """Axis-angle (T, 3) -> unit quaternions (T, 4) in glTF's (x, y, z, w) order, signs kept continuous so
    that interpolating between neighbouring keys takes the short way."""
    from scipy.spatial.transform import Rotation

    q = Rotation.from_rotvec(np.asarray(rotvec, np.float64).reshape(-1, 3)).as_quat()  # (T, 4) xyzw
    for t in range(1, len(q)):
        if np.dot(q[t], q[t - 1]) < 0:
            q[t] = -q[t]
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def _unit_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    from ..render.scene import vertex_normals

    n = vertex_normals(np.asarray(verts, np.float64), faces)
    bad = np.linalg.norm(n, axis=1) < 0.5  # vertices no face uses (FLAME's and the head's hidden ones)
    n[bad] = [0.0, 0.0, 1.0]
    return (n / np.linalg.norm(n, axis=1, keepdims=True)).astype(np.float32)


class _Builder:
    """One binary buffer, its buffer views and accessors, and the glTF document around them."""

    def __init__(self, gltf_module):
        self.g = gltf_module
        self.doc = gltf_module.GLTF2(
            asset=gltf_module.Asset(version="2.0", generator=f"dualtalk {__version__}"),
            scene=0,
        )
        self.blob = bytearray()

    def accessor(self, array: np.ndarray, target: int | None = None, minmax: bool = False) -> int:
        """Append ``array`` (N,), (N, k) or (N, 4, 4) (matrices stored column-major) and return its accessor."""
        a = np.asarray(array)
        if a.ndim == 3:  # (N, 4, 4) row-major matrices -> glTF's column-major
            a = np.ascontiguousarray(np.transpose(a, (0, 2, 1))).reshape(len(a), 16)
        width = 1 if a.ndim == 1 else a.shape[1]
        a = np.ascontiguousarray(a)
        while len(self.blob) % 4:
            self.blob.append(0)
        view = self.g.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=a.nbytes, target=target)
        self.blob.extend(a.tobytes())
        self.doc.bufferViews.append(view)
        acc = self.g.Accessor(
            bufferView=len(self.doc.bufferViews) - 1,
            componentType=_COMPONENTS[a.dtype],
            count=int(len(a)),
            type=_TYPES[width],
        )
        if minmax:
            flat = a.reshape(len(a), width)
            acc.min = [float(x) if a.dtype.kind == "f" else int(x) for x in flat.min(0)]
            acc.max = [float(x) if a.dtype.kind == "f" else int(x) for x in flat.max(0)]
        self.doc.accessors.append(acc)
        return len(self.doc.accessors) - 1

    def finish(self) -> Any:
        while len(self.blob) % 4:
            self.blob.append(0)
        self.doc.buffers = [self.g.Buffer(byteLength=len(self.blob))]
        self.doc.set_binary_blob(bytes(self.blob))
        return self.doc


def _skinned_mesh(
    b: _Builder,
    name: str,
    verts: np.ndarray,
    faces: np.ndarray,
    joint_names: tuple[str, ...],
    joint_pos: np.ndarray,
    parents: np.ndarray,
    joints4: np.ndarray,
    weights4: np.ndarray,
    colors: np.ndarray | None = None,
    base_color=(1.0, 1.0, 1.0),
    morph: np.ndarray | None = None,
) -> tuple[int, dict[str, int]]:
    """Mesh + skin + joint nodes; returns the mesh node's index and the joint nodes by name."""
    g = b.g
    V = len(verts)
    attrs = g.Attributes(
        POSITION=b.accessor(np.asarray(verts, np.float32), _ARRAY_BUFFER, minmax=True),
        NORMAL=b.accessor(_unit_normals(verts, faces), _ARRAY_BUFFER),
        JOINTS_0=b.accessor(joints4, _ARRAY_BUFFER),
        WEIGHTS_0=b.accessor(weights4, _ARRAY_BUFFER),
    )
    if colors is not None:
        attrs.COLOR_0 = b.accessor(_srgb_to_linear(colors), _ARRAY_BUFFER)
    index_type = np.uint16 if V <= 65535 else np.uint32
    indices = b.accessor(np.asarray(faces, index_type).reshape(-1), _ELEMENT_ARRAY_BUFFER, minmax=True)
    targets = []
    if morph is not None:  # (V, 3, K) displacement per unit coefficient
        for k in range(morph.shape[2]):
            targets.append(
                g.Attributes(POSITION=b.accessor(morph[:, :, k].astype(np.float32), _ARRAY_BUFFER, minmax=True))
            )
    b.doc.materials.append(
        g.Material(
            name=f"{name}_skin",
            pbrMetallicRoughness=g.PbrMetallicRoughness(
                baseColorFactor=[*map(float, _srgb_to_linear(base_color)), 1.0], metallicFactor=0.0, roughnessFactor=0.7
            ),
        )
    )
    prim = g.Primitive(attributes=attrs, indices=indices, material=len(b.doc.materials) - 1, targets=targets or None)
    mesh = g.Mesh(name=name, primitives=[prim])
    if morph is not None:
        mesh.weights = [0.0] * morph.shape[2]
        mesh.extras = {"targetNames": list(TARGET_NAMES[: morph.shape[2]])}
    b.doc.meshes.append(mesh)
    # joint nodes: local translation = offset from the parent joint, rest rotation identity
    first = len(b.doc.nodes)
    for j, jname in enumerate(joint_names):
        p = int(parents[j])
        offset = joint_pos[j] - (joint_pos[p] if p >= 0 else 0.0)
        b.doc.nodes.append(g.Node(name=jname, translation=[float(x) for x in offset]))
    for j in range(len(joint_names)):
        kids = [first + c for c in range(len(joint_names)) if int(parents[c]) == j]
        if kids:
            b.doc.nodes[first + j].children = kids
    ibm = np.tile(np.eye(4, dtype=np.float32), (len(joint_names), 1, 1))  # (J, 4, 4): translate by -joint
    ibm[:, :3, 3] = -np.asarray(joint_pos, np.float32)
    b.doc.skins.append(
        g.Skin(
            name=f"{name}_skeleton",
            joints=list(range(first, first + len(joint_names))),
            skeleton=first,
            inverseBindMatrices=b.accessor(ibm),
        )
    )
    b.doc.nodes.append(g.Node(name=name, mesh=len(b.doc.meshes) - 1, skin=len(b.doc.skins) - 1))
    mesh_node = len(b.doc.nodes) - 1
    b.doc.scenes.append(g.Scene(name="dualtalk", nodes=[first, mesh_node]))
    return mesh_node, {jname: first + j for j, jname in enumerate(joint_names)}


def _animation(
    b: _Builder,
    motion: Motion,
    joints: dict[str, int],
    mesh_node: int | None,
    name: str,
    translations: np.ndarray | None = None,
) -> dict[str, Any]:
    g = b.g
    T = len(motion)
    # frame t at t / fps, and one more key at T / fps holding the last frame: the clip lasts T / fps, as the
    # audio of T frames does, so a player looping both keeps them in step (frame t is shown until t + 1)
    times = b.accessor((np.arange(T + 1) / motion.fps).astype(np.float32), minmax=True)

    def held(x: np.ndarray) -> np.ndarray:  # (T, ...) -> (T + 1, ...): the last frame once more
        return np.concatenate([x, x[-1:]], axis=0)

    samplers, channels = [], []

    def channel(node: int, path: str, output: int) -> None:
        samplers.append(g.AnimationSampler(input=times, output=output, interpolation="LINEAR"))
        channels.append(
            g.AnimationChannel(sampler=len(samplers) - 1, target=g.AnimationChannelTarget(node=node, path=path))
        )

    if mesh_node is not None:  # (T * 50,) scalars: frame t's 50 weights one after the other
        channel(mesh_node, "weights", b.accessor(held(np.asarray(motion.exp, np.float32)).reshape(-1)))
    channel(joints["neck"], "rotation", b.accessor(held(quaternions(motion.global_rot))))
    channel(joints["jaw"], "rotation", b.accessor(held(quaternions(motion.jaw))))
    if translations is not None:  # (T, 5, 3): the rotating joints' pivots follow the expression
        for j in (NECK, JAW):
            channel(joints[FLAME_JOINTS[j]], "translation", b.accessor(held(translations[:, j].astype(np.float32))))
    b.doc.animations.append(g.Animation(name=name, samplers=samplers, channels=channels))
    return {
        "frames": T,
        "fps": motion.fps,
        "seconds": T / motion.fps,
        "channels": [
            f"{b.doc.nodes[c.target.node].name}.{c.target.path}" for c in channels
        ],  # e.g. head.weights, neck.rotation, jaw.rotation
    }


def build_gltf(motion: Motion, flame: FlameModel | None = None, name: str = "dualtalk") -> tuple[Any, dict]:
    """The glTF document (a ``pygltflib.GLTF2`` with its binary blob set) and a summary dict."""
    g = require("pygltflib", "export")
    b = _Builder(g)
    if flame is not None:
        if flame.expdirs.shape[2] < N_EXP:
            raise DualTalkError(
                f"the FLAME model has {flame.expdirs.shape[2]} expression blendshapes, expected {N_EXP}"
            )
        j4, w4 = top4_weights(flame.weights)
        mesh_node, joints = _skinned_mesh(
            b,
            "head",
            flame.v_template,
            flame.faces,
            FLAME_JOINTS,
            template_joints(flame),
            flame.parents,
            j4,
            w4,
            base_color=FLAME_COLOR,
            morph=flame.expdirs[:, :, :N_EXP],
        )
        summary = {"head": "flame", "vertices": flame.num_vertices, "morph_targets": N_EXP}
        trans = joint_translations(flame, motion.exp, motion.jaw, motion.global_rot)
        anim = _animation(b, motion, joints, mesh_node, name, trans)
    else:
        from ..render.heads import JAW_HINGE, NECK_PIVOT, BuiltinHead

        head = BuiltinHead()
        V = len(head.rest)
        joint = np.zeros(V, np.uint8)  # root: neck and shoulders
        joint[head.head_idx] = 1  # neck: the head
        joint[head.jaw_idx] = 2  # jaw
        j4 = np.zeros((V, 4), np.uint8)
        j4[:, 0] = joint
        w4 = np.zeros((V, 4), np.float32)
        w4[:, 0] = 1
        mesh_node, joints = _skinned_mesh(
            b,
            "head",
            head.rest,
            head.faces,
            BUILTIN_JOINTS,
            np.stack([np.zeros(3), NECK_PIVOT, JAW_HINGE]),
            np.array([-1, 0, 1]),
            j4,
            w4,
            colors=head.base_colors,
        )
        summary = {"head": "builtin", "vertices": V, "morph_targets": 0}
        anim = _animation(b, motion, joints, None, name)
    summary.update(anim)
    summary["rotation_joint"] = "neck"
    b.doc.asset.extras = {
        "dualtalk": {
            "head": summary["head"],
            "fps": motion.fps,
            "frames": len(motion),
            "rotation_joint": "neck",
            "morph_target_names": list(TARGET_NAMES) if flame is not None else [],
            "not_exported": ["pose correctives"]
            if flame is not None
            else ["expression (the built-in head has no blendshapes)"],
        }
    }
    return b.finish(), summary


# ----------------------------------------------------------------------------------------------------
# the command's function


def as_motion(motion) -> Motion:
    """A :class:`Motion` from a Motion or a motion file (dataset ``.npz`` or (T, 56) model-order ``.npy``)."""
    if isinstance(motion, Motion):
        return motion
    return Motion.from_model(load_model_motion(motion))


def as_any_motion(motion) -> AnyMotion:
    """FLAME or ARKit motion from a :class:`Motion`, an :class:`ArkitMotion` or a file (``.npz`` of either
    layout; a model-order ``.npy``, (T, 56) FLAME or (T, 55) ARKit)."""
    if isinstance(motion, (Motion, ArkitMotion)):  # checked as a file's values are (one frame at least, finite)
        x = motion.to_model()
        problem = "has no frames" if len(x) == 0 else motion_values_problem(x)
        if problem is not None:
            raise DualTalkError(f"the motion {problem}")
        return motion
    if not isinstance(motion, (str, os.PathLike)):
        raise DualTalkError(f"motion must be a Motion, an ArkitMotion or a file path, got {type(motion).__name__}")
    if Path(motion).suffix == ".npz":
        return load_any_motion(motion)
    x = load_model_motion(motion, None)
    return motion_from_model(x, "arkit" if x.shape[1] == LAYOUTS["arkit"].dim else "flame")


def builtin_motion(motion: ArkitMotion) -> Motion:
    """The built-in head's motion from ARKit motion: no expression, the jaw opened by ``jawOpen`` x
    :data:`ARKIT_JAW_OPEN_RADIANS` about x, the head rotation as it is."""
    T = len(motion)
    jaw = np.zeros((T, 3), np.float32)
    jaw[:, 0] = ARKIT_JAW_OPEN_RADIANS * motion.weights[:, ARKIT_NAMES.index("jawOpen")]
    return Motion(np.zeros((T, N_EXP), np.float32), jaw, np.asarray(motion.head_rot, np.float32), motion.fps)


def export_gltf(
    motion: Motion | str | os.PathLike,
    out: str | os.PathLike,
    flame: FlameModel | str | os.PathLike | None = None,
    audio: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Write ``out`` (``.glb``): the FLAME head (``flame`` = the user's model file or a loaded model) or
    the built-in head, animated by ``motion`` (a :class:`Motion` or a ``.npz`` / ``.npy`` file; ARKit motion:
    the built-in head, :func:`builtin_motion`).

    ``audio``: copied beside ``out`` as ``<stem><suffix>`` and referenced in ``asset.extras`` (glTF 2.0 has
    no standard audio). Every input is checked before anything is written. Returns a summary dict.
    """
    out = Path(out)
    source = as_any_motion(motion)
    if isinstance(source, ArkitMotion):
        if flame is not None:
            raise InputError(
                None if isinstance(motion, (Motion, ArkitMotion)) else motion,
                "is ARKit motion, which cannot drive a FLAME head (--flame): export it without --flame "
                "(the built-in head, jaw from jawOpen), or as arkit-csv / arkit-json",
            )
        m = builtin_motion(source)
    else:
        m = source
    model = flame if isinstance(flame, FlameModel) or flame is None else load_flame(flame)
    audio_path = sidecar = None
    if audio is not None:
        audio_path = Path(audio)
        wave = load_audio(audio_path)
        check_length(audio_path, len(m), frames_for(len(wave)), "the motion")
        sidecar = out.with_name(out.stem + (audio_path.suffix or ".wav"))
        copy_audio = not sidecar.exists() or not (
            os.path.samefile(sidecar, audio_path) or filecmp.cmp(sidecar, audio_path, shallow=False)
        )
        if copy_audio and sidecar.exists():  # a file the user did not name as an output: never replaced
            raise InputError(
                sidecar,
                f"exists and is not a copy of {audio_path}: the .glb's audio is written beside it under its name; "
                "move that file, or export to another name",
            )
    doc, summary = build_gltf(m, model, name=out.stem or "dualtalk")
    if isinstance(source, ArkitMotion):
        summary["source_layout"] = "arkit"
        doc.asset.extras["dualtalk"]["source_layout"] = "arkit"
        doc.asset.extras["dualtalk"]["not_exported"] = ["ARKit weights other than jawOpen (no blendshapes here)"]
    with atomic_group():  # the .glb and its audio: both or neither
        if audio_path is not None and sidecar is not None:
            doc.asset.extras["dualtalk"]["audio"] = {"uri": sidecar.name, "start_seconds": 0.0}
            if copy_audio:
                with atomic_path(sidecar) as tmp:
                    shutil.copyfile(audio_path, tmp)
            summary["audio"] = str(sidecar)
        with atomic_path(out, suffix=".glb") as tmp:
            doc.save_binary(str(tmp))
    summary["path"] = str(out)
    summary["bytes"] = out.stat().st_size
    return summary
