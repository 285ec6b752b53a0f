"""About the tool itself: ``evidence version``, ``evidence completion SHELL``, and ``kubectl evidence``."""

from __future__ import annotations

import click

from evidence.cli import _output_option, cli, handle_errors

#: kubectl's global flags that evidence understands; kubectl users put them before the command.
KUBECTL_FLAGS = {"--kubeconfig": "kubeconfig", "--context": "context", "-n": "namespace", "--namespace": "namespace",
                 "--request-timeout": "request_timeout"}  # fmt: skip


@cli.command(short_help="Print the versions of evidence, Python and the libraries it uses.")
@_output_option(("text", "json", "yaml"), "text")
@handle_errors
def version(output: str) -> None:
    """Print the version of evidence, of Python and of the key libraries, and the extras installed."""
    from evidence.versions import version_document

    doc = version_document()
    if output == "text":
        click.echo(f"evidence {doc['version']} (distribution {doc['distribution']}), Python {doc['python']}")
        for name, v in doc["libraries"].items():
            click.echo(f"  {name} {v or '(not installed)'}")
        click.echo(f"  extras installed: {', '.join(doc['extras']) or 'none'}")
        return
    from evidence.documents import dumps

    click.echo(dumps(doc, output), nl=False)


@cli.command(short_help="Print the shell completion script (bash, zsh or fish).")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    Examples:
      source <(evidence completion bash)                 # bash, this shell
      evidence completion zsh > "${fpath[1]}/_evidence"  # zsh
      evidence completion fish > ~/.config/fish/completions/evidence.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # click ships bash, zsh and fish
    click.echo(cls(cli, {}, "evidence", "_EVIDENCE_COMPLETE").source())


def kubectl_argv(argv: list[str]) -> list[str]:
    """Return ``kubectl evidence`` arguments as evidence reads them.

    kubectl's habit is global flags before the command (``kubectl evidence --context prod -n shop
    collect podinfo``): flags evidence knows are moved behind the command name, where its
    commands take them; a flag the command has no use for is dropped with a note on stderr.
    """
    leading: list[tuple[str, str]] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        flag, eq, value = arg.partition("=")
        if flag in KUBECTL_FLAGS and (eq or i + 1 < len(argv)):
            leading.append((flag, value if eq else argv[i + 1]))
            i += 1 if eq else 2
        elif arg.startswith("-n") and len(arg) > 2 and not arg.startswith("--"):
            leading.append(("-n", arg[2:]))
            i += 1
        else:
            break
    rest = argv[i:]
    if not leading or not rest:
        return argv
    command = cli.commands.get(rest[0])
    takes = {p.name for p in command.params} if command is not None else set()
    moved: list[str] = []
    for flag, value in leading:
        if KUBECTL_FLAGS[flag] in takes:
            moved += [flag, value]
        else:
            click.echo(f"note: {flag} does not apply to `evidence {rest[0]}`; ignored", err=True)
    return [rest[0], *moved, *rest[1:]]
