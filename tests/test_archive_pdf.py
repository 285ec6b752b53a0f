"""The archival PDF: PDF/A-3b with the manifest and the attestation embedded."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from .archive_support import run


def test_the_pdf_is_pdf_a_3b_and_carries_the_manifest_and_the_attestation(
    bundle_for: Callable[[str], Path], tmp_path: Path
) -> None:
    from pypdf import PdfReader

    bundle = tmp_path / "b"
    shutil.copytree(bundle_for("rollback-latency"), bundle)
    assert run("keygen", str(tmp_path / "k")).returncode == 0
    assert run("sign", str(bundle), "--key", str(tmp_path / "k.key")).returncode == 0
    res = run("render", str(bundle), "--format", "pdf", "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    reader = PdfReader(res.stdout.strip())
    files = reader.attachments
    assert sorted(files) == ["attestation.intoto.jsonl", "attestation.sigstore.json", "manifest.json"]
    assert files["manifest.json"][0] == (bundle / "manifest.json").read_bytes()
    assert files["attestation.intoto.jsonl"][0] == (bundle / "attestation.intoto.jsonl").read_bytes()
    xmp = reader.xmp_metadata
    assert xmp is not None
    raw = xmp.stream.get_data().decode("utf-8", "replace")
    assert 'pdfaid:part="3"' in raw and 'pdfaid:conformance="B"' in raw
