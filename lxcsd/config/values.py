"""Value parsers for LXC config values, with liblxc's exact semantics where they matter.

Each ``parse_*`` function takes the value string (already trimmed, quotes removed, never
empty: the key table handles empty values) and returns a Python value, or raises
:class:`lxcsd.errors.ConfigError` with a message and a hint; the caller adds file, line and
key. Sources of truth: liblxc's src/lxc/confile.c, confile_utils.c, string_utils.c, conf.c.

Public helpers other modules use:

- :func:`parse_signal` — ``"SIGRTMIN+3"`` → 37, as liblxc's ``sig_parse`` (the runtime uses it
  for ``lxc.signal.*`` and the stop helper).
- :func:`parse_uint`, :func:`parse_int`, :func:`parse_bool` — liblxc's ``lxc_safe_uint``
  family: base prefixes ``0x`` (hex) and ``0`` (octal) as ``strtoul(..., 0)``.
- :func:`parse_mount_entry`, :func:`parse_mount_options` — fstab lines and mount options.
- :func:`split_quoted` — how liblxc splits ``lxc.init.cmd`` into argv.

Hot path: imports only ``os`` and ``_signal`` (built in); IP address checks import ``_socket``
lazily, only for configs with addresses.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # built in, unlike signal (enum)
import os

from lxcsd.errors import ConfigError

from .model import (
    RLIM_INFINITY,
    IdMap,
    IPAddress,
    IPv4Address,
    MountEntry,
    MountOptions,
    Prlimit,
    RootfsPath,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

UINT_MAX = 2**32 - 1
ULONG_MAX = 2**64 - 1
INT_MAX = 2**31 - 1
INT_MIN = -(2**31)
PATH_MAX = 4096
NAME_MAX = 255
IFNAMSIZ = 16
HOST_NAME_MAX = 64


def bad(message: str, hint: str = "") -> ConfigError:
    """A ConfigError without location (the caller adds file, line and key)."""
    return ConfigError(message, hint=hint)


# --- numbers --------------------------------------------------------------------------------


_DIGITS = {8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _digits(text: str, base: int) -> int | None:
    # str.isdigit() would accept non-ASCII digits; C's strtoul does not.
    if not text or text.strip(_DIGITS[base]):
        return None
    return int(text, base)


def _strtoul(text: str) -> int | None:
    """C's strtoul(text, &end, 0), unsigned part only, requiring the whole string."""
    if text[:2] in ("0x", "0X"):
        return _digits(text[2:], 16)
    if len(text) > 1 and text[0] == "0":
        return _digits(text[1:], 8)
    return _digits(text, 10)


def parse_unsigned(value: str, limit: int, what: str = "number") -> int:
    """liblxc's lxc_safe_uint/ulong: leading blanks allowed, no sign, base prefixes."""
    if value.isdigit() and value.isascii() and (value[0] != "0" or len(value) == 1):
        number = int(value)  # the common case, without the C emulation below
        if number <= limit:
            return number
    text = value.lstrip(" \t\n\r\f\v")
    parsed = _strtoul(text[1:] if text[:1] == "+" else text)
    if parsed is None:
        raise bad(f"{value!r} is not a valid {what}", "write a non-negative integer, e.g. 10")
    if parsed > limit:
        raise bad(f"{value!r} is too large (at most {limit})")
    return parsed


def parse_uint(value: str) -> int:
    return parse_unsigned(value, UINT_MAX)


def parse_int(value: str, what: str = "integer") -> int:
    """liblxc's lxc_safe_int: a signed 32-bit number, base prefixes allowed."""
    text = value.lstrip(" \t\n\r\f\v")
    sign = -1 if text[:1] == "-" else 1
    number = _strtoul(text[1:] if text[:1] in ("+", "-") else text)
    if number is None:
        raise bad(f"{value!r} is not a valid {what}", "write an integer, e.g. -5 or 10")
    number *= sign
    if not INT_MIN <= number <= INT_MAX:
        raise bad(f"{value!r} is out of range for a 32-bit integer")
    return number


