#!/usr/bin/env bash
# Fetch the PINNED @duckdb/duckdb-wasm (and the apache-arrow it imports) with npm into a
# cache outside the repository (default ~/.cache/hpclab/duckdb-wasm; HPCLAB_DUCKDB_CACHE
# overrides), check each tarball against its pinned sha512 integrity, and unpack only the
# files the site's SQL page needs. `hpclab site build` copies them into the site; without
# them the SQL page says in one line to run this script. Idempotent; no network when the
# files are already there. (issue 17)
set -euo pipefail
DUCKDB_VERSION=1.32.0
DUCKDB_SHA512=IewXTNYEjsZCPE9weUWgtjGxUlMRo7qhX0GF6tq/KjK8bnY+RAl4cyUdYUfcdzbyb4b9ZxPC+FOsCcxgaKFWMg==
ARROW_VERSION=17.0.0
ARROW_SHA512=X0p7auzdnGuhYMVKYINdQssS4EcKec9TCXyez/qtJt32DrIMGbzqiaMiQ0X6fQlQpw8Fl0Qygcv4dfRAr5Gu9Q==
CACHE=${HPCLAB_DUCKDB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hpclab/duckdb-wasm}
DEST="$CACHE/$DUCKDB_VERSION"
FILES=(duckdb-browser.mjs duckdb-browser-eh.worker.js duckdb-eh.wasm Arrow.es2015.min.js)
if [ -f "$DEST/.complete" ]; then echo "duckdb-wasm $DUCKDB_VERSION: $DEST"; exit 0; fi
command -v npm >/dev/null || { echo "vendor_duckdb: npm not found" >&2; exit 1; }
mkdir -p "$CACHE/tgz" "$DEST"
fetch() {  # name version sha512 -> tarball path
  local tgz
  tgz=$(cd "$CACHE/tgz" && npm pack --silent "$1@$2" | tail -1)
  local got
  got=$(openssl dgst -sha512 -binary "$CACHE/tgz/$tgz" | base64 -w0)
  if [ "$got" != "$3" ]; then echo "vendor_duckdb: $tgz: sha512 $got, expected $3" >&2; exit 1; fi
  echo "$CACHE/tgz/$tgz"
}
duck=$(fetch @duckdb/duckdb-wasm "$DUCKDB_VERSION" "$DUCKDB_SHA512")
arrow=$(fetch apache-arrow "$ARROW_VERSION" "$ARROW_SHA512")
tar xzf "$duck" -C "$DEST" --strip-components=2 package/dist/duckdb-browser.mjs \
  package/dist/duckdb-browser-eh.worker.js package/dist/duckdb-eh.wasm
tar xzf "$arrow" -C "$DEST" --strip-components=1 package/Arrow.es2015.min.js
for f in "${FILES[@]}"; do [ -s "$DEST/$f" ] || { echo "vendor_duckdb: $f missing" >&2; exit 1; }; done
touch "$DEST/.complete"
echo "duckdb-wasm $DUCKDB_VERSION: $DEST"
