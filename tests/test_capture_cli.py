"""`evidence watch` on the command line: usage errors name the option, the README documents every option."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from evidence.cli.watch import watch

README = Path(__file__).resolve().parent.parent / "README.md"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evidence", "watch", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-A", "-n", "shop"], "-A watches every namespace"),
        (["--from-dump", "x"], "--listen"),
        (["--render", "docx"], "--render 'docx'"),
        (["--tail", "soon"], "--tail 'soon'"),
        (["--listen", "nowhere"], "--listen 'nowhere'"),
        (["--notify", "http://127.0.0.1:9/x"], "--notify-format"),
    ],
)
def test_usage_errors_name_the_option(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = run("--store", str(tmp_path / "s"), "--prometheus", "http://127.0.0.1:9", *args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr


def test_an_s3_store_needs_a_journal(tmp_path: Path) -> None:
    proc = run("--store", "s3://bundles/x", "--prometheus", "http://127.0.0.1:9", "--s3-endpoint", "http://127.0.0.1:9")
    assert proc.returncode == 2 and "--journal" in proc.stderr


def test_readme_documents_every_watch_option() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### `evidence watch") :]
    section = section[: section.index("\nWebhooks:")]
    documented = set(re.findall(r"`(-[-A-Za-z0-9]+)", section))
    options = {o for p in watch.params for o in p.opts}
    assert options <= documented, options - documented
