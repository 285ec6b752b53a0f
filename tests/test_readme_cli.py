"""README's CLI reference against the real CLI: every command has a section naming every option.

The reference is written by hand (it explains), so this test holds it to `--help`: a command or
an option added to the CLI and not to README fails here.
"""

from __future__ import annotations

import re

import click
from click.testing import CliRunner

from evidence.cli import cli
from evidence.cli.helpformat import EXAMPLES

from .conftest import ROOT


def commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if command.name != name:
            continue  # an alias
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found.update(commands(command, path + " "))
        else:
            found[path] = command
    return found


def sections() -> dict[str, str]:
    """Return README's `### \\`evidence COMMAND …\\`` sections by command path."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    names = set(commands(cli))
    out: dict[str, str] = {}
    parts = re.split(r"^(#{2,3} .*)$", text, flags=re.M)
    for heading, body in zip(parts[1::2], parts[2::2]):
        if not heading.startswith("### `evidence "):
            continue
        for m in re.finditer(r"`evidence ([a-z-]+)(?: ([a-z-]+))?", heading):
            two = f"{m.group(1)} {m.group(2)}"
            path = two if two in names else m.group(1)
            out[path] = out.get(path, "") + heading + body
    return out


def test_every_command_and_option_is_in_the_readme() -> None:
    documented = sections()
    missing: list[str] = []
    for path, command in sorted(commands(cli).items()):
        if path not in documented:
            missing.append(f"command `evidence {path}` has no README section")
            continue
        for param in command.params:
            if isinstance(param, click.Option):
                flag = max(param.opts, key=len)
                if flag != "--help" and flag not in documented[path]:
                    missing.append(f"`evidence {path} {flag}` is not in its README section")
    assert not missing, "\n".join(missing)


def test_every_help_teaches_with_examples_and_groups() -> None:
    runner = CliRunner()
    for path, command in commands(cli).items():
        res = runner.invoke(cli, [*path.split(), "--help"])
        assert res.exit_code == 0, res.output
        assert EXAMPLES.get(command.name or ""), f"`evidence {path}` has no examples"
        assert "Examples:" in res.output and EXAMPLES[command.name or ""][0] in res.output
    collect = " ".join(runner.invoke(cli, ["collect", "--help"]).output.split())
    order = [collect.index(f"{g} options:") for g in ("Connection", "Window", "Auth", "Output")]
    assert order == sorted(order)
    assert "[env: EVIDENCE_COLLECT_OUT]" in collect and "EVIDENCE_PROMETHEUS_URL" in collect
