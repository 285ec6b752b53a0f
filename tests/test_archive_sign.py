"""keygen, sign and verify: signatures that prove, every problem listed, and another implementation agrees."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from evidence.archive.sign import pae
from evidence.bundle import MANIFEST, BundleWriter, read_bundle
from fixtures.archive import reidentify

from .archive_support import ROOT, run, validated

NODE = ROOT / "tests" / "node"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    for prefix in ("auditor", "other"):
        res = run("keygen", str(d / prefix))
        assert res.returncode == 0, res.stderr
    return {"key": d / "auditor.key", "pub": d / "auditor.pub", "other_key": d / "other.key", "other_pub": d / "other.pub"}


@pytest.fixture
def signed(bundle_for: Callable[[str], Path], keys: dict[str, Path], tmp_path: Path) -> Path:
    copy = tmp_path / bundle_for("rollback-error-rate").name
    shutil.copytree(bundle_for("rollback-error-rate"), copy)
    res = run("sign", str(copy), "--key", str(keys["key"]))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [str(copy / "attestation.intoto.jsonl"), str(copy / "attestation.sigstore.json")]
    return copy


def test_pae_matches_the_dsse_test_vector() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_keygen_writes_a_private_p256_key_and_refuses_to_overwrite(keys: dict[str, Path]) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    assert stat.S_IMODE(keys["key"].stat().st_mode) == 0o600
    assert keys["key"].read_text().startswith("-----BEGIN PRIVATE KEY-----")
    pub = serialization.load_pem_public_key(keys["pub"].read_bytes())
    assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256r1"
    again = run("keygen", str(keys["key"].with_suffix("")))
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr


def test_the_statement_names_every_file_and_the_decision(signed: Path) -> None:
    import base64

    env = json.loads((signed / "attestation.intoto.jsonl").read_text().splitlines()[0])
    assert env["payloadType"] == "application/vnd.in-toto+json"
    st = json.loads(base64.b64decode(env["payload"]))
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"].endswith("/canary-decision/v1")
    files = sorted(p.name for p in signed.iterdir() if not p.name.startswith("attestation."))
    assert sorted(s["name"] for s in st["subject"]) == files
    for s in st["subject"]:
        assert s["digest"]["sha256"] == hashlib.sha256((signed / s["name"]).read_bytes()).hexdigest()
    pred = st["predicate"]
    m = read_bundle(signed).manifest
    assert pred["bundleId"] == m["bundle_id"] and pred["collectedAt"] == m["collected_at"]
    assert (pred["outcome"], pred["verdict"]) == ("rolled_back", "abort")
    assert pred["canary"]["namespace"] == m["canary"]["namespace"] and len(pred["policyDigest"]["sha256"]) == 64
    sig = json.loads((signed / "attestation.sigstore.json").read_text())
    assert sig["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert sig["dsseEnvelope"] == env


def test_verify_with_the_key_passes_and_says_so(signed: Path, keys: dict[str, Path]) -> None:
    res = run("verify", str(signed), "--key", str(keys["pub"]), "-o", "json")
    doc = validated(res.stdout, "Verification")
    assert res.returncode == 0 and doc["ok"] and doc["signature"] == "valid" and doc["problems"] == []
    plain = run("verify", str(signed))
    assert plain.returncode == 0 and "signed, not checked (pass --key)" in plain.stdout


def test_unsigned_bundle_says_unsigned_and_fails_with_a_key(bundle_for: Callable[[str], Path], keys: dict[str, Path]) -> None:
    plain = run("verify", str(bundle_for("healthy-promotion")))
    assert plain.returncode == 0 and "signature: unsigned" in plain.stdout
    keyed = run("verify", str(bundle_for("healthy-promotion")), "--key", str(keys["pub"]))
    assert keyed.returncode == 1 and "unsigned" in keyed.stderr


def test_another_key_fails(signed: Path, keys: dict[str, Path]) -> None:
    res = run("verify", str(signed), "--key", str(keys["other_pub"]), "-o", "json")
    doc = validated(res.stdout, "Verification")
    assert res.returncode == 1 and doc["signature"] == "invalid"
    assert any("not valid for this key" in p for p in doc["problems"])


def test_a_rewritten_table_with_a_recomputed_manifest_passes_integrity_but_not_the_signature(
    signed: Path, keys: dict[str, Path]
) -> None:
    import pyarrow.parquet as pq

    # The attack of the issue: drop one event, re-hash, re-commit the manifest the tool's own way.
    manifest = json.loads((signed / MANIFEST).read_text())
    w = BundleWriter(signed.parent, signed.name + "-forged")
    for name in manifest["files"]:
        shutil.copyfile(signed / name, w.tmp / name)
        w.files[name] = {"rows": manifest["files"][name]["rows"]}
    events = pq.read_table(signed / "events.parquet")
    pq.write_table(events.slice(1), w.tmp / "events.parquet")
    w.files["events.parquet"] = {"rows": events.num_rows - 1}
    for name in ("attestation.intoto.jsonl", "attestation.sigstore.json"):
        shutil.copyfile(signed / name, w.tmp / name)
    forged = w.commit({k: v for k, v in manifest.items() if k not in ("files", "self_sha256")})
    # SHA256SUMS now disagrees too, but verify without a key only trusts the manifest:
    res = run("verify", str(forged), "--key", str(keys["pub"]), "-o", "json")
    doc = validated(res.stdout, "Verification")
    assert res.returncode == 1 and doc["signature"] == "invalid"
    assert any("events.parquet differs from the signed digest" in p for p in doc["problems"])
    assert any("manifest.json differs from the signed digest" in p for p in doc["problems"])


def test_an_attestation_copied_onto_another_consistent_bundle_fails(signed: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    other = reidentify(signed, tmp_path / "other", "eu-1")
    assert run("verify", str(other)).returncode == 0  # self-consistent
    for name in ("attestation.intoto.jsonl", "attestation.sigstore.json"):
        shutil.copyfile(signed / name, other / name)
    res = run("verify", str(other), "--key", str(keys["pub"]))
    assert res.returncode == 1
    assert (
        "manifest.json differs from the signed digest" in res.stderr
        and "summary.json differs from the signed digest" in res.stderr
    )


def test_json_lists_every_problem_and_expect_sha256_pins_the_manifest(signed: Path) -> None:
    good = hashlib.sha256((signed / MANIFEST).read_bytes()).hexdigest()
    assert run("verify", str(signed), "--expect-sha256", good).returncode == 0
    pinned = run("verify", str(signed), "--expect-sha256", "0" * 64)
    assert pinned.returncode == 1 and f"not the expected {'0' * 64}" in pinned.stderr
    for name in ("samples.parquet", "logs.parquet"):
        data = bytearray((signed / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (signed / name).write_bytes(bytes(data))
    (signed / "checks.parquet").write_bytes((signed / "checks.parquet").read_bytes()[:100])  # truncated
    (signed / "notes.txt").write_text("added")
    doc = validated(run("verify", str(signed), "-o", "json").stdout, "Verification")
    text = "\n".join(doc["problems"])
    assert not doc["ok"]
    for expected in ("samples.parquet differs", "logs.parquet differs", "checks.parquet differs", "notes.txt is not listed"):
        assert expected in text


@pytest.mark.parametrize("case", ["missing", "garbage", "public-as-private", "rsa"])
def test_bad_keys_are_clear_errors(signed: Path, keys: dict[str, Path], tmp_path: Path, case: str) -> None:
    key = tmp_path / "k.pem"
    if case == "garbage":
        key.write_text("not a key")
    elif case == "public-as-private":
        key = keys["pub"]
    elif case == "rsa":
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key.write_bytes(
            k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    res = run("sign", str(signed), "--key", str(key), "--force")
    assert res.returncode == 1 and "--key" in res.stderr and "Traceback" not in res.stderr
    res = run("verify", str(signed), "--key", str(keys["key"] if case == "public-as-private" else key))
    assert res.returncode == 1 and "--key" in res.stderr and "Traceback" not in res.stderr


def test_signing_twice_needs_force_and_keys_never_enter_the_bundle(signed: Path, keys: dict[str, Path]) -> None:
    again = run("sign", str(signed), "--key", str(keys["key"]))
    assert again.returncode == 1 and "--force" in again.stderr
    assert run("sign", str(signed), "--key", str(keys["key"]), "--force").returncode == 0
    secret = keys["key"].read_bytes()
    assert all(secret not in p.read_bytes() for p in signed.iterdir())


def test_sha256sum_checks_the_bundle_with_its_own_checksum_file(signed: Path) -> None:
    ok = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=signed, capture_output=True, text=True)
    assert ok.returncode == 0 and "samples.parquet: OK" in ok.stdout
    manifest = json.loads((signed / MANIFEST).read_text())
    assert "SHA256SUMS" in manifest["files"]
    data = bytearray((signed / "samples.parquet").read_bytes())
    data[10] ^= 0x01
    (signed / "samples.parquet").write_bytes(bytes(data))
    bad = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=signed, capture_output=True, text=True)
    assert bad.returncode == 1 and "samples.parquet: FAILED" in bad.stdout


def test_sigstore_verify_accepts_the_bundle_from_the_public_key_and_rejects_a_tampered_copy(
    signed: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    import base64

    if not (NODE / "node_modules" / "@sigstore" / "verify").is_dir():
        pytest.fail("@sigstore/verify is not installed: run `make setup` (scripts/setup.sh installs it into tests/node)")
    bundle = signed / "attestation.sigstore.json"

    def node(path: Path, pub: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["node", str(NODE / "verify.mjs"), str(path), str(pub)], capture_output=True, text=True, timeout=60)

    ok = node(bundle, keys["pub"])
    assert ok.returncode == 0 and ok.stdout.strip() == "verified", ok.stdout + ok.stderr
    doc = json.loads(bundle.read_text())
    payload = base64.b64decode(doc["dsseEnvelope"]["payload"]).replace(b'"verdict":"abort"', b'"verdict":"pass"')
    assert b'"verdict":"pass"' in payload
    doc["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    tampered = tmp_path / "tampered.sigstore.json"
    tampered.write_text(json.dumps(doc))
    bad = node(tampered, keys["pub"])
    assert bad.returncode == 1 and "SIGNATURE_ERROR" in bad.stdout
    wrong = node(bundle, keys["other_pub"])
    assert wrong.returncode == 1 and "SIGNATURE_ERROR" in wrong.stdout
