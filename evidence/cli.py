"""The ``evidence`` command: parse options, call one library function, print.

This is the one place where ``EvidenceError`` becomes an exit code (see ``errors.py``).
Heavy libraries (pandas, pyarrow, plotly, the kubernetes client) are imported inside the
commands so that ``evidence --help`` answers quickly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from evidence import __version__
from evidence.errors import EvidenceError

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    """Turn library errors into a one-line message on stderr and their exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EvidenceError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="evidence")
def cli() -> None:
    """Prove what happened in a Flagger + Traefik canary rollout.

    \b
    collect   snapshot one rollout into a verifiable parquet bundle
    verify    check a bundle's files against its manifest
    show      summarise a bundle in the terminal
    """


def main() -> None:
    """Run the CLI."""
    cli()