def parse_bool(value: str) -> bool:
    """liblxc's 0/1 switches (set_config_bool_item): an unsigned number that is 0 or 1."""
    if value == "1" or value == "0":
        return value == "1"
    number = parse_unsigned(value, UINT_MAX, "0 or 1")
    if number > 1:
        raise bad(f"{value!r} is not 0 or 1", "write 1 to enable or 0 to disable")
    return number == 1


def parse_auto_bool(value: str) -> bool | None:
    """``auto`` (None), or liblxc's 0/1."""
    if value == "auto":
        return None
    try:
        return parse_bool(value)
    except ConfigError:
        raise bad(f"{value!r} is not auto, 0 or 1", "write auto (the default), 1 or 0") \
            from None


def parse_positive_int(value: str) -> int:
    number = parse_int(value)
    if number <= 0:
        raise bad(f"{value!r} must be greater than 0")
    return number


# --- signals --------------------------------------------------------------------------------

# liblxc's signames[] table, resolved to this platform's numbers (the _signal built-in has no
# import cost, unlike the signal module, which imports enum).
_SIGNAL_NAMES = (
    "HUP", "INT", "QUIT", "ILL", "ABRT", "FPE", "KILL", "SEGV", "PIPE", "ALRM", "TERM", "USR1",
    "USR2", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "TRAP", "IOT", "EMT", "BUS",
    "STKFLT", "CLD", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "INFO",
    "LOST", "PWR", "UNUSED", "SYS",
)
SIGNALS: dict[str, int] = {
    name: getattr(_signal, "SIG" + name)
    for name in _SIGNAL_NAMES
    if hasattr(_signal, "SIG" + name)
}
SIGRTMIN: int = _signal.SIGRTMIN
SIGRTMAX: int = _signal.SIGRTMAX
_SIGNAL_HINT = "write a name like SIGTERM, SIGRTMIN+3 or SIGRTMAX-2, or a number"


def _realtime_signal(value: str, rest: str) -> int:
    # After "SIGRT": "MIN+N" or "MAX-N" (case-insensitive), N a plain number.
    base, offset = rest[:4].upper(), rest[4:]
    if base not in ("MIN+", "MAX-") or not offset[:1].isdigit():
        raise bad(f"invalid realtime signal {value!r}", "write SIGRTMIN+N or SIGRTMAX-N")
    number = parse_unsigned(offset, UINT_MAX, "signal offset")
    if number > SIGRTMAX - SIGRTMIN:
        raise bad(f"{value!r} is beyond the realtime signals",
                  f"the offset is at most {SIGRTMAX - SIGRTMIN}")
    return SIGRTMIN + number if base == "MIN+" else SIGRTMAX - number


def parse_signal(value: str) -> int:
    """A signal by name or number as liblxc's sig_parse: ``SIGTERM``/``sigterm``, ``15``,
    ``SIGRTMIN+3``, ``SIGRTMAX-2``. Names need the ``SIG`` prefix; 0 is accepted (it means
    "none" for lxc.monitor.signal.pdeath and "default" for lxc.signal.*)."""
    if value[:1].isdigit():
        number = parse_unsigned(value, UINT_MAX, "signal number")
        if number > SIGRTMAX:
            raise bad(f"signal {value} does not exist", f"signal numbers go up to {SIGRTMAX}")
        return number
    if value[:3].upper() == "SIG":
        rest = value[3:]
        if rest[:2].upper() == "RT":
            return _realtime_signal(value, rest[2:])
        named = SIGNALS.get(rest.upper())
        if named is not None:
            return named
    elif value.upper() in SIGNALS or value[:2].upper() == "RT":
        raise bad(f"invalid signal {value!r}", f"LXC needs the SIG prefix: SIG{value.upper()}")
    raise bad(f"invalid signal {value!r}", _SIGNAL_HINT)


def signal_name(number: int) -> str:
    """The conventional name of a signal number (for messages and docs)."""
    for name, num in SIGNALS.items():
        if num == number and name not in ("IOT", "CLD", "POLL", "UNUSED"):
            return "SIG" + name
    if SIGRTMIN <= number <= SIGRTMAX:
        return f"SIGRTMIN+{number - SIGRTMIN}"
    return str(number)


# --- sizes and time -------------------------------------------------------------------------

_SIZE_UNITS = {"KB": 1024, "MB": 1024**2, "GB": 1024**3}


