#!/bin/bash
# Install lxcsd from this source tree, the way a user or a package would.
#
#   packaging/install.sh [--prefix /usr/local] [--offline]
#   packaging/install.sh --system-python --destdir DIR --prefix /usr --unitdir /lib/systemd/system
#
# --offline installs without the network: the dependencies must already be in the venv
# (the systemd test sandbox sees the host's venv through its overlay and has no network).
# --system-python is the Debian package's way (debian/rules): lxcsd and its dependencies
# are Debian's python3 packages in /usr/lib/python3/dist-packages, so no venv is made;
# the files are staged under --destdir and nothing is enabled (the package scripts do it).
#
# Layout (docs/design.md, "Installed layout"):
#   $prefix/lib/lxcsd/venv                         Python environment on Debian's /usr/bin/python3
#   $prefix/bin/lxcsd                              the command line
#   $prefix/libexec/lxcsd/lxcsd-helper             what lxc@NAME.service runs
#   $prefix/libexec/lxcsd/lxcsd-console            what lxcsd-console.service runs
#   $prefix/libexec/lxcsd/lxcsd-net                what lxcsd-net.service runs
#   $prefix/libexec/lxcsd/lxcsd-autostart          what lxcsd-autostart.service runs
#   $prefix/libexec/lxcsd/lxcsd-attach-exec        lxcsd attach's static exec stub (gcc -static)
#   $prefix/lib/systemd/system-generators/lxcsd-generator
#   $prefix/lib/systemd/system/                    units (--unitdir), and lxc.service.d/
#   $prefix/share/lxcsd/                           shipped defaults (config/)
#   $prefix/share/man/man1, man8                   lxcsd(1), lxcsd-generator(8), lxc@.service(8)
#   $prefix/share/bash-completion/completions/lxcsd
set -euo pipefail
# Without this, a failing pip inside $(install_package) would not stop the script.
shopt -s inherit_errexit

prefix=/usr/local
offline=0
system_python=0
destdir=""
unitdir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --offline) offline=1; shift ;;
        --system-python) system_python=1; shift ;;
        --destdir) destdir="$2"; shift 2 ;;
        --unitdir) unitdir="$2"; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

src=$(cd "$(dirname "$0")/.." && pwd)
constraints="$src/packaging/constraints.txt"   # exact versions of what pip installs
python=/usr/bin/python3          # Debian's: starts in ~9 ms, against ~44 ms for pyenv builds
venv="$prefix/lib/lxcsd/venv"
libexec="$prefix/libexec/lxcsd"
unitdir="${unitdir:-$prefix/lib/systemd/system}"
gendir="$prefix/lib/systemd/system-generators"
datadir="$prefix/share/lxcsd"
mandir="$prefix/share/man"
completiondir="$prefix/share/bash-completion/completions"
dist_packages=/usr/lib/python3/dist-packages   # Debian's python3-* packages

step() { echo "install.sh: $*"; }

make_venv() {
    if [ ! -x "$venv/bin/python" ]; then
        [ "$offline" = 1 ] && { echo "install.sh: --offline needs an existing $venv" >&2; exit 1; }
        step "creating $venv"
        # --system-site-packages: Debian's python3-seccomp (libseccomp's own binding) is not on PyPI.
        "$python" -m venv --system-site-packages "$venv"
    fi
    if [ "$offline" = 0 ]; then
        # --offline builds without build isolation, so the venv itself must be able to build.
        "$venv/bin/pip" install -q -c "$constraints" setuptools wheel
    fi
}

install_package() {
    # A fresh build directory: the source tree may be read-only (sandbox overlay, VM disk).
    local build
    build=$(mktemp -d)
    cp -a "$src/pyproject.toml" "$src/README.md" "$src/lxcsd" "$build/"
    if [ "$offline" = 1 ]; then
        "$venv/bin/pip" install -q --no-deps --no-index --no-build-isolation --force-reinstall "$build"
    else
        "$venv/bin/pip" install -q --force-reinstall --no-deps "$build"
        "$venv/bin/pip" install -q -c "$constraints" "$build"
    fi
    rm -rf "$build"
    local purelib
    purelib=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    write_installed "$purelib/lxcsd"
    "$venv/bin/python" -m compileall -q "$purelib/lxcsd"
    echo "$purelib"
}

# lxcsd/_installed.py in the package directory $1: where this installation put things
# (lxcsd.paths reads it).
write_installed() {
    printf 'PREFIX = %s\nUNITDIR = %s\n' "'$prefix'" "'$unitdir'" > "$1/_installed.py"
}

