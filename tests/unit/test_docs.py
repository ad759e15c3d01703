"""The README tells the truth: every config key and CLI command it names exists, and every config key is in it."""

from __future__ import annotations

import dataclasses
import re
import shlex
import tomllib
from pathlib import Path

import typer

from patentsift.cli import app
from patentsift.config import Config

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
SECTIONS = {"elasticsearch", "harvest", "schedule", "smtp", "web"}
NOT_IN_FILE = {"source"}  # set by load_config, not by the user


def _config_block() -> dict:
    blocks = re.findall(r"```toml\n(.*?)```", README, re.S)
    configs = [tomllib.loads(b) for b in blocks if "[smtp]" in b]
    assert configs, "the README shows a configuration file"
    return configs[0]


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def test_every_config_key_in_the_readme_exists() -> None:
    shown = _config_block()
    top = _fields(Config)
    for key, value in shown.items():
        assert key in top, f"README names config key {key!r}, which Config does not have"
        if isinstance(value, dict):
            section = type(getattr(Config(), key))
            unknown = set(value) - set(_fields(section))
            assert not unknown, f"README names [{key}] {sorted(unknown)}, which {section.__name__} does not have"


def test_every_config_key_is_in_the_readme() -> None:
    text = README
    missing = []
    for name in _fields(Config):
        if name in NOT_IN_FILE:
            continue
        value = getattr(Config(), name)
        if dataclasses.is_dataclass(value):
            missing += [f"[{name}] {k}" for k in _fields(type(value)) if not re.search(rf"\b{k}\b", text)]
        elif not re.search(rf"\b{name}\b", text):
            missing.append(name)
    assert not missing, f"config keys the README does not mention: {missing}"


def _commands() -> list[list[str]]:
    lines = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            m = re.search(r"(?:^|\s|/)patentsift\s+(.*)$", line)
            if m and not line.startswith("#"):
                lines.append(shlex.split(m.group(1)))
    return lines


def _resolve(args: list[str]) -> list[str]:
    """The command path named by `args` (options of the main command skipped); raises when one does not exist."""
    group = typer.main.get_command(app)
    path: list[str] = []
    rest = list(args)
    while rest and rest[0].startswith("-"):  # global options such as --backend es, --data-dir DIR
        opt = rest.pop(0)
        if "=" not in opt and opt not in ("--help",):
            rest.pop(0)
    cmd = group
    while getattr(cmd, "commands", None) is not None and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        sub = cmd.commands.get(name)
        assert sub is not None, f"README runs `patentsift {' '.join(args)}`: no command {' '.join([*path, name])!r}"
        path.append(name)
        cmd = sub
    assert getattr(cmd, "commands", None) is None, f"`patentsift {' '.join(args)}` names a group, not a command"
    options = {o for p in cmd.params for o in getattr(p, "opts", [])}
    for token in rest:
        if token.startswith("--"):
            flag = token.split("=")[0]
            assert flag in options or any(flag in getattr(p, "secondary_opts", []) for p in cmd.params), \
                f"README runs `patentsift {' '.join(args)}`: {' '.join(path)} has no option {flag}"
    return path


def test_every_cli_command_in_the_readme_exists() -> None:
    commands = _commands()
    assert len(commands) >= 15
    seen = {" ".join(_resolve(c)) for c in commands}
    assert {"harvest", "search", "run-once", "digest send", "serve"} <= seen
