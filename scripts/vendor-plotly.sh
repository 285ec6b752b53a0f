#!/usr/bin/env bash
# Re-fetch the plotly.js bundle the HTML records inline, from npm at a pinned version, into
# evidence/render/vendor/ (committed; shipped in the wheel; never fetched at run time).
# The basic bundle holds the scatter traces the record draws (plus bar and pie) and is a
# quarter of the full plotly.js. Bump VERSION together with plotly.py's bundled plotly.js.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE=plotly.js-basic-dist-min
VERSION=${1:-4.1.1}
DEST=evidence/render/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null && tar xzf ./*.tgz)
cp "$tmp/package/plotly-basic.min.js" "$DEST/plotly-basic.min.js"
cp "$tmp/package/LICENSE" "$DEST/plotly-basic.LICENSE"
sha=$(sha256sum "$DEST/plotly-basic.min.js" | cut -d' ' -f1)
cat > "$DEST/plotly-basic.json" <<JSON
{
  "package": "$PACKAGE",
  "version": "$VERSION",
  "file": "plotly-basic.min.js",
  "sha256": "$sha",
  "license": "MIT",
  "license_file": "plotly-basic.LICENSE",
  "traces": ["scatter", "bar", "pie"]
}
JSON
echo "vendored $PACKAGE@$VERSION ($sha) into $DEST"
