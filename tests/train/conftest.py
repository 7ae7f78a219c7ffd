"""Fixtures of the training tests: a tiny generated corpus (seconds of audio + motion per person)."""

from __future__ import annotations

import pytest

#: settings that keep a training run at a few seconds on a CPU
FAST = ["data.window_frames=25", "data.batch_size=4", "data.num_workers=0", "log_every=2", "tensorboard=false"]


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory):
    from dualtalk.train.toy import write_toy_corpus

    return write_toy_corpus(tmp_path_factory.mktemp("toy"), {"train": 3, "val": 2, "test": 1}, seconds=(2.5, 5.0))


@pytest.fixture
def fast():
    return list(FAST)
