"""The Dockerfile cannot be built here (no container engine), so its contracts are checked as text:
the runtime stage carries no build tools, runs as the numeric user the chart and sidecar expect, and
starts the `driftwatch` command with arguments the CLI accepts."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml
from typer.main import get_command

from monitor.app.cli import app
from monitor.app.inject import InjectOptions, sidecar_container

REPO = Path(__file__).resolve().parents[1]
TEXT = (REPO / "Dockerfile").read_text()
STAGES = re.split(r"^FROM ", TEXT, flags=re.MULTILINE)[1:]


def instructions(stage: str, name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name} (.*(?:\\\n.*)*)", stage, flags=re.MULTILINE)]


def test_multi_stage_on_slim_python_matching_the_package() -> None:
    assert len(STAGES) == 2 and STAGES[0].split()[1:3] == ["AS", "builder"]
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", TEXT, flags=re.MULTILINE).group(1)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base)
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert ">=3.11" in requires


def test_runtime_stage_has_no_build_tools_and_no_wheel_layer() -> None:
    runtime = STAGES[1]
    assert not re.search(r"apt-get|build-essential|gcc|\bCOPY\b", runtime)
    assert "--mount=type=bind,from=builder,source=/wheels" in runtime
    assert "pip wheel" in STAGES[0]


def test_sources_copied_are_the_packages_pyproject_ships() -> None:
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {c.split()[0] for c in instructions(STAGES[0], "COPY")}
    assert {p.rstrip("*") for p in packages} <= copied
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    assert copied <= allowed


def test_numeric_non_root_user_is_the_one_the_chart_and_sidecar_use() -> None:
    (user,) = instructions(STAGES[1], "USER")
    uid, gid = (int(x) for x in user.split(":"))
    assert uid > 0 and gid > 0
    values = yaml.safe_load((REPO / "charts" / "driftwatch" / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == uid and values["podSecurityContext"]["runAsGroup"] == gid
    sidecar = sidecar_container(InjectOptions(monitor="http://m:8080", model="m"), "m", 8000)
    assert (sidecar["securityContext"]["runAsUser"], sidecar["securityContext"]["runAsGroup"]) == (uid, gid)


def test_entrypoint_and_default_command_are_accepted_by_the_cli() -> None:
    (entrypoint,) = instructions(STAGES[1], "ENTRYPOINT")
    assert json.loads(entrypoint) == ["driftwatch"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["driftwatch"] == "monitor.app.cli:main"
    (cmd,) = instructions(STAGES[1], "CMD")
    args = json.loads(cmd)
    command = get_command(app)
    sub = command.commands[args[0]]  # type: ignore[attr-defined]
    ctx = sub.make_context(args[0], args[1:])
    assert ctx.params["config"] == Path("/etc/driftwatch/config.yaml") and ctx.params["port"] == 8080
