"""benchmarks/listening.py: the acceptance checks and the paired difference to the training mean, on a report
the test writes (no training)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def listening():
    yield load_benchmark("listening")
    del sys.modules["listening_benchmark"]


def report(files: dict[str, dict[str, list[float]]]) -> dict:
    """{method: {group: per-file MSEs}} -> the shape of dualtalk benchmark's report.json results."""
    out = {}
    for m, groups in files.items():
        n = len(next(iter(groups.values())))
        per_file = {f"c{i}.npy": {f"mse_{g}": v[i] for g, v in groups.items()} for i in range(n)}
        mean = {f"mse_{g}": float(np.mean(v)) for g, v in groups.items()}
        out[m] = {"per_file": per_file, "mean": mean}
    return {"results": out}


def test_mse_vs_mean_is_the_paired_relative_difference_and_its_standard_error(listening):
    base = {"exp": [1.0, 2.0, 3.0, 2.0], "jaw": [1.0] * 4, "pose": [1.0] * 4}
    model = {"exp": [1.1, 1.9, 3.2, 2.0], "jaw": [0.5] * 4, "pose": [1.0] * 4}
    got = listening.mse_vs_mean(report({"mean": base, "m": model}), ["m"])["m"]
    d = np.array([0.1, -0.1, 0.2, 0.0])
    assert got["exp"][0] == pytest.approx(d.sum() / 8.0)
    assert got["exp"][1] == pytest.approx(d.std(ddof=1) * 2 / 8.0)
    assert got["jaw"] == pytest.approx([-0.5, 0.0])
    assert got["pose"] == pytest.approx([0.0, 0.0])


def test_checks_name_a_method_worse_than_the_mean_with_its_standard_error(listening):
    corpus = {
        "seed": 1,
        "groups": {"speech": {"role": "speaking"}, "nod": {"role": "listening"}},
        "probe": {"nod": {"reduction": 0.5}},
        "methods": {
            "dualtalk_paper": {
                "speech": {"mse": 1.0, "reduction": 0.8},
                "nod": {"mse": 1.0, "reduction": 0.29, "capture": 0.58, "capture_se": 0.12},
            },
        },
        "mse": {"dualtalk_paper": {"pose": 1.02, "exp": 0.5}, "mean": {"pose": 1.0, "exp": 1.0}},
        "mse_vs_mean": {"dualtalk_paper": {"pose": [0.02, 0.03], "exp": [-0.5, 0.01]}},
    }
    ch = listening.checks([corpus])
    row = ch["per_corpus"][0]
    assert row["passed"] == {"nod": False}  # 0.29 < 60 % of 0.5
    assert row["worse_than_mean"] == ["dualtalk_paper:pose"] and ch["worse_than_mean"] == 1
    assert listening.worse_text(row, "dualtalk_paper:pose") == "dualtalk_paper:pose +2.0% (SE 3.0%)"
    assert row["capture_se"] == {"nod": 0.12}
    assert listening.capture_text("nod", 0.58, 0.12) == "nod 0.58 (SE 0.12)"
    assert listening.capture_text("nod", 0.58, None) == "nod 0.58"  # a result scored before the error existed
    assert listening.capture_text("nod", None, None) == "nod -"


def test_a_corpus_made_with_other_amplitudes_is_refused(listening, tmp_path):
    """--amplitude changes the causes: a work directory holding a corpus drawn with the default range is not
    reused for another range (one line, before any training)."""
    from dualtalk.synth import make_corpus

    make_corpus(tmp_path / "corpus_5", 3, 2.0, seed=5, causes="random", splits="train=1,val=1,test=1", progress=False)
    with pytest.raises(SystemExit, match="made with other causes than --amplitude 1,2"):
        listening.run_corpus(
            5, tmp_path, listening.Settings(("dualtalk_paper",), "recipe-cpu", 3, 2.0, amplitude=(1.0, 2.0))
        )


def test_a_work_directory_trained_with_another_seed_is_refused(listening, tmp_path):
    """--train-seed: corpora kept from a run with another training seed (a result from before the key existed
    counts as 0) are not replaced silently; the first of several seeds keeps the plain names, another seed S
    its own (result_SEED_tS.json), checked the same way."""
    (tmp_path / "result_5.json").write_text('{"seed": 5}')
    (tmp_path / "result_5_t2.json").write_text('{"seed": 5, "train_seed": 3}')
    settings = listening.Settings(("dualtalk_paper",), "recipe-cpu", 3, 2.0, train_seeds=(0, 2))
    assert settings.suffix(0) == "" and settings.suffix(2) == "_t2"
    with pytest.raises(SystemExit, match="result_5_t2.json: trained with --train-seed 3, not 2"):
        listening.run_all([5], tmp_path, settings)
    with pytest.raises(SystemExit, match="trained with --train-seed 0, not 1"):
        listening.run_all(
            [5], tmp_path, listening.Settings(("dualtalk_paper",), "recipe-cpu", 3, 2.0, train_seeds=(1,))
        )


def test_a_kept_result_that_is_not_one_is_refused(listening, tmp_path):
    """A WORK/result_SEED.json that is not a JSON object is named in one line, before any training."""
    for text in ("not json", "[]"):
        (tmp_path / "result_5.json").write_text(text)
        with pytest.raises(SystemExit, match="result_5.json: not a listening result"):
            listening.run_all([5], tmp_path, listening.Settings(("dualtalk_paper",), "recipe-cpu", 3, 2.0))


def test_seed_spread_gives_each_causes_capture_from_every_training_seed(listening):
    """--train-seeds: per corpus and cause the captures of every seed, their mean and spread, how many pass."""

    def corpus(capture: float) -> dict:
        return {
            "seed": 7,
            "groups": {"nod": {"role": "listening"}},
            "probe": {"nod": {"reduction": 0.5}},
            "methods": {"dualtalk_paper": {"nod": {"mse": 1.0, "reduction": 0.5 * capture, "capture": capture}}},
            "mse": {"dualtalk_paper": {"pose": 0.9}, "mean": {"pose": 1.0}},
        }

    spread = listening.seed_spread({0: [corpus(0.5)], 1: [corpus(0.7)], 2: [corpus(0.9)]})
    nod = spread["per_corpus"][7]["nod"]
    assert nod["capture"] == {0: 0.5, 1: 0.7, 2: 0.9} and nod["passed"] == 2
    assert nod["mean"] == pytest.approx(0.7) and nod["spread"] == pytest.approx(0.2)
    assert spread["corpora_all_captured"] == {0: 0, 1: 1, 2: 1} and spread["worse_than_mean"] == {0: 0, 1: 0, 2: 0}
