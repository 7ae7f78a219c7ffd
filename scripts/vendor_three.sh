#!/usr/bin/env bash
# Vendor a pinned three.js into the package, for the page of `dualtalk serve` (served from the wheel, no CDN).
# Copies only build/three.module.min.js, the build/three.core.min.js it imports, and three's LICENSE into
# src/dualtalk/assets/web/vendor/three-VERSION/, writes their SHA-256 sums, removes other vendored versions
# and points the page's import map at the new one.
# Usage: bash scripts/vendor_three.sh [VERSION]        (default: the pinned version below; needs npm)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-0.182.0}"
web="src/dualtalk/assets/web"
dest="$web/vendor/three-$version"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "three@$version" >/dev/null && tar xzf "three-$version.tgz")
grep -q '"./three.core.min.js"' "$tmp/package/build/three.module.min.js" \
  || { echo "vendor_three: three.module.min.js of $version does not import ./three.core.min.js" >&2; exit 1; }
find "$web/vendor" -mindepth 1 -maxdepth 1 -name 'three-*' ! -name "three-$version" -exec rm -rf {} + 2>/dev/null || true
mkdir -p "$dest"
cp "$tmp/package/build/three.module.min.js" "$tmp/package/build/three.core.min.js" "$tmp/package/LICENSE" "$dest/"
(cd "$dest" && sha256sum three.module.min.js three.core.min.js LICENSE > SHA256SUMS)
sed -i -E "s#/web/vendor/three-[0-9][0-9.]*/#/web/vendor/three-$version/#" "$web/index.html"
echo "vendor_three: three $version in $dest"
