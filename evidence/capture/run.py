"""One capture: collect (the journal merged in), sign, store, evaluate, render; the JSON fields of its log line.

Exactly once: the bundle goes into the store with its conditional create, so a second capture
of the same rollout (a retry, a restart, a second replica) finds it there (``duplicate``).  The
reports go beside it in the store with create-only writes as well; a duplicate capture still
puts any report the store lacks (an earlier attempt that stored the bundle and then failed).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evidence.capture.watch import Pending, Watcher


def capture_once(w: Watcher, p: Pending) -> dict[str, Any]:
    """Capture ``p`` for the watcher ``w``; return outcome, location, bundle id, verdict and reports (raise on failure)."""
    import datetime as dt

    from evidence.archive.store import collect_into_store
    from evidence.collect import CollectOptions, collect_rollout
    from evidence.sources.journal import JournalSource

    o = w.options
    started_at = dt.datetime.now(dt.UTC)
    staged: dict[str, Any] = {}
    source = JournalSource(w.cluster_source(), w.journal, p.warnings)
    start, end = p.window if p.window else (None, None)
    options = CollectOptions(out=Path("."), tail=o.tail, cluster=o.cluster, allow_partial=True, start=start, end=end)

    def collect(tmp: Path) -> Path:
        path = collect_rollout(p.ref, source, o.prometheus, replace(options, out=tmp), clock=o.clock)
        if o.sign_key is not None:
            from evidence.archive.sign import sign_bundle

            sign_bundle(path, o.sign_key)
        staged.update(_evaluate_and_render(path, o.render))
        return path

    try:
        result = collect_into_store(w.store, collect)
        p.stored = p.stored or result.created
        out: dict[str, Any] = {"outcome": "stored" if result.created else "duplicate", "location": result.location}
        out.update((k, v) for k, v in staged.items() if k != "reports_tmp")
        tmp = staged.get("reports_tmp")
        if tmp is not None:
            files = sorted(Path(tmp).iterdir())
            if w.remote_reports:
                out["stored_reports"] = w.store.put_reports(result.location, files)
            if p.stored:  # this capture (or an earlier attempt of it) made the bundle
                dest = w.reports / str(staged["bundle_id"])
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not dest.exists():
                    shutil.move(str(tmp), dest)
                out["reports"] = sorted(str(x) for x in dest.iterdir())
        w.journal.compact(p.ref.namespace, p.ref.name, started_at, str(staged.get("bundle_id") or "unknown"))
        return out
    finally:
        tmp = staged.get("reports_tmp")
        if tmp and Path(tmp).exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _evaluate_and_render(bundle: Path, formats: tuple[str, ...]) -> dict[str, Any]:
    from evidence.bundle import open_bundle
    from evidence.capture.notify import decision
    from evidence.evaluate import evaluate_bundle
    from evidence.policy import default_policy

    ev = evaluate_bundle(open_bundle(bundle), default_policy(), bounded=True)
    out: dict[str, Any] = decision(ev)
    if formats:
        from evidence.render import render_bundle

        reports = Path(tempfile.mkdtemp(prefix="evidence-reports-"))
        render_bundle(bundle, list(formats), reports)
        out["reports_tmp"] = reports
    return out
