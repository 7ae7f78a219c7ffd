"""Scoring by cause: the oracle captures the causes, the mean captures nothing, the probe finds a strong cause."""

from __future__ import annotations

import pytest

from dualtalk.errors import DualTalkError
from dualtalk.io.motion import save_model_motion
from dualtalk.synth import make_corpus
from dualtalk.synth.causes import ListeningCause, Scenario
from dualtalk.synth.corpus import load_manifest, make_conversation, manifest_scenario
from dualtalk.synth.scoring import capture_se, groups, score_corpus, score_predictions


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small corpus with one strong motion-carried cause and one speech-carried cause."""
    sc = Scenario(
        "test",
        [
            ListeningCause(
                "mirror", "partner_event", "motion", [30], [1.0], delay=0.4, duration=0.5, amplitude=8.0, own_rate=10.0
            ),
            ListeningCause("nod", "phrase_end", "audio", [53], [1.0], delay=0.3, duration=0.6, amplitude=5.0),
        ],
    )
    root = tmp_path_factory.mktemp("scoring") / "c"
    make_corpus(root, 12, 30, seed=3, splits="train=8,val=2,test=2", causes=sc, progress=False)
    return root


def test_groups_follow_the_scenario(corpus):
    g = groups(load_manifest(corpus))
    assert list(g) == ["speech", "mirror", "nod"]
    assert g["mirror"] == {"targets": [30], "role": "listening", "carrier": "motion", "driver": "partner_event"}
    assert g["speech"]["role"] == "speaking" and 50 in g["speech"]["targets"]


def test_oracle_mean_and_probe(corpus, tmp_path):
    man = load_manifest(corpus)
    scenario = manifest_scenario(man)
    oracle = tmp_path / "oracle"
    for item in [i for i in man["items"] if i["split"] == "test"]:
        conv = make_conversation(man["seconds"], item["seed"], scenario)
        for k in (1, 2):
            save_model_motion(oracle / f"{item['name']}_speaker{k}.npy", conv.clean_motion(k))
    result = score_corpus(corpus, {"oracle": oracle})
    mean = score_predictions(corpus, man, None)
    for name in ("speech", "mirror", "nod"):
        assert mean[name]["reduction"] == pytest.approx(0.0, abs=1e-9)
        assert result["methods"]["oracle"][name]["reduction"] > 0.3  # the own, silent smiles stay unpredictable
    # the probe, from the partner's lagged motion / audio, captures a good part of each listening cause
    for name in ("mirror", "nod"):
        assert 0.2 < result["probe"][name]["reduction"] <= result["methods"]["oracle"][name]["reduction"] + 0.05
        assert result["methods"]["oracle"][name]["capture"] >= 0.9  # about as good as the probe, or better
        se = result["methods"]["oracle"][name]["capture_se"]
        assert se is not None and 0.0 <= se < 1.0
    assert result["methods"]["oracle"]["speech"]["capture"] is None  # no probe for speech
    # the per-side sums add up to the split's errors
    row = result["methods"]["oracle"]["mirror"]
    assert sum(row["side_sse"]) / sum(row["side_sse_mean"]) == pytest.approx(1 - row["reduction"])
    probe = result["probe"]["mirror"]
    assert sum(probe["side_sse"]) / sum(row["side_sse_mean"]) == pytest.approx(1 - probe["reduction"])


def test_capture_standard_error_by_jackknife():
    # every side alike: leaving one out changes nothing
    alike = {"side_sse": [1.0] * 4, "side_sse_mean": [2.0] * 4}
    assert capture_se(alike, {"side_sse": [1.5] * 4}) == pytest.approx(0.0)
    # sides that disagree: the leave-one-out captures spread, by the jackknife's formula
    row = {"side_sse": [1.0, 1.8, 1.2, 1.6], "side_sse_mean": [2.0, 2.0, 2.0, 2.0]}
    probe = {"side_sse": [1.5, 1.5, 1.5, 1.5]}
    caps = []
    for i in range(4):
        b = 6.0
        caps.append((1 - (5.6 - row["side_sse"][i]) / b) / (1 - 4.5 / b))
    mean = sum(caps) / 4
    assert capture_se(row, probe) == pytest.approx((3 / 4 * sum((c - mean) ** 2 for c in caps)) ** 0.5)
    # a probe that finds nothing without one side: no standard error
    assert capture_se(row, {"side_sse": [2.1, 1.9, 2.0, 2.0]}) is None


def test_missing_prediction_is_one_error(corpus, tmp_path):
    with pytest.raises(DualTalkError, match="prediction not found"):
        score_predictions(corpus, load_manifest(corpus), tmp_path)