def parse_size(value: str) -> int:
    """Bytes, with an optional KB/MB/GB suffix (powers of 1024, case-insensitive) or B.

    Stricter than liblxc, which reads any other one-letter suffix as bytes ("4K" is 4):
    such values are refused with a hint instead of silently meaning something else.
    """
    text = value.rstrip(" \t")
    unit = text[-2:].upper() if text[-2:-1].isalpha() else text[-1:].upper()
    if unit in _SIZE_UNITS or unit == "B":
        number_text = text[: -len(unit)].rstrip(" \t")
    elif unit.isalpha():
        raise bad(f"unknown size unit in {value!r}", "use B, KB, MB or GB, powers of 1024")
    else:
        unit, number_text = "B", text
    number = parse_int(number_text, "size") if number_text else None
    if number is None or number < 0:
        raise bad(f"{value!r} is not a valid size", "write bytes, or a number with KB, MB or GB")
    return number * _SIZE_UNITS.get(unit, 1)


def parse_console_size(value: str) -> int:
    """lxc.console.size / buffer.size: "auto" is 128 KiB; at least a page; rounded up to a
    power of two, as liblxc does."""
    if value == "auto":
        return 1 << 17
    size = max(parse_size(value), os.sysconf("SC_PAGE_SIZE"))
    return 1 << (size - 1).bit_length()


_TIME_UNITS = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3,
               "ns": 1}


def parse_time_offset(value: str) -> int:
    """lxc.time.offset.*: a signed integer and a unit (h, m, s, ms, us, ns) → nanoseconds."""
    text = value.strip(" \t")
    cut = len(text.rstrip("hmsun \t"))
    unit = text[cut:].strip(" \t")
    if unit not in _TIME_UNITS:
        raise bad(f"invalid time offset {value!r}", "write a number and a unit: h m s ms us ns")
    return parse_int(text[:cut], "time offset") * _TIME_UNITS[unit]


# --- strings and paths ----------------------------------------------------------------------


def simplify_path(value: str) -> str:
    """liblxc's lxc_path_simplify: drop ``.`` components and repeated/trailing slashes."""
    if "//" not in value and "." not in value and value[-1:] != "/" or value == "/":
        return value  # already simple: the common case
    parts = [part for part in value.split("/") if part and part != "."]
    joined = "/".join(parts)
    if value[:1] == "/":
        return "/" + joined
    return joined or "."


def parse_path(value: str) -> str:
    path = simplify_path(value)
    if len(path) >= PATH_MAX:
        raise bad(f"path is too long ({len(path)} bytes)", f"at most {PATH_MAX - 1} bytes")
    return path


def parse_string(value: str) -> str:
    return value


def parse_hostname(value: str) -> str:
    if len(value.encode(errors="surrogateescape")) > HOST_NAME_MAX:
        raise bad("hostname is longer than 64 bytes", "use a shorter lxc.uts.name")
    return value


def parse_name_max(value: str) -> str:
    if len(value.encode(errors="surrogateescape")) > NAME_MAX:
        raise bad("name is longer than 255 bytes")
    return value


def parse_ifname(value: str) -> str:
    """A network interface name: at most 15 bytes (liblxc truncates and logs; we refuse)."""
    if len(value) >= IFNAMSIZ or not value.isascii():
        if len(value.encode(errors="surrogateescape")) >= IFNAMSIZ:
            raise bad(f"interface name {value!r} is longer than 15 bytes",
                      "Linux interface names have at most 15 characters")
    if "/" in value or len(value.split()) != 1:
        raise bad(f"interface name {value!r} contains '/' or a blank")
    return value


def choice(*allowed: str) -> Callable[[str], str]:
    """A parser accepting one of ``allowed`` words exactly."""

    words = frozenset(allowed)

    def parse(value: str) -> str:
        if value not in words:
            raise bad(f"{value!r} is not one of {', '.join(allowed)}",
                      f"write one of: {' '.join(allowed)}")
        return value

    return parse


