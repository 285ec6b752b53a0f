"""``evidence show``, ``evaluate`` and ``render``: read one bundle, judge it, write its records."""

from __future__ import annotations

import sys

import click

from evidence.cli import _ALLOW_UNVERIFIED, _output_option, _printable, cli, handle_errors


@cli.command(short_help="Summarise a bundle in the terminal.")
@click.argument("bundle", type=click.Path())
@_ALLOW_UNVERIFIED
@_output_option(("text", "json", "yaml"), "text")
@handle_errors
def show(bundle: str, allow_unverified: bool, output: str) -> None:
    """Summarise BUNDLE: canary, window, Flagger's outcome, weights, counts, gaps (verified first).

    -o json|yaml prints a BundleSummary (schemas/bundlesummary.schema.json).
    """
    from evidence.memory import tune_memory

    tune_memory()
    from evidence.bundle import open_bundle
    from evidence.summary import summarise_bundle, summary_document

    b = open_bundle(bundle, allow_unverified)
    if output == "text":
        click.echo(_printable(summarise_bundle(b)))
    else:
        from evidence.documents import dumps

        click.echo(dumps(summary_document(b), output), nl=False)


@cli.command(short_help="Judge a bundle against the abort policy (exit 3 on a breach).")
@click.argument("bundle", type=click.Path())
@click.option(
    "--policy", "policy_file", metavar="FILE", type=click.Path(), help="Abort policy YAML (default: the built-in policy)."
)
@_output_option(("text", "json", "yaml"), "text")
@click.option("--json", "as_json", is_flag=True, help="Same as -o json.")
@click.option(
    "--fail-on",
    metavar="LIST",
    default="breach",
    show_default=True,
    help="Exit 3 when any of these holds (comma-separated): breach, promoted-despite-breach, silent-failure, "
    "no-data, low-confidence, unverified.",
)
@_ALLOW_UNVERIFIED
@handle_errors
def evaluate(bundle: str, policy_file: str | None, output: str, as_json: bool, fail_on: str, allow_unverified: bool) -> None:
    """Judge BUNDLE against the abort policy and reconstruct what Flagger did.

    \b
    Exit codes: 0 none of the --fail-on conditions holds (by default: no
    abort criterion breached), 3 at least one holds, 1 error, 2 usage.
    """
    from evidence.memory import tune_memory

    tune_memory()
    from evidence.bundle import open_bundle
    from evidence.documents import document, dumps
    from evidence.evaluate import evaluate_bundle
    from evidence.gate import failing_conditions, parse_fail_on
    from evidence.policy import default_policy, load_policy
    from evidence.render.evaluation import evaluation_to_json, format_evaluation

    conditions = parse_fail_on(fail_on)
    policy = load_policy(policy_file) if policy_file else default_policy()
    ev = evaluate_bundle(open_bundle(bundle, allow_unverified), policy, bounded=True)
    if as_json or output != "text":
        click.echo(dumps(document("Evaluation", evaluation_to_json(ev)), "json" if as_json else output), nl=False)
    else:
        click.echo(_printable(format_evaluation(ev)), nl=False)
    failing = failing_conditions(ev, conditions)
    if failing and failing != ["breach"]:
        click.echo("evaluate: failing on " + ", ".join(failing) + " (--fail-on)", err=True)
    sys.exit(3 if failing else 0)


@cli.command(short_help="Write the HTML/PDF decision record and the postmortem pack.")
@click.argument("bundle", type=click.Path())
@click.option(
    "--format",
    "fmt",
    default="html",
    show_default=True,
    type=click.Choice(["html", "pdf", "all"]),
    help="html: interactive, self-contained; pdf: A4 print layout; all: both plus the postmortem pack.",
)
@click.option("--postmortem", is_flag=True, help="Also write the postmortem pack (HTML and Markdown).")
@click.option("--out", default="reports", show_default=True, type=click.Path(), help="Folder for the reports.")
@click.option("--template-dir", metavar="DIR", type=click.Path(), help="Templates that override report_templates/ by file name.")
@click.option(
    "--policy", "policy_file", metavar="FILE", type=click.Path(), help="Abort policy YAML (default: the built-in policy)."
)
@_ALLOW_UNVERIFIED
@handle_errors
def render(
    bundle: str, fmt: str, postmortem: bool, out: str, template_dir: str | None, policy_file: str | None, allow_unverified: bool
) -> None:
    """Render BUNDLE's decision record (and postmortem pack) from the bundle alone.

    Prints each written file's path, one a line. Never contacts a cluster or Prometheus.
    """
    from evidence.memory import tune_memory

    tune_memory()
    from evidence.render import formats_for, render_bundle

    paths = render_bundle(
        bundle,
        formats_for(fmt, postmortem),
        out,
        template_dir=template_dir,
        policy_path=policy_file,
        allow_unverified=allow_unverified,
    )
    for path in paths:
        click.echo(str(path))
