"""Hostile and unlucky inputs built from a simulator scenario's dump: planted secrets, floods, huge texts."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

#: Every secret planted by ``plant_secrets``; none may appear in a bundle, a report, stdout/stderr or a log.
SECRETS = (
    "hunter2DbPass",
    "AKIAQ3EXAMPLEKEY7777",
    "wJalrXUtnFEMIbK7MDENGbPxRfiCYEXAMPLEKEY",
    "js0nP4ssw0rd",
    "mysqlP4ssArg",
    "z4pT0kenValue99",
    "xAuthHeaderV4lue",
    "s3ss10nC00kieVal",
    "echoedT0ken4242",
    "s3cr3tT0ken42",
    "cl13nt-s3cr3t",
    "Pa55w0rd",
    "XXXXSLACKSECRET",
    "proxypass",
)


def copy_dump(src: Path, dst: Path) -> Path:
    """Copy a scenario's dump folder."""
    shutil.copytree(src, dst)
    return dst


def log_line(ts: dt.datetime, msg: str, canary: str = "podinfo.shop", **extra: Any) -> str:
    """Return one of Flagger's zap JSON log lines about a canary's event."""
    rec = {"level": "info", "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", "caller": "controller/events.go:45"}
    rec.update({"msg": msg, "canary": canary, **extra})
    return json.dumps(rec)


def rollout_start(dump: Path) -> dt.datetime:
    """Return the time of the last 'New revision detected!' line of Flagger's log in the dump."""
    starts = [
        json.loads(line)["ts"]
        for line in (dump / "flagger.log").read_text().splitlines()
        if "New revision detected! Scaling up" in line
    ]
    return dt.datetime.fromisoformat(starts[-1].replace("Z", "+00:00"))


def plant_secrets(dump: Path) -> None:
    """Plant a secret in every disguise a hostile user found (issue 8): messages, log fields, metadata, objects."""
    import yaml

    t0 = rollout_start(dump) + dt.timedelta(seconds=30)
    lines = [
        log_line(t0, "Halt podinfo.shop advancement external check gate failed DB_PASS=hunter2DbPass"),
        log_line(
            t0 + dt.timedelta(seconds=1),
            "Halt podinfo.shop advancement external check gate failed AWS_ACCESS_KEY_ID=AKIAQ3EXAMPLEKEY7777 "
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIbK7MDENGbPxRfiCYEXAMPLEKEY",
        ),
        log_line(
            t0 + dt.timedelta(seconds=2), 'Halt podinfo.shop advancement external check gate failed {"password": "js0nP4ssw0rd"}'
        ),
        log_line(
            t0 + dt.timedelta(seconds=3), "Halt podinfo.shop advancement external check gate failed mysql -u app -p mysqlP4ssArg"
        ),
        log_line(t0 + dt.timedelta(seconds=4), "Starting canary analysis for podinfo.shop", token="z4pT0kenValue99"),
    ]
    with (dump / "flagger.log").open("a") as f:
        f.write("\n".join(lines) + "\n")
    canary = json.loads((dump / "canary.json").read_text())
    hooks = canary["spec"]["analysis"]["webhooks"]
    hooks[0]["url"] = "https://gate.example/check?token=s3cr3tT0ken42&team=web"
    hooks[0]["metadata"] = {"x-auth": "xAuthHeaderV4lue", "session": "s3ss10nC00kieVal", "clientSecret": "cl13nt-s3cr3t"}
    hooks[1]["metadata"] = {"cmd": "curl -u admin:Pa55w0rd http://x/?code=500", "type": "cmd"}
    (dump / "canary.json").write_text(json.dumps(canary))
    providers = yaml.safe_load((dump / "alertproviders.yaml").read_text())
    providers["items"][0]["spec"]["address"] = "https://hooks.slack.com/services/T0000/B0000/XXXXSLACKSECRET"
    providers["items"][0]["spec"]["proxy"] = "http://proxyuser:proxypass@proxy.corp:3128"
    (dump / "alertproviders.yaml").write_text(yaml.safe_dump(providers))


def flood_events(dump: Path, n: int, message_bytes: int = 0) -> None:
    """Append ``n`` Halt events to Flagger's log (10 ms apart) and as many core/v1 Events; one message of ``message_bytes``."""
    t0 = rollout_start(dump) + dt.timedelta(seconds=20)
    msg = "Halt podinfo.shop advancement success rate 95.00% < 99%"
    lines = [log_line(t0 + dt.timedelta(milliseconds=10 * i), msg) for i in range(n)]
    events = []
    for i in range(n):
        t = (t0 + dt.timedelta(milliseconds=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        events.append(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"podinfo.flood{i:07d}", "namespace": "shop"},
                "involvedObject": {"kind": "Canary", "name": "podinfo", "namespace": "shop", "apiVersion": "flagger.app/v1beta1"},
                "reason": "Synced",
                "type": "Warning",
                "message": msg,
                "count": 1,
                "firstTimestamp": t,
                "lastTimestamp": t,
                "source": {"component": "flagger"},
            }
        )
    if message_bytes:
        big = "Halt podinfo.shop advancement external check gate failed " + ("A" * message_bytes)
        lines.append(log_line(t0 + dt.timedelta(seconds=5, milliseconds=3), big))
    with (dump / "flagger.log").open("a") as f:
        f.write("\n".join(lines) + "\n")
    (dump / "events-flood.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": events}))


def add_warning_events(dump: Path, messages: list[str], name_prefix: str) -> None:
    """Append one core/v1 Warning Event per message to the dump's events.json, copied from the canary's first one."""
    events = json.loads((dump / "events.json").read_text())
    template = next(e for e in events["items"] if e["involvedObject"]["name"] == "podinfo" and e["type"] == "Warning")
    for i, message in enumerate(messages):
        ev = json.loads(json.dumps(template))
        ev["metadata"]["name"] = f"podinfo.{name_prefix}{i}"
        ev["message"] = message
        events["items"].append(ev)
    (dump / "events.json").write_text(json.dumps(events))
