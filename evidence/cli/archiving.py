"""``evidence keygen``, ``sign``, ``push``, ``verify`` and ``history``: the signed archive."""

from __future__ import annotations

import sys

import click

from evidence.cli import _output_option, _s3_endpoint_option, cli, handle_errors


@cli.command(short_help="Create an ECDSA P-256 key pair for signing bundles.")
@click.argument("prefix")
@handle_errors
def keygen(prefix: str) -> None:
    """Write PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (PEM public key).

    P-256 keys are what cosign uses, so other tools can check the signatures. Keys are never
    overwritten and never enter a bundle.
    """
    from evidence.archive.sign import generate_keypair

    for path in generate_keypair(prefix):
        click.echo(str(path))


@cli.command(short_help="Sign a bundle: in-toto attestation in DSSE, and a Sigstore bundle.")
@click.argument("bundle", type=click.Path())
@click.option("--key", "key", required=True, metavar="PREFIX.key", help="Private key from `evidence keygen`.")
@click.option("--force", is_flag=True, help="Replace an existing attestation.")
@handle_errors
def sign(bundle: str, key: str, force: bool) -> None:
    """Verify BUNDLE, then write attestation.intoto.jsonl and attestation.sigstore.json into it.

    The statement's subjects are every file of the bundle (manifest included) by sha256; its
    predicate is the rollout's decision. Prints the two paths.
    """
    from evidence.archive.sign import sign_bundle

    for path in sign_bundle(bundle, key, force=force):
        click.echo(str(path))


@cli.command(short_help="Copy a bundle into an archive store (folder or s3://).")
@click.argument("bundle", type=click.Path())
@click.argument("store")
@_s3_endpoint_option("an s3:// STORE")
@click.option(
    "--supersede", is_flag=True, help="Store it even if the rollout is archived: keep the old copy, record this as its successor."
)
@click.option(
    "--retain-until",
    metavar="RFC3339|YYYY-MM-DD",
    help="S3 Object Lock retention in compliance mode (bucket must have Object Lock).",
)
@handle_errors
def push(bundle: str, store: str, s3_endpoint: str | None, supersede: bool, retain_until: str | None) -> None:
    """Verify BUNDLE and copy it into STORE under cluster=/namespace=/canary=/date=/<bundle-id>/.

    \b
    Prints the stored location. A rollout already in the store is not stored again (a warning,
    exit 0) unless --supersede. Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN, AWS_REGION.
    """
    from pathlib import Path

    from evidence.archive.store import open_store, parse_retention

    target = open_store(store, endpoint=s3_endpoint)
    result = target.put_bundle(Path(bundle), supersede=supersede, retain_until=parse_retention(retain_until))
    if not result.created:
        click.echo(f"Warning: this rollout is already in {target.url}: {result.location} (nothing stored)", err=True)
    click.echo(result.location)


@cli.command(short_help="Check bundles: files, manifest pin, signature; or a whole archive.")
@click.argument("target")
@click.option("--key", "key", metavar="PUB", help="Public key: require a valid signature whose subjects match the files.")
@click.option("--expect-sha256", metavar="HASH", help="Require this sha256 of manifest.json.")
@_s3_endpoint_option()
@_output_option(("table", "json", "yaml"))
@handle_errors
def verify(target: str, key: str | None, expect_sha256: str | None, s3_endpoint: str | None, output: str) -> None:
    """Check TARGET, a bundle folder or an archive store (folder or s3://BUCKET/PREFIX).

    \b
    A bundle: every file against the manifest, --expect-sha256, and with --key the signature
    and its subjects. Without --key the signature is reported as `unsigned` or `signed, not
    checked`. A store: every bundle, one line per bad bundle. Exit 0 when everything
    verifies, 1 otherwise.
    """
    from evidence import documents
    from evidence.archive.check import check_bundle, check_store, is_store_target
    from evidence.archive.store import open_store
    from evidence.errors import UsageError

    if is_store_target(target):
        if expect_sha256:
            raise UsageError("--expect-sha256 pins one bundle's manifest; give a bundle folder, not a store")
        checked = check_store(open_store(target, endpoint=s3_endpoint), key)
        if output != "table":
            click.echo(documents.dumps(documents.document("ArchiveVerification", checked.to_json()), output), nl=False)
        else:
            for b in checked.bundles:
                if not b.ok:
                    click.echo(f"bad: {b.location}: {'; '.join(b.problems)}", err=True)
            good = sum(b.ok for b in checked.bundles)
            click.echo(f"{good} of {len(checked.bundles)} bundles verify in {checked.store}")
        sys.exit(0 if checked.ok else 1)
    result = check_bundle(target, key, expect_sha256)
    if output != "table":
        click.echo(documents.dumps(documents.document("Verification", result.to_json()), output), nl=False)
    elif result.ok:
        click.echo(
            f"ok: {result.files} files match the manifest (bundle {result.bundle_id}, manifest sha256 "
            f"{result.manifest_sha256}); signature: {result.signature}"
        )
    else:
        for problem in result.problems:
            click.echo(f"error: {target}: {problem}", err=True)
    sys.exit(0 if result.ok else 1)


@cli.command(short_help="One row per archived rollout, or fleet figures (--summary).")
@click.argument("store")
@click.option("-n", "--namespace", metavar="NS", help="Only this namespace.")
@click.option("--canary", metavar="NAME", help="Only this canary.")
@click.option("--since", metavar="RFC3339", help="Only rollouts that started at or after this time.")
@click.option(
    "--outcome", type=click.Choice(["promoted", "rolled_back", "failed", "in_progress", "unknown"]), help="Only this outcome."
)
@click.option("--summary", is_flag=True, help="Fleet figures per cluster, namespace and canary instead of rows.")
@click.option(
    "--key", "key", metavar="PUB", help="Public key: fill `verified` (the row's manifest and summary are signed by it)."
)
@_s3_endpoint_option()
@_output_option(("table", "json", "csv"))
@handle_errors
def history(
    store: str,
    namespace: str | None,
    canary: str | None,
    since: str | None,
    outcome: str | None,
    summary: bool,
    key: str | None,
    s3_endpoint: str | None,
    output: str,
) -> None:
    """Read every bundle's summary in STORE with DuckDB: history rows or fleet figures.

    Bad bundles are skipped with a warning on stderr; the rest still answer.
    """
    from evidence.archive.check import dumps
    from evidence.archive.ledger import Filters
    from evidence.archive.ledger import history as run_history
    from evidence.archive.report import ledger_csv, ledger_table
    from evidence.archive.store import open_store
    from evidence.model import parse_time

    filters = Filters(namespace, canary, parse_time(since, "--since") if since else None, outcome)
    doc = run_history(open_store(store, endpoint=s3_endpoint), filters, key=key, summary=summary)
    for w in doc["warnings"]:
        click.echo(f"Warning: {w}", err=True)
    if output == "json":
        click.echo(dumps(doc))
    else:
        click.echo(ledger_csv(doc) if output == "csv" else ledger_table(doc), nl=False)
