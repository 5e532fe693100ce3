#!/bin/bash
# Build lxcsd's Debian package from this tree with Debian's own tooling (debian/: debhelper,
# dh-python, dpkg-buildpackage), as root or not:
#
#   packaging/build-deb.sh [--out DIR] [--version VERSION]
#
# The .deb lands in DIR (default ./build/deb); install it with apt-get install ./lxcsd_*.deb.
# --version adds a changelog entry first (tests build an upgrade this way). The build runs in
# a copy of the tree, which may be read-only, and needs the Build-Depends of debian/control:
# packaging/setup.sh test installs them. lintian ./build/deb/lxcsd_*.deb checks the result.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
out="$src/build/deb"
version=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --version) version="$2"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-deb.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# What the package is built from; tests, benchmarks and build leftovers are not part of it.
tar -C "$src" --exclude=./.git --exclude=./build --exclude=./tests --exclude=./bench \
    --exclude=__pycache__ --exclude='*.egg-info' --exclude=./.mypy_cache \
    --exclude=./.ruff_cache --exclude=./.pytest_cache -cf - . | (mkdir "$work/src" && tar -C "$work/src" -xf -)
if [ -n "$version" ]; then
    { printf 'lxcsd (%s) bookworm; urgency=medium\n\n  * Rebuilt by packaging/build-deb.sh --version.\n\n' "$version"
      printf ' -- lxcsd developers <lxcsd@users.noreply.github.com>  %s\n\n' "$(date -R)"
      cat "$work/src/debian/changelog"; } > "$work/changelog"
    mv "$work/changelog" "$work/src/debian/changelog"
fi
# Debian's own tools first on PATH, as on a build daemon (a pyenv python3.11 would be found
# by pybuild otherwise).
(cd "$work/src" && PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    dpkg-buildpackage --build=binary --no-sign -Zgzip >"$work/build.log" 2>&1) || {
    tail -n 40 "$work/build.log" >&2; echo "build-deb.sh: dpkg-buildpackage failed" >&2; exit 1; }
mkdir -p "$out"
cp "$work"/lxcsd_*.deb "$out/"
ls "$out"/lxcsd_"$(cd "$work/src" && dpkg-parsechangelog -S Version)"_all.deb
