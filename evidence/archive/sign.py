"""Keys and signatures: an in-toto Statement v1 in a DSSE v1 envelope, also as a Sigstore bundle v0.3.

``generate_keypair`` writes ``PREFIX.key`` (PKCS#8 PEM, ECDSA P-256, mode 0600) and
``PREFIX.pub`` (SubjectPublicKeyInfo PEM): P-256 with SHA-256 is what cosign's own keys are.
``sign_bundle`` writes two files into the bundle folder, the only entries ``verify`` accepts
besides the manifest's:

* ``attestation.intoto.jsonl``: one DSSE envelope a line (media type ``application/vnd.in-toto.bundle``);
* ``attestation.sigstore.json``: the same envelope as a Sigstore bundle v0.3 whose
  verification material is a public-key hint (the key id), with no log or timestamp entries.

The Statement's subjects are every bundle file by relative path and sha256, the manifest
included; its predicate (``PREDICATE_TYPE``) is the rollout's decision, read from the bundle's
summary.  The signature covers DSSE's pre-authentication encoding (``pae``), never raw JSON.
Checking a signature against a key and the subjects against the files is ``check_attestation``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.bundle import ATTESTATION_FILES
from evidence.errors import SignError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey, EllipticCurvePublicKey

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://evidence.dev/canary-decision/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
SIGSTORE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
INTOTO_FILE, SIGSTORE_FILE = ATTESTATION_FILES


def pae(payload_type: str, payload: bytes) -> bytes:
    """Return DSSE v1's pre-authentication encoding of a payload."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def generate_keypair(prefix: str | Path) -> tuple[Path, Path]:
    """Write ``PREFIX.key`` (0600) and ``PREFIX.pub``; refuse to overwrite either."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key_path, pub_path = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    for p in (key_path, pub_path):
        if p.exists():
            raise SignError(f"{p} already exists; choose another PREFIX or move the old key away (keys are never overwritten)")
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private)
        pub_path.write_bytes(public)
    except OSError as exc:
        raise SignError(
            f"cannot write the key pair at {prefix}: {exc.strerror or exc}; check the folder exists and is writable"
        ) from None
    return key_path, pub_path


def load_private_key(path: str | Path) -> EllipticCurvePrivateKey:
    """Read a PKCS#8 PEM ECDSA P-256 private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = _read_key_file(path, "private")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SignError(
            f"--key {path}: not an unencrypted PEM private key ({exc}); pass the PREFIX.key `evidence keygen` wrote"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SignError(f"--key {path}: not an ECDSA P-256 key; create one with `evidence keygen PREFIX`")
    return key


def load_public_key(path: str | Path) -> EllipticCurvePublicKey:
    """Read a PEM SubjectPublicKeyInfo ECDSA P-256 public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = _read_key_file(path, "public")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise SignError(f"--key {path}: not a PEM public key ({exc}); pass the PREFIX.pub `evidence keygen` wrote") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SignError(f"--key {path}: not an ECDSA P-256 public key; pass the PREFIX.pub `evidence keygen` wrote")
    return key


def _read_key_file(path: str | Path, kind: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SignError(f"--key {path}: cannot read the {kind} key ({exc.strerror or exc}); check the path") from None


def key_id(public: EllipticCurvePublicKey) -> str:
    """Return the key's id: the sha256 (hex) of its DER SubjectPublicKeyInfo."""
    from cryptography.hazmat.primitives import serialization

    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def subject_files(bundle_dir: Path) -> list[str]:
    """Return the relative paths a Statement names: every regular file but the attestations."""
    out = []
    for f in sorted(bundle_dir.rglob("*")):
        rel = f.relative_to(bundle_dir).as_posix()
        if f.is_file() and not f.is_symlink() and rel not in (INTOTO_FILE, SIGSTORE_FILE):
            out.append(rel)
    return out


def build_statement(bundle_dir: Path, predicate: Mapping[str, Any]) -> dict[str, Any]:
    """Return the in-toto Statement v1 over the bundle's files."""
    from evidence.bundle import sha256_file

    subjects = [{"name": rel, "digest": {"sha256": sha256_file(bundle_dir / rel)}} for rel in subject_files(bundle_dir)]
    return {"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": PREDICATE_TYPE, "predicate": dict(predicate)}


