"""The one reader of a Canary object: ``CanarySpec.from_object``, over a view normalised to the CRD's types (reference §1.4)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from evidence.model import CanaryRef, parse_go_duration
from evidence.routers import DEFAULT_ROUTER, TrafficMetrics, router_for

DEFAULT_INTERVAL_S = 60.0  # Flagger's AnalysisInterval
MIN_INTERVAL_S = 10.0  # Flagger's floor for analysis.interval (canary.go GetAnalysisInterval)


@dataclass(frozen=True)
class MetricCheck:
    """One metric of the Canary's analysis, as Flagger checks it at every tick.

    ``template_query``/``template_provider`` are the referenced MetricTemplate's, once collect
    has read it (``CanarySpec.with_templates``); None before, or when it was not found.
    """

    name: str
    template_ref: tuple[str, str] | None  # (namespace, name); the namespace defaults to the Canary's
    threshold_min: float | None
    threshold_max: float | None
    interval: str | None  # as written; Flagger's default is 1m (``interval_text``)
    query: str | None  # an inline query
    template_variables: dict[str, str] = field(default_factory=dict)
    template_query: str | None = None
    template_provider: dict[str, Any] | None = None

    @classmethod
    def from_entry(cls, m: dict[str, Any], namespace: str) -> MetricCheck:
        """Read one normalised ``analysis.metrics[]`` entry (the legacy ``threshold`` included)."""
        name = str(m.get("name") or "")
        tr, ref = m.get("thresholdRange") or {}, m.get("templateRef")
        lo, hi = _opt_float(tr.get("min")), _opt_float(tr.get("max"))
        legacy = _opt_float(m.get("threshold"))
        if legacy is not None and lo is None and hi is None:
            # Legacy `threshold`: a minimum for the success rate, a maximum otherwise.
            lo, hi = (legacy, None) if name == "request-success-rate" else (None, legacy)
        return cls(
            name=name,
            template_ref=(str(ref.get("namespace") or namespace), str(ref["name"])) if ref and ref.get("name") else None,
            threshold_min=lo,
            threshold_max=hi,
            interval=str(m["interval"]) if m.get("interval") else None,
            query=str(m["query"]) if m.get("query") else None,
            template_variables={str(k): str(v) for k, v in (m.get("templateVariables") or {}).items()},
        )

    @property
    def builtin(self) -> bool:
        """Flagger's builtin check of this name (no template, no inline query)."""
        return self.template_ref is None and self.query is None

    @property
    def interval_text(self) -> str:
        return self.interval or "1m"


