"""A folder of kubectl output as a cluster source (``--from-dump DIR``).

Every file is recognised by its content, never by its name or extension (``get-canary.out``,
``events.txt`` and ``flagger.log.1`` are all fine): JSON or YAML (multi-document too) holding
Kubernetes objects or ``List``s; else lines of Flagger's zap JSON log or of event-webhook
payloads (one JSON object a line), also as ``kubectl logs --timestamps`` and/or ``--prefix``
write them, and rotated or concatenated logs of several pods (a line seen twice is kept once).
Files that are unreadable or none of these are named in a warning and skipped; Secrets are
never read into memory beyond recognising their kind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evidence.errors import DumpError, NotFoundError
from evidence.model import CanaryRef
from evidence.sources import ClusterData

MAX_FILE_BYTES = 512 * 1024 * 1024
# `kubectl logs --prefix` writes `[pod/NAME/CONTAINER] `, `--timestamps` an RFC 3339 time and a
# space, before each line; with both, the prefix comes first.
_KUBECTL_PREFIX = re.compile(r"^\[[^\]\s]*\] ")
_KUBECTL_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) ")


class DumpSource:
    """Reads a folder written by ``kubectl get … -o json|yaml`` and ``kubectl logs``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def describe(self) -> str:
        return f"dump {self.folder}"

    def _files(self) -> Iterator[tuple[Path, str | None, str | None]]:
        """Yield each file's path relative to the folder, its text, and why it cannot be read (text None)."""
        if not self.folder.is_dir():
            raise DumpError(f"--from-dump {self.folder}: not a folder; pass the folder holding the kubectl output")
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file()):
            rel = path.relative_to(self.folder)
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    yield rel, None, f"larger than {MAX_FILE_BYTES // 2**20} MiB"
                    continue
                yield rel, path.read_text(encoding="utf-8"), None
            except UnicodeDecodeError:
                yield rel, None, "not UTF-8 text"
            except OSError as exc:
                yield rel, None, f"unreadable: {exc.strerror or exc}"

    def read(self, ref: CanaryRef) -> ClusterData:
        """Read every file once and keep what concerns ``ref``."""
        objects: list[dict[str, Any]] = []
        lines: list[str] = []
        webhooks: list[dict[str, Any]] = []
        warnings: list[str] = []
        usable = 0
        for rel, text, why in self._files():
            if text is None:
                warnings.append(f"skipped {rel} ({why})")
                continue
            found = _objects_from_text(text)
            if found is not None:
                usable += 1
                skipped_secrets = sum(1 for o in found if o.get("kind") == "Secret")
                if skipped_secrets:
                    warnings.append(f"ignored {skipped_secrets} Secret object(s) in {rel} (secrets never enter a bundle)")
                objects.extend(o for o in found if o.get("kind") != "Secret")
                continue
            n_logs, n_hooks = _classify_lines(_json_lines(text), lines, webhooks)
            if n_logs or n_hooks:
                usable += 1
                continue
            warnings.append(
                f"skipped {rel} (not a Kubernetes object or List{_parse_error(text)}; "
                "no Flagger JSON log lines or webhook payloads either)"
            )
        if usable == 0:
            detail = "; ".join(warnings[:5]) or "the folder is empty"
            raise DumpError(
                f"--from-dump {self.folder}: nothing usable ({detail}); save e.g. `kubectl get canary NAME -o json`, "
                "`kubectl get events -o json` and `kubectl logs deploy/flagger` into it"
            )
        # Rotated or concatenated logs repeat lines: each distinct line once, in the order first seen.
        return _select(ref, objects, list(dict.fromkeys(lines)), webhooks, warnings, str(self.folder))

    # -- preflight (issue 14): the canary's objects, and Flagger's own Deployment in any namespace -

    def read_objects(self, ref: CanaryRef) -> ClusterData:
        """Return ``read(ref)``: a dump's files are read whole anyway."""
        return self.read(ref)

    def find_flagger(self, selector: str = "app.kubernetes.io/name=flagger") -> list[dict[str, Any]]:
        """Return the dump's Deployments whose labels match ``selector`` (``k=v`` terms, comma-separated)."""
        wanted = dict(term.split("=", 1) for term in selector.split(",") if "=" in term)
        return [
            o
            for o in self._objects_of("Deployment")
            if all(((o.get("metadata") or {}).get("labels") or {}).get(k.strip()) == v.strip() for k, v in wanted.items())
        ]

    # -- evidence list: every canary of the dump ------------------------------------------------

    @property
    def default_namespace(self) -> str | None:
        """Return the namespace of the dump's canaries when they all share one (a dump has no kubeconfig)."""
        namespaces = {str((o.get("metadata") or {}).get("namespace") or "") for o in self._objects_of("Canary")}
        if len(namespaces) != 1:
            return None
        return namespaces.pop() or None

    def list_canaries(self, namespace: str | None) -> list[dict[str, Any]]:
        """Return the dump's Canaries in ``namespace`` (None: all of them)."""
        return [
            o for o in self._objects_of("Canary") if namespace is None or (o.get("metadata") or {}).get("namespace") == namespace
        ]

    def _objects_of(self, kind: str) -> list[dict[str, Any]]:
        """Return the dump's objects of ``kind``; unusable files are skipped (read() names them)."""
        found: list[dict[str, Any]] = []
        for _, text, _ in self._files():
            found.extend(o for o in (_objects_from_text(text) or [] if text is not None else []) if o.get("kind") == kind)
        return found


