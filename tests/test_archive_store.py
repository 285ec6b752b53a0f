"""push and collect into a folder and into a real S3 server (SeaweedFS): one bundle per rollout, complete or absent."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence.archive.store import FolderStore, open_store
from evidence.errors import StoreAuthError, StoreError
from fixtures.archive import reidentify
from fixtures.seaweed import SeaweedServer, create_locked_bucket, signed_request

from .archive_support import objects_in, run, s3env, s3url, seaweed, validated

__all__ = ["s3env", "s3url", "seaweed"]


def test_push_to_a_folder_lays_out_partitions_and_refuses_a_second_copy(
    bundle_for: Callable[[str], Path], tmp_path: Path
) -> None:
    bundle = bundle_for("healthy-promotion")
    m = json.loads((bundle / "manifest.json").read_text())
    first = run("push", str(bundle), str(tmp_path / "archive"))
    assert first.returncode == 0, first.stderr
    loc = Path(first.stdout.strip())
    rel = loc.relative_to(tmp_path / "archive").as_posix()
    date = (m["rollout"]["start"] or m["window"]["start"])[:10]
    assert (
        rel
        == f"cluster={m['cluster']['name']}/namespace={m['canary']['namespace']}/canary={m['canary']['name']}/date={date}/{m['bundle_id']}"
    )
    assert run("verify", str(loc)).returncode == 0
    second = run("push", str(bundle), str(tmp_path / "archive"))
    assert second.returncode == 0 and second.stdout.strip() == str(loc) and "Warning:" in second.stderr
    assert len(list((tmp_path / "archive").rglob("manifest.json"))) == 1


def test_supersede_keeps_the_old_copy_and_records_the_successor(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    bundle = bundle_for("rollback-latency")
    store = FolderStore(tmp_path / "archive")
    old = store.put_bundle(bundle)
    new = store.put_bundle(bundle, supersede=True)
    assert old.created and new.created and new.supersedes == old.location and new.location != old.location
    assert (Path(old.location) / "manifest.json").is_file() and (Path(new.location) / "manifest.json").is_file()
    record = json.loads(Path(new.location + ".succession.json").read_text())
    assert record["kind"] == "Succession" and (record["predecessor"], record["successor"]) == (old.location, new.location)
    bid = json.loads((bundle / "manifest.json").read_text())["bundle_id"]
    assert store.find(bid) == new.location
    assert [e.location for e in store.bundles()] == [new.location]
    hist = validated(run("history", str(tmp_path / "archive"), "-o", "json").stdout, "History")
    assert [r["location"] for r in hist["rollouts"]] == [new.location]


def test_push_to_s3_and_read_it_back(
    bundle_for: Callable[[str], Path], s3env: dict[str, str], s3url: str, seaweed: SeaweedServer
) -> None:
    bundle = bundle_for("rollback-error-rate")
    first = run("push", str(bundle), s3url, env=s3env)
    assert first.returncode == 0, first.stderr
    loc = first.stdout.strip()
    assert loc.startswith(s3url + "/cluster=") and loc.endswith(json.loads((bundle / "manifest.json").read_text())["bundle_id"])
    keys = objects_in(seaweed, s3url.removeprefix("s3://bundles/"))
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == sorted(p.name for p in bundle.iterdir())
    assert not any(k.endswith("/") for k in keys)  # no directory markers
    second = run("push", str(bundle), s3url, env=s3env)
    assert second.returncode == 0 and second.stdout.strip() == loc and "already" in second.stderr
    ok = run("verify", s3url, env=s3env)
    assert ok.returncode == 0 and "1 of 1 bundles verify" in ok.stdout


def test_a_wrong_secret_is_a_clear_error(bundle_for: Callable[[str], Path], s3env: dict[str, str], s3url: str) -> None:
    res = run("push", str(bundle_for("healthy-promotion")), s3url, env={**s3env, "AWS_SECRET_ACCESS_KEY": "wrong"})
    assert res.returncode == 1 and "SignatureDoesNotMatch" in res.stderr and "AWS_SECRET_ACCESS_KEY" in res.stderr
    assert "Traceback" not in res.stderr
    with pytest.MonkeyPatch.context() as mp:
        for k, v in dict(s3env, AWS_SECRET_ACCESS_KEY="wrong").items():
            mp.setenv(k, v)
        with pytest.raises(StoreAuthError, match="refused"):
            list(open_store(s3url).bundles())


def test_retention_on_a_bucket_with_object_lock_and_a_clear_refusal_without(
    bundle_for: Callable[[str], Path], s3env: dict[str, str], s3url: str, seaweed: SeaweedServer
) -> None:
    create_locked_bucket(seaweed.endpoint, "locked")
    bundle = bundle_for("healthy-promotion")
    res = run("push", str(bundle), "s3://locked/archive", "--retain-until", "2099-01-01", env=s3env)
    assert res.returncode == 0, res.stderr
    key = res.stdout.strip().removeprefix("s3://locked/") + "/manifest.json"
    status, body = signed_request(seaweed.endpoint, "GET", f"/locked/{key}", query="retention")
    assert status == 200 and b"COMPLIANCE" in body and b"2099-01-01" in body
    refused = run("push", str(bundle), s3url, "--retain-until", "2099-01-01", env=s3env)
    assert refused.returncode == 1 and "Object Lock" in refused.stderr
    assert not objects_in(seaweed, s3url.removeprefix("s3://bundles/"))
    past = run("push", str(bundle), s3url, "--retain-until", "2001-01-01", env=s3env)
    assert past.returncode == 2 and "in the past" in past.stderr


def test_a_manifest_with_legal_hold_puts_every_object_on_hold(
    bundle_for: Callable[[str], Path], s3env: dict[str, str], s3url: str, seaweed: SeaweedServer, tmp_path: Path
) -> None:
    held = reidentify(bundle_for("healthy-promotion"), tmp_path / "held", "eu-1", legal_hold=True)
    create_locked_bucket(seaweed.endpoint, "held")
    res = run("push", str(held), "s3://held/archive", env=s3env)
    assert res.returncode == 0, res.stderr
    prefix = res.stdout.strip().removeprefix("s3://held/")
    for name in ("manifest.json", "events.parquet"):
        status, body = signed_request(seaweed.endpoint, "GET", f"/held/{prefix}/{name}", query="legal-hold")
        assert status == 200 and b"ON" in body, body
    refused = run("push", str(held), s3url, env=s3env)
    assert refused.returncode == 1 and "Object Lock" in refused.stderr


def test_verify_store_names_each_bad_bundle(
    bundle_for: Callable[[str], Path], s3env: dict[str, str], s3url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import obstore

    for k, v in s3env.items():
        monkeypatch.setenv(k, v)
    good = bundle_for("healthy-promotion")
    other = reidentify(good, tmp_path / "re", "eu-1")
    for b in (good, other):
        assert run("push", str(b), s3url, env=s3env).returncode == 0
    store = open_store(s3url)
    entries = list(store.bundles())
    assert len(entries) == 2
    victim = next(e for e in entries if "cluster=eu-1" in e.key)
    client = store._client()  # type: ignore[attr-defined]
    obstore.put(client, f"{s3url.removeprefix('s3://bundles/')}/{victim.key}/events.parquet", b"not parquet")
    res = run("verify", s3url, "-o", "json", env=s3env)
    doc = validated(res.stdout, "ArchiveVerification")
    assert res.returncode == 1 and doc["bundles"] == 2 and doc["bad"] == 1
    text = run("verify", s3url, env=s3env)
    assert text.returncode == 1 and f"bad: {victim.location}: events.parquet differs" in text.stderr
    assert "1 of 2 bundles verify" in text.stdout


def test_collect_into_s3_and_again_is_a_no_op(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], Any], truth_of: Callable[[str], dict[str, Any]],
    s3env: dict[str, str], s3url: str,
) -> None:  # fmt: skip
    import datetime as dt

    name = "rollback-error-rate"
    truth = truth_of(name)
    start = dt.datetime.fromtimestamp(truth["rollouts"][-1]["start"] - 600, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    args = ["collect", truth["canary"], "--from-dump", str(simulated(name) / "dump"), "--prometheus", prometheus_for(name).url,
            "--start", start, "--end", end, "--out", s3url, "--cluster", "prod-eu", "-q"]  # fmt: skip
    first = run(*args, env=s3env)
    assert first.returncode == 0, first.stderr
    loc = first.stdout.strip().splitlines()[-1]
    assert loc.startswith(f"{s3url}/cluster=prod-eu/")
    second = run(*args, env=s3env)
    assert second.returncode == 0 and second.stdout.strip().splitlines()[-1] == loc and "Warning:" in second.stderr
    hist = validated(run("history", s3url, "-o", "json", env=s3env).stdout, "History")
    assert [(r["cluster"], r["outcome"]) for r in hist["rollouts"]] == [("prod-eu", "rolled_back")]
    newer = run(*args, "--supersede", env=s3env)
    assert newer.returncode == 0, newer.stderr
    assert newer.stdout.strip().splitlines()[-1] == loc + ".v2"
    again = validated(run("history", s3url, "-o", "json", env=s3env).stdout, "History")
    assert [r["location"] for r in again["rollouts"]] == [loc + ".v2"]
    folder = run(*args[:-5], "--out", "bundles-folder", "--supersede", env=s3env)
    assert folder.returncode == 2 and "--supersede applies to an archive store" in folder.stderr


def test_open_store_refuses_an_endpoint_for_a_folder(tmp_path: Path) -> None:
    from evidence.errors import UsageError

    with pytest.raises(UsageError):
        open_store(tmp_path, endpoint="http://127.0.0.1:1")
    with pytest.raises(StoreError, match="does not exist"):
        list(FolderStore(tmp_path / "nope").bundles())
