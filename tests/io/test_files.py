"""Output files: checked before any work, written atomically (a symbolic link through to its target, several
files of one command all or none), and a destination that cannot be written is one error naming it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dualtalk.errors import InputError
from dualtalk.io.files import atomic_group, atomic_path, atomic_write_text, check_output_dir, check_output_file


def test_check_output_file_accepts_new_and_existing_files_and_creates_nothing(tmp_path):
    (tmp_path / "old.npz").write_text("x")
    assert check_output_file(tmp_path / "old.npz") == tmp_path / "old.npz"
    assert check_output_file(tmp_path / "a" / "b" / "new.npz") == tmp_path / "a" / "b" / "new.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.npz"]  # no directory, no probe file left


def _file(path: Path) -> Path:
    path.write_text("x")
    return path


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: d, "is a directory, expected an output file"),
        (lambda d: _file(d / "f") / "out.npz", "is not a directory"),
        (lambda d: Path("/dev/null"), "is not a regular file"),
        (lambda d: Path("/proc/dualtalk-test/out.npz"), "/proc does not take new files"),
    ],
    ids=["directory", "parent_is_file", "device", "proc"],
)
def test_check_output_file_refuses_what_cannot_be_written(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(InputError, match=message) as info:
        check_output_file(path)
    assert str(path) in str(info.value)


def test_check_output_dir(tmp_path):
    (tmp_path / "f").write_text("x")
    assert check_output_dir(tmp_path / "new" / "dir") == tmp_path / "new" / "dir"
    assert not (tmp_path / "new").exists()
    assert check_output_dir(tmp_path) == tmp_path
    with pytest.raises(InputError, match="exists and is not a directory"):
        check_output_dir(tmp_path / "f")


def test_a_symbolic_link_is_written_through(tmp_path):
    target = tmp_path / "real" / "motion.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_unwritable_destination_is_an_input_error_and_leaves_nothing(tmp_path):
    with pytest.raises(InputError, match="cannot be written") as info:
        atomic_write_text("/proc/dualtalk-test.json", "x")
    assert "/proc/dualtalk-test.json" in str(info.value)
    with pytest.raises(InputError, match="is a directory"):
        atomic_write_text(tmp_path, "x")
    assert list(tmp_path.iterdir()) == []


def test_atomic_group_writes_all_or_none(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    with pytest.raises(RuntimeError):
        with atomic_group():
            atomic_write_text(a, "A")  # complete, but held back until the group succeeds
            assert not a.exists()
            raise RuntimeError("the second file failed")
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary
    with atomic_group():
        atomic_write_text(a, "A")
        with atomic_path(b) as tmp:
            tmp.write_text("B")
        assert not a.exists() and not b.exists()
    assert a.read_text() == "A" and b.read_text() == "B"
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"]
