"""``evidence policy``: check a policy file, print the default policy or the policy's JSON Schema."""

from __future__ import annotations

import sys

import click

from evidence.cli import _printable, cli, handle_errors
from evidence.cli.helpformat import GroupedCommand


@cli.group(short_help="Check, start or describe an abort policy file.")
def policy() -> None:
    """Work with abort policy files (`evaluate --policy FILE`), promtool-style."""


policy.command_class = GroupedCommand


@policy.command("check", short_help="Check policy files; every error is listed (exit 1 if any).")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@handle_errors
def check(files: tuple[str, ...]) -> None:
    """Check each FILE as `evaluate --policy` would read it, and list every error.

    \b
    Regular expressions in `match:` must be RE2, the syntax PromQL uses (no lookarounds or
    backreferences). Exit codes: 0 every file is valid, 1 at least one error.
    """
    from evidence.policy import check_policy_file

    bad = 0
    for path in files:
        errors = check_policy_file(path)
        for e in errors:
            click.echo(f"error: {_printable(e)}", err=True)
        if errors:
            bad += 1
            click.echo(f"{path}: FAILED, {len(errors)} error(s)")
        else:
            click.echo(f"{path}: SUCCESS")
    sys.exit(1 if bad else 0)


@policy.command("default", short_help="Print the default policy as commented YAML.")
@handle_errors
def default() -> None:
    """Print the built-in policy as a commented YAML file to start from (`> policy.yaml`)."""
    from evidence.policydoc import default_policy_yaml

    click.echo(default_policy_yaml(), nl=False)


@policy.command("schema", short_help="Print the policy file's JSON Schema.")
@handle_errors
def schema() -> None:
    """Print the JSON Schema of a policy file (also published as schemas/policy.schema.json)."""
    import json

    from evidence.policydoc import policy_schema

    click.echo(json.dumps(policy_schema(), indent=2))
