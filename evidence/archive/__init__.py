"""The archive for auditors: signed bundles, stores that hold one bundle per rollout, the fleet ledger.

* ``sign.py``    keys (ECDSA P-256), the in-toto Statement in DSSE, the Sigstore bundle, signature checks
* ``check.py``   verification that lists every problem, with a key, and over a whole store
* ``summary.py`` the per-bundle ``summary.json`` (signed content) and the one reader of manifest fields
* ``store.py``   the store API (``open_store``), the layout, the folder store; ``s3.py`` the S3 store
* ``ledger.py``  ``history`` with DuckDB; ``fleet.py`` the fleet figures; ``report.py`` table and CSV
"""