def _opt_float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def interval_seconds(text: object) -> float:
    """Return Flagger's analysis interval in seconds: 60 when absent or not a Go duration, at least 10 (canary.go)."""
    if not isinstance(text, str) or not text:
        return DEFAULT_INTERVAL_S
    try:
        return max(MIN_INTERVAL_S, parse_go_duration(text))
    except ValueError:
        return DEFAULT_INTERVAL_S


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class CanarySpec:
    """What every layer needs to know from a Canary object, with Flagger's defaults (reference §1.4).

    Built only by ``from_object``: the one reader of a Canary's spec (``analysis`` or the old
    ``canaryAnalysis``).  The lists of metrics, webhooks and alerts are the normalised objects.
    """

    ref: CanaryRef
    target: str
    apex: str
    port: int | None
    interval_s: float
    interval_text: str
    threshold: int
    metrics: tuple[MetricCheck, ...]
    webhooks: tuple[dict[str, Any], ...] = ()
    alerts: tuple[dict[str, Any], ...] = ()
    step_weight: int | None = None
    step_weights: tuple[int, ...] = ()
    max_weight: int | None = None
    step_weight_promotion: int | None = None
    iterations: int | None = None
    has_match: bool = False
    has_analysis: bool = False
    skip_analysis: bool = False
    suspend: bool = False
    provider: str | None = None
    metrics_server: str | None = None
    progress_deadline_s: int | None = None
    router: TrafficMetrics = DEFAULT_ROUTER  # from spec.provider (routers.router_for)
    warnings: tuple[str, ...] = ()
    block: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # the analysis as written, for display

    @classmethod
    def from_object(cls, obj: Any, ref: CanaryRef | None = None) -> CanarySpec:
        """Read a Canary object (as collected, or already normalised); fields of the wrong type get Flagger's default."""
        raw = (obj.get("spec") if isinstance(obj, dict) else None) or {}
        has_analysis = isinstance(raw, dict) and bool(raw.get("analysis") or raw.get("canaryAnalysis"))
        canary, warnings = normalise_canary(obj)
        spec = canary["spec"]
        meta = canary["metadata"]
        ref = ref or CanaryRef(str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        analysis = spec["analysis" if "analysis" in spec else "canaryAnalysis"]
        target = str(spec["targetRef"].get("name") or ref.name)
        service = spec["service"]
        itext = str(analysis.get("interval") or "60s")
        threshold = int(analysis.get("threshold") or 0)
        provider = str(spec["provider"]) if spec.get("provider") else None
        router, unknown = router_for(provider)
        return cls(
            ref=ref,
            target=target,
            apex=str(service.get("name") or target),
            port=_opt_int(service.get("port")),
            interval_s=interval_seconds(itext),
            interval_text=itext,
            threshold=threshold if threshold > 0 else 1,
            metrics=tuple(MetricCheck.from_entry(m, ref.namespace) for m in analysis["metrics"]),
            webhooks=tuple(analysis["webhooks"]),
            alerts=tuple(analysis["alerts"]),
            step_weight=_opt_int(analysis.get("stepWeight")),
            step_weights=tuple(analysis.get("stepWeights") or ()),
            max_weight=_opt_int(analysis.get("maxWeight")),
            step_weight_promotion=_opt_int(analysis.get("stepWeightPromotion")),
            iterations=_opt_int(analysis.get("iterations")),
            has_match=bool(analysis.get("match")),
            has_analysis=has_analysis,
            skip_analysis=bool(spec.get("skipAnalysis")),
            suspend=bool(spec.get("suspend")),
            provider=provider,
            metrics_server=str(spec["metricsServer"]) if spec.get("metricsServer") else None,
            progress_deadline_s=_opt_int(spec.get("progressDeadlineSeconds")),
            router=router,
            warnings=tuple(warnings) + ((unknown,) if unknown else ()),
            block=analysis,
        )

    @property
    def primary_service(self) -> str:
        return f"{self.apex}-primary"

    @property
    def canary_service(self) -> str:
        return f"{self.apex}-canary"

    @property
    def metric_names(self) -> list[str]:
        """The names of the analysis' metrics, in the spec's order."""
        return [m.name for m in self.metrics if m.name]

    def template_refs(self) -> list[tuple[str, str]]:
        """The (namespace, name) of every MetricTemplate the metrics reference, once each, in order."""
        return list(dict.fromkeys(m.template_ref for m in self.metrics if m.template_ref is not None))

    def with_templates(self, templates: list[dict[str, Any]]) -> CanarySpec:
        """Return this spec with each referenced MetricTemplate's query and provider filled in."""
        found = {
            (str((t.get("metadata") or {}).get("namespace") or self.ref.namespace), str((t.get("metadata") or {}).get("name"))): t
            for t in templates
        }
        metrics = []
        for m in self.metrics:
            t = found.get(m.template_ref) if m.template_ref else None
            if t is not None:
                tspec = t.get("spec") or {}
                provider = tspec.get("provider") if isinstance(tspec.get("provider"), dict) else {}
                q = tspec.get("query")
                m = replace(m, template_query=str(q) if q is not None else None, template_provider=provider)
            metrics.append(m)
        return replace(self, metrics=tuple(metrics))

    def provider_refs(self) -> set[tuple[str, str]]:
        """The (namespace, name) of every AlertProvider the alerts reference."""
        return {
            (str(a["providerRef"].get("namespace") or self.ref.namespace), str(a["providerRef"]["name"]))
            for a in self.alerts
            if isinstance(a.get("providerRef"), dict) and a["providerRef"].get("name")
        }


def canary_spec(ref: CanaryRef, canary: dict[str, Any]) -> CanarySpec:
    """Read the fields collection needs, with Flagger's defaults (reference §1.4)."""
    return CanarySpec.from_object(canary, ref)


# ----- a Canary object as the analysis may read it ---------------------------------------------
#
# A Canary read from a dump or a cluster may hold anything: a hand-edited dump, an object the
# API server accepted before its CRD had a schema. The readers downstream expect the types of
# Flagger's CRD, so the view they get is normalised once: a field of the wrong type is dropped
# (Flagger's default applies) and a warning names it; the bundle keeps the object as collected.

_INT, _NUM, _STR, _BOOL = "int", "number", "string", "bool"
_SPEC_FIELDS = {
    "progressDeadlineSeconds": _INT,
    "skipAnalysis": _BOOL,
    "suspend": _BOOL,
    "provider": _STR,
    "metricsServer": _STR,
}
_ANALYSIS_FIELDS = {
    "interval": _STR,
    "threshold": _INT,
    "maxWeight": _INT,
    "stepWeight": _INT,
    "stepWeightPromotion": _INT,
    "iterations": _INT,
    "mirror": _BOOL,
    "mirrorWeight": _INT,
    "primaryReadyThreshold": _INT,
    "canaryReadyThreshold": _INT,
}
_METRIC_FIELDS = {"name": _STR, "interval": _STR, "threshold": _NUM, "query": _STR}
_HOOK_FIELDS = {"name": _STR, "type": _STR, "url": _STR, "timeout": _STR, "retries": _INT, "muteAlert": _BOOL}
_STATUS_FIELDS = {
    "phase": _STR,
    "canaryWeight": _INT,
    "failedChecks": _INT,
    "iterations": _INT,
    "lastTransitionTime": _STR,
    "lastAppliedSpec": _STR,
    "lastPromotedSpec": _STR,
}


def _typed(value: Any, kind: str) -> bool:
    if kind == _BOOL:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == _INT:
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == _NUM:
        return isinstance(value, (int, float)) and value == value and abs(value) != float("inf")
    return isinstance(value, str)


def _fields(node: dict[str, Any], table: dict[str, str], where: str, warnings: list[str]) -> dict[str, Any]:
    out = dict(node)
    for key, kind in table.items():
        if key in out and out[key] is not None and not _typed(out[key], kind):
            warnings.append(f"{where}.{key}: {out[key]!r} is not a {kind}; ignored (Flagger's default applies)")
            del out[key]
        elif key in out and kind == _INT and isinstance(out[key], float):
            out[key] = int(out[key])
    return out


def _mapping(node: Any, where: str, warnings: list[str]) -> dict[str, Any]:
    if node is None:
        return {}
    if not isinstance(node, dict):
        warnings.append(f"{where}: {type(node).__name__} where an object is expected; ignored")
        return {}
    return node


def _objects(node: Any, where: str, warnings: list[str]) -> list[dict[str, Any]]:
    if node is None:
        return []
    if not isinstance(node, list):
        warnings.append(f"{where}: {type(node).__name__} where a list is expected; ignored")
        return []
    out = []
    for i, item in enumerate(node):
        if isinstance(item, dict):
            out.append(item)
        else:
            warnings.append(f"{where}[{i}]: {type(item).__name__} where an object is expected; ignored")
    return out


def _ref(node: Any, where: str, warnings: list[str]) -> dict[str, Any] | None:
    ref = _mapping(node, where, warnings)
    if not ref:
        return None
    ref = {k: v for k, v in ref.items() if k in ("name", "namespace", "kind", "apiVersion")}
    for k in list(ref):
        if not isinstance(ref[k], str):
            warnings.append(f"{where}.{k}: {ref[k]!r} is not a string; ignored")
            del ref[k]
    return ref or None


def _metric(m: dict[str, Any], where: str, warnings: list[str]) -> dict[str, Any]:
    m = _fields(m, _METRIC_FIELDS, where, warnings)
    if "thresholdRange" in m:
        tr = _fields(
            _mapping(m["thresholdRange"], f"{where}.thresholdRange", warnings),
            {"min": _NUM, "max": _NUM},
            f"{where}.thresholdRange",
            warnings,
        )
        m["thresholdRange"] = tr
    if "templateRef" in m:
        ref = _ref(m["templateRef"], f"{where}.templateRef", warnings)
        if ref is None:
            del m["templateRef"]
        else:
            m["templateRef"] = ref
    if "templateVariables" in m:
        tv = _mapping(m["templateVariables"], f"{where}.templateVariables", warnings)
        m["templateVariables"] = {str(k): v if isinstance(v, str) else str(v) for k, v in tv.items() if v is not None}
    return m


def _hook(h: dict[str, Any], where: str, warnings: list[str]) -> dict[str, Any]:
    h = _fields(h, _HOOK_FIELDS, where, warnings)
    if "metadata" in h:
        h["metadata"] = _mapping(h["metadata"], f"{where}.metadata", warnings)
    return h


def _value_warnings(spec: dict[str, Any], key: str, has_spec: bool) -> list[str]:
    """Return warnings for fields of the right type but a value Flagger would not accept or that is absent."""
    out = []
    if has_spec and not spec.get("targetRef", {}).get("name"):
        out.append("spec.targetRef.name is missing; the canary's own name is taken as its target")
    analysis = spec[key]
    if has_spec and not any(analysis.values()):
        out.append(f"spec.{key} is missing or empty; Flagger's defaults are assumed (interval 60s, threshold 1)")
    interval = analysis.get("interval")
    if isinstance(interval, str):
        try:
            parse_go_duration(interval)
        except ValueError:
            out.append(f"spec.{key}.interval: {interval!r} is not a duration like 1m or 30s; 60s is assumed")
    for name in ("stepWeight", "maxWeight", "stepWeightPromotion"):
        v = analysis.get(name)
        if isinstance(v, int) and not 0 < v <= 100:
            out.append(f"spec.{key}.{name}: {v} is outside 1..100 (a traffic percentage)")
    return out


def normalise_canary(obj: Any) -> tuple[dict[str, Any], list[str]]:
    """Return a view of a Canary object with every field the analysis reads of the CRD's type, and warnings.

    Fields of the wrong type are dropped (Flagger's default applies) and named in a warning;
    nothing else changes.  The object given is not modified.
    """
    warnings: list[str] = []
    top = _mapping(obj, "Canary", warnings)
    out = dict(top)
    out["metadata"] = _mapping(top.get("metadata"), "metadata", warnings)
    spec = _fields(_mapping(top.get("spec"), "spec", warnings), _SPEC_FIELDS, "spec", warnings)
    target = _ref(spec.get("targetRef"), "spec.targetRef", warnings)
    spec["targetRef"] = target or {}
    service = _mapping(spec.get("service"), "spec.service", warnings)
    spec["service"] = _fields(service, {"name": _STR, "port": _INT, "portName": _STR}, "spec.service", warnings)
    key = "analysis" if "analysis" in spec or "canaryAnalysis" not in spec else "canaryAnalysis"
    analysis = _fields(_mapping(spec.get(key), f"spec.{key}", warnings), _ANALYSIS_FIELDS, f"spec.{key}", warnings)
    if "stepWeights" in analysis:
        sw = analysis["stepWeights"]
        if not isinstance(sw, list) or not all(_typed(w, _INT) for w in sw):
            warnings.append(f"spec.{key}.stepWeights: {sw!r} is not a list of integers; ignored")
            del analysis["stepWeights"]
    analysis["metrics"] = [
        _metric(m, f"spec.{key}.metrics[{i}]", warnings)
        for i, m in enumerate(_objects(analysis.get("metrics"), f"spec.{key}.metrics", warnings))
    ]
    analysis["webhooks"] = [
        _hook(h, f"spec.{key}.webhooks[{i}]", warnings)
        for i, h in enumerate(_objects(analysis.get("webhooks"), f"spec.{key}.webhooks", warnings))
    ]
    alerts = _objects(analysis.get("alerts"), f"spec.{key}.alerts", warnings)
    for i, a in enumerate(alerts):
        if "providerRef" in a:
            ref = _ref(a["providerRef"], f"spec.{key}.alerts[{i}].providerRef", warnings)
            alerts[i] = {**a, "providerRef": ref} if ref else {k: v for k, v in a.items() if k != "providerRef"}
    analysis["alerts"] = alerts
    spec[key] = analysis
    warnings.extend(_value_warnings(spec, key, "spec" in top))
    out["spec"] = spec
    if "status" in top:
        out["status"] = _fields(_mapping(top.get("status"), "status", warnings), _STATUS_FIELDS, "status", warnings)
    return out, warnings
