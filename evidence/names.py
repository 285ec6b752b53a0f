"""How a person names a canary on the command line, the way kubectl and Flagger write it.

``parse_canary(text, namespace, default_namespace)`` is the one reader of a user's canary name::

    podinfo -n shop          the name; the namespace from -n
    shop/podinfo             NAMESPACE/NAME (evidence's own form)
    canary/podinfo           TYPE/NAME like kubectl (also canaries/, canary.flagger.app/, canaries.flagger.app/)
    podinfo.shop             NAME.NAMESPACE, how Flagger names a canary in its log and alerts

Without a namespace in the text or -n, ``default_namespace`` applies (the kubeconfig context's
namespace, else ``default``).  Namespaces are DNS labels and never hold a dot, so ``a.b``
without -n is read as NAME ``a`` in namespace ``b``; a canary whose name holds a dot is named
with -n (``-n shop my.app``).  A namespace given twice must agree.
"""

from __future__ import annotations

import re

from evidence.errors import UsageError
from evidence.model import CanaryRef

DEFAULT_NAMESPACE = "default"
#: kubectl's ways of writing the Canary type in TYPE/NAME.
CANARY_TYPES = ("canary", "canaries", "canary.flagger.app", "canaries.flagger.app")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label: a namespace
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")  # RFC 1123 subdomain: an object name
_EXAMPLE = "write NAME -n NAMESPACE, NAMESPACE/NAME, canary/NAME or NAME.NAMESPACE, e.g. podinfo -n shop"


def check_namespace(ns: str, what: str = "namespace") -> str:
    """Return ``ns`` if it is a Kubernetes namespace name; raise UsageError naming the fix."""
    if len(ns) > 63 or not _LABEL.fullmatch(ns):
        raise UsageError(f"{what} {ns!r} is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63)")
    return ns


def parse_canary(text: str, namespace: str | None = None, default_namespace: str | None = None) -> CanaryRef:
    """Return the canary ``text`` names, ``namespace`` being -n's value; raise UsageError naming the fix."""
    raw = text
    text = text.strip()
    if not text or any(c.isspace() or not c.isprintable() for c in text):
        raise UsageError(f"canary {raw!r}: {_EXAMPLE}")
    if namespace is not None:
        check_namespace(namespace, "-n/--namespace")
    parts = text.split("/")
    if len(parts) > 2 or not all(parts):
        raise UsageError(f"canary {raw!r}: {_EXAMPLE}")
    in_text: str | None = None
    if len(parts) == 2:
        head, name = parts
        if head.lower() not in CANARY_TYPES:
            in_text = check_namespace(head)
            _check_name(name, raw)
            return _agree(in_text, namespace, name, raw)
    else:
        name = parts[0]
    if namespace is None and "." in name:
        name, _, in_text = name.rpartition(".")
        check_namespace(in_text, f"canary {raw!r}: namespace")
    elif namespace is not None and name.endswith(f".{namespace}"):
        name = name[: -len(namespace) - 1]  # podinfo.shop -n shop: Flagger's form, consistent with -n
    _check_name(name, raw)
    if in_text is not None:
        return CanaryRef(in_text, name)
    return CanaryRef(namespace or check_namespace(default_namespace or DEFAULT_NAMESPACE), name)


def _check_name(name: str, raw: str) -> None:
    if len(name) > 253 or not _SUBDOMAIN.fullmatch(name):
        raise UsageError(
            f"canary {raw!r}: name {name!r} is not a Kubernetes name (lower-case letters, digits, '-' and '.'); {_EXAMPLE}"
        )


def _agree(in_text: str, namespace: str | None, name: str, raw: str) -> CanaryRef:
    if namespace is not None and namespace != in_text:
        raise UsageError(f"canary {raw!r} is in namespace {in_text!r} but -n says {namespace!r}: drop one of them")
    return CanaryRef(in_text, name)
