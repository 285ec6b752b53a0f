"""The one Jinja environment: autoescape on, StrictUndefined, templates from report_templates/.

Event messages, names and labels are untrusted text: HTML templates escape everything they
print, every printed string has its control and bidi-formatting characters made visible
(``finalize``), and the Markdown template passes text through ``md`` (which neutralises HTML,
bare URLs and the characters that would break a table).  ``--template-dir`` puts a user's
folder in front, so any template can be overridden by file name; a user's templates are
untrusted code too, so with ``--template-dir`` the environment is Jinja's immutable sandbox
(no attribute walks to ``os``, no mutation of the context).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evidence.errors import RenderError
from evidence.textsafe import visible

_HERE = Path(__file__).resolve().parent


def default_template_dir() -> Path:
    """Return report_templates/: inside the installed package, or at the top of a checkout."""
    for candidate in (_HERE.parent / "report_templates", _HERE.parent.parent / "report_templates"):
        if (candidate / "decision_record.html.j2").is_file():
            return candidate
    raise RenderError("report_templates/ not found beside the evidence package; reinstall evidence")


_MD_INLINE = re.compile(r"([\\`*_\[\]|])")
_MD_URL = re.compile(r"(?i)\b(https?|ftp|file|mailto)(:)|\b(www)(\.)")
_MD_LINE_START = re.compile(r"^(#|[-+](?=\s))")
_MD_ORDERED = re.compile(r"^(\d+)\.(?=\s)")


def md_escape(value: Any) -> str:
    """Return text safe inside Markdown and a table cell, escaping only what would change meaning.

    HTML is neutralised (``<``, ``>``, ``&``), as are emphasis, code, links and table pipes;
    a leading ``#``, ``>``, list marker or ``1.`` is escaped.  Parentheses, ``!`` and the like
    stay readable, so the text pastes cleanly into a wiki or a ticket.
    """
    text = " ".join(visible(str(value)).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_INLINE.sub(r"\\\1", text)
    # Bare URLs would be autolinked by wikis and GFM: an event message must never become a link.
    text = _MD_URL.sub(lambda m: f"{m.group(1) or m.group(3)}\\{m.group(2) or m.group(4)}", text)
    text = _MD_LINE_START.sub(r"\\\1", text)
    return _MD_ORDERED.sub(r"\1\\.", text)


def environment(template_dir: str | Path | None = None) -> Any:
    """Return the Jinja environment, with ``template_dir`` (if given) searched first."""
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        p = Path(template_dir)
        if not p.is_dir():
            raise RenderError(f"--template-dir {p}: not a folder")
        loaders.append(jinja2.FileSystemLoader(str(p)))
    loaders.append(jinja2.FileSystemLoader(str(default_template_dir())))
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    cls = ImmutableSandboxedEnvironment if template_dir is not None else jinja2.Environment
    env = cls(
        loader=jinja2.ChoiceLoader(loaders),
        finalize=_finalize,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2", "html", "htm", "svg.j2"), default_for_string=True, default=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    return env


def _finalize(value: Any) -> Any:
    """Make control and bidi-formatting characters of every printed string visible (our own markup is left alone)."""
    from markupsafe import Markup

    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value


def render_template(env: Any, name: str, context: dict[str, Any]) -> str:
    """Render one template; any template error becomes a RenderError naming the template, never a traceback."""
    import jinja2
    from jinja2.exceptions import SecurityError

    try:
        return str(env.get_template(name).render(**context))
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name} not found (looked in --template-dir and report_templates/)") from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"template {exc.filename or name}, line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        where = _template_line(exc, name)
        raise RenderError(f"template {where}: {exc.message}; an overriding template may be out of date") from None
    except SecurityError as exc:
        where = _template_line(exc, name)
        raise RenderError(f"template {where}: refused by the sandbox ({exc}); templates may only lay out the report") from None
    except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        # A user's template that raises (e.g. {{ 1 / 0 }}, a filter on the wrong type) is the template's fault.
        where = _template_line(exc, name)
        raise RenderError(f"template {where} failed: {type(exc).__name__}: {exc}; check the template (--template-dir)") from None


def _template_line(exc: BaseException, name: str) -> str:
    """Return ``file, line N`` of the innermost template frame of an error (Jinja maps its frames to template lines)."""
    tb, found = exc.__traceback__, name
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = f"{Path(filename).name}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return found
