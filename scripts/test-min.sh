#!/usr/bin/env bash
# The floors proven: a separate .venv-min with the base dependencies at exactly the floors that
# pyproject.toml declares (scripts/floors.py writes them as pip constraints), the package
# installed without extras, then the tests that need only the base: collect, evaluate, show,
# verify and sign against the real Prometheus and the loopback Kubernetes API server.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-min
PY=${PYTHON:-python3}
stamp=$VENV/.floors-installed
if [ ! -x $VENV/bin/python ]; then
  "$PY" -m venv $VENV
  rm -f "$stamp"
fi
"$PY" scripts/floors.py > $VENV/floors.new
if [ ! -f "$stamp" ] || ! cmp -s $VENV/floors.new $VENV/floors.txt || [ pyproject.toml -nt "$stamp" ]; then
  mv $VENV/floors.new $VENV/floors.txt
  echo "test-min: installing the base dependencies at their floors into $VENV" >&2
  # The test tools (pytest; jsonschema for the schema checks) at the versions the dev tools pin;
  # what the base and the tools pull in besides floats.
  pin() { sed -n "s/^$1==/$1==/p" constraints.txt; }
  $VENV/bin/python -m pip install -q --disable-pip-version-check -c $VENV/floors.txt -e . "$(pin pytest)" "$(pin jsonschema)"
  touch "$stamp"
fi
rm -f $VENV/floors.new

# Not base: this one renders (the [render] extra).
exec $VENV/bin/pytest -q -p no:cacheprovider \
  tests/test_collect.py tests/test_analysis_scenarios.py tests/test_show.py tests/test_cli_evaluate.py \
  tests/test_sources_kube.py tests/test_sources_kube_flagger.py tests/test_bundle_manifest.py tests/test_shapes.py \
  tests/test_analysis_replay.py tests/test_analysis_counters.py tests/test_analysis_criteria.py \
  tests/test_analysis_timeline.py tests/test_analysis_evaluate.py tests/test_model.py tests/test_policy.py \
  tests/test_flagger_checks.py tests/test_two_rollouts.py tests/test_kubernetes_only.py tests/test_discovery.py \
  tests/test_names.py tests/test_archive_sign.py tests/test_bundle_footer.py tests/test_counters_arrays.py tests/test_collect_tables.py \
  tests/test_counters_within.py tests/test_queries_lookahead.py tests/test_samplestream.py tests/test_arrays.py tests/test_memory.py tests/test_prometheus_compression.py \
  --deselect tests/test_collect.py::test_secrets_in_every_disguise_stay_out_of_bundles_and_reports \
  "$@"
