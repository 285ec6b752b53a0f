"""Keep secrets out of bundles, reports and messages.

A bundle never carries a secret.  Secret objects are never read into one.  In every other
object, values under secret-looking keys are replaced by ``<redacted>``; webhook metadata
values are replaced unless their key is known to be harmless (``cmd``, ``type``, …), whose
values are scrubbed; ``managedFields`` and ``kubectl.kubernetes.io/last-applied-configuration``
(a second, unredacted copy of the spec) are dropped.  Every free-text field — event messages,
Flagger's log lines and their extra fields, error texts from servers — goes through the same
scrubber, ``scrub_text``.  Every replacement is recorded by path (``Redactions``).

``scrub_text`` runs in time linear in the text: every pattern is anchored on a literal or a
word start and its repetitions are bounded, so a 1 MiB message costs milliseconds, not
minutes.  Stored texts are capped at ``MAX_TEXT_BYTES``; the original's length and sha256
(of the scrubbed text) are kept in the manifest.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from evidence.model import Redaction

REDACTED = "<redacted>"
MAX_TEXT_BYTES = 64 * 1024
#: Redaction items listed one by one in the manifest; beyond this only their count.
MAX_LISTED = 5000

_SECRET_WORDS = {
    "token",
    "secret",
    "password",
    "passwd",
    "pass",
    "pwd",
    "passphrase",
    "authorization",
    "auth",
    "credential",
    "credentials",
    "bearer",
    "apikey",
    "cookie",
}
#: Extra words that make a ``key=value`` pair in free text a credential (not used on object fields:
#: the Canary's ``sessionAffinity`` is configuration).
_TEXT_SECRET_WORDS = {"session", "sessionid", "sid", "jsessionid", "phpsessid"}
_SECRET_PAIRS = {("api", "key"), ("access", "key"), ("private", "key"), ("signing", "key"), ("auth", "token")}
#: A last word that makes the field a reference to a secret, or a property of one, not the secret.
_REFERENCE_WORDS = {
    "name",
    "ref",
    "path",
    "file",
    "namespace",
    "url",
    "uri",
    "endpoint",
    "mode",
    "type",
    "ttl",
    "expiry",
    "kind",
    "affinity",
}
_NOT_SECRET_FIRST = {"checksum", "hash"}  # checksum/secret annotations hold hashes
#: Webhook metadata keys whose values are commands or settings, not credentials: scrubbed, kept.
SAFE_METADATA_KEYS = {"type", "cmd", "logcmdoutput", "timeout", "description", "note", "name", "cookiename"}
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")

# Every pattern starts at a literal or at a word start, and every repetition is bounded.
_URL_CREDS = re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{0,31}://)[^/@\s:\"'<>]{1,256}:[^/@\s\"'<>]{0,512}@")
_AUTH_HEADER = re.compile(
    r"(?i)(?<![A-Za-z0-9_-])((?:proxy-)?authorization[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?(?:[A-Za-z-]{1,20}[ \t]{1,4})?)[^\s\"',;]{1,8192}"
)
_BASIC = re.compile(r"(?i)(?<![A-Za-z0-9])(basic)[ \t]{1,4}([A-Za-z0-9+/]{8,4096}={0,2})(?![A-Za-z0-9+/=])")
_BEARER = re.compile(r"(?i)(?<![A-Za-z0-9])(bearer|token)[ \t]{1,4}(?=[A-Za-z0-9._~+/=-]{0,512}\d)[A-Za-z0-9._~+/=-]{16,8192}")
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:access_token|token|api_key|apikey|key|secret|client_secret|password|passwd|pwd|sig|signature|auth|session|sid)=)[^&#\s\"']{1,8192}"
)
_PAIR_KEY = re.compile(r"(?<![A-Za-z0-9_.-])([\"']?)([A-Za-z_][A-Za-z0-9_.-]{0,63})\1[ \t]{0,4}[=:][ \t]{0,4}")
_VALUE = re.compile(r"\"(?:[^\"\\\n]|\\.){0,8192}\"|'[^'\n]{0,8192}'|[^\s,;&\"'<>(){}\[\]]{1,8192}")
_FLAG = re.compile(r"(?<!\S)(--?)([A-Za-z][A-Za-z0-9-]{0,40})(=|[ \t]{1,4})")
_USER_PASS = re.compile(r"(?<!\S)(-u[ \t]{1,4}|--user[ =])([^\s:\"']{1,256}):[^\s\"']{1,1024}")
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,8192}\.[A-Za-z0-9_-]{5,8192}\.[A-Za-z0-9_-]{0,8192}")
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----")
#: Words that make a key a credential's wherever they appear in it (``PGPASSWORD``, ``dbSecretValue``).
_SECRET_INFIXES = ("password", "passwd", "passphrase", "secret", "token", "apikey", "credential")
_KNOWN_TOKENS = re.compile(
    r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])"  # AWS access key ids
    r"|(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{30,255}"  # GitHub tokens
    r"|(?<![A-Za-z0-9])glpat-[A-Za-z0-9_-]{20,64}"  # GitLab tokens
    r"|(?<![A-Za-z0-9])xox[abprse]-[A-Za-z0-9-]{10,255}"  # Slack tokens
    r"|(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{20,255}"  # API keys of the sk- family
    r"|hooks\.slack\.com/services/[A-Za-z0-9/]{8,255}"  # Slack webhook URLs carry their secret
)
_CONTROL = re.compile(r"[\x00]")
_KNOWN_PREFIX = re.compile(r"AKIA|ASIA|gh[pousr]_|glpat-|xox|sk-|hooks\.slack\.com")


def _words(key: str) -> list[str]:
    words = [w.lower() for w in _WORD.findall(key)]
    return [w[:-1] if w.endswith("s") and w[:-1] in _SECRET_WORDS else w for w in words]


@functools.lru_cache(maxsize=4096)
def secret_key(key: str, free_text: bool = False) -> bool:
    """Return whether a field name says its value is a credential (``apiToken``, ``DB_PASS``, ``x-auth``, …)."""
    words = _words(key)
    if not words or words[0] in _NOT_SECRET_FIRST:
        return False
    if words[-1] in _REFERENCE_WORDS and len(words) > 1:
        # secretName, tokenRef, passwordFile, tokenUrl: about a secret, not the secret.
        return False
    secret = _SECRET_WORDS | (_TEXT_SECRET_WORDS if free_text else set())
    if any(w in secret or any(i in w for i in _SECRET_INFIXES) for w in words) or key.lower() in ("x-api-key",):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def _scrub_pem(text: str) -> str:
    """Replace private-key blocks (one forward scan per block)."""
    out: list[str] = []
    pos = 0
    while (b := _PEM_BEGIN.search(text, pos)) is not None:
        e = _PEM_END.search(text, b.end())
        end = e.end() if e is not None else len(text)  # an unterminated key is redacted to the end
        out += [text[pos : b.start()], REDACTED]
        pos = end
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


_DROP_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def _scrub_pairs(text: str) -> str:
    """Replace the values of ``key=value`` / ``key: value`` / ``"key": "value"`` pairs whose key is a credential's."""
    out: list[str] = []
    pos = 0
    for m in _PAIR_KEY.finditer(text):
        if m.start() < pos or not secret_key(m.group(2), free_text=True):
            continue
        v = _VALUE.match(text, m.end())
        if v is None:
            continue
        value = v.group(0)
        quote = value[0] if value[:1] in ("'", '"') and len(value) > 1 else ""
        out.append(text[pos : m.end()])
        out.append(f"{quote}{REDACTED}{quote}")
        pos = v.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _scrub_flags(text: str) -> str:
    """Replace the values of ``--password X``, ``--token=X``, ``-p X`` flags."""
    out: list[str] = []
    pos = 0
    for m in _FLAG.finditer(text):
        name = m.group(2)
        if m.start() < pos or not (secret_key(name, free_text=True) or (m.group(1) == "-" and name == "p")):
            continue
        v = _VALUE.match(text, m.end())
        if v is None:
            continue
        out.append(text[pos : m.end()])
        out.append(REDACTED)
        pos = v.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def scrub_text(text: str, known: Iterable[str] = ()) -> str:
    """Remove credentials embedded in free text, in time linear in its length.

    URLs with user:password and secret query parameters, Authorization headers, Bearer tokens,
    ``password=…`` / ``DB_PASS=…`` / ``"token": "…"`` pairs, ``--password …``, ``-p …`` and
    ``-u user:pass`` flags, JWTs, private keys, well-known token formats, and any of the
    ``known`` secret values (the credentials this run was given).  Prose such as "token
    validation failed" is left alone.
    """
    if not text:
        return text
    for secret in known:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, REDACTED)
    # Each pass runs only when its literal is present: ordinary messages cost a few substring tests.
    lower = text.lower()
    if "private key" in lower:
        text = _scrub_pem(text)
    if "://" in text:
        text = _URL_CREDS.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    if "authorization" in lower:
        text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    if "bearer" in lower or "token" in lower:
        text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    if "basic" in lower:
        text = _BASIC.sub(_basic, text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    if "-u" in text:
        text = _USER_PASS.sub(lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}", text)
    if "-" in text:
        text = _scrub_flags(text)
    if "=" in text or ":" in text:
        text = _scrub_pairs(text)
    if _KNOWN_PREFIX.search(text):
        text = _KNOWN_TOKENS.sub(REDACTED, text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    return text


def _basic(m: re.Match[str]) -> str:
    """Redact ``Basic <base64 of user:password>``; leave prose such as "basic authentication"."""
    import base64
    import binascii

    try:
        decoded = base64.b64decode(m.group(2) + "=" * (-len(m.group(2)) % 4), validate=True)
    except (binascii.Error, ValueError):
        return m.group(0)
    return f"{m.group(1)} {REDACTED}" if b":" in decoded else m.group(0)


def cap_text(text: str, limit: int = MAX_TEXT_BYTES) -> tuple[str, dict[str, Any] | None]:
    """Return ``text`` cut to ``limit`` UTF-8 bytes with a marker, and the original's size and sha256 when cut."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text, None
    info = {"original_bytes": len(data), "original_sha256": hashlib.sha256(data).hexdigest()}
    head = data[:limit].decode("utf-8", "ignore")
    return f"{head}… [truncated: {len(data)} bytes, sha256 {info['original_sha256']}]", info


def clean_text(text: str, known: Iterable[str] = ()) -> tuple[str, dict[str, Any] | None]:
    """Scrub then cap a stored free-text field; return it and the truncation info, if any."""
    return cap_text(_CONTROL.sub("", scrub_text(text, known)))


def _entropy(s: str) -> float:
    counts = Counter(s)
    return -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values())


def looks_like_token(value: str) -> bool:
    """Guess whether a string is a credential: long, no spaces, mixed classes, high entropy."""
    v = value.strip()
    if len(v) < 20 or len(v) > 8192 or any(c.isspace() for c in v) or "://" in v:
        return False
    classes = sum([any(c.islower() for c in v), any(c.isupper() for c in v), any(c.isdigit() for c in v)])
    return classes >= 2 and _entropy(v) >= 3.5


@dataclass
class Redactions:
    """What was replaced, scrubbed or truncated, by path: the manifest's redaction report."""

    items: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0

    def add(self, where: str, path: str, action: str, **extra: Any) -> None:
        self.total += 1
        if len(self.items) < MAX_LISTED:
            self.items.append({"where": where, "path": path, "action": action, **extra})

    def text(
        self, where: str, path: str, value: str | None, known: Iterable[str] = (), scrubbed: str | None = None
    ) -> str | None:
        """Return a free-text field scrubbed (unless ``scrubbed`` is given) and capped, recording what changed."""
        if value is None:
            return None
        clean = scrub_text(value, known) if scrubbed is None else scrubbed
        if clean != value:
            self.add(where, path, "scrubbed")
        clean = _CONTROL.sub("", clean)
        capped, info = cap_text(clean)
        if info is not None:
            self.add(where, path, "truncated", **info)
        return capped

    def record(self) -> Redaction:
        """Return the manifest's record of what was redacted."""
        by_action = Counter(str(i["action"]) for i in self.items)
        return Redaction(self.total, len(self.items), dict(sorted(by_action.items())), tuple(self.items))


def redact_log_line(line: str, known: Iterable[str] = ()) -> str:
    """Return a zap JSON log line with secret fields redacted and every string scrubbed (re-serialised)."""
    try:
        rec = json.loads(line)
    except ValueError:
        return scrub_text(line, known)
    if not isinstance(rec, dict):
        return scrub_text(line, known)
    clean = _walk(rec, "$", [], in_metadata_map=False, known=tuple(known))
    return json.dumps(clean, separators=(",", ":"), ensure_ascii=False)


def redact_object(obj: dict[str, Any], known: Iterable[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """Return a redacted deep copy of a Kubernetes object and the JSON paths replaced or dropped."""
    paths: list[str] = []
    meta = obj.get("metadata")
    out = _walk(obj, "$", paths, in_metadata_map=False, known=tuple(known))
    if isinstance(meta, dict):
        new_meta = out["metadata"]
        if "managedFields" in new_meta:
            del new_meta["managedFields"]
        ann = new_meta.get("annotations")
        if isinstance(ann, dict):
            for key in _DROP_ANNOTATIONS:
                if key in ann:
                    del ann[key]
                    paths.append(f"$.metadata.annotations[{key!r}]")
    spec = out.get("spec")
    if isinstance(spec, dict):
        for kind, field_name in _SECRET_FIELDS:
            if out.get("kind") == kind and isinstance(spec.get(field_name), str) and spec[field_name]:
                spec[field_name] = REDACTED
                paths.append(f"$.spec.{field_name}")
    return out, paths


#: Fields that hold a credential by their meaning, whatever they are called.
_SECRET_FIELDS = {("AlertProvider", "address"), ("AlertProvider", "proxy")}
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _walk(node: Any, path: str, paths: list[str], in_metadata_map: bool, known: tuple[str, ...]) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            key = str(k)
            p = f"{path}.{key}" if _PLAIN_KEY.match(key) else f"{path}[{key!r}]"
            empty = v in (None, "") or isinstance(v, bool)
            if not empty and (secret_key(key) or (in_metadata_map and key.lower() not in SAFE_METADATA_KEYS)):
                # Any value under a secret's name goes: strings, numbers, lists, nested maps; and
                # webhook metadata is a credential unless its key is known to be harmless.
                out[k] = REDACTED
                paths.append(p)
                continue
            if isinstance(v, str) and v and in_metadata_map and looks_like_token(v):
                out[k] = REDACTED
                paths.append(p)
                continue
            if isinstance(v, dict) and key == "headers":
                # MetricTemplate provider headers, webhook headers: values are credentials more often than not.
                out[k] = {hk: ([REDACTED] if isinstance(hv, list) else REDACTED) for hk, hv in v.items()}
                paths.extend(f"{p}[{str(hk)!r}]" for hk in v)
                continue
            out[k] = _walk(v, p, paths, in_metadata_map=(key == "metadata" and path.endswith("]")), known=known)
        return out
    if isinstance(node, list):
        return [_walk(v, f"{path}[{i}]", paths, in_metadata_map, known) for i, v in enumerate(node)]
    if isinstance(node, str):
        clean = scrub_text(node, known)
        if clean != node:
            paths.append(path)
        return clean
    return node


def workload_identity(deploy: dict[str, Any]) -> dict[str, Any]:
    """Reduce a Deployment to its identity: name, images, pod-template hash, replicas — nothing else."""
    meta = deploy.get("metadata") or {}
    spec = deploy.get("spec") or {}
    tmpl = spec.get("template") or {}
    tmeta = tmpl.get("metadata") or {}
    containers = (tmpl.get("spec") or {}).get("containers") or []
    status = deploy.get("status") or {}
    return {
        "apiVersion": deploy.get("apiVersion", "apps/v1"),
        "kind": deploy.get("kind", "Deployment"),
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "generation": meta.get("generation"),
            "annotations": {k: v for k, v in (meta.get("annotations") or {}).items() if k == "deployment.kubernetes.io/revision"},
        },
        "spec": {
            "replicas": spec.get("replicas"),
            "template": {
                "metadata": {"labels": {k: v for k, v in (tmeta.get("labels") or {}).items() if k == "pod-template-hash"}},
                "spec": {
                    "containers": [{"name": c.get("name"), "image": c.get("image")} for c in containers if isinstance(c, dict)]
                },
            },
        },
        "status": {
            k: status.get(k) for k in ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas") if k in status
        },
    }
