"""The container recipe (``Dockerfile``): no Docker engine runs where the tests run, so the image is not built
here; what can be checked without one is: every file it copies exists, the extra it installs exists, its
command is a valid ``dualtalk serve`` invocation that refuses to start without a token and starts with one,
and its health check is valid Python."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import tomllib

from dualtalk.cli import build_parser
from dualtalk.errors import DualTalkError
from dualtalk.serve import check_bind

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [
        (m.group(1).upper(), m.group(2).strip())
        for m in re.finditer(r"^([A-Za-z]+)\s+(.*)$", text, re.M)
        if not m.group(0).lstrip().startswith("#")
    ]


def test_dockerfile_copies_what_exists_and_installs_the_serve_extra():
    steps = instructions()
    for kind, arg in steps:
        if kind == "COPY":
            *sources, _dest = arg.split()
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installs = " ".join(arg for kind, arg in steps if kind == "RUN")
    for extra in re.findall(r'"\.\[(\w+)\]"', installs):
        assert extra in extras
    assert "download.pytorch.org/whl/cpu" in installs  # the CPU build of torch
    assert ("USER", "dualtalk") in steps  # not root


def test_dockerfile_command_serves_only_with_a_token(monkeypatch):
    monkeypatch.delenv("DUALTALK_TOKEN", raising=False)
    (cmd,) = [json.loads(arg) for kind, arg in instructions() if kind == "CMD"]
    assert cmd[:2] == ["dualtalk", "serve"]
    args = build_parser().parse_args(cmd[1:])
    assert args.host == "0.0.0.0" and args.workers == 2 and args.port == 8000
    with pytest.raises(DualTalkError, match="give --token"):
        check_bind(args.host, args.token)  # no DUALTALK_TOKEN in the container: refuses to start
    check_bind(args.host, "s3cret")
    (health,) = [arg for kind, arg in instructions() if kind == "HEALTHCHECK"]
    code = json.loads(health.split(" CMD ", 1)[1].split(" ", 2)[2])  # python -c "<code>"
    compile(code, "healthcheck", "exec")
    assert "/healthz" in code and "DUALTALK_TOKEN" in code