def split_quoted(value: str) -> tuple[str, ...]:
    """Split a command the way liblxc's lxc_string_split_quoted does: on blanks, with '...'
    or "..." grouping words (no escapes; an unterminated quoted word is dropped)."""
    words: list[str] = []
    state, start = " ", 0
    for pos, char in enumerate(value):
        if state == " ":
            if not char.isspace():
                state, start = ("a", pos) if char not in "\"'" else (char, pos + 1)
        elif state == "a":
            if char.isspace():
                words.append(value[start:pos])
                state = " "
        elif char == state:
            words.append(value[start:pos])
            state = " "
    if state == "a":
        words.append(value[start:])
    return tuple(words)


def parse_command(value: str) -> tuple[str, ...]:
    argv = split_quoted(value)
    if not argv:
        raise bad("the command is empty", "write a program path and its arguments")
    return argv


def parse_words(value: str) -> tuple[str, ...]:
    return tuple(value.split())


# --- LXC-specific values --------------------------------------------------------------------

def parse_idmap(value: str) -> IdMap:
    """``u|g NS_ID HOST_ID COUNT`` (liblxc's parse_idmaps)."""
    fields = value.replace("\t", " ").replace("\r", " ").split(" ")
    words = [field for field in fields if field]
    hint = "write u|g CONTAINER_ID HOST_ID COUNT, e.g. u 0 100000 65536"
    if len(words) != 4 or words[0] not in ("u", "g"):
        raise bad(f"invalid id mapping {value!r}", hint)
    ns_id, host_id, count = (parse_unsigned(w, ULONG_MAX, "id") for w in words[1:])
    if count == 0:
        raise bad(f"id mapping {value!r} maps no ids", "the count must be at least 1")
    if max(ns_id, host_id) + count - 1 > UINT_MAX:
        raise bad(f"id mapping {value!r} goes beyond id {UINT_MAX}")
    return IdMap(kind=words[0], ns_id=ns_id, host_id=host_id, count=count)


# liblxc conf.c mount_opt[]: name -> (clear?, MS_* flag). Options whose flag is 0 or None are
# recognized but change nothing (LXC ignores "sync", "defaults", ...).
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_SYNCHRONOUS, MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC, MS_NOSYMFOLLOW = 16, 32, 64, 128, 256
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_MOVE, MS_REC = 1024, 2048, 4096, 8192, 16384
MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 17, 1 << 18, 1 << 19, 1 << 20
MS_RELATIME, MS_STRICTATIME, MS_LAZYTIME = 1 << 21, 1 << 24, 1 << 25

_VFS_OPTIONS: dict[str, tuple[bool, int]] = {
    "atime": (True, MS_NOATIME), "dev": (True, MS_NODEV), "diratime": (True, MS_NODIRATIME),
    "exec": (True, MS_NOEXEC), "noatime": (False, MS_NOATIME), "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME), "noexec": (False, MS_NOEXEC),
    "norelatime": (True, MS_RELATIME), "nostrictatime": (True, MS_STRICTATIME),
    "nosymfollow": (False, MS_NOSYMFOLLOW), "nosuid": (False, MS_NOSUID),
    "relatime": (False, MS_RELATIME), "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "strictatime": (False, MS_STRICTATIME), "suid": (True, MS_NOSUID),
    "move": (False, MS_MOVE), "defaults": (False, 0),
    "sync": (False, 0), "async": (True, 0), "dirsync": (False, 0), "lazytime": (False, 0),
    "mand": (False, 0), "nomand": (True, 0), "remount": (False, 0),
}
_PROPAGATION = {
    "private": MS_PRIVATE, "shared": MS_SHARED, "slave": MS_SLAVE, "unbindable": MS_UNBINDABLE,
    "rprivate": MS_PRIVATE | MS_REC, "rshared": MS_SHARED | MS_REC,
    "rslave": MS_SLAVE | MS_REC, "runbindable": MS_UNBINDABLE | MS_REC,
}


def _lxc_option(option: str, found: dict[str, Any]) -> bool:
    """Record an LXC-only option (create=, optional, relative, idmap=); False if not one."""
    if option in ("create=dir", "create=file"):
        found["create"] = option[7:]
    elif option in ("optional", "relative"):
        found[option] = True
    elif option.startswith("idmap="):
        if option == "idmap=":
            raise bad("idmap= needs a value", "write idmap=container or idmap=/proc/PID/ns/user")
        found["idmap"] = option[6:]
    else:
        return False
    return True


