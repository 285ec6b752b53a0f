"""Renderers: a bundle and its evaluation in, HTML / PDF / Markdown out.

``render_bundle`` builds the context once and hands it to each requested format.  Each format
is one entry of ``FORMATS``: a function from (environment, context, svg cache) to bytes and a
file suffix.  Rendering to bytes and writing to a path are separate; renderers never contact
a cluster or Prometheus.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evidence.errors import UsageError

FORMAT_CHOICES = ("html", "pdf", "all")


@dataclass
class RenderJob:
    """One render: the context and what is computed once for every format."""

    env: Any
    context: dict[str, Any]
    svgs: dict[str, bytes] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    attachments: dict[str, bytes] = field(default_factory=dict)  # embedded in the archival PDF

    def charts_svg(self) -> dict[str, bytes]:
        if self.svgs is None:
            from evidence.render.pdf import export_svgs

            self.svgs = export_svgs(self.context["charts"])
        return self.svgs


def _html(job: RenderJob) -> bytes:
    from evidence.render.html import render_html

    return render_html(job.env, job.context).encode("utf-8")


def _pdf(job: RenderJob) -> bytes:
    from evidence.render.pdf import html_to_pdf, render_pdf_html

    return html_to_pdf(
        render_pdf_html(job.env, job.context, job.charts_svg()), pdf_variant="pdf/a-3b", attachments=job.attachments
    )


def _postmortem_html(job: RenderJob) -> bytes:
    from evidence.render.html import render_html

    return render_html(job.env, job.context, template="postmortem.html.j2").encode("utf-8")


def _postmortem_md(job: RenderJob) -> bytes:
    from evidence.render.templates import render_template

    return render_template(job.env, "postmortem.md.j2", job.context).encode("utf-8")


#: format name -> (renderer, file suffix)
FORMATS: dict[str, tuple[Callable[[RenderJob], bytes], str]] = {
    "html": (_html, ".decision-record.html"),
    "pdf": (_pdf, ".decision-record.pdf"),
    "postmortem-html": (_postmortem_html, ".postmortem.html"),
    "postmortem-md": (_postmortem_md, ".postmortem.md"),
}


def formats_for(choice: str, postmortem: bool) -> list[str]:
    """Return the formats a --format choice (and --postmortem) asks for."""
    if choice not in FORMAT_CHOICES:
        raise UsageError(f"--format {choice!r}: choose one of {', '.join(FORMAT_CHOICES)}")
    names = ["html", "pdf"] if choice == "all" else [choice]
    if choice == "all" or postmortem:
        names += ["postmortem-html", "postmortem-md"]
    return names


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that it appears complete or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_bundle(
    bundle_path: str | Path,
    formats: list[str],
    out: str | Path,
    template_dir: str | Path | None = None,
    policy_path: str | Path | None = None,
) -> list[Path]:
    """Evaluate a bundle and write each requested format under ``out``; return the paths."""
    from evidence.bundle import read_bundle
    from evidence.evaluate import evaluate_bundle
    from evidence.policy import default_policy, load_policy
    from evidence.render.context import build_context
    from evidence.render.templates import environment

    bundle = read_bundle(bundle_path)
    policy = load_policy(policy_path) if policy_path else default_policy()
    ev = evaluate_bundle(bundle, policy)
    # The archival PDF (PDF/A-3b) carries the manifest and the attestation that prove it.
    attach = ("manifest.json", "attestation.intoto.jsonl", "attestation.sigstore.json")
    job = RenderJob(environment(template_dir), build_context(bundle, ev))
    job.attachments = {n: (bundle.path / n).read_bytes() for n in attach if (bundle.path / n).is_file()}
    stem = bundle.path.name
    written = []
    for name in formats:
        fn, suffix = FORMATS[name]
        data = fn(job)
        target = Path(out) / f"{stem}{suffix}"
        write_atomic(target, data)
        written.append(target)
    return written
