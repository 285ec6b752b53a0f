#!/usr/bin/env bash
# Install what `make demo` and `make test` need, and nothing else: the Debian packages
# that are missing, then a .venv with the project and its dev tools at pinned versions.
# A second run on a machine that has everything only checks (a second or two).
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(prometheus chromium libatomic1 fontconfig fonts-dejavu-core fonts-liberation
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 poppler-utils)

missing=()
for p in "${DEBS[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "setup: need root to apt-get install ${missing[*]} (or install them yourself)" >&2
    exit 1
  fi
  # Keep the prometheus package from starting its system service: the tests start their
  # own server on a free loopback port.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  trap '[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus || true
  fi
fi

PY=${PYTHON:-python3}
stamp=.venv/.evidence-installed
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
  rm -f "$stamp"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "setup: installing the project and its dev tools into .venv (pinned by constraints.txt)" >&2
  # The distribution was called `evidence` before it became flagger-evidence: drop the old record
  # (the install below puts the `evidence` command back).
  if .venv/bin/python -m pip show -q evidence >/dev/null 2>&1; then
    .venv/bin/python -m pip uninstall -y -q evidence >/dev/null
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
  touch "$stamp"
fi
# The archive tests cross-check Sigstore bundles with another implementation: npm's
# @sigstore/verify, pinned by tests/node/package-lock.json, installed into tests/node/.
if command -v npm >/dev/null 2>&1; then
  if [ ! -d tests/node/node_modules/@sigstore/verify ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
    echo "setup: installing @sigstore/verify into tests/node (pinned by its package-lock.json)" >&2
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    touch tests/node/node_modules
  fi
else
  echo "setup: npm not found; the @sigstore/verify cross-check test will fail (install Node.js)" >&2
fi
