"""Shared test fixtures: paths to ../shared (skipped with a reason where absent), generated audio."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DUALTALK_SHARED", REPO.parent / "shared"))
SHARED_REASON = f"shared fixtures not found at {SHARED} (CI has them beside the clone; set DUALTALK_SHARED)"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(SHARED_REASON)
    return path


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/NAME.py`` as a module (registered as ``NAME_benchmark``: a script's dataclasses look their
    module up by name)."""
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    try:
        import torch

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def put_nan(npz: Path, key: str = "exp", at: tuple[int, int] = (0, 0)) -> Path:
    """Write a NaN into array ``key`` of the motion file ``npz`` (a corpus copy's bad file); -> ``npz``."""
    with np.load(npz) as z:
        arrays = dict(z)
    arrays[key][at] = np.nan
    np.savez(npz, **arrays)
    return npz
