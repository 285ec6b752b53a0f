"""When ``evaluate`` fails: the conditions ``--fail-on`` names, each tested on an Evaluation.

``breach`` (the default) is today's exit 3: an abort criterion is breached.  The others turn
what a reviewer must read into an exit code for CI and scripts:

* ``promoted-despite-breach`` — Flagger promoted although the abort policy was breached
  (the finding of that code);
* ``silent-failure`` — Flagger failed the canary without a ``Rolling back`` line or an alert
  (the finding of that code);
* ``no-data`` — a criterion could not be evaluated (too few canary requests, no series), so
  the verdict is not evidence of health;
* ``low-confidence`` — the timeline's confidence is low (the outcome comes from a status or
  a gauge, or only from aggregated Kubernetes Events);
* ``unverified`` — the bundle was not verified against its manifest (``--allow-unverified``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from evidence.errors import UsageError

if TYPE_CHECKING:
    from evidence.evaluate import Evaluation


def _codes(ev: Evaluation) -> set[str]:
    return {f.code for f in ev.findings}


FAIL_CONDITIONS: dict[str, Callable[[Evaluation], bool]] = {
    "breach": lambda ev: ev.verdict == "abort",
    "promoted-despite-breach": lambda ev: "promoted-despite-breach" in _codes(ev),
    "silent-failure": lambda ev: "silent-failure" in _codes(ev),
    "no-data": lambda ev: not ev.evidence_sufficient or any(c.status == "no_data" for c in ev.criteria),
    "low-confidence": lambda ev: ev.timeline.confidence == "low",
    "unverified": lambda ev: ev.verified is not True,
}
DEFAULT_FAIL_ON = ("breach",)


def parse_fail_on(text: str) -> tuple[str, ...]:
    """Return the conditions of a comma-separated ``--fail-on`` value; raise UsageError naming the known ones."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in FAIL_CONDITIONS]
    if unknown or not names:
        raise UsageError(
            f"--fail-on {text!r}: unknown condition {', '.join(unknown) or '(none given)'}; "
            "use a comma-separated list of: " + ", ".join(FAIL_CONDITIONS)
        )
    return names


def failing_conditions(ev: Evaluation, conditions: Iterable[str]) -> list[str]:
    """Return which of ``conditions`` hold for the evaluation, in the order given."""
    return [c for c in conditions if FAIL_CONDITIONS[c](ev)]
