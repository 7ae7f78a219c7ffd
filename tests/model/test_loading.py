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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_bf16_conversion_gives_back_the_mapped_float32_pages_without_harm(tmp_path):
    """For a bfloat16 run the encoders' weights are converted and their float32 pages given back (madvise):
    every weight keeps its value, and the model computes as before."""
    from dualtalk.inference.pipeline import InferenceOptions, bf16_encoder_weights, run_model

    torch.manual_seed(0)
    original = DualTalk(get_preset("tiny")).eval()
    save_model(original, tmp_path / "m")
    model = bf16_encoder_weights(load_model(tmp_path / "m"))
    state = model.state_dict()
    converted = [k for k, v in state.items() if v.dtype == torch.bfloat16]
    assert converted and all(".audio_encoder" in k for k in converted)
    for key, value in original.state_dict().items():
        torch.testing.assert_close(state[key], value.to(state[key].dtype), rtol=0, atol=0)
    a, b = torch.randn(16000).numpy(), torch.randn(16000).numpy()
    m = torch.randn(25, 56).numpy()
    opts = InferenceOptions(dtype="bfloat16", progress=False)
    torch.testing.assert_close(
        torch.from_numpy(run_model(model, a, b, m, opts)), torch.from_numpy(run_model(original, a, b, m, opts))
    )