def sign_bundle(bundle_dir: str | Path, key_path: str | Path, *, force: bool = False) -> list[Path]:
    """Verify a bundle, then write its two attestation files; return their paths."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from evidence.archive.summary import decision_predicate
    from evidence.bundle import read_bundle, verify_bundle

    key = load_private_key(key_path)
    b = read_bundle(bundle_dir)
    existing = [b.path / n for n in (INTOTO_FILE, SIGSTORE_FILE) if (b.path / n).exists()]
    if existing and not force:
        raise SignError(f"{b.path} is already signed ({existing[0].name}); pass --force to replace the attestation")
    for p in existing:
        p.unlink()
    verify_bundle(b.path)
    statement = build_statement(b.path, decision_predicate(b))
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    sig = key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    kid = key_id(key.public_key())
    envelope = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": kid, "sig": base64.b64encode(sig).decode()}],
    }
    sigstore = {
        "mediaType": SIGSTORE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": kid},
            "tlogEntries": [],
            "timestampVerificationData": {"rfc3161Timestamps": []},
        },
        "dsseEnvelope": envelope,
    }
    written = []
    for name, text in (
        (INTOTO_FILE, json.dumps(envelope, separators=(",", ":")) + "\n"),
        (SIGSTORE_FILE, json.dumps(sigstore, indent=2) + "\n"),
    ):
        tmp = b.path / f".{name}.partial"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, b.path / name)
        written.append(b.path / name)
    return written


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope as read from a file."""

    source: str
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, signature)


def _b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not a base64 string")
    s = text.strip().replace("-", "+").replace("_", "/")  # DSSE allows URL-safe base64 too
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def parse_envelope(obj: Any, source: str) -> Envelope:
    """Return an envelope from its JSON; raise ValueError naming what is malformed."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{source}: not a JSON object")
    sigs = obj.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise ValueError(f"{source}: no signatures")
    pairs = []
    for s in sigs:
        if not isinstance(s, Mapping):
            raise ValueError(f"{source}: a signature is not an object")
        pairs.append((str(s.get("keyid") or ""), _b64(s.get("sig"))))
    return Envelope(source, str(obj.get("payloadType")), _b64(obj.get("payload")), tuple(pairs))


def read_envelopes(bundle_dir: Path) -> list[Envelope]:
    """Return the DSSE envelopes of a bundle's two attestation files; raise ValueError if malformed."""
    out = []
    intoto = bundle_dir / INTOTO_FILE
    if intoto.is_file():
        for n, line in enumerate(intoto.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                out.append(parse_envelope(json.loads(line), f"{INTOTO_FILE} line {n}"))
    sigstore = bundle_dir / SIGSTORE_FILE
    if sigstore.is_file():
        doc = json.loads(sigstore.read_text(encoding="utf-8"))
        if not isinstance(doc, Mapping) or doc.get("mediaType") != SIGSTORE_MEDIA_TYPE:
            raise ValueError(f"{SIGSTORE_FILE}: not a Sigstore bundle v0.3 (mediaType)")
        out.append(parse_envelope(doc.get("dsseEnvelope"), SIGSTORE_FILE))
    return out


def signature_valid(envelope: Envelope, public: EllipticCurvePublicKey) -> bool:
    """Return whether any of the envelope's signatures is the key's over its PAE."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    message = pae(envelope.payload_type, envelope.payload)
    for _, sig in envelope.signatures:
        try:
            public.verify(sig, message, ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            continue
    return False


def check_attestation(bundle_dir: Path, public: EllipticCurvePublicKey, digests: Mapping[str, str] | None = None) -> list[str]:
    """Return every reason the bundle's attestation does not prove its files under this key (empty: it does).

    ``digests``: sha256 of files already hashed by the caller (relative path -> hex).
    """
    from evidence.bundle import sha256_file

    try:
        envelopes = read_envelopes(bundle_dir)
    except (OSError, ValueError) as exc:
        return [f"the attestation is malformed: {exc}"]
    if not envelopes:
        return ["unsigned: no attestation.intoto.jsonl or attestation.sigstore.json"]
    problems: list[str] = []
    for env in envelopes:
        if not signature_valid(env, public):
            problems.append(f"{env.source}: the signature is not valid for this key (signed by another key, or altered)")
            continue
        try:
            st = json.loads(env.payload)
        except ValueError:
            problems.append(f"{env.source}: the signed payload is not JSON")
            continue
        if not isinstance(st, Mapping) or st.get("_type") != STATEMENT_TYPE or st.get("predicateType") != PREDICATE_TYPE:
            problems.append(f"{env.source}: the payload is not an in-toto Statement v1 of {PREDICATE_TYPE}")
            continue
        subjects = {
            str(s.get("name")): (s.get("digest") or {}).get("sha256") for s in st.get("subject") or [] if isinstance(s, Mapping)
        }
        files = subject_files(bundle_dir)
        for rel in files:
            if rel not in subjects:
                problems.append(f"{env.source}: {rel} is not a subject of the signed statement")
            elif ((digests or {}).get(rel) or sha256_file(bundle_dir / rel)) != subjects[rel]:
                problems.append(
                    f"{env.source}: {rel} differs from the signed digest (the attestation is of another bundle, or the file changed)"
                )
        problems.extend(
            f"{env.source}: signed subject {rel} is missing from the bundle" for rel in sorted(set(subjects) - set(files))
        )
    return problems
