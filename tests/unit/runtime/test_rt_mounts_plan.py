"""The pure parts of lxcsd.runtime.mounts: flag mapping, data splitting, LXC's overlay
workdir, and which paths proc:mixed / sys:mixed mask."""

from __future__ import annotations

from lxcsd import linux
from lxcsd.runtime import mounts


def test_mount_attrs() -> None:
    attr_set, attr_clr = mounts.mount_attrs(linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV)
    assert attr_set == linux.MOUNT_ATTR_RDONLY | linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV
    assert attr_clr == 0
    attr_set, attr_clr = mounts.mount_attrs(0, linux.MS_RDONLY | linux.MS_NOEXEC)  # rw,exec
    assert attr_set == 0
    assert attr_clr == linux.MOUNT_ATTR_RDONLY | linux.MOUNT_ATTR_NOEXEC
    attr_set, attr_clr = mounts.mount_attrs(linux.MS_NOATIME)
    assert attr_set == linux.MOUNT_ATTR_NOATIME and attr_clr == linux.MOUNT_ATTR__ATIME
    attr_set, attr_clr = mounts.mount_attrs(linux.MS_RELATIME)
    assert attr_set == 0 and attr_clr == linux.MOUNT_ATTR__ATIME


def test_fs_options() -> None:
    assert mounts.fs_options("mode=0755,size=500000,newinstance,,x=") == [
        ("mode", "0755"), ("size", "500000"), ("newinstance", None), ("x", "")]
    assert mounts.fs_options("") == []


def test_overlay_workdir_like_lxc() -> None:
    assert mounts.overlay_workdir("/var/lib/lxc/c1/delta0") == "/var/lib/lxc/c1/work"
    assert mounts.overlay_workdir("/var/lib/lxc/c1/delta0/") == "/var/lib/lxc/c1/work"
    assert mounts.overlay_data(["/l1", "/l2"], "/u", "/w", "index=off") == \
        "upperdir=/u,lowerdir=/l1:/l2,workdir=/w,index=off"


def test_protected_paths_mixed() -> None:
    files, dirs, readonly = mounts.protected_paths("mixed", "mixed")
    assert {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/kallsyms"} <= set(files)
    assert set(dirs) == {"/proc/acpi", "/proc/scsi", "/sys/firmware",
                         "/sys/devices/virtual/powercap", "/sys/kernel/debug",
                         "/sys/kernel/tracing", "/sys/kernel/config", "/sys/kernel/security"}
    assert {"/proc/bus", "/proc/fs", "/proc/irq"} <= set(readonly)
    # /proc/sys and /proc/sysrq-trigger are mount_proc's own (LXC proc:mixed)
    assert "/proc/sys" not in readonly and "/proc/sysrq-trigger" not in files


def test_protected_paths_rw_ro_keep_lxc_meaning() -> None:
    # except the host kernel's global file systems, hidden under every sys mode (issue 16)
    kernel = mounts.KERNEL_FS_DIRS
    assert mounts.protected_paths("rw", "rw") == ((), kernel, ())
    files, dirs, readonly = mounts.protected_paths("rw", "mixed")
    assert files == () and readonly == () and dirs == mounts.MASKED_SYS_DIRS + kernel
    assert mounts.protected_paths(None, "ro") == ((), kernel, ())
    assert mounts.protected_paths("rw", None) == ((), (), ())
    files, dirs, _ = mounts.protected_paths("mixed", None)
    assert files == mounts.MASKED_FILES and dirs == mounts.MASKED_PROC_DIRS


def test_container_target() -> None:
    prefixes = ["/var/lib/lxc/c1/rootfs", "/srv/c1/"]
    assert mounts.container_target("mnt/data", prefixes) == "mnt/data"
    assert mounts.container_target("/var/lib/lxc/c1/rootfs/mnt/x", prefixes) == "mnt/x"
    assert mounts.container_target("/srv/c1/opt", prefixes) == "opt"
    assert mounts.container_target("/srv/c1", prefixes) == ""
    assert mounts.container_target("/srv/c10/opt", prefixes) is None  # not a path prefix
    assert mounts.container_target("/etc/x", prefixes) is None


def test_source_in_root() -> None:
    """Bind sources under the rootfs are container paths (resolved in the root at start);
    others are the admin's host paths; a relative source is not a host path at all."""
    prefixes = ["/var/lib/lxc/c1/rootfs"]
    assert mounts.source_in_root("/var/lib/lxc/c1/rootfs/link", prefixes) == "link"
    assert mounts.source_in_root("/var/lib/lxc/c1/rootfs", prefixes) == ""
    assert mounts.source_in_root("/srv/data", prefixes) is None
    assert mounts.source_in_root("/var/lib/lxc/c1/rootfs2/x", prefixes) is None
    assert mounts.source_in_root("tmpfs", prefixes) is None
