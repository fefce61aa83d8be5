#!/usr/bin/env bash
# Fetches GraphiQL's browser assets from the npm registry (`npm pack`, which
# checks each tarball against the registry's integrity hash) and writes them
# here with their licences and SHA256SUMS. `--check` fetches the same
# versions and fails unless the files here are exactly theirs.
#
# To update: change a version below, run this script, build bff-server (its
# build script hashes and compresses whatever is here), run the tests
# (`cargo test -p bff-server`, `cargo test -p web-bff --test api graphiql`),
# and update the versions in README.md.
set -euo pipefail
cd "$(dirname "$0")"

REACT=18.3.1
GRAPHIQL=3.9.0

check=false
[ "${1:-}" = "--check" ] && check=true

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "react@$REACT" "react-dom@$REACT" "graphiql@$GRAPHIQL" >/dev/null)
for package in react react-dom graphiql; do
  mkdir -p "$work/$package"
  tar xzf "$work"/"$package"-[0-9]*.tgz -C "$work/$package"
done

# file here <- file in the package
files=(
  "react.production.min.js:react/package/umd/react.production.min.js"
  "react-dom.production.min.js:react-dom/package/umd/react-dom.production.min.js"
  "graphiql.min.js:graphiql/package/graphiql.min.js"
  "graphiql.min.css:graphiql/package/graphiql.min.css"
  "LICENSE.react:react/package/LICENSE"
  "LICENSE.react-dom:react-dom/package/LICENSE"
  "LICENSE.graphiql:graphiql/package/LICENSE"
)
mkdir -p "$work/out"
for pair in "${files[@]}"; do
  cp "$work/${pair#*:}" "$work/out/${pair%%:*}"
done
(cd "$work/out" && sha256sum -- * >SHA256SUMS)

if $check; then
  for pair in "${files[@]}" "SHA256SUMS:"; do
    name="${pair%%:*}"
    cmp -s "$work/out/$name" "$name" || { echo "$name differs from npm's" >&2; exit 1; }
  done
  echo "the assets are npm's react@$REACT, react-dom@$REACT, graphiql@$GRAPHIQL"
else
  cp "$work"/out/* .
  echo "updated to react@$REACT, react-dom@$REACT, graphiql@$GRAPHIQL"
fi