# A launcher for a hot path: -IS (-I -S in one word: the kernel passes everything after the
# interpreter as a single argument, and python3 rejects "-I -S") skips the site module (~3 ms) and any environment
# influence; the venv's site-packages and Debian's dist-packages (python3-seccomp) are put
# on sys.path by hand instead.
write_launcher() {
    local dest="$destdir$1" module="$2" purelib="$3" extra=""
    [ "$purelib" = "$dist_packages" ] || extra=$'\nsys.path.append("'"$dist_packages"'")'
    install -d "$(dirname "$dest")"
    cat > "$dest.tmp" <<EOF
#!$python -IS
import sys
sys.path[:0] = ["$purelib"]$extra
from $module import main
sys.exit(main())
EOF
    chmod 755 "$dest.tmp"
    mv -f "$dest.tmp" "$dest"
}

# The static stub lxcsd attach runs from a sealed memfd (libexec/lxcsd-attach-exec.c). Built
# with gcc and glibc's static libc (libc6-dev); without a compiler, a copy built beforehand
# at build/lxcsd-attach-exec in the source tree (newer than the source) is used.
install_attach_exec() {
    local c="$src/libexec/lxcsd-attach-exec.c" prebuilt="$src/build/lxcsd-attach-exec"
    local out="$libexec/lxcsd-attach-exec"
    install -d "$libexec"
    if command -v gcc >/dev/null 2>&1; then
        gcc -static -Os -s -Wall -Wextra -o "$out.tmp" "$c"
    elif [ -x "$prebuilt" ] && [ "$prebuilt" -nt "$c" ]; then
        cp "$prebuilt" "$out.tmp"
    else
        echo "install.sh: gcc and libc6-dev are needed to build $c" >&2
        exit 1
    fi
    chmod 755 "$out.tmp"
    mv -f "$out.tmp" "$out"
}

install_units() {
    install -d "$destdir$unitdir"
    local f out
    for f in "$src"/units/*; do
        [ -f "$f" ] || continue
        out="$destdir$unitdir/$(basename "${f%.in}")"
        sed -e "s|@LIBEXECDIR@|$libexec|g" -e "s|@BINDIR@|$prefix/bin|g" \
            -e "s|@DATADIR@|$datadir|g" "$f" > "$out.tmp"
        chmod 644 "$out.tmp"
        mv -f "$out.tmp" "$out"
    done
    # Debian's lxc.service would start the lxc.start.auto containers a second time, with
    # lxc-start (docs/design.md, "Installed layout").
    install -d "$destdir$unitdir/lxc.service.d"
    install -m 644 "$src/packaging/lxc.service.d/lxcsd.conf" "$destdir$unitdir/lxc.service.d/"
}

install_data() {
    install -d "$destdir$datadir"
    cp -a "$src"/config/. "$destdir$datadir/"
}

install_docs() {
    local page section
    for page in "$src"/man/*; do
        section="${page##*.}"
        install -d "$destdir$mandir/man$section"
        install -m 644 "$page" "$destdir$mandir/man$section/"
    done
    install -d "$destdir$completiondir"
    install -m 644 "$src/completion/lxcsd.bash" "$destdir$completiondir/lxcsd"
}

# The containers target is wanted by multi-user.target, so `systemctl enable lxc@NAME`
# and lxc.start.auto containers start at boot. Enabled the way a package's postinst does.
enable_target() {
    [ -f "$unitdir/lxc-containers.target" ] || return 0
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl enable -q lxc-containers.target
    else
        systemctl --root=/ enable -q lxc-containers.target
    fi
}

main() {
    local purelib
    if [ "$system_python" = 1 ]; then
        purelib="$dist_packages"   # where dh_python3 moves lxcsd (pybuild stages python3.X)
        local staged
        staged=$(echo "$destdir"/usr/lib/python3*/dist-packages/lxcsd)
        [ -d "$staged" ] || { echo "install.sh: lxcsd is not staged under $destdir" >&2; exit 1; }
        write_installed "$staged"
    else
        make_venv
        purelib=$(install_package | tail -n 1)
    fi
    write_launcher "$libexec/lxcsd-helper" lxcsd.runtime.main "$purelib"
    write_launcher "$gendir/lxcsd-generator" lxcsd.generator.main "$purelib"
    write_launcher "$prefix/bin/lxcsd" lxcsd.cli.main "$purelib"
    write_launcher "$libexec/lxcsd-console" lxcsd.console.daemon "$purelib"
    write_launcher "$libexec/lxcsd-net" lxcsd.net.main "$purelib"
    write_launcher "$libexec/lxcsd-autostart" lxcsd.generator.late "$purelib"
    install_attach_exec
    install_units
    install_data
    install_docs
    [ "$system_python" = 1 ] || enable_target
    step "installed lxcsd into $destdir$prefix"
}

main
