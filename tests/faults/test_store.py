"""The archive store under faults: refusing writes, vanishing mid-upload, racing writers, wrong credentials.

What must hold: a bundle in a store is complete or absent (no manifest without its files), a
failed upload never damages what the store held before, and of two writers of one rollout
exactly one stores it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence.archive.store import open_store
from fixtures.seaweed import SeaweedServer
from tests.archive_support import objects_in, run, s3env, s3url, seaweed, validated
from tests.faults.ledger import LEDGER
from tests.s3proxy import S3FaultProxy

__all__ = ["s3env", "s3url", "seaweed"]


def test_a_folder_store_that_refuses_writes_leaves_nothing(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    m = json.loads((bundle_for("healthy-promotion") / "manifest.json").read_text())
    root = tmp_path / "archive"
    root.mkdir()
    (root / f"cluster={m['cluster']['name']}").write_text("a file where the partition folder must go")
    res = run("push", str(bundle_for("healthy-promotion")), str(root))
    assert res.returncode == 1 and "cannot write into the archive folder" in res.stderr and "Traceback" not in res.stderr
    assert not list(root.rglob("manifest.json"))


def test_the_conditional_create_lets_only_one_of_two_racing_writers_store_a_bundle(
    bundle_for: Callable[[str], Path], s3env: dict[str, str], s3url: str, monkeypatch: pytest.MonkeyPatch, seaweed: SeaweedServer
) -> None:
    for k, v in s3env.items():
        monkeypatch.setenv(k, v)
    bundle = bundle_for("no-traffic")
    results: list[Any] = []
    barrier = threading.Barrier(4)

    def push() -> None:
        store = open_store(s3url)
        barrier.wait()
        results.append(store.put_bundle(bundle))

    threads = [threading.Thread(target=push) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.created for r in results) == [False, False, False, True]
    assert len({r.location for r in results}) == 1
    manifests = [k for k in objects_in(seaweed, s3url.removeprefix("s3://bundles/")) if k.endswith("/manifest.json")]
    assert len(manifests) == 1


@pytest.mark.parametrize("fault", ["refuse", "vanish"])
def test_a_store_that_refuses_or_vanishes_mid_upload_shows_no_manifest(
    bundle_for: Callable[[str], Path], s3env: dict[str, str], s3url: str, seaweed: SeaweedServer, fault: str
) -> None:
    bundle = bundle_for("rollback-latency")
    proxy = S3FaultProxy(seaweed.endpoint, refuse_puts=fault == "refuse", vanish_after_puts=3 if fault == "vanish" else None)
    with proxy:
        res = run("push", str(bundle), s3url, "--s3-endpoint", proxy.url, env=s3env)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert ("AccessDenied" in res.stderr) if fault == "refuse" else ("failed" in res.stderr), res.stderr
    if fault == "vanish":
        assert proxy.puts == 3
    keys = objects_in(seaweed, s3url.removeprefix("s3://bundles/"))
    assert not [k for k in keys if k.endswith("manifest.json")]
    listed = run("verify", s3url, env=s3env)
    assert listed.returncode == 0 and "0 of 0 bundles" in listed.stdout
    hist = validated(run("history", s3url, "-o", "json", env=s3env).stdout, "History")
    assert hist["rollouts"] == []


def test_a_vanishing_store_never_damages_what_it_held(
    bundle_for: Callable[[str], Path], s3env: dict[str, str], s3url: str, seaweed: SeaweedServer
) -> None:
    first = run("push", str(bundle_for("healthy-promotion")), s3url, env=s3env)
    assert first.returncode == 0, first.stderr
    with S3FaultProxy(seaweed.endpoint, vanish_after_puts=2) as proxy:
        res = run("push", str(bundle_for("rollback-error-rate")), s3url, "--s3-endpoint", proxy.url, env=s3env)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    ok = run("verify", s3url, env=s3env)
    if ok.returncode != 0 or "1 of 1 bundles verify" not in ok.stdout:
        LEDGER.lost("a failed upload damaged or hid a bundle the store held before")
    assert ok.returncode == 0 and "1 of 1 bundles verify" in ok.stdout, ok.stdout + ok.stderr


def test_collect_into_a_refusing_store_leaves_nothing_anywhere(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], Any],
    s3env: dict[str, str],
    s3url: str,
    seaweed: SeaweedServer,
    tmp_path: Path,
) -> None:
    with S3FaultProxy(seaweed.endpoint, refuse_puts=True) as proxy:
        res = run(
            "collect", "shop/podinfo", "--from-dump", str(simulated("rollback-error-rate") / "dump"),
            "--prometheus", prometheus_for("rollback-error-rate").url, "--out", s3url, "--s3-endpoint", proxy.url,
            env=s3env, cwd=tmp_path,
        )  # fmt: skip
    assert res.returncode == 1 and "AccessDenied" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not [k for k in objects_in(seaweed, s3url.removeprefix("s3://bundles/")) if k.endswith("manifest.json")]
    assert not list(tmp_path.iterdir())  # no local temporary bundle left behind either
