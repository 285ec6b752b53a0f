"""A one-line progress display on stderr for long work (silent when quiet or not a terminal), and warnings."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    """A one-line progress display on stderr; silent when quiet or not a terminal."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False, warnings: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = not quiet and self.stream.isatty()
        self.warnings = warnings
        self._lock = threading.Lock()
        self._last = 0.0

    def say(self, text: str, force: bool = True) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < 0.1:
                return
            self._last = now
            self.stream.write("\r\033[K" + text[:200])
            self.stream.flush()

    def warn(self, text: str) -> None:
        """Print ``Warning: text`` on its own line (kubectl style), also when quiet; progress resumes after it."""
        if not self.warnings:
            return
        with self._lock:
            if self.enabled:
                self.stream.write("\r\033[K")
            self.stream.write(f"Warning: {text}\n")
            self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()
