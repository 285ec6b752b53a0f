"""What ``evidence watch`` is asked to do: the command line's values (``WatchArgs``) and the checked options."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evidence.errors import UsageError
from evidence.flagger import DEFAULT_FLAGGER_NAMESPACE
from evidence.sources.prometheus import PrometheusSource


@dataclass(frozen=True)
class WatchOptions:
    """What ``evidence watch`` was asked to do."""

    store: str
    prometheus: PrometheusSource
    listen: str | None = None
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    selector: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    # Where Flagger's pods (and their log) are read: deploy/base/role-flagger.yaml grants only that namespace.
    flagger_namespace: str = DEFAULT_FLAGGER_NAMESPACE
    dump: Path | None = None
    tail: dt.timedelta = dt.timedelta(minutes=2)
    render: tuple[str, ...] = ()
    sign_key: Path | None = None
    notify: tuple[str, ...] = ()
    notify_format: str | None = None
    token: str | None = None
    journal: Path | None = None
    s3_endpoint: str | None = None
    cluster: str | None = None
    lease: str | None = None  # NAMESPACE/NAME of a coordination.k8s.io Lease: only its holder captures
    identity: str | None = None  # this replica's name in the Lease (default: host name and pid)
    lease_duration_s: int = 15
    lease_renew_s: float = 5.0
    # A failed capture is tried again on a timer: after retry_backoff_s, then twice as long each
    # time (at most retry_max_s), attempts in all; the store's conditional create keeps it once.
    attempts: int = 5
    retry_backoff_s: float = 30.0
    retry_max_s: float = 600.0
    # For tests and replays: the collector's clock, the watch timings.
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    watch_timeout_s: int = 240
    read_timeout_s: float = 90.0
    backoff_s: float = 1.0


@dataclass(frozen=True)
class WatchArgs:
    """The command line's values as click parsed them (``evidence watch``'s parameters, by name)."""

    store: str
    prometheus_url: str
    compression: str = "auto"
    listen: str | None = None
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    selector: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    flagger_namespace: str | None = None  # None: DEFAULT_FLAGGER_NAMESPACE
    dump: str | None = None
    tail: str = "2m"
    render_formats: str = ""
    sign_key: str | None = None
    notify: tuple[str, ...] = ()
    notify_format: str | None = None
    token_file: str | None = None
    journal: str | None = None
    s3_endpoint: str | None = None


def options_from_cli(args: WatchArgs) -> WatchOptions:
    """Check the command line's values and return the options; raise UsageError naming the option."""
    from evidence.model import parse_user_duration
    from evidence.render import FORMATS
    from evidence.sources.prometheus import read_token_file

    if args.all_namespaces and args.namespaces:
        raise UsageError("-A watches every namespace: drop -n, or drop -A to watch only those")
    if args.dump and (args.kubeconfig or args.context):
        raise UsageError("--from-dump reads a folder: drop --kubeconfig/--context, or drop --from-dump to watch the cluster")
    if args.dump and not args.listen:
        raise UsageError("--from-dump captures on post-rollout webhooks: add --listen HOST:PORT")
    tail_s = parse_user_duration(args.tail, "--tail").total_seconds()
    formats = tuple(f.strip() for f in args.render_formats.split(",") if f.strip())
    for f in formats:
        if f not in FORMATS:
            raise UsageError(f"--render {f!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return WatchOptions(
        store=args.store,
        prometheus=PrometheusSource(args.prometheus_url, compression=args.compression),
        listen=args.listen,
        namespaces=tuple(args.namespaces),
        selector=args.selector,
        kubeconfig=args.kubeconfig,
        context=args.context,
        flagger_namespace=args.flagger_namespace or DEFAULT_FLAGGER_NAMESPACE,
        dump=Path(args.dump) if args.dump else None,
        tail=dt.timedelta(seconds=tail_s),
        render=formats,
        sign_key=Path(args.sign_key) if args.sign_key else None,
        notify=tuple(args.notify),
        notify_format=args.notify_format,
        token=read_token_file(args.token_file) if args.token_file else None,
        journal=Path(args.journal) if args.journal else None,
        s3_endpoint=args.s3_endpoint,
        lease=os.environ.get("EVIDENCE_LEASE") or None,
    )
