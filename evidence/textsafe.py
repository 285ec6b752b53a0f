"""Untrusted text made safe to show: control characters are shown, never obeyed.

Event messages, names and labels come from a cluster, and a hostile one can carry Unicode
bidi overrides (U+202E makes a browser show ``exe.txt`` for ``txt.exe``), NUL bytes, or ANSI
escape sequences that rewrite a terminal.  ``visible`` replaces each such character with a
visible ``<U+XXXX>`` marker; the bundle keeps the text as collected, so nothing is lost.
"""

from __future__ import annotations

import re

#: C0 controls but tab and newline, DEL, C1 controls, and the bidi/invisible formatting characters.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]")


def _marker(m: re.Match[str]) -> str:
    return f"<U+{ord(m.group(0)):04X}>"


def visible(text: str) -> str:
    """Return ``text`` with control and bidi-formatting characters replaced by ``<U+XXXX>`` markers."""
    return _UNSAFE.sub(_marker, text)


def terminal_safe(text: str) -> str:
    """Return text safe to print on a terminal (escape sequences and bidi overrides made visible)."""
    return visible(text)
