#!/bin/bash
# The two set-up commands of README.md, for a fresh Debian 12 machine, as root:
#
#   packaging/setup.sh demo   install everything, then run a demo container as lxc@demo.service
#   packaging/setup.sh test   install everything, then run the whole test suite
#
# Nothing has to be installed by hand first. Slow artefacts (Debian root filesystems, the
# nested VM image) are cached under /var/cache/lxcsd-test, keyed by what they are built from.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local
venv="$prefix/lib/lxcsd/venv"

# What lxcsd needs at run time (and to build pystemd from PyPI).
runtime_packages=(
    python3 python3-venv python3-dev python3-seccomp gcc pkg-config libsystemd-dev
    dbus systemd-container iproute2 busybox-static dnsmasq-base nftables python3-nftables
    uidmap
)
# What the tests and benchmarks use besides: root filesystems, the nested VM, the incumbents.
test_packages=(
    debootstrap lxc lxc-templates qemu-system-x86 qemu-utils e2fsprogs tmux
    podman hyperfine
    # The .deb's Python dependencies, Debian's own (tests/unit/test_debian_deps.py, and the
    # sandbox's apt-get install of the .deb, which has no network to fetch them).
    python3-pyroute2 python3-dbus-fast python3-pystemd python3-jinja2
    # Building and checking the .deb (packaging/build-deb.sh, debian/control's
    # Build-Depends), man pages and bash completion.
    debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools python3-wheel
    lintian man-db bash-completion
    # The Ansible collection (ansible/): Debian's ansible and ansible-lint, and what the
    # two-host test runs inside its sandboxes (sshd; rsync for moves; python3-apt for
    # Ansible's apt module). The sandboxes see the host's files; on a host run by systemd,
    # openssh-server also enables the host's own sshd.
    ansible ansible-lint openssh-server rsync python3-apt
)

apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Unprivileged containers map root to 100000..165535, as lxc-create does for root.
subids() {
    local f
    for f in /etc/subuid /etc/subgid; do
        grep -q '^root:' "$f" 2>/dev/null || echo 'root:100000:65536' >> "$f"
    done
}

install_lxcsd() {
    "$here/packaging/install.sh" --prefix "$prefix"
}

# Test, lint and benchmark tools, at the exact versions of packaging/constraints.txt.
run_tests() {
    "$venv/bin/pip" install -q -c "$here/packaging/constraints.txt" \
        pytest hypothesis mypy ruff matplotlib pyinstrument shtab
    cd "$here"
    exec "$venv/bin/python" -m pytest "$@"
}

case "${1:-}" in
    demo)
        apt_install "${runtime_packages[@]}" debootstrap
        subids
        install_lxcsd
        exec "$venv/bin/python" "$here/packaging/demo.py"
        ;;
    test)
        shift
        apt_install "${runtime_packages[@]}" "${test_packages[@]}"
        subids
        install_lxcsd
        run_tests "$@"
        ;;
    *)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
