"""The one exception tree of evidence; only ``cli.py`` turns these into exit codes.

::

    EvidenceError                      exit 1 unless said otherwise
    ├── UsageError                     exit 2: bad option values, bad NAMESPACE/CANARY, bad window
    ├── InputError                     a file or folder given as input is unusable
    │   ├── DumpError                  --from-dump folder: nothing usable, unreadable files
    │   ├── PolicyError                --policy file: unknown criterion, bad threshold
    │   └── BundleError                a bundle is missing, incomplete or from a newer schema
    │       └── VerifyError            a bundle's file differs from its manifest
    ├── SourceError                    a source did not answer as needed
    │   ├── PrometheusError            unreachable, 5xx, bad answer
    │   │   ├── PrometheusTimeout      no complete answer within the timeout
    │   │   ├── PrometheusPartial      an answer with warnings: a store or replica did not answer
    │   │   └── PrometheusInvalidQuery 400 bad_data: the query itself is rejected (permanent)
    │   └── KubeError                  API errors; 401/403 name the permission
    ├── NotFoundError                  unknown canary, no rollout in the window
    ├── PartialError                   some queries failed; the bundle was not written
    ├── RenderError                    a template or chart failed
    ├── MissingExtraError              a command needs an extra that is not installed (pip install 'flagger-evidence[EXTRA]')
    ├── SignError                      a key is missing, unreadable or of the wrong kind; signing failed
    └── StoreError                     an archive store refused, vanished or is misconfigured
        └── StoreAuthError             the store refused the credentials (wrong key or secret)

Every message says what went wrong and how to fix it.
"""

from __future__ import annotations

import stat
from pathlib import Path


class EvidenceError(Exception):
    """Base of every error evidence raises on purpose."""

    exit_code = 1


class UsageError(EvidenceError):
    """The command line asked for something impossible."""

    exit_code = 2


class InputError(EvidenceError):
    """An input file or folder is unusable."""


class DumpError(InputError):
    """A --from-dump folder holds nothing usable."""


class PolicyError(InputError):
    """A policy file is malformed."""


class BundleError(InputError):
    """A bundle is missing, incomplete or unreadable."""


class VerifyError(BundleError):
    """A bundle's files do not match its manifest."""


class SourceError(EvidenceError):
    """A data source did not answer as needed."""


class PrometheusError(SourceError):
    """Prometheus (or a compatible API) failed."""


class PrometheusTimeout(PrometheusError):
    """Prometheus did not answer within the timeout (after the bounded retries)."""


class PrometheusPartial(PrometheusError):
    """Prometheus answered, but said (in ``warnings``) that part of the data is missing."""


class PrometheusInvalidQuery(PrometheusError):
    """Prometheus rejected the query as invalid (400 bad_data): re-running will not help."""


class KubeError(SourceError):
    """The Kubernetes API failed or refused."""


class NotFoundError(EvidenceError):
    """The canary or its rollout was not found."""


class PartialError(EvidenceError):
    """Some evidence could not be fetched; nothing was written without --allow-partial."""


class RenderError(EvidenceError):
    """A report could not be rendered."""


class MissingExtraError(EvidenceError):
    """A command needs an optional part of the install (an extra) that is missing."""


def read_bounded(path: str | Path, option: str, limit: int, error: type[EvidenceError]) -> str:
    """Read a small text input file (policy, token): a regular file of at most ``limit`` bytes, UTF-8.

    ``/dev/zero``, a FIFO or a huge file would otherwise exhaust memory or block forever.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise error(f"{option} {p}: no such file") from None
    except OSError as exc:
        raise error(f"{option} {p}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{option} {p}: not a regular file; give the path of a file")
    try:
        with p.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise error(f"{option} {p}: cannot read it ({exc.strerror})") from None
    if len(data) > limit:
        raise error(f"{option} {p}: larger than {limit // 1024} KiB; is it the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{option} {p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


class SignError(EvidenceError):
    """A key is missing, unreadable or of the wrong kind, or a bundle could not be signed."""


class StoreError(EvidenceError):
    """An archive store (folder or S3) refused a request, vanished, or is misconfigured."""


class StoreAuthError(StoreError):
    """The store refused the credentials."""
