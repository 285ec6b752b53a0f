"""`evidence watch --store s3://…`: the bundle and its reports both land in the store, once.

Against a real S3 server (SeaweedFS ``weed mini``), the loopback Kubernetes API server and the
real Prometheus: the rollout's HTML and PDF records go beside the bundle as
``<bundle folder>.reports/<file>``, each written create-only, so a second capture of the same
rollout neither adds a bundle nor replaces a report, and puts back a report the store lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from evidence.archive.store import FolderStore, open_store
from evidence.capture.watch import Watcher
from fixtures.prom import PrometheusServer
from fixtures.seaweed import SeaweedServer

from .archive_support import objects_in, s3env, s3url, seaweed
from .kubeapi import KubeApiServer
from .s3proxy import S3FaultProxy
from .test_capture_watch import NAME, api, no_proxy, options, prom, server, sim, terminal_canary, wait_for

__all__ = ["api", "no_proxy", "prom", "s3env", "s3url", "seaweed", "server", "sim"]  # fixtures


@pytest.fixture
def ended(api: KubeApiServer, s3env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's credentials in the environment, and a Canary that ended (captured on start-up)."""
    for k, v in s3env.items():
        monkeypatch.setenv(k, v)
    api.put("canaries", terminal_canary(api), group="flagger.app")


# WeasyPrint's generate_pdf opens its sRGB ICC profile and never closes it; rendered in this
# process (the watcher's worker) the handle is collected later as an unraisable ResourceWarning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_with_an_s3_store_the_reports_go_beside_the_bundle(
    api: KubeApiServer, prom: PrometheusServer, truth_of: Callable[[str], dict[str, Any]], seaweed: SeaweedServer,
    s3url: str, ended: None, tmp_path: Path,
) -> None:  # fmt: skip  # captured on start-up

    def capture(journal: str) -> list[dict[str, Any]]:
        opts = options(Path("unused"), api, prom, truth_of(NAME), listen=None, render=("html", "pdf"),
                       journal=tmp_path / journal)  # fmt: skip
        w = Watcher(replace(opts, store=s3url)).start()
        try:
            wait_for(lambda: len(w.results) >= 1, 120)
        finally:
            w.stop()
        return w.results

    (first,) = capture("j1")
    assert first["outcome"] == "stored" and first["location"].startswith(s3url)
    prefix = s3url.removeprefix("s3://bundles/")
    keys = objects_in(seaweed, prefix)
    folder = first["location"].removeprefix("s3://bundles/")
    reports = sorted(k for k in keys if k.startswith(f"{folder}.reports/"))
    assert [r.rsplit(".", 1)[1] for r in reports] == ["html", "pdf"]
    assert first["stored_reports"] == [f"s3://bundles/{r}" for r in reports]
    assert len(list(open_store(s3url).bundles())) == 1  # the reports folder is not taken for a bundle
    assert all(Path(p).is_file() for p in first["reports"])  # and the local copy beside the journal

    import obstore

    st = open_store(s3url)._client()  # type: ignore[attr-defined]
    html = next(r for r in reports if r.endswith(".html"))
    before = bytes(obstore.get(st, next(r for r in reports if r.endswith(".pdf"))).bytes())
    obstore.delete(st, html)  # a report lost (an earlier attempt that failed after the bundle)
    (second,) = capture("j2")  # another replica's journal: it captures the same rollout again
    assert second["outcome"] == "duplicate" and second["location"] == first["location"]
    assert objects_in(seaweed, prefix) == keys  # the lost report is back, nothing else is new
    assert bytes(obstore.get(st, next(r for r in reports if r.endswith(".pdf"))).bytes()) == before  # never replaced
    assert len(list(open_store(s3url).bundles())) == 1


def test_a_store_that_refuses_the_reports_at_first_gets_them_on_the_retry(
    api: KubeApiServer, prom: PrometheusServer, truth_of: Callable[[str], dict[str, Any]], seaweed: SeaweedServer,
    s3url: str, ended: None, tmp_path: Path,
) -> None:  # fmt: skip
    with S3FaultProxy(seaweed.endpoint, refuse_puts_matching=".reports/") as proxy:  # the bundle goes in, its reports not
        opts = options(Path("unused"), api, prom, truth_of(NAME), listen=None, render=("html",), journal=tmp_path / "j",
                       s3_endpoint=proxy.url, attempts=3, retry_backoff_s=0.3)  # fmt: skip
        w = Watcher(replace(opts, store=s3url)).start()
        try:
            wait_for(lambda: len(w.results) >= 1, 120)
            proxy.refuse_puts_matching = None
            wait_for(lambda: len(w.results) >= 2, 120)
        finally:
            w.stop()
    assert [r["outcome"] for r in w.results] == ["retrying", "stored"]  # stored once: by the first attempt
    assert "AccessDenied" in w.results[0]["error"]
    (entry,) = open_store(s3url, endpoint=seaweed.endpoint).bundles()
    folder = entry.location.removeprefix("s3://bundles/")
    assert w.results[1]["location"] == entry.location
    assert [k for k in objects_in(seaweed, folder + ".reports/")] == [
        f"{folder}.reports/{Path(p).name}" for p in w.results[1]["reports"]
    ]
    metrics = w.metrics.render().decode()
    assert (
        'evidence_captures_total{outcome="stored"} 1' in metrics and 'evidence_captures_total{outcome="duplicate"} 0' in metrics
    )


def test_a_folder_store_writes_reports_create_only(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "archive")
    bundle = tmp_path / "archive" / "b"
    bundle.mkdir(parents=True)
    report = tmp_path / "r.html"
    report.write_text("first")
    assert store.put_reports(str(bundle), [report]) == [f"{bundle}.reports/r.html"]
    report.write_text("second")
    store.put_reports(str(bundle), [report])
    assert Path(f"{bundle}.reports/r.html").read_text() == "first"
