#!/usr/bin/env bash
# update-socketio-client.sh — refresh the vendored socket.io browser client.
#
# Parley serves /socket.io/socket.io.js (and .min.js, and their maps) the way
# a Node socket.io server does: the official bundle of the npm package
# socket.io-client. This script takes that bundle from npm and writes it to
# web/static/socket.io/, with the package's LICENSE and a VERSION file that
# records the version and the sha256 of every file.
#
# Usage: scripts/update-socketio-client.sh [VERSION]   (default: newest 4.x)
#
# The tarball is checked against the registry's published integrity
# (`npm view socket.io-client@VER dist.integrity`, an SRI string) before
# anything is copied, so a tampered or truncated download never lands.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$repo_root/web/static/socket.io"
spec="${1:-4.x}"

command -v npm >/dev/null || { echo "npm is required" >&2; exit 1; }
command -v sha256sum >/dev/null || { echo "sha256sum is required" >&2; exit 1; }

# Resolve a range such as 4.x to one exact version (the newest that matches).
version="$(npm view "socket.io-client@$spec" version --json | node -e '
  let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
    let v = JSON.parse(s); if (Array.isArray(v)) v = v[v.length - 1]; process.stdout.write(v);
  });')"
case "$version" in
  4.*) ;;
  *) echo "refusing socket.io-client $version: Parley speaks Engine.IO 4, serve a 4.x client" >&2; exit 1 ;;
esac
integrity="$(npm view "socket.io-client@$version" dist.integrity)"
[ -n "$integrity" ] || { echo "no dist.integrity for socket.io-client@$version" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "fetching socket.io-client@$version"
( cd "$tmp" && npm pack "socket.io-client@$version" --silent >/dev/null )
tarball="$tmp/socket.io-client-$version.tgz"
[ -f "$tarball" ] || { echo "npm pack did not produce $tarball" >&2; exit 1; }

# Check the SRI string: "<algo>-<base64 digest>" (npm publishes sha512).
algo="${integrity%%-*}"
want="${integrity#*-}"
case "$algo" in
  sha512|sha384|sha256) ;;
  *) echo "unsupported integrity algorithm: $algo" >&2; exit 1 ;;
esac
got="$(openssl dgst -"$algo" -binary "$tarball" | base64 -w0)"
if [ "$got" != "$want" ]; then
  echo "integrity mismatch for socket.io-client@$version" >&2
  echo "  registry: $integrity" >&2
  echo "  tarball:  $algo-$got" >&2
  exit 1
fi
echo "integrity ok ($algo)"

tar -xzf "$tarball" -C "$tmp"
pkg="$tmp/package"
files=(socket.io.js socket.io.js.map socket.io.min.js socket.io.min.js.map)
for f in "${files[@]}"; do
  [ -f "$pkg/dist/$f" ] || { echo "package lacks dist/$f" >&2; exit 1; }
done
[ -f "$pkg/LICENSE" ] || { echo "package lacks LICENSE" >&2; exit 1; }

mkdir -p "$dest"
for f in "${files[@]}"; do
  cp "$pkg/dist/$f" "$dest/$f"
done
cp "$pkg/LICENSE" "$dest/LICENSE"

{
  echo "socket.io-client $version"
  echo "source: npm package socket.io-client@$version (dist/), integrity $integrity"
  echo "refreshed by scripts/update-socketio-client.sh; do not edit these files by hand"
  echo
  echo "sha256:"
  ( cd "$dest" && sha256sum "${files[@]}" LICENSE )
} > "$dest/VERSION"

echo "wrote $dest (socket.io-client $version)"
cat "$dest/VERSION"
