"""Shared pieces of the archive tests: the CLI runner, schema validation, a SeaweedFS server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.seaweed import SeaweedServer

ROOT = Path(__file__).resolve().parent.parent
EVIDENCE = [sys.executable, "-m", "evidence"]


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI; return the finished process."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run([*EVIDENCE, *args], capture_output=True, text=True, env={**full, **(env or {})}, timeout=180, cwd=cwd)


def validated(text: str, kind: str) -> dict[str, Any]:
    """Parse a JSON document the CLI printed and validate it against its published schema."""
    import jsonschema

    doc: dict[str, Any] = json.loads(text)
    assert doc["apiVersion"] == "evidence/v1" and doc["kind"] == kind
    schema = json.loads((ROOT / "schemas" / f"{kind.lower()}.schema.json").read_text())
    jsonschema.validate(doc, schema)
    return doc


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A real S3 server (SeaweedFS ``weed mini``) on loopback for one test module."""
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3env(seaweed: SeaweedServer) -> dict[str, str]:
    return seaweed.env()


@pytest.fixture
def s3url(request: pytest.FixtureRequest) -> str:
    return f"s3://bundles/{request.node.name.replace('[', '-').replace(']', '')}"


def objects_in(seaweed: SeaweedServer, prefix: str) -> list[str]:
    """Return every object key under ``prefix`` in the test server's ``bundles`` bucket."""
    import obstore
    from obstore.store import S3Store

    st = S3Store("bundles", endpoint=seaweed.endpoint, access_key_id="evidence", secret_access_key="evidence-secret",
                 region="us-east-1", virtual_hosted_style_request=False, client_options={"allow_http": True})  # fmt: skip
    return sorted(str(o["path"]) for page in obstore.list(st, prefix) for o in page)
