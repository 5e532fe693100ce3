"""Podman's quadlet generator, for the generator comparison.

Debian 12's podman (4.3) has no quadlet; Debian 13's package has one that runs on Debian 12
(a Go program). fetch() downloads that .deb from the Debian archive once, extracts
/usr/libexec/podman/quadlet with `dpkg -x`, and caches it under
/var/cache/lxcsd-bench/quadlet/<deb name>/quadlet. The .deb's name is tried as last known;
if the archive has moved on, the current one is read from trixie's Packages index.
"""

from __future__ import annotations

import lzma
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from bench.harness import BENCH_CACHE, log

MIRROR = "http://deb.debian.org/debian"
KNOWN = "pool/main/p/podman/podman_5.4.2+ds1-2+b2_amd64.deb"
INDEX = "dists/trixie/main/binary-amd64/Packages.xz"
CACHE = BENCH_CACHE / "quadlet"
INSIDE_DEB = "usr/libexec/podman/quadlet"


def cached() -> Path | None:
    found = sorted(CACHE.glob("*/quadlet")) if CACHE.is_dir() else []
    return found[-1] if found else None


def _current_filename() -> str:
    """Filename: of the podman package in trixie's index (streamed, stops at the stanza)."""
    with urllib.request.urlopen(f"{MIRROR}/{INDEX}", timeout=60) as resp:
        stanza: list[str] = []
        for raw in lzma.open(resp):
            line = raw.decode(errors="replace").rstrip("\n")
            if line:
                stanza.append(line)
                continue
            if "Package: podman" in stanza:
                for f in stanza:
                    if f.startswith("Filename: "):
                        return f.split(" ", 1)[1]
            stanza = []
    raise RuntimeError(f"no podman package in {MIRROR}/{INDEX}")


def _download(path: str, dest: Path) -> None:
    with urllib.request.urlopen(f"{MIRROR}/{path}", timeout=300) as resp, open(dest, "wb") as f:
        shutil.copyfileobj(resp, f)


def fetch() -> Path:
    """Path of a working quadlet binary (downloaded and cached on first use)."""
    have = cached()
    if have:
        return have
    with tempfile.TemporaryDirectory(prefix="lxcsd-bench-quadlet-") as tmp:
        deb = Path(tmp) / "podman.deb"
        path = KNOWN
        try:
            _download(path, deb)
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
            path = _current_filename()
            log(f"quadlet: {KNOWN} is gone; the archive has {path}")
            _download(path, deb)
        subprocess.run(["dpkg", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        dest = CACHE / Path(path).name.removesuffix(".deb")
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(tmp) / "x" / INSIDE_DEB, dest / "quadlet.tmp")
        (dest / "quadlet.tmp").rename(dest / "quadlet")
        (dest / "source").write_text(f"{MIRROR}/{path}\n")
    log(f"quadlet: cached {dest / 'quadlet'}")
    return dest / "quadlet"


def version(quadlet: Path) -> str:
    r = subprocess.run([str(quadlet), "-version"], capture_output=True, text=True)
    return (r.stdout or r.stderr).strip()


if __name__ == "__main__":
    q = fetch()
    print(q, version(q))
