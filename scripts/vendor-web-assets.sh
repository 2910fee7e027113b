#!/usr/bin/env bash
# Fetch the vendored front-end packages (static/vendor/README.md) from the npm registry and
# copy their files in, without source-map comments. Run by hand to upgrade; bump versions here.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent @tabler/core@1.6.1 chart.js@4.6.1 htmx.org@2.0.11 axe-core@4.14.1 >/dev/null)
for tarball in "$work"/*.tgz; do
  mkdir -p "${tarball%.tgz}" && tar xzf "$tarball" -C "${tarball%.tgz}"
done
tabler="$work/tabler-core-1.6.1/package" chart="$work/chart.js-4.6.1/package"
htmx="$work/htmx.org-2.0.11/package" axe="$work/axe-core-4.14.1/package"
cp "$tabler/dist/css/tabler.min.css" "$tabler/dist/js/tabler.min.js" static/vendor/tabler/
cp "$chart/dist/chart.umd.min.js" "$chart/LICENSE.md" static/vendor/chartjs/
cp "$htmx/dist/htmx.min.js" "$htmx/LICENSE" static/vendor/htmx/
cp "$axe/axe.min.js" "$axe/LICENSE" tests/support/axe/
for file in static/vendor/*/*.min.js static/vendor/*/*.min.css; do
  sed -i -E 's#/[/*][#@] sourceMappingURL=[^ *]*( \*/)?##' "$file"
done
