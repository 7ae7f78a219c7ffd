"""dualtalk benchmark --reuse on a run recorded before a config field existed: the field's default is what that
run computed, so the run is kept; a changed value trains again (no training here: a record the test writes)."""

from __future__ import annotations

import json

import numpy as np
from safetensors.numpy import save_file

from dualtalk import benchmark as b
from dualtalk.config import to_dict
from dualtalk.train import compose_train_config


def config(*overrides: str):
    return compose_train_config(
        preset=None, config_file=b.DEFAULT_CONFIG, max_steps=None, overrides=[*b.LEARNED["dualtalk_paper"], *overrides]
    )


def test_a_record_without_a_newer_field_is_reused_with_its_default(tmp_path):
    data, out = tmp_path / "corpus", tmp_path / "report"
    (out / "pred" / "dualtalk_paper").mkdir(parents=True)
    run = out / "runs" / "dualtalk_paper"
    run.mkdir(parents=True)
    (run / "best").mkdir()  # a readable model directory (what it holds is not read here)
    (run / "best" / "config.json").write_text("{}")
    save_file({"w": np.zeros(3, np.float32)}, str(run / "best" / "model.safetensors"))
    old = json.loads(json.dumps(to_dict(config())))
    del old["ema_decay"]  # as a version before the field wrote it
    record = {"data": str(data.resolve()), "config": old, "audio_only": [], "seconds": 12.5}
    (run / b.FINISHED).write_text(json.dumps(record))
    assert b._reusable(config(), data, out, "dualtalk_paper", ()) == (12.5, False)
    assert b._reusable(config("model.mirror_gate_bias=2"), data, out, "dualtalk_paper", ()) is None
    assert b._reusable(config("output_group_gate=2"), data, out, "dualtalk_paper", ()) == (12.5, True)  # gain only
    record["config"]["no_such_field"] = 1  # a record this version cannot read: trained again
    (run / b.FINISHED).write_text(json.dumps(record))
    assert b._reusable(config(), data, out, "dualtalk_paper", ()) is None
