"""Loading a model directory maps model.safetensors into memory: the parameters are the file's pages (no
second copy of the weights)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from dualtalk.model.checkpoint import WEIGHTS_NAME, load_model, save_model
from dualtalk.model.dualtalk import DualTalk
from dualtalk.model.presets import get_preset


def mapped_ranges(path: Path) -> list[tuple[int, int]]:
    """Address ranges of this process mapped from ``path`` (/proc/self/maps)."""
    target = str(path.resolve())
    out = []
    with open("/proc/self/maps", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].strip() == target:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                out.append((lo, hi))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_parameters_share_memory_with_the_mapped_file(tmp_path):
    torch.manual_seed(0)
    original = DualTalk(get_preset("tiny")).eval()
    save_model(original, tmp_path / "m")
    model = load_model(tmp_path / "m")
    ranges = mapped_ranges(tmp_path / "m" / WEIGHTS_NAME)
    assert ranges, "model.safetensors is not memory-mapped"
    state = model.state_dict(keep_vars=True)
    persistent = set(original.state_dict())  # non-persistent buffers (mel filters, windows) are rebuilt
    outside = [
        k
        for k, v in state.items()
        if k in persistent and v.numel() and not any(lo <= v.untyped_storage().data_ptr() < hi for lo, hi in ranges)
    ]
    assert outside == []  # every stored tensor is a view of the file's mapping: no copy was made
    for key, value in original.state_dict().items():  # and the values are the saved ones
        torch.testing.assert_close(state[key].detach(), value, rtol=0, atol=0)
    with torch.inference_mode():  # it runs
        y = model(torch.randn(1, 16000), torch.randn(1, 16000), torch.randn(1, 25, 56))
    assert y.shape == (1, 25, 56)