def _vfs_option(option: str, found: dict[str, Any]) -> bool:
    """Record a generic VFS option, bind/rbind or a propagation flag; False if not one."""
    if option in ("bind", "rbind"):
        found["bind"] = True
        found["recursive"] = found.get("recursive", False) or option == "rbind"
    elif option in _VFS_OPTIONS:
        clear, flag = _VFS_OPTIONS[option]
        key = "clear_flags" if clear else "flags"
        found[key] = found.get(key, 0) | flag
    elif option in _PROPAGATION:
        found["propagation"] = _PROPAGATION[option]
    else:
        return False
    return True


def parse_mount_options(options: tuple[str, ...]) -> MountOptions:
    """Split mount option words into LXC-only options, VFS flags and filesystem data.

    Options are matched exactly (liblxc compares prefixes, so "rootcontext=..." reads as
    "ro" there: a liblxc bug we do not copy)."""
    found: dict[str, Any] = {}
    data: list[str] = []
    for option in options:
        if option and not _lxc_option(option, found) and not _vfs_option(option, found):
            data.append(option)
    found["data"] = ",".join(data)
    return MountOptions(**found)


_FSTAB_ESCAPES = (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\"),
                  ("\\\\", "\\"))


def _fstab_unescape(field: str) -> str:
    # glibc getmntent's decode_name.
    if "\\" not in field:
        return field
    for escaped, char in _FSTAB_ESCAPES:
        field = field.replace(escaped, char)
    return field


def parse_mount_entry(value: str) -> MountEntry:
    """An fstab line: SOURCE TARGET FSTYPE [OPTIONS [FREQ [PASSNO]]], blanks in paths written
    as \\040 (getmntent(3))."""
    # getmntent splits on blanks only: other whitespace stays part of a field.
    fields = [field for field in value.replace("\t", " ").split(" ") if field]
    if len(fields) < 3 or len(fields) > 6:
        raise bad(f"mount entry has {len(fields)} fields, expected 3 to 6",
                  "write SOURCE TARGET FSTYPE OPTIONS 0 0; write a blank in a path as \\040")
    source, target, fstype = (_fstab_unescape(field) for field in fields[:3])
    options = tuple(_fstab_unescape(fields[3]).split(",")) if len(fields) > 3 else ()
    numbers = [parse_int(field, "fstab dump/pass number") for field in fields[4:]]
    return MountEntry(
        source=source, target=target, fstype=fstype, options=options,
        freq=numbers[0] if numbers else 0, passno=numbers[1] if len(numbers) > 1 else 0,
        opts=parse_mount_options(options), raw=value,
    )


def parse_rootfs_options(value: str) -> MountOptions:
    opts = parse_mount_options(tuple(value.split(",")))
    if opts.create or opts.optional or opts.relative:
        raise bad("create=, optional and relative are not valid for the rootfs mount",
                  "only idmap= and ordinary mount options apply to lxc.rootfs.options")
    return opts


STORAGE_TYPES = ("dir", "btrfs", "loop", "lvm", "nbd", "overlay", "overlayfs", "rbd", "zfs")
_STORAGE_TYPES = frozenset(STORAGE_TYPES)


def _overlay_layers(value: str, layers: str) -> tuple[tuple[str, ...], str]:
    # liblxc ovl_mount: layers are split at ":/"; the last one is the upper directory.
    parts = layers.split(":/")
    if len(parts) < 2 or not parts[0]:
        raise bad(f"overlay rootfs {value!r} needs a lower and an upper directory",
                  "write overlay:/lower/dir:/upper/dir")
    rest = tuple("/" + part for part in parts[1:])
    return (parts[0],) + rest[:-1], rest[-1]


def parse_rootfs_path(value: str) -> RootfsPath:
    """``[TYPE:]PATH`` as liblxc's set_config_rootfs_path: the type is whatever precedes the
    first ``:``; overlay/overlayfs paths are ``LOWER[:LOWER...]:UPPER``."""
    kind, sep, rest = value.partition(":")
    if not sep:
        return RootfsPath(spec=value, kind="dir", path=parse_path(value), lower=(), upper=None)
    if kind not in _STORAGE_TYPES:
        raise bad(f"unknown storage type {kind!r} in {value!r}",
                  "use one of " + ", ".join(STORAGE_TYPES) + ", or a plain directory path")
    path = parse_path(rest)
    kind = "overlay" if kind == "overlayfs" else kind
    lower, upper = _overlay_layers(value, path) if kind == "overlay" else ((), None)
    return RootfsPath(spec=value, kind=kind, path=path, lower=lower, upper=upper)


