"""Tampered and forged bundles: verify names the problem; evaluate, render and show refuse them unless told.

A forger who edits the manifest can also recompute its ``self_sha256`` (the hash protects
against accidents, not against a forger: signatures do that), so every manifest case here is
re-sealed the way the writer seals it, and must still be refused for what it says.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.faults.common import run
from tests.faults.ledger import LEDGER

SCENARIO = "rollback-error-rate"
ZERO = "0" * 64


def copy_bundle(bundle_for: Callable[[str], Path], tmp: Path) -> Path:
    dst = tmp / bundle_for(SCENARIO).name
    shutil.copytree(bundle_for(SCENARIO), dst)
    return dst


def reseal(bundle: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the manifest and recompute its self hash as the writer does."""
    m = json.loads((bundle / "manifest.json").read_text())
    change(m)
    m["self_sha256"] = ZERO
    text = json.dumps(m, indent=2, ensure_ascii=False) + "\n"
    text = text.replace(f'"self_sha256": "{ZERO}"', f'"self_sha256": "{hashlib.sha256(text.encode()).hexdigest()}"')
    (bundle / "manifest.json").write_text(text)


def relist(bundle: Path, name: str) -> Callable[[dict[str, Any]], None]:
    """Return a change that re-records one file's size and hash in the manifest (a forger's edit)."""

    def change(m: dict[str, Any]) -> None:
        data = (bundle / name).read_bytes()
        m["files"][name] = {**m["files"][name], "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    return change


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def refused_everywhere(bundle: Path, said: str, tmp: Path) -> None:
    """Assert verify fails naming ``said`` and that evaluate, render and show refuse the bundle."""
    v = run("verify", str(bundle))
    assert v.returncode == 1 and said in (v.stdout + v.stderr), v.stdout + v.stderr
    for cmd in (["evaluate"], ["show"], ["render", "--out", str(tmp / "reports")]):
        r = run(*cmd, str(bundle))
        if r.returncode == 0 or (cmd == ["evaluate"] and r.returncode == 3):
            LEDGER.lost(f"{cmd[0]} used a bundle that does not verify ({said})")
        assert r.returncode == 1, (cmd, r.stdout[-500:], r.stderr[-500:])
        # Either refused as changed evidence (with the way out), or unreadable, saying why.
        assert ("does not verify" in r.stderr and "--allow-unverified" in r.stderr) or said in r.stderr, r.stderr
    assert not (tmp / "reports").exists() or not list((tmp / "reports").iterdir())


def test_one_flipped_byte_is_refused_by_every_command(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    b = copy_bundle(bundle_for, tmp_path)
    flip_byte(b / "samples.parquet")
    refused_everywhere(b, "samples.parquet differs from the manifest", tmp_path)


def test_allow_unverified_marks_the_json_every_page_and_show(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    import pypdf

    b = copy_bundle(bundle_for, tmp_path)
    flip_byte(b / "samples.parquet")
    ev = run("evaluate", "--json", "--allow-unverified", str(b))
    doc = json.loads(ev.stdout)
    assert doc["verified"] is False and "sha256 mismatch" in doc["unverified_reason"]
    sh = run("show", "--allow-unverified", str(b))
    assert sh.stdout.splitlines()[0].startswith("UNVERIFIED: samples.parquet")
    r = run("render", "--allow-unverified", "--format", "pdf", "--out", str(tmp_path / "r"), str(b))
    assert r.returncode == 0, r.stderr
    r = run("render", "--allow-unverified", "--format", "html", "--out", str(tmp_path / "r"), str(b))
    assert r.returncode == 0, r.stderr
    html = next((tmp_path / "r").glob("*.decision-record.html")).read_text()
    assert "UNVERIFIED: samples.parquet differs from the manifest" in html
    pages = pypdf.PdfReader(next((tmp_path / "r").glob("*.decision-record.pdf"))).pages
    marked = [i for i, p in enumerate(pages) if "UNVERIFIED" in (p.extract_text() or "")]
    assert len(pages) > 1 and marked == list(range(len(pages))), (len(pages), marked)


def test_a_truncated_parquet_is_refused_with_its_name(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    b = copy_bundle(bundle_for, tmp_path)
    data = (b / "events.parquet").read_bytes()
    (b / "events.parquet").write_bytes(data[: len(data) // 3])
    reseal(b, relist(b, "events.parquet"))  # even with the manifest made to agree
    refused_everywhere(b, "events.parquet", tmp_path)


def test_a_parquet_of_the_wrong_schema_is_refused(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    b = copy_bundle(bundle_for, tmp_path)
    t = pq.read_table(b / "samples.parquet")
    bad = t.set_column(t.schema.get_field_index("value"), "value", pa.array([str(v) for v in t.column("value").to_pylist()]))
    pq.write_table(bad, b / "samples.parquet")
    reseal(b, relist(b, "samples.parquet"))
    refused_everywhere(b, "column 'value' of table samples has type string", tmp_path)


FORGERIES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "no-files": (lambda m: m.__setitem__("files", {}), "is not listed in the manifest"),
    "files-missing": (lambda m: m.pop("files"), "lists no files"),
    "dotdot-path": (lambda m: m["files"].__setitem__("../outside.txt", {"bytes": 1, "sha256": ZERO}), "outside the bundle"),
    "absolute-path": (lambda m: m["files"].__setitem__("/etc/hostname", {"bytes": 1, "sha256": ZERO}), "outside the bundle"),
    "schema-version-string": (lambda m: m.__setitem__("schema_version", "1"), "not a version number"),
    "schema-version-zero": (lambda m: m.__setitem__("schema_version", 0), "not a version number"),
    "schema-version-true": (lambda m: m.__setitem__("schema_version", True), "not a version number"),
    "schema-version-future": (lambda m: m.__setitem__("schema_version", 99), "newer than this evidence"),
    "no-canary": (lambda m: m.pop("canary"), "names no canary"),
    "no-bundle-id": (lambda m: m.pop("bundle_id"), "no valid bundle_id"),
    "no-window": (lambda m: m.pop("window"), "no window start/end"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_manifest_is_refused_for_what_it_says(forgery: str, bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    b = copy_bundle(bundle_for, tmp_path)
    change, said = FORGERIES[forgery]
    reseal(b, change)
    refused_everywhere(b, said, tmp_path)


def test_an_edited_manifest_without_reseal_is_named(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    b = copy_bundle(bundle_for, tmp_path)
    text = (b / "manifest.json").read_text().replace('"namespace": "shop"', '"namespace": "shoq"', 1)
    (b / "manifest.json").write_text(text)
    refused_everywhere(b, "self_sha256 mismatch", tmp_path)


@pytest.mark.parametrize("extra", ["file", "symlink", "empty-folder"])
def test_an_extra_entry_is_refused(extra: str, bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    b = copy_bundle(bundle_for, tmp_path)
    if extra == "file":
        (b / "notes.txt").write_text("added later")
        said = "notes.txt is not listed"
    elif extra == "symlink":
        (b / "link").symlink_to("/etc/passwd")
        said = "link is not a regular file"
    else:
        (b / "signatures").mkdir()
        said = "signatures/ is an empty folder"
    refused_everywhere(b, said, tmp_path)


def test_a_manifest_that_is_not_json_is_a_clear_error(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    b = copy_bundle(bundle_for, tmp_path)
    (b / "manifest.json").write_bytes(b"\x00\xff{not json")
    for cmd in ("verify", "evaluate", "show"):
        r = run(cmd, str(b))
        assert r.returncode == 1 and "manifest.json" in r.stderr + r.stdout, (cmd, r.stderr)
