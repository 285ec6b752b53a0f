"""A folder of kubectl output as a cluster source (``--from-dump DIR``).

Any ``*.json`` / ``*.yaml`` / ``*.yml`` file holding Kubernetes objects or ``List``s is read
and recognised by ``kind``, not by file name; ``*.log`` / ``*.txt`` / ``*.jsonl`` files are
read as Flagger's zap JSON log lines or as event-webhook payloads (one JSON object a line).
Files that are unreadable or not Kubernetes are named in a warning and skipped; Secrets are
never read into memory beyond recognising their kind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evidence.errors import DumpError, NotFoundError
from evidence.model import CanaryRef
from evidence.sources import ClusterData

OBJECT_SUFFIXES = {".json", ".yaml", ".yml"}
LINE_SUFFIXES = {".log", ".txt", ".jsonl", ".ndjson"}
MAX_FILE_BYTES = 512 * 1024 * 1024


class DumpSource:
    """Reads a folder written by ``kubectl get … -o json`` and ``kubectl logs``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def describe(self) -> str:
        return f"dump {self.folder}"

    def read(self, ref: CanaryRef) -> ClusterData:
        """Read every file once and keep what concerns ``ref``."""
        if not self.folder.is_dir():
            raise DumpError(f"--from-dump {self.folder}: not a folder; pass the folder holding the kubectl output")
        objects: list[dict[str, Any]] = []
        lines: list[str] = []
        webhooks: list[dict[str, Any]] = []
        warnings: list[str] = []
        usable = 0
        files = sorted(p for p in self.folder.rglob("*") if p.is_file())
        for path in files:
            rel = path.relative_to(self.folder)
            suffix = path.suffix.lower()
            if suffix not in OBJECT_SUFFIXES | LINE_SUFFIXES:
                warnings.append(f"skipped {rel} (not .json, .yaml, .log or .jsonl)")
                continue
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    warnings.append(f"skipped {rel} (larger than {MAX_FILE_BYTES // 2**20} MiB)")
                    continue
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                warnings.append(f"skipped {rel} (unreadable: {getattr(exc, 'strerror', None) or exc})")
                continue
            if suffix in OBJECT_SUFFIXES:
                found = _objects_from_text(text, suffix)
                if found is None:
                    # A .json file may also be a JSON-lines log.
                    jl = _json_lines(text)
                    if jl is not None:
                        n_logs, n_hooks = _classify_lines(jl, lines, webhooks)
                        if n_logs or n_hooks:
                            usable += 1
                            continue
                    warnings.append(f"skipped {rel} (not a Kubernetes object or List{_parse_error(text, suffix)})")
                    continue
                usable += 1
                skipped_secrets = sum(1 for o in found if o.get("kind") == "Secret")
                if skipped_secrets:
                    warnings.append(f"ignored {skipped_secrets} Secret object(s) in {rel} (secrets never enter a bundle)")
                objects.extend(o for o in found if o.get("kind") != "Secret")
            else:
                jl = _json_lines(text, tolerate=True)
                n_logs, n_hooks = _classify_lines(jl or [], lines, webhooks)
                if n_logs or n_hooks:
                    usable += 1
                else:
                    warnings.append(f"skipped {rel} (no Flagger JSON log lines or webhook payloads)")
        if usable == 0:
            detail = "; ".join(warnings[:5]) or "the folder is empty"
            raise DumpError(
                f"--from-dump {self.folder}: nothing usable ({detail}); save e.g. `kubectl get canary NAME -o json`, "
                "`kubectl get events -o json` and `kubectl logs deploy/flagger` into it"
            )
        return _select(ref, objects, lines, webhooks, warnings, str(self.folder))

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
        """Return the dump's objects of ``kind``; unreadable files are skipped (read() names them)."""
        found: list[dict[str, Any]] = []
        if not self.folder.is_dir():
            raise DumpError(f"--from-dump {self.folder}: not a folder; pass the folder holding the kubectl output")
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file() and p.suffix.lower() in OBJECT_SUFFIXES):
            try:
                objects = _objects_from_text(path.read_text(encoding="utf-8"), path.suffix.lower()) or []
            except (OSError, UnicodeDecodeError):
                continue
            found.extend(o for o in objects if o.get("kind") == kind)
        return found


def _parse_error(text: str, suffix: str) -> str:
    """Return ``: <why it does not parse>`` for a file that is not valid JSON/YAML, else ``""``."""
    if suffix == ".json":
        try:
            json.loads(text)
        except ValueError as exc:
            return f": not valid JSON: {exc}"
        return ""
    import yaml

    try:
        list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return f": not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"
    return ""


def _objects_from_text(text: str, suffix: str) -> list[dict[str, Any]] | None:
    docs: list[Any]
    if suffix == ".json":
        try:
            docs = [json.loads(text)]
        except ValueError:
            return None
    else:
        import yaml

        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError:
            return None
    out: list[dict[str, Any]] = []
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


def _json_lines(text: str, tolerate: bool = False) -> list[dict[str, Any]] | None:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            v = json.loads(line)
        except ValueError:
            if tolerate:
                continue
            return None
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
    template_refs, provider_refs = spec.template_refs(), spec.provider_refs()

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