def parse_cgroup_dir(value: str) -> str:
    """lxc.cgroup.dir*: relative, never walking up."""
    if value[:1] == "/":
        raise bad("cgroup directories may not be absolute",
                  "write a path relative to the cgroup lxcsd starts in, e.g. lxc/c1")
    if ".." in value.split("/"):
        raise bad("cgroup directories may not walk upwards via '..'")
    return parse_path(value)


def parse_cgroup_inner(value: str) -> str:
    if value[:1] == "/" or "/" in value or value in (".", ".."):
        raise bad("lxc.cgroup.dir.container.inner must be a single directory name",
                  "write a name without '/', e.g. ns")
    return value


_DEVICE_HINT = "write 'a', 'c MAJOR:MINOR ACCESS' or 'b MAJOR:MINOR ACCESS', e.g. c 1:3 rwm"


def _device_number(text: str, value: str) -> None:
    if text != "*" and not (text.isascii() and text.isdigit()):
        raise bad(f"invalid device rule {value!r}", _DEVICE_HINT)


def parse_device_rule(value: str) -> str:
    """``devices.allow``/``devices.deny`` values, checked as liblxc's
    device_cgroup_rule_parse (cgroup2) and the kernel's devices.allow (cgroup1) read them."""
    if value == "a":
        return value
    fields = value.split()
    if value[:1] == "/" and len(fields) <= 2:
        access = fields[1] if len(fields) == 2 else "rwm"
    elif len(fields) == 3 and fields[0] in ("a", "b", "c") and fields[1].count(":") == 1:
        for number in fields[1].split(":"):
            _device_number(number, value)
        access = fields[2]
    else:
        raise bad(f"invalid device rule {value!r}", _DEVICE_HINT)
    if not access or access.strip("rwm"):
        raise bad(f"invalid device access {access!r} in {value!r}", "use letters r, w, m")
    return value


def parse_prlimit(value: str) -> Prlimit:
    """``SOFT[:HARD]``, each a number or "unlimited" (liblxc's set_config_prlimit)."""
    soft_text, sep, hard_text = value.partition(":")
    soft = _limit(soft_text, value)
    hard = _limit(hard_text, value) if sep else soft
    return Prlimit(soft=soft, hard=hard)


def _limit(text: str, value: str) -> int:
    text = text.strip(" \t\n\r\f\v")
    if text == "unlimited":
        return RLIM_INFINITY
    if text.isascii() and text.isdigit() and int(text) <= ULONG_MAX:
        return RLIM_INFINITY if int(text) == ULONG_MAX else int(text)
    raise bad(f"invalid resource limit {value!r}",
              "write SOFT:HARD or one value for both, each a number or 'unlimited'")


# setrlimit(2) names without RLIMIT_, as liblxc's limit_opt[].
RLIMIT_NAMES = (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
)


def check_prlimit_name(name: str) -> None:
    if name in RLIMIT_NAMES or (name.isascii() and name.isdigit()):
        return
    raise bad(f"unknown resource limit {name!r}",
              "use a lowercase RLIMIT_ name without the prefix: " + ", ".join(RLIMIT_NAMES))


# capabilities(7), lowercase without CAP_, as liblxc's caps_opt[].
CAPABILITIES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
    "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
    "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
    "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
    "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
)
_CAPABILITY_SET = frozenset(CAPABILITIES)


def check_capability(name: str) -> None:
    if name in _CAPABILITY_SET or (name.isascii() and name.isdigit() and int(name) < 64):
        return
    hint = "lowercase without CAP_, e.g. sys_admin, or a number"
    if name.lower().removeprefix("cap_") in _CAPABILITY_SET:
        hint = f"write {name.lower().removeprefix('cap_')}"
    raise bad(f"unknown capability {name!r}", hint)


NAMESPACES = ("user", "mnt", "pid", "uts", "ipc", "net", "cgroup", "time")


