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
from typing import TYPE_CHECKING, Any

from evidence.errors import RenderError, UsageError

if TYPE_CHECKING:
    from evidence.evaluate import Evaluation

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
    from evidence.render.html import render_static_html

    # The decision record inside the postmortem draws its charts as images: the interactive
    # record is its own file, so the pack carries no second copy of plotly.js.
    return render_static_html(job.env, job.context, job.charts_svg(), template="postmortem.html.j2").encode("utf-8")


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
    allow_unverified: bool = False,
    evaluation: Evaluation | None = None,
) -> list[Path]:
    """Verify a bundle and evaluate it once (or take its ``evaluation``), then write each format under ``out``; return the paths.

    A bundle that fails verification is refused unless ``allow_unverified``; then every page says UNVERIFIED.
    """
    from evidence.extras import require_extra

    require_extra("render", "evidence render", ("jinja2", "weasyprint") if "pdf" in formats else ("jinja2",))
    from evidence.bundle import inside_bundle, open_bundle
    from evidence.evaluate import evaluate_bundle
    from evidence.policy import default_policy, load_policy
    from evidence.render.context import build_context
    from evidence.render.templates import environment

    target_bundle = inside_bundle(Path(out))
    if target_bundle is not None:
        raise UsageError(
            f"--out {out} is inside the bundle {target_bundle}: reports never go into a bundle; choose another folder"
        )
    bundle = open_bundle(bundle_path, allow_unverified=allow_unverified)
    if evaluation is not None:
        if policy_path:
            raise UsageError("give a policy or an evaluation to render, not both: the evaluation already holds its policy")
        if evaluation.bundle_id != bundle.bundle_id:
            raise UsageError(f"the evaluation is of bundle {evaluation.bundle_id}, not of {bundle.path} ({bundle.bundle_id})")
        ev = evaluation
    else:
        ev = evaluate_bundle(bundle, load_policy(policy_path) if policy_path else default_policy())
    # The archival PDF (PDF/A-3b) carries the manifest and the attestation that prove it.
    attach = ("manifest.json", "attestation.intoto.jsonl", "attestation.sigstore.json")
    job = RenderJob(environment(template_dir), build_context(bundle, ev))
    job.attachments = {n: (bundle.path / n).read_bytes() for n in attach if (bundle.path / n).is_file()}
    # `render .` names the reports after the bundle folder, not after "." (a hidden ".decision-record.html").
    stem = bundle.path.resolve().name
    written = []
    for name in formats:
        fn, suffix = FORMATS[name]
        data = fn(job)
        target = Path(out) / f"{stem}{suffix}"
        try:
            write_atomic(target, data)
        except OSError as exc:
            raise RenderError(
                f"cannot write {target.name} under --out {out}: {exc.strerror or exc}; choose a writable folder with free space"
            ) from None
        written.append(target)
    return written
