"""Fleet figures over the ledger: abort rate, outcomes, detection lag, what trips most.

Per group — the whole fleet, each cluster, each namespace, each canary — in one DuckDB query
with ``GROUPING SETS``:

* ``rollouts``; ``rolledBack`` (Flagger's outcome ``rolled_back`` or ``failed``) and the
  ``abortRate`` (rolled back / rollouts);
* ``promoted``, ``promotedDespiteBreach`` (promoted while the policy's verdict is ``abort``) and
  ``silentFailures`` (the ``silent-failure`` finding: the canary failed without ever taking traffic);
* ``detectionLagSeconds``: p50, p90 (linear interpolation, as numpy's default) and max over the
  rollouts that have one;
* ``topChecks`` (Flagger metrics that halted, counted once per rollout) and ``topCriteria``
  (policy criteria breached), most frequent first, ties by name.
"""

from __future__ import annotations

from typing import Any

from evidence.archive.ledger import Filters

TOP = 5
_LEVELS = {
    (0, 0, 0): "fleet",
    (1, 0, 0): "cluster",
    (1, 1, 0): "namespace",
    (1, 1, 1): "canary",
}


def _tops(con: Any, column: str, where: str, params: list[Any]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """Return the most frequent values of a list column per group key."""
    sql = f"""
        WITH x AS (SELECT s.cluster_name c, s.canary_namespace n, s.canary_name k, unnest(s.{column}) AS v FROM s WHERE {where})
        SELECT c, n, k, v, count(*) AS cnt, GROUPING(c) AS gc, GROUPING(n) AS gn, GROUPING(k) AS gk FROM x
        GROUP BY GROUPING SETS ((v), (c, v), (c, n, v), (c, n, k, v))
    """
    out: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for c, n, k, v, cnt, gc, gn, gk in con.execute(sql, params).fetchall():
        out.setdefault((1 - gc, 1 - gn, 1 - gk, c, n, k), []).append({"name": v, "count": int(cnt)})
    for items in out.values():
        items.sort(key=lambda d: (-d["count"], d["name"]))
        del items[TOP:]
    return out


def fleet_summary(con: Any, filters: Filters) -> list[dict[str, Any]]:
    """Return the fleet figures per group, the fleet first, then clusters, namespaces, canaries."""
    where, params = filters.sql()
    sql = f"""
        SELECT s.cluster_name, s.canary_namespace, s.canary_name,
               GROUPING(s.cluster_name), GROUPING(s.canary_namespace), GROUPING(s.canary_name),
               count(*),
               count(*) FILTER (WHERE s.outcome IN ('rolled_back', 'failed')),
               count(*) FILTER (WHERE s.outcome = 'promoted'),
               count(*) FILTER (WHERE s.outcome = 'promoted' AND s.verdict = 'abort'),
               count(*) FILTER (WHERE list_contains(s.findings, 'silent-failure')),
               count(*) FILTER (WHERE s.verdict = 'abort'),
               quantile_cont(s.detection_lag_seconds, 0.5),
               quantile_cont(s.detection_lag_seconds, 0.9),
               max(s.detection_lag_seconds),
               count(s.detection_lag_seconds)
        FROM s WHERE {where}
        GROUP BY GROUPING SETS ((), (s.cluster_name), (s.cluster_name, s.canary_namespace),
                                (s.cluster_name, s.canary_namespace, s.canary_name))
    """
    checks = _tops(con, "halted_checks", where, params)
    criteria = _tops(con, "breached_criteria", where, params)
    groups = []
    for row in con.execute(sql, params).fetchall():
        c, n, k, gc, gn, gk, total, rolled, promoted, despite, silent, breached, p50, p90, mx, lags = row
        level = (1 - gc, 1 - gn, 1 - gk)
        key = (*level, c, n, k)
        groups.append(
            {
                "level": _LEVELS[level],
                "cluster": c,
                "namespace": n,
                "canary": k,
                "rollouts": int(total),
                "rolledBack": int(rolled),
                "abortRate": round(rolled / total, 4) if total else None,
                "promoted": int(promoted),
                "promotedDespiteBreach": int(despite),
                "silentFailures": int(silent),
                "policyBreaches": int(breached),
                "detectionLagSeconds": {
                    "count": int(lags),
                    "p50": None if p50 is None else round(float(p50), 3),
                    "p90": None if p90 is None else round(float(p90), 3),
                    "max": None if mx is None else round(float(mx), 3),
                },
                "topChecks": checks.get(key, []),
                "topCriteria": criteria.get(key, []),
            }
        )
    order = list(_LEVELS.values())
    groups.sort(key=lambda g: (order.index(g["level"]), g["cluster"] or "", g["namespace"] or "", g["canary"] or ""))
    return groups
