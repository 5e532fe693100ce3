"""cgroup settings in the config: the values cgroup2 accepts for the common limits, and the
translation of cgroup v1 keys (``lxc.cgroup.FILE``) to their cgroup2 equivalents.

lxc.cgroup.FILE (cgroup v1) → the cgroup2 file and value that do the same, as crun and
systemd translate them (kernel Documentation/admin-guide/cgroup-v2.rst): the runtime plan
applies the translation with a warning naming the v2 line, and refuses a v1 key with no
equivalent, naming why. devices.allow/deny become the unit's DeviceAllow= (generator).
"""

from __future__ import annotations

from lxcsd.errors import ConfigError

from . import values as v
from .model import CgroupSetting

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def _v1_number(value: str, what: str) -> int:
    text = value.strip()
    body = text[1:] if text.startswith("-") else text
    if not (body.isascii() and body.isdigit()):
        raise v.bad(f"{what} must be an integer, not {value!r}")
    return int(text)


_MEM_SUFFIX = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50,
               "e": 1 << 60}


def _v1_bytes(value: str, _others: dict[str, str] | None = None) -> str:
    """A memory size as the kernel's memparse reads it in both versions (suffixes k..e);
    -1 (v1's "unlimited") is cgroup2's "max"."""
    text = value.strip()
    if text == "-1":
        return "max"
    _memparse(text)
    return text


def _memparse(text: str) -> int:
    digits, factor = (text[:-1], _MEM_SUFFIX[text[-1].lower()]) \
        if text[-1:].lower() in _MEM_SUFFIX else (text, 1)
    if not (digits.isascii() and digits.isdigit()):
        raise v.bad(f"{text!r} is not a size in bytes", "bytes, with k, m or g, or -1")
    return int(digits) * factor


def _v1_swap(value: str, others: dict[str, str]) -> str:
    """memory.memsw.limit_in_bytes limits memory + swap; cgroup2's memory.swap.max the
    swap alone: the difference to memory.limit_in_bytes."""
    if value.strip() == "-1":
        return "max"
    limit = others.get("memory.limit_in_bytes", "").strip()
    if not limit or limit == "-1":
        raise v.bad("memory.memsw.limit_in_bytes needs a memory.limit_in_bytes to translate",
                    "write lxc.cgroup2.memory.max and lxc.cgroup2.memory.swap.max")
    swap = _memparse(value.strip()) - _memparse(limit)
    if swap < 0:
        raise v.bad("memory.memsw.limit_in_bytes is below memory.limit_in_bytes")
    return str(swap)