def parse_namespace_list(value: str) -> tuple[str, ...]:
    """Namespace names as in /proc/PID/ns (case-insensitive, as liblxc)."""
    names = tuple(word.lower() for word in value.split())
    for name in names:
        if name not in NAMESPACES:
            raise bad(f"unknown namespace {name!r}", "use: " + " ".join(NAMESPACES))
    return names


def parse_env(value: str) -> tuple[str, str | None]:
    """``NAME=VALUE``, or ``NAME`` to pass the host's variable (value None: liblxc reads it
    from its own environment at start; lxcsd's runtime does the same)."""
    name, sep, rest = value.partition("=")
    if not name:
        raise bad(f"environment variable without a name: {value!r}", "write NAME=VALUE")
    return (name, rest if sep else None)


_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "CRIT", "ALERT", "FATAL")


def parse_log_level(value: str) -> int:
    if value[:1].isdigit():
        level = parse_int(value, "log level")
    elif value.upper() in _LOG_LEVELS:
        level = _LOG_LEVELS.index(value.upper())
    else:
        level = -1
    if not 0 <= level <= 8:
        raise bad(f"invalid log level {value!r}",
                  "write 0-8 or one of " + ", ".join(_LOG_LEVELS))
    return level


SYSLOG_FACILITIES = ("daemon",) + tuple(f"local{n}" for n in range(8))


def parse_syslog(value: str) -> str:
    if value.lower() not in SYSLOG_FACILITIES:
        raise bad(f"invalid syslog facility {value!r}", "use " + ", ".join(SYSLOG_FACILITIES))
    return value.lower()


ARCHES_32 = ("arm", "armel", "armhf", "armv7l", "athlon", "i386", "i486", "i586", "i686",
             "linux32", "mips", "mipsel", "ppc", "powerpc", "x32", "x86")
ARCHES_64 = ("aarch64", "amd64", "arm64", "linux64", "loongarch64", "loong64", "mips64",
             "mips64el", "ppc64", "ppc64el", "ppc64le", "powerpc64", "riscv64", "s390x",
             "x86_64")


_ARCHES = frozenset(ARCHES_32 + ARCHES_64)


def parse_arch(value: str) -> str:
    if value not in _ARCHES:
        raise bad(f"unsupported architecture {value!r}",
                  "use e.g. x86_64, amd64, i686, x86, arm64, armhf")
    return value


def parse_seccomp_proxy(value: str) -> str:
    if not value.startswith("unix:") or len(value) == 5:
        raise bad(f"invalid seccomp proxy {value!r}",
                  "write unix:/path/to/socket or unix:@abstract-name")
    return value


def parse_hook_version(value: str) -> int:
    version = parse_unsigned(value, UINT_MAX, "hook version")
    if version > 1:
        raise bad("only hook versions 0 (legacy) and 1 exist", "write 0 or 1")
    return version


def parse_gid_list(value: str) -> tuple[int, ...]:
    """lxc.init.groups: comma-separated gids."""
    words = [word for word in value.split(",") if word]
    if not words:
        raise bad(f"no group ids in {value!r}", "write comma-separated numbers, e.g. 10,27")
    return tuple(parse_unsigned(word, UINT_MAX, "group id") for word in words)


def parse_tmpfs_size(value: str) -> int:
    return parse_int(value, "size in bytes")


# --- networks -------------------------------------------------------------------------------


def _inet_pton(family_name: str, address: str) -> bytes | None:
    import _socket  # lazily: only configs with static addresses pay for it

    family = _socket.AF_INET if family_name == "4" else _socket.AF_INET6
    try:
        return _socket.inet_pton(family, address)
    except (OSError, ValueError):
        return None


def _ipv4(address: str, value: str) -> int:
    packed = _inet_pton("4", address)
    if packed is None:
        raise bad(f"invalid IPv4 address {value!r}", "write a dotted quad, e.g. 10.0.3.2/24")
    return int.from_bytes(packed, "big")


def _ipv4_string(number: int) -> str:
    return ".".join(str((number >> shift) & 255) for shift in (24, 16, 8, 0))


def _class_prefix(address: int) -> int:
    # liblxc config_ip_prefix: the classful netmask when no prefix is given.
    top = address >> 24
    return 8 if top < 128 else 16 if top < 192 else 24 if top < 224 else 0