def _looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _parse_error(text: str) -> str:
    """Return ``: <why it does not parse>`` for a file that is not valid JSON/YAML, else ``""``."""
    if _looks_like_json(text):
        try:
            json.loads(text)
        except ValueError as exc:
            return f"; not valid JSON: {exc}"
        return ""
    import yaml

    try:
        list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return f"; not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"
    return ""


def _objects_from_text(text: str) -> list[dict[str, Any]] | None:
    """Return the Kubernetes objects of a JSON or (multi-document) YAML text, None when it holds none."""
    docs: list[Any] | None = None
    if _looks_like_json(text):
        try:
            docs = [json.loads(text)]
        except ValueError:
            docs = None  # JSON lines, or YAML flow style: tried below
    if docs is None and _starts_as_log(text):
        return None  # JSON lines or kubectl-prefixed lines: not parsed as YAML (slow on a big log)
    if docs is None:
        import yaml

        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError:
            return None
    if not docs:
        return None
    out: list[dict[str, Any]] = []  # an empty List is a usable answer: nothing of that kind
    for d in docs:
        if not isinstance(d, dict) or "kind" not in d:
            return None
        if str(d["kind"]).endswith("List") and isinstance(d.get("items"), list):
            list_kind = str(d["kind"])[: -len("List")]
            for item in d["items"]:
                if isinstance(item, dict):
                    if "kind" not in item and list_kind:
                        item = dict(item, kind=list_kind)
                    out.append(item)
        else:
            out.append(d)
    return out


def _starts_as_log(text: str) -> bool:
    """Return whether a text's first line is a whole JSON object or carries kubectl's log prefix or timestamp."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if _unprefixed(first) != first:
        return True
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


def _unprefixed(line: str) -> str:
    """Return a log line without the prefix and timestamp ``kubectl logs --prefix --timestamps`` put before it."""
    line = _KUBECTL_PREFIX.sub("", line, count=1)
    line = _KUBECTL_TIMESTAMP.sub("", line, count=1)
    return _KUBECTL_PREFIX.sub("", line, count=1)


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Return the JSON objects of a text's lines (other lines skipped)."""
    rows = []
    for raw in text.splitlines():
        line = _unprefixed(raw.strip())
        if not line.startswith("{"):
            continue
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if isinstance(v, dict):
            rows.append(v)
    return rows


