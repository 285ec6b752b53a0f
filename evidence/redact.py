"""Keep secrets out of bundles.

A bundle never carries a secret: Secret objects are never read into one; in every other
object, values under secret-looking keys, webhook metadata values that look like tokens,
``user:password@`` in URLs, ``Bearer …`` and JWTs are replaced by ``<redacted>``, and
``managedFields`` and ``kubectl.kubernetes.io/last-applied-configuration`` (a second,
unredacted copy of the spec) are dropped.  Every replacement is recorded by JSON path.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from typing import Any

REDACTED = "<redacted>"
_SECRET_WORDS = {
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "authorization",
    "credential",
    "credentials",
    "bearer",
    "apikey",
}
_SECRET_PAIRS = {("api", "key"), ("access", "key"), ("private", "key"), ("signing", "key"), ("auth", "token")}
#: A last word that makes the field a reference to a secret, or a property of one, not the secret.
_REFERENCE_WORDS = {"name", "ref", "path", "file", "namespace", "url", "uri", "endpoint", "mode", "type", "ttl", "expiry", "kind"}
_NOT_SECRET_FIRST = {"checksum", "hash"}  # checksum/secret annotations hold hashes
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_URL_CREDS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<cred>[^/@\s:]+:[^/@\s]*)@")
_AUTH_HEADER = re.compile(r"(?i)\b(authorization\s*[:=]\s*(?:[A-Za-z]+\s+)?)[^\s\"',;]+")
_BEARER = re.compile(r"(?i)\b(bearer)\s+(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{16,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_QUERY_SECRET = re.compile(
    r"(?i)([?&](?:access_token|token|api_key|apikey|key|secret|client_secret|password|passwd|sig|signature)=)[^&#\s\"']+"
)
_PAIR_SECRET = re.compile(r"(?i)\b(\w*(?:password|passwd|pwd|token|secret|api[_-]?key|apikey)\s*[=:]\s*)[^\s,;&\"']+")
_FLAG_SECRET = re.compile(r"(?i)(--(?:password|passwd|token|api-key|apikey|secret|client-secret)[ =])[^\s\"']+")
_USER_PASS = re.compile(r"(?<!\S)(-u\s+|--user[ =])([^\s:\"']+):[^\s\"']+")
#: Fields that hold a credential by their meaning, whatever they are called.
_SECRET_FIELDS = {("AlertProvider", "address"), ("AlertProvider", "proxy")}


def secret_key(key: str) -> bool:
    """Return whether a field name says its value is a credential (``apiToken``, ``client_secret``, …)."""
    words = [w.lower() for w in _WORD.findall(key)]
    if not words or words[0] in _NOT_SECRET_FIRST:
        return False
    if words[-1] in _REFERENCE_WORDS and len(words) > 1:
        # secretName, tokenRef, passwordFile, tokenUrl: about a secret, not the secret.
        return False
    singular = [w[:-1] if w.endswith("s") and w[:-1] in _SECRET_WORDS else w for w in words]
    if any(w in _SECRET_WORDS for w in singular) or key.lower() in ("auth", "x-api-key"):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(singular))


_DROP_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def scrub_text(text: str) -> str:
    """Remove credentials embedded in free text.

    URLs with user:password and secret query parameters, Authorization headers, Bearer tokens,
    ``password=…`` / ``API_TOKEN=…`` pairs, ``--password …`` and ``-u user:pass`` flags, JWTs.
    Prose such as "token validation failed" is left alone.
    """
    text = _URL_CREDS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _PAIR_SECRET.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _FLAG_SECRET.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _USER_PASS.sub(lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}", text)
    return _JWT.sub(REDACTED, text)


def _entropy(s: str) -> float:
    counts = Counter(s)
    return -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values())


def looks_like_token(value: str) -> bool:
    """Guess whether a string is a credential: long, no spaces, mixed classes, high entropy."""
    v = value.strip()
    if len(v) < 20 or any(c.isspace() for c in v) or "://" in v:
        return False
    classes = sum([any(c.islower() for c in v), any(c.isupper() for c in v), any(c.isdigit() for c in v)])
    return classes >= 2 and _entropy(v) >= 3.5


def redact_object(obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Return a redacted deep copy of a Kubernetes object and the JSON paths replaced or dropped."""
    paths: list[str] = []
    meta = obj.get("metadata")
    out = _walk(obj, "$", paths, in_metadata_map=False)
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


def _walk(node: Any, path: str, paths: list[str], in_metadata_map: bool) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            p = f"{path}.{k}" if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(k)) else f"{path}[{str(k)!r}]"
            if secret_key(str(k)) and v not in (None, "") and not isinstance(v, bool):
                # Any value under a secret's name goes: strings, numbers, lists, nested maps.
                out[k] = REDACTED
                paths.append(p)
                continue
            if isinstance(v, str) and v and in_metadata_map and looks_like_token(v):
                out[k] = REDACTED
                paths.append(p)
                continue
            if isinstance(v, dict) and str(k) == "headers":
                # MetricTemplate provider headers, webhook headers: values are credentials more often than not.
                out[k] = {hk: ([REDACTED] if isinstance(hv, list) else REDACTED) for hk, hv in v.items()}
                paths.extend(f"{p}[{str(hk)!r}]" for hk in v)
                continue
            out[k] = _walk(v, p, paths, in_metadata_map=(str(k) == "metadata" and path.endswith("]")))
        return out
    if isinstance(node, list):
        return [_walk(v, f"{path}[{i}]", paths, in_metadata_map) for i, v in enumerate(node)]
    if isinstance(node, str):
        clean = scrub_text(node)
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
