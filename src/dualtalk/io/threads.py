"""Native thread pools (BLAS, OpenMP) limited to one thread, in one place.

Where the parallelism comes from elsewhere (files evaluated side by side, frames rendered by a pool of
processes), threads inside NumPy's BLAS or scikit-learn's OpenMP only add overhead and contention (idle
OpenBLAS threads spin and steal a renderer's CPU), and with float32 data k-means' result depends on the
number of OpenMP threads. Two tools:

- :func:`limit_threads`: limit the libraries already loaded in this process (threadpoolctl), undone by
  leaving the ``with`` block or by ``.restore_original_limits()``; a no-op when threadpoolctl is missing;
- :func:`usable_cpus`: the CPUs this process may use;
- :func:`single_thread_env`: set the ``*_NUM_THREADS`` variables read by libraries that start later in
  this process (Mesa when a render worker makes its EGL context, a BLAS loaded afterwards).

PyTorch's own intra-op pool is not touched here (``torch.set_num_threads``).
"""

from __future__ import annotations

import os

#: environment variables that make BLAS / OpenMP / Mesa's llvmpipe start with one thread
SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LP_NUM_THREADS": "1"}

_CONTROLLER = None  # the ThreadpoolController reused by limit_threads(reuse=True)


class _NoLimit:
    """What :func:`limit_threads` returns without threadpoolctl: a limiter that does nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def restore_original_limits(self) -> None:
        pass


def limit_threads(limits: int = 1, user_api: str | None = None, reuse: bool = False):
    """Limit the thread pools of the native libraries loaded in this process to ``limits`` threads.

    ``user_api``: ``"blas"``, ``"openmp"`` or None (both). Returns the limiter: use it as a context
    manager, or keep it alive and call ``.restore_original_limits()``. ``reuse=True`` reuses one
    controller for the process instead of listing the loaded libraries on every call (for calls in a hot
    loop); it knows only the libraries loaded before its first use, so make that call after importing
    the library to be limited (e.g. scikit-learn, whose OpenMP runtime loads with it).
    """
    global _CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover
        return _NoLimit()
    if not reuse:
        return ThreadpoolController().limit(limits=limits, user_api=user_api)
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=limits, user_api=user_api)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity, where the platform tells it; else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - macOS, Windows


def single_thread_env() -> None:
    """Set :data:`SINGLE_THREAD_ENV` in ``os.environ``, for libraries that start later in this process."""
    os.environ.update(SINGLE_THREAD_ENV)


__all__ = ["SINGLE_THREAD_ENV", "limit_threads", "single_thread_env", "usable_cpus"]