def _prefix(text: str, maximum: int, value: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > maximum:
        raise bad(f"invalid prefix length in {value!r}", f"write /0 to /{maximum}")
    return int(text)


def parse_ipv4_address(value: str) -> IPv4Address:
    """``ADDR[/PREFIX] [BROADCAST]`` with liblxc's defaults for prefix and broadcast."""
    address_text, _, broadcast_text = value.partition(" ")
    address_text, slash, prefix_text = address_text.partition("/")
    address = _ipv4(address_text, value)
    prefix = _prefix(prefix_text, 32, value) if slash else _class_prefix(address)
    if broadcast_text:
        broadcast = _ipv4_string(_ipv4(broadcast_text.strip(), value))
    elif prefix >= 31:
        broadcast = "0.0.0.0"
    else:
        broadcast = _ipv4_string(address | (0xFFFFFFFF >> prefix))
    return IPv4Address(address=_ipv4_string(address), prefix=prefix, broadcast=broadcast)


def parse_ipv6_address(value: str) -> IPAddress:
    address, slash, prefix_text = value.partition("/")
    if _inet_pton("6", address) is None:
        raise bad(f"invalid IPv6 address {value!r}", "write e.g. fd00::2/64")
    prefix = _prefix(prefix_text, 128, value) if slash else 64
    return IPAddress(address=address, prefix=prefix)


def _gateway(value: str, family: str) -> str:
    if value in ("auto", "dev"):
        return value
    if _inet_pton(family, value) is None:
        raise bad(f"invalid IPv{family} gateway {value!r}",
                  "write an address, 'auto' (the link's address) or 'dev' (a device route)")
    return value


def parse_ipv4_gateway(value: str) -> str:
    return _gateway(value, "4")


def parse_ipv6_gateway(value: str) -> str:
    return _gateway(value, "6")


def _route(value: str, family: str, maximum: int) -> IPAddress:
    address, slash, prefix_text = value.partition("/")
    if not slash or _inet_pton(family, address) is None:
        raise bad(f"invalid IPv{family} route {value!r}",
                  "write NETWORK/PREFIX, e.g. 192.168.1.0/24")
    return IPAddress(address=address, prefix=_prefix(prefix_text, maximum, value))


def parse_ipv4_route(value: str) -> IPAddress:
    return _route(value, "4", 32)


def parse_ipv6_route(value: str) -> IPAddress:
    return _route(value, "6", 128)


_MAC_DIGITS = "0123456789abcdefABCDEFxX"


def parse_hwaddr(value: str) -> str:
    """A MAC address; ``x`` digits are filled in randomly at start (liblxc)."""
    if len(value) != 17 or value[2::3] != ":::::" or value.replace(":", "").strip(_MAC_DIGITS):
        raise bad(f"invalid hardware address {value!r}",
                  "write six hex pairs, e.g. 00:16:3e:xx:xx:xx (x = random)")
    return value


def parse_vlan_id(value: str) -> int:
    vid = parse_unsigned(value, 65535, "VLAN id")
    return vid


def parse_bridge_vlan_id(value: str) -> int:
    """veth.vlan.id: 0-4094, or "none" (→ -1) to leave the default untagged VLAN."""
    if value == "none":
        return -1
    vid = parse_unsigned(value, 65535, "VLAN id")
    if vid > 4094:
        raise bad(f"VLAN id {vid} is out of range", "use 1-4094, or none")
    return vid


def parse_tagged_vlan_id(value: str) -> int:
    vid = parse_bridge_vlan_id(value)
    if vid < 0:
        raise bad("'none' is not a tagged VLAN id", "use 1-4094")
    return vid


def parse_net_flags(value: str) -> bool:
    """``up`` (stricter than liblxc, which reads any value as up)."""
    if value != "up":
        raise bad(f"invalid network flags {value!r}",
                  "'up' is the only flag; leave the key out for a down interface")
    return True


def parse_mtu(value: str) -> int:
    mtu = parse_unsigned(value, UINT_MAX, "MTU")
    if mtu == 0:
        raise bad("an MTU of 0 is not valid", "write e.g. 1500")
    return mtu
