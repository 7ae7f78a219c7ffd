"""FaceFormer trained teacher-forced (the preset's default) against autoregressively (FaceFormer's own loop).

    .venv/bin/python benchmarks/faceformer_training.py --data data/synth --work /tmp/ff   # about 10 min

``dualtalk benchmark --methods faceformer,mean`` twice on the same corpus and recipe (the recommended CPU
recipe unless ``--config``): once as the preset trains (teacher-forced: the true previous frames as the
decoder's inputs, one parallel pass per window) and once with ``model.baseline.teacher_forcing=false`` (each
frame's output fed back, the loss's gradient through the loop, as ``teacher_forcing=False`` in FaceFormer's
public ``main.py``). The two trainings run side by side, one process and one thread each (``--parallel 1``:
one after the other). Both are scored as the benchmark scores every method: test-split MSE per group
(exp / jaw / pose, reference protocol) with the training mean's beside it, speaking / listening frames, the
error reduction on each of the corpus's causes, and the training seconds. A finished report in ``--work``
is kept (``dualtalk benchmark --reuse``). JSON in ``benchmarks/results/faceformer_training.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from paired_runs import add_arguments, compare

RESULTS = Path(__file__).resolve().parent / "results"
#: label -> the training overrides of that run
RUNS = {"teacher_forced": [], "autoregressive": ["model.baseline.teacher_forcing=false"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap, RESULTS / "faceformer_training.json")
    return compare(ap.parse_args(), RUNS, "faceformer", "faceformer_training.py")


if __name__ == "__main__":
    sys.exit(main())
