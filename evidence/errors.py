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
    │   │   └── PrometheusTimeout      no answer within the timeout, after retries
    │   └── KubeError                  API errors; 401/403 name the permission
    ├── NotFoundError                  unknown canary, no rollout in the window
    ├── PartialError                   some queries failed; the bundle was not written
    ├── RenderError                    a template or chart failed
    ├── SignError                      a key is missing, unreadable or of the wrong kind; signing failed
    └── StoreError                     an archive store refused, vanished or is misconfigured
        └── StoreAuthError             the store refused the credentials (wrong key or secret)

Every message says what went wrong and how to fix it.
"""

from __future__ import annotations


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


class KubeError(SourceError):
    """The Kubernetes API failed or refused."""


class NotFoundError(EvidenceError):
    """The canary or its rollout was not found."""


class PartialError(EvidenceError):
    """Some evidence could not be fetched; nothing was written without --allow-partial."""


class RenderError(EvidenceError):
    """A report could not be rendered."""


class SignError(EvidenceError):
    """A key is missing, unreadable or of the wrong kind, or a bundle could not be signed."""


class StoreError(EvidenceError):
    """An archive store (folder or S3) refused a request, vanished, or is misconfigured."""


class StoreAuthError(StoreError):
    """The store refused the credentials."""
