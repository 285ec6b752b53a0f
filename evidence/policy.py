"""The abort policy: criteria a canary must not breach, and limits on the rollout itself.

The default policy (``default_policy()``):

* ``error_rate_ratio`` — the canary's 5xx share divided by the primary's, over a trailing
  5-minute window; breached at ``>= 2.0``.  The primary's share is floored at 0.001 (0.1 %)
  so that a clean primary does not divide by zero.
* ``p95_latency_increase`` — canary p95 / primary p95 − 1, from the
  ``traefik_service_request_duration_seconds`` buckets over all status codes with Prometheus'
  ``histogram_quantile`` interpolation, trailing 5 minutes; breached at ``>= 0.30``.
* ``success_rate`` — the canary's non-5xx share in percent over a trailing minute; breached
  below 99 (``< 99``).
* Every criterion: a window in which the canary served fewer than 50 requests is "no data",
  never a breach.
* Rollout limits, reported as findings: the canary's weight before promotion at most 50 %;
  ``progressDeadlineSeconds`` set and at most 600; a rollback path in place (a ``rollback`` or
  ``pre-rollout`` webhook, or an alert provider).

A policy file (``load_policy``) is YAML; every key is optional and overrides the default::

    version: 1                      # only 1 is understood
    min_requests: 50                # canary requests per window below which a criterion has no data
    criteria:
      error_rate_ratio:
        threshold: 2.0              # breached when the ratio is >= this
        window: 5m                  # trailing window: 30s, 5m, 1h, 1m30s, or seconds as a number
        primary_floor: 0.001        # floor of the primary's 5xx share (a fraction, 0 < f <= 1)
        min_requests: 50            # per-criterion override
      p95_latency_increase: {threshold: 0.3, window: 5m}
      success_rate: {threshold: 99, window: 1m}          # percent; breached below
      success_rate: false           # `false` (or `enabled: false`) disables a criterion
      errors_4xx:                   # a custom criterion: any other name, with a `kind`
        kind: ratio                 # sum of increase(numerator) / sum of increase(denominator) * scale
        numerator:   {metric: traefik_service_requests_total, role: canary, match: {code: "4.."}}
        denominator: {metric: traefik_service_requests_total, role: canary}
        scale: 100
        window: 2m
        breach_when: ">="           # one of >=, >, <=, <
        threshold: 5
      analysis_success:
        kind: gauge                 # the latest sample in the window of the matched series, aggregated
        series: {metric: flagger_canary_metric_analysis, role: flagger, match: {metric: request-success-rate}}
        aggregate: min              # min, max, sum or avg over the matched series
        window: 2m
        breach_when: "<"
        threshold: 99
        min_requests: 0             # 0: evaluate however few requests the canary served
    limits:
      max_weight: 50                # highest canary weight before promotion, percent
      progress_deadline_seconds: 600  # highest allowed progressDeadlineSeconds
      require_progress_deadline: true # progressDeadlineSeconds must be set explicitly
      require_rollback_path: true

A selector names a ``metric`` (``__name__``), optionally a ``role`` (``primary``, ``canary`` or
``flagger``, as in the bundle's ``series`` table) and ``match``: label → regular expression,
matched against the whole label value (as PromQL's ``=~``).  Counters (``ratio``) are
increased over the window with the same reset-aware arithmetic as the built-in criteria.

A wrong file fails with the file, the field path and what is allowed, e.g.
``policy.yaml: criteria.success_rate.threshold: must be a number from 0 to 100, got 'high'``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evidence.errors import PolicyError
from evidence.model import prometheus_duration
from evidence.routers import TRAEFIK

BUILTIN = ("error_rate_ratio", "p95_latency_increase", "success_rate")
CUSTOM_KINDS = ("ratio", "gauge")
COMPARATORS = (">=", ">", "<=", "<")
ROLES = ("primary", "canary", "flagger")
AGGREGATES = ("min", "max", "sum", "avg")
MAX_WINDOW_SECONDS = 24 * 3600.0
MAX_POLICY_BYTES = 1024 * 1024

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Selector:
    """Series of the bundle: a metric, optionally a role, and label regexes (full match)."""

    metric: str
    role: str | None = None
    match: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """Return the selector written like PromQL."""
        parts = [f'{k}=~"{v}"' for k, v in self.match]
        if self.role:
            parts.insert(0, f"role={self.role}")
        return self.metric + ("{" + ", ".join(parts) + "}" if parts else "")


@dataclass(frozen=True)
class Criterion:
    """One abort criterion: what is measured, over which window, and when it is breached."""

    name: str
    kind: str  # a BUILTIN name, or "ratio" | "gauge"
    threshold: float
    comparator: str  # breached when ``value <comparator> threshold``
    window_seconds: float
    min_requests: int
    description: str
    unit: str = ""
    primary_floor: float = 0.001  # error_rate_ratio
    quantile: float = 0.95  # p95_latency_increase
    numerator: Selector | None = None  # ratio
    denominator: Selector | None = None  # ratio
    scale: float = 1.0  # ratio
    series: Selector | None = None  # gauge
    aggregate: str = "max"  # gauge

    def breached_by(self, value: float) -> bool:
        """Return whether a value breaches the criterion."""
        return _compare(value, self.comparator, self.threshold)


def _compare(value: float, comparator: str, threshold: float) -> bool:
    if comparator == ">=":
        return value >= threshold
    if comparator == ">":
        return value > threshold
    if comparator == "<=":
        return value <= threshold
    return value < threshold


@dataclass(frozen=True)
class RolloutLimits:
    """Limits on how the rollout itself is configured; a violation is a finding, not a breach."""

    max_weight: int = 50
    progress_deadline_seconds: int = 600
    require_progress_deadline: bool = True
    require_rollback_path: bool = True


@dataclass(frozen=True)
class Policy:
    """The abort criteria and the rollout limits; ``source`` is ``default`` or the file."""

    criteria: tuple[Criterion, ...]
    limits: RolloutLimits = field(default_factory=RolloutLimits)
    min_requests: int = 50
    disabled: tuple[str, ...] = ()
    source: str = "default"

    def criterion(self, name: str) -> Criterion | None:
        """Return the enabled criterion of that name, if any."""
        return next((c for c in self.criteria if c.name == name), None)


def _builtin_criteria(min_requests: int = 50) -> dict[str, Criterion]:
    return {
        "error_rate_ratio": Criterion(
            "error_rate_ratio",
            "error_rate_ratio",
            2.0,
            ">=",
            300.0,
            min_requests,
            "canary 5xx share / primary 5xx share (primary floored)",
            "x",
            primary_floor=0.001,
        ),
        "p95_latency_increase": Criterion(
            "p95_latency_increase",
            "p95_latency_increase",
            0.30,
            ">=",
            300.0,
            min_requests,
            "canary p95 / primary p95 - 1 (histogram_quantile over all codes)",
            "",
            quantile=0.95,
        ),
        "success_rate": Criterion("success_rate", "success_rate", 99.0, "<", 60.0, min_requests, "canary non-5xx share", "%"),
    }


def default_policy() -> Policy:
    """Return the default abort policy."""
    return Policy(tuple(_builtin_criteria().values()))


class _Reader:
    """Validates one policy file; every error names the file and the field path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str, got: Any = ...) -> PolicyError:
        suffix = "" if got is ... else f", got {got!r}"
        return PolicyError(f"{self.source}: {where or '(top level)'}: {what}{suffix}")

    def mapping(self, data: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(where, "must be a mapping", _shown(data))
        for key in data:
            if not isinstance(key, str) or key not in allowed:
                path = f"{where}.{key}" if where else str(key)
                raise self.fail(path, "unknown field; allowed: " + ", ".join(sorted(allowed)))
        return data

    def number(
        self, value: Any, where: str, lo: float | None, hi: float | None, *, lo_open: bool = False, what: str = ""
    ) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
        if ok:
            x = float(value)
            ok = (lo is None or (x > lo if lo_open else x >= lo)) and (hi is None or x <= hi)
        if not ok:
            raise self.fail(where, "must be " + (what or _range_text(lo, hi, lo_open)), _shown(value))
        return float(value)

    def integer(self, value: Any, where: str, lo: int, hi: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise self.fail(where, f"must be an integer from {lo} to {hi}", _shown(value))
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, "must be true or false", _shown(value))
        return value

    def duration(self, value: Any, where: str) -> float:
        seconds: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str):
            seconds = prometheus_duration(value)
        if seconds is None or not math.isfinite(seconds) or not 1.0 <= seconds <= MAX_WINDOW_SECONDS:
            raise self.fail(where, "must be a duration from 1s to 24h, e.g. 30s, 5m, 1m30s or a number of seconds", _shown(value))
        return seconds

    def choice(self, value: Any, where: str, allowed: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(where, "must be one of " + ", ".join(allowed), _shown(value))
        return value

    def selector(self, data: Any, where: str) -> Selector:
        d = self.mapping(data, where, ("metric", "role", "match"))
        metric = d.get("metric")
        if not isinstance(metric, str) or not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", metric):
            raise self.fail(f"{where}.metric", f"is required: a metric name such as {TRAEFIK.requests}", _shown(metric))
        role = d.get("role")
        if role is not None:
            role = self.choice(role, f"{where}.role", ROLES)
        match = d.get("match") or {}
        if not isinstance(match, dict):
            raise self.fail(f"{where}.match", "must be a mapping of label name to regular expression", _shown(match))
        pairs = []
        for k, v in match.items():
            path = f"{where}.match.{k}"
            if not isinstance(k, str) or not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", k):
                raise self.fail(path, "label names are letters, digits and underscores")
            if not isinstance(v, (str, int)) or isinstance(v, bool):
                raise self.fail(path, "must be a regular expression (a string)", _shown(v))
            problem = re2_problem(str(v))
            if problem is not None:
                raise self.fail(path, problem, _shown(v))
            pairs.append((k, str(v)))
        return Selector(metric, role, tuple(sorted(pairs)))


def re2_problem(pattern: str) -> str | None:
    """Return why ``pattern`` is not a regular expression PromQL accepts (RE2 syntax), or None.

    RE2 (``google-re2``) parses it, as Prometheus' Go regexp would: lookarounds and
    backreferences are refused here rather than silently never matching in a PromQL query.
    The pattern must compile with Python's ``re`` too, which the evaluation matches with.
    """
    import re2

    options = re2.Options()
    options.log_errors = False  # the error comes back in the exception; RE2 need not print it
    try:
        re2.compile(pattern, options=options)
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return (
            f"is not an RE2 regular expression, the syntax PromQL uses ({detail}); "
            "lookarounds (?=…) (?!…) and backreferences \\1 are not supported"
        )
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    return None


def _shown(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return type(value).__name__


def _range_text(lo: float | None, hi: float | None, lo_open: bool) -> str:
    def fmt(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x)

    if lo is not None and hi is not None:
        return f"a number {'above' if lo_open else 'from'} {fmt(lo)} {'and at most' if lo_open else 'to'} {fmt(hi)}"
    if lo is not None:
        return f"a number {'above' if lo_open else 'of at least'} {fmt(lo)}"
    return "a number"


_BUILTIN_FIELDS: dict[str, tuple[str, ...]] = {
    "error_rate_ratio": ("enabled", "threshold", "window", "min_requests", "primary_floor"),
    "p95_latency_increase": ("enabled", "threshold", "window", "min_requests"),
    "success_rate": ("enabled", "threshold", "window", "min_requests"),
}
_CUSTOM_FIELDS: dict[str, tuple[str, ...]] = {
    "ratio": (
        "kind",
        "enabled",
        "description",
        "numerator",
        "denominator",
        "scale",
        "window",
        "breach_when",
        "threshold",
        "min_requests",
    ),
    "gauge": ("kind", "enabled", "description", "series", "aggregate", "window", "breach_when", "threshold", "min_requests"),
}


def policy_from_dict(data: Any, source: str = "<policy>", errors: list[str] | None = None) -> Policy:
    """Build a policy from parsed YAML; raise PolicyError naming ``source`` and the field.

    With ``errors`` (a list), every section (the top level, each criterion, the limits) is
    checked and its first error appended instead of raising; the policy returned then keeps
    the defaults where a section was wrong.
    """
    r = _Reader(source)
    if data is None:
        data = {}

    def section(read: Any, fallback: Any) -> Any:
        if errors is None:
            return read()
        try:
            return read()
        except PolicyError as exc:
            errors.append(str(exc))
            return fallback

    allowed = ("version", "min_requests", "criteria", "limits")
    if errors is None or not isinstance(data, dict):
        top = section(lambda: r.mapping(data, "", allowed), None)
        if top is None:
            return default_policy()
    else:
        for key in data:
            section(lambda key=key: r.mapping({key: None}, "", allowed), None)  # each unknown key is an error
        top = {k: v for k, v in data.items() if k in allowed}

    def check_version() -> None:
        if "version" in top and top["version"] != 1:
            raise r.fail("version", "must be 1 (the only policy format this evidence understands)", _shown(top["version"]))

    section(check_version, None)
    min_requests = section(lambda: r.integer(top.get("min_requests", 50), "min_requests", 0, 10**9), 50)
    builtins = _builtin_criteria(min_requests)
    criteria: dict[str, Criterion] = dict(builtins)
    disabled: list[str] = []
    raw_criteria = top.get("criteria") or {}

    def check_criteria() -> dict[str, Any]:
        if not isinstance(raw_criteria, dict):
            raise r.fail("criteria", "must be a mapping of criterion name to its settings", _shown(raw_criteria))
        return raw_criteria

    raw_criteria = section(check_criteria, {})
    for name, body in raw_criteria.items():
        if name in builtins and body is False:
            criteria.pop(name, None)
            disabled.append(name)
            continue
        criterion = section(lambda name=name, body=body: _read_criterion(r, builtins, name, body, min_requests), False)
        if criterion is False:
            continue
        if criterion is None:
            criteria.pop(name, None)
            disabled.append(name)
        else:
            criteria[name] = criterion
    limits = section(lambda: _read_limits(r, top.get("limits")), RolloutLimits())
    return Policy(tuple(criteria.values()), limits, min_requests, tuple(disabled), source)


def _read_criterion(r: _Reader, builtins: dict[str, Criterion], name: Any, body: Any, min_requests: int) -> Criterion | None:
    where = f"criteria.{name}"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise r.fail(where, "criterion names are lower-case letters, digits, '_' and '-', starting with a letter")
    if name in builtins:
        return _read_builtin(r, builtins[name], body, where)
    if not isinstance(body, dict) or "kind" not in body:
        raise r.fail(
            where,
            "unknown criterion; built-in criteria are "
            + ", ".join(BUILTIN)
            + " — a custom criterion needs `kind: ratio` or `kind: gauge`",
        )
    return _read_custom(r, name, body, where, min_requests)


def _enabled(r: _Reader, body: dict[str, Any], where: str) -> bool:
    return r.boolean(body["enabled"], f"{where}.enabled") if "enabled" in body else True


def _read_builtin(r: _Reader, base: Criterion, body: Any, where: str) -> Criterion | None:
    if body is None or body is True:
        return base
    d = r.mapping(body, where, _BUILTIN_FIELDS[base.name])
    if not _enabled(r, d, where):
        return None
    c = base
    if "threshold" in d:
        if base.name == "success_rate":
            thr = r.number(d["threshold"], f"{where}.threshold", 0, 100, what="a number from 0 to 100 (percent)")
        elif base.name == "error_rate_ratio":
            thr = r.number(
                d["threshold"], f"{where}.threshold", 0, None, lo_open=True, what="a number above 0 (a ratio, e.g. 2.0)"
            )
        else:
            thr = r.number(
                d["threshold"],
                f"{where}.threshold",
                0,
                None,
                lo_open=True,
                what="a number above 0 (a fraction, e.g. 0.3 for +30 %)",
            )
        c = replace(c, threshold=thr)
    if "window" in d:
        c = replace(c, window_seconds=r.duration(d["window"], f"{where}.window"))
    if "min_requests" in d:
        c = replace(c, min_requests=r.integer(d["min_requests"], f"{where}.min_requests", 0, 10**9))
    if "primary_floor" in d:
        c = replace(
            c,
            primary_floor=r.number(
                d["primary_floor"],
                f"{where}.primary_floor",
                0,
                1,
                lo_open=True,
                what="a fraction above 0 and at most 1, e.g. 0.001",
            ),
        )
    return c


def _read_custom(r: _Reader, name: str, body: dict[str, Any], where: str, min_requests: int) -> Criterion | None:
    kind = r.choice(body.get("kind"), f"{where}.kind", CUSTOM_KINDS)
    d = r.mapping(body, where, _CUSTOM_FIELDS[kind])
    if not _enabled(r, d, where):
        return None
    for key in ("threshold", "breach_when", "window"):
        if key not in d:
            raise r.fail(f"{where}.{key}", "is required for a custom criterion")
    threshold = r.number(d["threshold"], f"{where}.threshold", None, None, what="a finite number")
    comparator = r.choice(d["breach_when"], f"{where}.breach_when", COMPARATORS)
    window = r.duration(d["window"], f"{where}.window")
    mr = r.integer(d["min_requests"], f"{where}.min_requests", 0, 10**9) if "min_requests" in d else min_requests
    desc = d.get("description")
    if desc is not None and not isinstance(desc, str):
        raise r.fail(f"{where}.description", "must be a string", _shown(desc))
    if kind == "ratio":
        for key in ("numerator", "denominator"):
            if key not in d:
                raise r.fail(f"{where}.{key}", "is required for kind ratio: a selector {metric, role, match}")
        num = r.selector(d["numerator"], f"{where}.numerator")
        den = r.selector(d["denominator"], f"{where}.denominator")
        scale = r.number(d.get("scale", 1.0), f"{where}.scale", 0, None, lo_open=True, what="a number above 0")
        text = desc or f"{num.describe()} / {den.describe()}" + (f" x {scale:g}" if scale != 1 else "")
        return Criterion(name, "ratio", threshold, comparator, window, mr, text, "", numerator=num, denominator=den, scale=scale)
    if "series" not in d:
        raise r.fail(f"{where}.series", "is required for kind gauge: a selector {metric, role, match}")
    sel = r.selector(d["series"], f"{where}.series")
    agg = r.choice(d.get("aggregate", "max"), f"{where}.aggregate", AGGREGATES)
    text = desc or f"{agg} of {sel.describe()}"
    return Criterion(name, "gauge", threshold, comparator, window, mr, text, "", series=sel, aggregate=agg)


def _read_limits(r: _Reader, data: Any) -> RolloutLimits:
    if data is None:
        return RolloutLimits()
    d = r.mapping(
        data, "limits", ("max_weight", "progress_deadline_seconds", "require_progress_deadline", "require_rollback_path")
    )
    base = RolloutLimits()
    return RolloutLimits(
        max_weight=r.integer(d["max_weight"], "limits.max_weight", 1, 100) if "max_weight" in d else base.max_weight,
        progress_deadline_seconds=r.integer(d["progress_deadline_seconds"], "limits.progress_deadline_seconds", 1, 10**7)
        if "progress_deadline_seconds" in d
        else base.progress_deadline_seconds,
        require_progress_deadline=r.boolean(d["require_progress_deadline"], "limits.require_progress_deadline")
        if "require_progress_deadline" in d
        else base.require_progress_deadline,
        require_rollback_path=r.boolean(d["require_rollback_path"], "limits.require_rollback_path")
        if "require_rollback_path" in d
        else base.require_rollback_path,
    )


def load_policy(path: str | Path) -> Policy:
    """Read a YAML policy file; raise PolicyError naming the file, the field and what is allowed."""
    return policy_from_dict(_read_policy_yaml(path), str(path))


def check_policy_file(path: str | Path) -> list[str]:
    """Return every error of a policy file (one per wrong section), an empty list when it is valid."""
    try:
        data = _read_policy_yaml(path)
    except PolicyError as exc:
        return [str(exc)]
    errors: list[str] = []
    policy_from_dict(data, str(path), errors)
    return errors


def _read_policy_yaml(path: str | Path) -> Any:
    import yaml

    from evidence.errors import read_bounded

    p = Path(path)
    if not p.exists():
        raise PolicyError(f"{p}: no such policy file; check the --policy path")
    text = read_bounded(p, "--policy", MAX_POLICY_BYTES, PolicyError)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError(f"{p}: not valid YAML{where}: {problem}") from None
    return data


def policy_to_json(policy: Policy) -> dict[str, Any]:
    """Return the policy as plain JSON values (for the evaluation record)."""

    def sel(s: Selector | None) -> dict[str, Any] | None:
        return None if s is None else {"metric": s.metric, "role": s.role, "match": dict(s.match)}

    out = []
    for c in policy.criteria:
        d: dict[str, Any] = {
            "name": c.name,
            "kind": c.kind,
            "threshold": c.threshold,
            "comparator": c.comparator,
            "window_seconds": c.window_seconds,
            "min_requests": c.min_requests,
            "description": c.description,
        }
        if c.kind == "error_rate_ratio":
            d["primary_floor"] = c.primary_floor
        if c.kind == "p95_latency_increase":
            d["quantile"] = c.quantile
        if c.kind == "ratio":
            d.update(numerator=sel(c.numerator), denominator=sel(c.denominator), scale=c.scale)
        if c.kind == "gauge":
            d.update(series=sel(c.series), aggregate=c.aggregate)
        out.append(d)
    lim = policy.limits
    return {
        "source": policy.source,
        "min_requests": policy.min_requests,
        "criteria": out,
        "disabled": list(policy.disabled),
        "limits": {
            "max_weight": lim.max_weight,
            "progress_deadline_seconds": lim.progress_deadline_seconds,
            "require_progress_deadline": lim.require_progress_deadline,
            "require_rollback_path": lim.require_rollback_path,
        },
    }
