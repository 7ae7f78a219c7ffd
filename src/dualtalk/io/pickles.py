"""Reading pickles that may come from anywhere: only an allow-list of globals is ever resolved.

FLAME's model file (``generic_model.pkl``) and region masks (``FLAME_masks.pkl``) are Python pickles; a
plain ``pickle.load`` of a file from the internet can run any code. :class:`RestrictedUnpickler` resolves a
global only when the caller's allow-list names it (``(module, name) -> object``, e.g. an inert stand-in
for a class), and refuses everything else with :class:`Refused`, before anything is called.

    data = RestrictedUnpickler(fh, {**numpy_globals(), ("_codecs", "encode"): latin1_encode},
                               encoding="latin1").load()
"""

from __future__ import annotations

import functools
import importlib
import pickle
from collections.abc import Mapping
from typing import Any


class Refused(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list."""


def latin1_encode(text, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles written by Python 3 use it to store bytes: latin-1 only."""
    if not isinstance(text, str) or str(encoding).lower().replace("-", "").replace("_", "") != "latin1":
        raise Refused(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


@functools.cache
def numpy_globals() -> Mapping[tuple[str, str], Any]:
    """What pickled numpy arrays and scalars need, under the module names of NumPy 1 (``numpy.core``, as
    FLAME's files were written) and NumPy 2 (``numpy._core``). Do not modify: copy it into your table."""
    import numpy as np

    table: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer")):
        for prefix in ("numpy._core.", "numpy.core."):  # the one this NumPy has
            try:
                obj = getattr(importlib.import_module(prefix + module), name)
                break
            except (ImportError, AttributeError):
                continue
        else:  # pragma: no cover
            continue
        for prefix in ("numpy.core.", "numpy._core."):
            table[(prefix + module, name)] = obj
    return table


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of ``allowed``.

    ``allowed``: ``(module, name) -> object``. ``modules``: ``module -> object`` for every name of a module
    and its submodules (e.g. ``{"chumpy": StandIn}``: any chumpy class becomes the stand-in).
    ``refusal``: the message of :class:`Refused`, formatted with ``module`` and ``name``.
    Other keyword arguments (``encoding="latin1"`` for Python 2 pickles) go to :class:`pickle.Unpickler`.
    """

    def __init__(
        self,
        file,
        allowed: Mapping[tuple[str, str], Any],
        modules: Mapping[str, Any] | None = None,
        refusal: str = "refusing to load {module}.{name}",
        **kwargs,
    ):
        super().__init__(file, **kwargs)
        self.allowed = allowed
        self.modules = dict(modules or {})
        self.refusal = refusal

    def find_class(self, module, name):
        for prefix, obj in self.modules.items():
            if module == prefix or module.startswith(prefix + "."):
                return obj
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise Refused(self.refusal.format(module=module, name=name)) from None


def load_restricted(file, allowed: Mapping[tuple[str, str], Any], **kwargs) -> Any:
    """``RestrictedUnpickler(file, allowed, **kwargs).load()``."""
    return RestrictedUnpickler(file, allowed, **kwargs).load()


__all__ = ["Refused", "RestrictedUnpickler", "latin1_encode", "load_restricted", "numpy_globals"]