def _v1_shares(value: str, _others: dict[str, str]) -> str:
    """cpu.shares 2..262144 (default 1024) → cpu.weight 1..10000 (default 100): the linear
    map crun, runc < 1.3 and the kubelet use."""
    shares = min(max(_v1_number(value, "cpu.shares"), 2), 262144)
    return str(1 + (shares - 2) * 9999 // 262142)


def _v1_cpu_max(_value: str, others: dict[str, str]) -> str:
    """cpu.cfs_quota_us and cpu.cfs_period_us → one cpu.max "QUOTA PERIOD"."""
    quota = _v1_number(others.get("cpu.cfs_quota_us", "-1"), "cpu.cfs_quota_us")
    period = _v1_number(others.get("cpu.cfs_period_us", "100000"), "cpu.cfs_period_us")
    return f"{'max' if quota < 0 else quota} {period}"


def _v1_blkio_weight(value: str, _others: dict[str, str]) -> str:
    """blkio.weight 10..1000 → io.weight 1..10000 (crun's map)."""
    weight = min(max(_v1_number(value, "blkio.weight"), 10), 1000)
    return str(1 + (weight - 10) * 9999 // 990)


def _v1_device_weight(value: str, others: dict[str, str]) -> str:
    device, _, weight = value.strip().partition(" ")
    return f"{_v1_device(device)} {_v1_blkio_weight(weight, others)}"


def _v1_device(text: str) -> str:
    major, sep, minor = text.partition(":")
    if not (sep and major.isdigit() and minor.isdigit()):
        raise v.bad(f"{text!r} is not a MAJOR:MINOR device", "e.g. 8:0")
    return text


def _v1_throttle(limit: str) -> Callable[[str, dict[str, str]], str]:
    def convert(value: str, _others: dict[str, str]) -> str:
        device, _, number = value.strip().partition(" ")
        return f"{_v1_device(device)} {limit}={_v1_number(number, 'the limit')}"

    return convert


def _v1_freezer(value: str, _others: dict[str, str]) -> str:
    states = {"THAWED": "0", "FROZEN": "1"}
    if value.strip() not in states:
        raise v.bad(f"freezer.state {value!r}", "FROZEN or THAWED")
    return states[value.strip()]


def _v1_same(value: str, _others: dict[str, str]) -> str:
    return value


def _v2_bytes(text: str) -> None:
    if text != "max":
        _memparse(text)


def _v2_count(text: str) -> None:
    if text != "max" and not (text.isascii() and text.isdigit()):
        raise v.bad(f"{text!r} is not a number or max")


def _v2_range(low: int, high: int) -> Callable[[str], None]:
    def check(text: str) -> None:
        body = text[1:] if text.startswith("-") else text
        if not (body.isascii() and body.isdigit() and low <= int(text) <= high):
            raise v.bad(f"{text!r} is not an integer from {low} to {high}")

    return check


def _v2_cpu_max(text: str) -> None:
    quota, _, period = text.partition(" ")
    _v2_count(quota)
    if period:
        _v2_range(1000, 1000000)(period)


def _v2_cpu_list(text: str) -> None:
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        if not (low.isdigit() and (not high or high.isdigit())):
            raise v.bad(f"{text!r} is not a list like 0-3,6")


# Values the kernel accepts for the common cgroup2 limits (cgroup-v2.rst), checked when the
# config is read: an invalid one would fail the start.
CGROUP2_VALUES: dict[str, Callable[[str], None]] = {
    **{f"memory.{name}": _v2_bytes for name in ("max", "high", "low", "min", "swap.max",
                                                 "swap.high", "zswap.max")},
    "pids.max": _v2_count, "cpu.max": _v2_cpu_max, "cpu.weight": _v2_range(1, 10000),
    "cpu.weight.nice": _v2_range(-20, 19), "cpu.idle": _v2_range(0, 1),
    "cpuset.cpus": _v2_cpu_list, "cpuset.mems": _v2_cpu_list,
    "cgroup.freeze": _v2_range(0, 1), "memory.oom.group": _v2_range(0, 1),
}


# v1 file → (cgroup2 file, converter(value, every v1 value by file)).
CGROUP_V1: dict[str, tuple[str, Callable[[str, dict[str, str]], str]]] = {
    "memory.limit_in_bytes": ("memory.max", _v1_bytes),
    "memory.soft_limit_in_bytes": ("memory.low", _v1_bytes),
    "memory.memsw.limit_in_bytes": ("memory.swap.max", _v1_swap),
    "cpu.shares": ("cpu.weight", _v1_shares),
    "cpu.cfs_quota_us": ("cpu.max", _v1_cpu_max),
    "cpu.cfs_period_us": ("cpu.max", _v1_cpu_max),
    "cpuset.cpus": ("cpuset.cpus", _v1_same),
    "cpuset.mems": ("cpuset.mems", _v1_same),
    "pids.max": ("pids.max", _v1_same),
    "blkio.weight": ("io.weight", _v1_blkio_weight),
    "blkio.weight_device": ("io.weight", _v1_device_weight),
    "blkio.throttle.read_bps_device": ("io.max", _v1_throttle("rbps")),
    "blkio.throttle.write_bps_device": ("io.max", _v1_throttle("wbps")),
    "blkio.throttle.read_iops_device": ("io.max", _v1_throttle("riops")),
    "blkio.throttle.write_iops_device": ("io.max", _v1_throttle("wiops")),
    "freezer.state": ("cgroup.freeze", _v1_freezer),
}
# v1 files (or prefixes) with no cgroup2 equivalent, and why.
CGROUP_V1_NONE = {
    "memory.swappiness": "cgroup2 has no per-cgroup swappiness",
    "memory.kmem.": "kernel memory is counted in memory.max under cgroup2",
    "memory.oom_control": "cgroup2 has no OOM-killer switch (memory.oom.group is the "
                          "closest)",
    "memory.use_hierarchy": "cgroup2 is always hierarchical",
    "memory.move_charge_at_immigrate": "cgroup2 never moves charges",
    "net_cls.": "cgroup2 has no net_cls; nftables matches cgroup2 paths (socket cgroupv2)",
    "net_prio.": "cgroup2 has no net_prio; use tc or nftables",
    "cpu.rt_": "cgroup2 has no real-time CPU budget",
    "cpuacct.": "cpuacct only accounts (cgroup2's cpu.stat), it limits nothing",
}
# Settings the generator turns into unit settings instead (DeviceAllow=).
CGROUP_V1_UNIT = ("devices.allow", "devices.deny")


def translate_cgroup_v1(settings: tuple[CgroupSetting, ...]
                        ) -> tuple[list[tuple[CgroupSetting, ConfigError]], list[ConfigError]]:
    """([(cgroup2 setting, its warning)], errors) for lxc.cgroup.* lines. Files several v1
    keys make together (cpu.max) come once per v1 key, with the same value."""
    values = {s.key: s.value for s in settings}
    pairs: list[tuple[CgroupSetting, ConfigError]] = []
    errors: list[ConfigError] = []
    for setting in settings:
        key = f"lxc.cgroup.{setting.key}"
        if setting.key in CGROUP_V1_UNIT:
            continue
        try:
            v2 = _v1_setting(setting, values)
        except ConfigError as exc:
            errors.append(ConfigError(exc.message, path=setting.path, line=setting.line,
                                      key=key, hint=exc.hint))
            continue
        pairs.append((v2, ConfigError(f"cgroup v1 key, applied as lxc.cgroup2.{v2.key} = "
                                      f"{v2.value}", path=setting.path, line=setting.line,
                                      key=key, hint="write the cgroup2 line instead")))
    return pairs, errors


def _v1_setting(setting: CgroupSetting, values: dict[str, str]) -> CgroupSetting:
    name = setting.key
    found = CGROUP_V1.get(name)
    if found is None and name.startswith("hugetlb.") and name.endswith(".limit_in_bytes"):
        found = (name[: -len("limit_in_bytes")] + "max", _v1_bytes)
    if found is None:
        why = next((text for prefix, text in CGROUP_V1_NONE.items()
                    if name == prefix or (prefix.endswith(".") and name.startswith(prefix))),
                   "lxcsd knows no cgroup2 equivalent")
        raise v.bad(f"cgroup v1 key with no cgroup2 equivalent: {why}",
                    "remove it, or write the lxc.cgroup2.* setting you mean")
    v2, convert = found
    return CgroupSetting(key=v2, value=convert(setting.value, values), path=setting.path,
                         line=setting.line)
