"""Motion where users need it: glTF 2.0 animation (:mod:`.gltf`) and ARKit blendshape weights (:mod:`.arkit`).

Both read motion files (or :class:`~dualtalk.io.motion.Motion` objects) and never load a model:
``dualtalk export`` works on any motion, whoever made it.
"""

from .gltf import build_gltf, export_gltf, pose_corrective_error, skinned_vertices

__all__ = ["build_gltf", "export_gltf", "pose_corrective_error", "skinned_vertices"]
