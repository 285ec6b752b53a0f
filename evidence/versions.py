"""What is installed: evidence's version, Python's and the key libraries' (``evidence version``)."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from evidence import __version__
from evidence.documents import document
from evidence.extras import DISTRIBUTION, installed_extras

#: The libraries whose versions explain a bug report, by distribution name.
LIBRARIES = ("click", "kubernetes", "requests", "pandas", "pyarrow", "PyYAML", "google-re2", "cryptography",
             "Jinja2", "weasyprint", "obstore", "duckdb")  # fmt: skip


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def version_document() -> dict[str, Any]:
    """Return a ``Version`` document (schemas/version.schema.json); nothing is imported to find versions."""
    return document(
        "Version",
        {
            "version": __version__,
            "distribution": DISTRIBUTION,
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "libraries": {name: _version(name) for name in LIBRARIES},
            "extras": installed_extras(),
        },
    )