def _classify_lines(rows: list[dict[str, Any]], lines: list[str], webhooks: list[dict[str, Any]]) -> tuple[int, int]:
    n_logs = n_hooks = 0
    for r in rows:
        if "msg" in r and "ts" in r:
            lines.append(json.dumps(r, separators=(",", ":")))
            n_logs += 1
        elif isinstance(r.get("metadata"), dict) and "eventMessage" in r["metadata"] and "name" in r:
            webhooks.append(r)
            n_hooks += 1
        elif isinstance(r.get("payload"), dict) and "eventMessage" in (r["payload"].get("metadata") or {}):
            webhooks.append(dict(r["payload"], _received_at=r.get("received_at")))
            n_hooks += 1
    return n_logs, n_hooks


def _select(
    ref: CanaryRef,
    objects: list[dict[str, Any]],
    lines: list[str],
    webhooks: list[dict[str, Any]],
    warnings: list[str],
    where: str,
) -> ClusterData:
    """Keep the objects, events and lines of ``ref``; ignore other canaries'."""

    def meta(o: dict[str, Any]) -> dict[str, Any]:
        m = o.get("metadata")
        return m if isinstance(m, dict) else {}

    canaries = [o for o in objects if o.get("kind") == "Canary"]
    canary = next(
        (o for o in canaries if meta(o).get("name") == ref.name and meta(o).get("namespace", ref.namespace) == ref.namespace),
        None,
    )
    if canary is None:
        known = ", ".join(sorted(f"{meta(o).get('namespace', '?')}/{meta(o).get('name', '?')}" for o in canaries)) or "none"
        unusable = [w for w in warnings if w.startswith("skipped ")]
        skipped = f"; files that could not be used: {'; '.join(unusable[:5])}" if unusable else ""
        raise NotFoundError(
            f"canary {ref} not found in dump {where} (canaries there: {known}){skipped}; save it with "
            f"`kubectl get canary {ref.name} -n {ref.namespace} -o json > {where}/canary.json`"
        )
    from evidence.canary import CanarySpec

    spec = CanarySpec.from_object(canary, ref)
    target, apex = spec.target, spec.apex
    template_refs, provider_refs = set(spec.template_refs()), spec.provider_refs()

    def key(o: dict[str, Any]) -> tuple[str, str]:
        return (str(meta(o).get("namespace") or ref.namespace), str(meta(o).get("name")))

    data = ClusterData(source_kind="dump", source=where, canary=canary, warnings=warnings)
    for o in objects:
        kind = o.get("kind")
        if kind == "MetricTemplate" and key(o) in template_refs:
            data.metric_templates.append(o)
        elif kind == "AlertProvider" and key(o) in provider_refs:
            data.alert_providers.append(o)
        elif kind == "TraefikService" and key(o) == (ref.namespace, apex):
            data.traefik_services.append(o)
        elif kind == "Deployment" and key(o) in {(ref.namespace, target), (ref.namespace, f"{target}-primary")}:
            data.workloads.append(o)
        elif kind == "Event" and _event_of(o, ref):
            data.events.append(o)
    missing_templates = template_refs - {key(o) for o in data.metric_templates}
    for ns, name in sorted(missing_templates):
        warnings.append(f"MetricTemplate {ns}/{name} used by the canary is not in the dump; its query cannot be re-run")
    data.log_lines = lines  # the collector keeps the canary's lines
    data.webhook_events = [w for w in webhooks if w.get("name") == ref.name and w.get("namespace") == ref.namespace]
    return data


def _event_of(ev: dict[str, Any], ref: CanaryRef) -> bool:
    obj = ev.get("involvedObject") or ev.get("regarding") or {}
    if not isinstance(obj, dict):
        return False
    ns = obj.get("namespace") or (ev.get("metadata") or {}).get("namespace")
    return obj.get("kind") == "Canary" and obj.get("name") == ref.name and ns == ref.namespace
