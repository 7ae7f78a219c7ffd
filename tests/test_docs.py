"""The documentation: measured tables match benchmarks/results/*.json, README is short and its links resolve.

The site itself is built by ``make docs`` (``mkdocs build --strict``), which CI runs after the tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TABLES = ROOT / "scripts" / "docs_tables.py"
README_MAX_BYTES = 12_000

# [text](target) and ![alt](target), not inside code
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _strip_code(text: str) -> str:
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def _relative_links(md: Path) -> list[str]:
    links = []
    for target in LINK.findall(_strip_code(md.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, mailto:, in-page anchors
        links.append(target)
    return links


def test_docs_tables_match_the_benchmark_json():
    if not TABLES.exists():
        pytest.skip("scripts/docs_tables.py is missing")
    proc = subprocess.run(
        [sys.executable, str(TABLES), "--check"], check=False, cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_readme_is_at_most_12_kb():
    size = README.stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes (limit {README_MAX_BYTES}): move the detail to docs/"


@pytest.mark.parametrize(
    "md", [README, *sorted((ROOT / "docs").rglob("*.md"))], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_relative_links_point_to_existing_files(md: Path):
    missing = []
    for target in _relative_links(md):
        path = unquote(target.split("#", 1)[0])
        if path and not (md.parent / path).exists():
            missing.append(target)
    assert not missing, f"{md.relative_to(ROOT)}: links to missing files: {missing}"
