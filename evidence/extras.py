"""The optional parts of the install: which extra a command needs, and the message when it is missing.

The base install (``pip install flagger-evidence``) is the collector: collect, list, show,
evaluate, verify, sign, policy.  ``[render]`` adds the decision record's HTML and PDF,
``[archive]`` the S3 store and the fleet ledger, ``[all]`` both.  Presence is checked by
``importlib.util.find_spec``: nothing is imported here.
"""

from __future__ import annotations

import importlib.util

from evidence.errors import MissingExtraError

DISTRIBUTION = "flagger-evidence"
#: extra -> (the modules it brings, what it is for)
EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    "render": (("jinja2", "weasyprint"), "the HTML and PDF decision records"),
    "archive": (("obstore", "duckdb"), "S3 archive stores and the fleet ledger"),
}


def missing_modules(extra: str) -> list[str]:
    """Return the modules of ``extra`` that are not installed."""
    return [m for m in EXTRAS[extra][0] if importlib.util.find_spec(m) is None]


def installed_extras() -> list[str]:
    """Return the extras whose modules are all installed."""
    return [name for name in EXTRAS if not missing_modules(name)]


def require_extra(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise MissingExtraError naming the extra to install unless its modules (or ``modules``) are installed."""
    wanted = modules if modules is not None else EXTRAS[extra][0]
    missing = [m for m in wanted if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(
            f"{what} needs the [{extra}] extra ({EXTRAS[extra][1]}; missing: {', '.join(missing)}): "
            f"pip install '{DISTRIBUTION}[{extra}]'"
        )
