"""Progress bars: plain lines without carriage returns off a terminal, tqdm on one, nothing when disabled."""

from __future__ import annotations

import io

from dualtalk.io.progress import PLAIN_STEPS, progress, write


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_on_a_non_terminal_stream():
    out = io.StringIO()
    seen = list(progress(range(100), desc="work", unit="item", stream=out))
    assert seen == list(range(100))
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert 1 <= len(lines) <= PLAIN_STEPS + 1  # about one per tenth, not one per item
    assert all(line.startswith("work: ") for line in lines)
    assert "100/100 (100%)" in lines[-1]


def test_driven_by_hand_unknown_total_and_early_end():
    out = io.StringIO()
    bar = progress(total=7, desc="render", stream=out, leave=False)
    for _ in range(7):
        bar.update()
    bar.set_postfix({"loss": "0.5"})
    bar.close()
    bar.close()  # idempotent
    assert "\r" not in out.getvalue() and out.getvalue().splitlines()[-1].startswith("render: 7/7 (100%)")

    out = io.StringIO()
    with progress(total=100, desc="steps", stream=out) as bar:
        bar.update(5)  # less than a tenth: no line yet
        assert out.getvalue() == ""
        bar.set_postfix(loss="0.25")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("steps: 5/100 (5%)") and lines[0].endswith("loss=0.25")

    out = io.StringIO()
    assert list(progress((i for i in range(5)), desc="gen", unit="file", stream=out)) == list(range(5))
    assert "\r" not in out.getvalue() and out.getvalue().splitlines()[-1].startswith("gen: 5 file")


def test_disabled_prints_nothing():
    out = io.StringIO()
    assert list(progress(range(50), desc="quiet", enabled=False, stream=out)) == list(range(50))
    bar = progress(total=3, enabled=False, stream=out)
    bar.update(3)
    bar.close()
    assert out.getvalue() == ""


def test_a_terminal_gets_a_tqdm_bar_and_write_passes_messages():
    out = _Terminal()
    assert list(progress(range(3), desc="tty", stream=out)) == [0, 1, 2]
    assert "tty" in out.getvalue() and "\r" in out.getvalue()  # redrawn in place
    plain = io.StringIO()
    write("a message", stream=plain)
    assert plain.getvalue() == "a message\n"
