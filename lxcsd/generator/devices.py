"""``lxc.cgroup2.devices.allow/deny`` → ``DevicePolicy=`` and ``DeviceAllow=`` (pure, given
a :class:`DeviceNames` to look device numbers up).

Why the unit, and not the helper: systemd attaches the unit's device program to the unit's
cgroup, and cgroup2 device programs apply to the whole subtree, so the payload cgroup (the
container) gets it too. It also covers the helper, which is why an allow list becomes
``DevicePolicy=closed`` (systemd's standard pseudo devices stay usable: /dev/null, zero,
full, random, urandom, tty, ptmx, pts, which LXC's common.conf allows anyway), not strict.

The rules are folded as liblxc's cgroup2 device code does (cgroup2_devices.c,
bpf_list_add_device): ``a`` alone sets the default (``deny a``: an allow list, ``allow a``:
allow everything) and forgets the rules before it; a rule equal to an earlier one in
type, numbers and access flips that one; at the end, an allow list keeps its allow rules and
an allow-everything list its deny rules. systemd has no deny list, so the latter is left
unenforced with a warning. The cgroup2 keys win; the v1 ``lxc.cgroup.devices.*`` keys, which
liblxc ignores on a cgroup2 host, are translated only when a config has no cgroup2 device
rule (a config written for a v1 host keeps its restrictions).

Each rule becomes:

- ``c MAJ:MIN ACC`` → ``/dev/DEVNAME ACC`` (DEVNAME from /sys/dev/char/MAJ:MIN/uevent; the
  rule is skipped with a warning when the kernel has no such device now);
- ``c MAJ:* ACC`` → ``char-NAME ACC`` when /proc/devices names that major with one name of
  its own, else ``char-MAJ`` (systemd also takes the number; names shared by several majors,
  like pts, would allow more than the rule);
- ``c *:* ACC`` → ``char-* ACC`` (systemd's wildcard for every major: exactly LXC's rule,
  mknod of anything for common.conf's ``c *:* m``; verified under systemd 252);
- ``c *:MIN`` has no systemd form: skipped with a warning; ``b`` alike with block-;
  ``a MAJ:MIN`` both; ``/dev/PATH ACC`` as is.
"""

from __future__ import annotations

from .unitfile import one_line, spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeAlias

    from lxcsd.config.model import CgroupSetting as _ModelSetting
    from lxcsd.runtime.plan import CgroupValue

    # A device rule line: the config model's, or the generator cache's plain record.
    CgroupSetting: TypeAlias = _ModelSetting | CgroupValue

_RULE_KEYS = ("devices.allow", "devices.deny")
_KIND_WORD = {"c": "char", "b": "block"}


class DeviceNames:
    """Device numbers → names, read from sysfs and /proc/devices (cached; ``root`` lets
    tests point at a fake tree)."""

    def __init__(self, root: str = "") -> None:
        self.root = root
        self._nodes: dict[tuple[str, str, str], str | None] = {}
        self._majors: dict[str, dict[str, list[str]]] | None = None

    def node(self, kind: str, major: str, minor: str) -> str | None:
        """/dev path of a char ("c") or block ("b") device number, or None."""
        key = (kind, major, minor)
        if key not in self._nodes:
            self._nodes[key] = self._read_node(kind, major, minor)
        return self._nodes[key]

    def _read_node(self, kind: str, major: str, minor: str) -> str | None:
        path = f"{self.root}/sys/dev/{_KIND_WORD[kind]}/{major}:{minor}/uevent"
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("DEVNAME="):
                return "/dev/" + line[8:]
        return None

    def major_names(self, kind: str, major: str) -> list[str]:
        """Names /proc/devices gives a major number (empty when not registered)."""
        if self._majors is None:
            self._majors = self._read_proc_devices()
        return self._majors[kind].get(major, [])

    def major_of_name(self, kind: str, name: str) -> list[str]:
        if self._majors is None:
            self._majors = self._read_proc_devices()
        return [major for major, names in self._majors[kind].items() if name in names]

    def _read_proc_devices(self) -> dict[str, dict[str, list[str]]]:
        table: dict[str, dict[str, list[str]]] = {"c": {}, "b": {}}
        try:
            with open(f"{self.root}/proc/devices", encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            return table
        kind = "c"
        for line in text.splitlines():
            if line.startswith("Block"):
                kind = "b"
            fields = line.split()
            if len(fields) == 2 and fields[0].isdigit():
                table[kind].setdefault(fields[0], []).append(fields[1])
        return table


class Policy:
    """The result: ``lines`` for [Service] (empty: keep the template's defaults),
    ``comments`` to put above them, ``warnings`` (located) to log, and ``text``: comments
    and lines as drop-in text (rendered once, shared by every container using the policy)."""

    __slots__ = ("lines", "comments", "warnings", "text")

    def __init__(self, lines: tuple[str, ...] = (), comments: tuple[str, ...] = (),
                 warnings: tuple[str, ...] = ()) -> None:
        self.lines = lines
        self.comments = comments
        self.warnings = warnings
        self.text = "".join([f"# Devices, {one_line(c)}\n" for c in comments] +
                            [f"{spec(line)}\n" for line in lines]) if lines else ""


NO_RULES = Policy()


class _Rule:
    """One rule as liblxc keeps it: type, major, minor (``*``), access, allow; or a path."""

    __slots__ = ("kind", "major", "minor", "access", "allow", "setting")

    def __init__(self, setting: CgroupSetting) -> None:
        self.setting = setting
        self.allow = setting.key == "devices.allow"
        fields = setting.value.split()
        if setting.value.startswith("/"):
            self.kind, self.major, self.minor = "path", fields[0], ""
            self.access = fields[1] if len(fields) > 1 else "rwm"
        elif setting.value == "a":
            self.kind, self.major, self.minor, self.access = "a", "", "", ""
        else:
            self.kind = fields[0]
            self.major, self.minor = fields[1].split(":", 1)
            self.access = fields[2]

    def same(self, other: _Rule) -> bool:
        return (self.kind, self.major, self.minor, self.access) == (
            other.kind, other.major, other.minor, other.access)

    def where(self) -> str:
        return f"{self.setting.path}:{self.setting.line}"

    def text(self) -> str:
        verb = "allow" if self.allow else "deny"
        return f"{self.where()}: devices.{verb} = {self.setting.value}"


def fold(settings: tuple[CgroupSetting, ...]) -> tuple[bool, list[_Rule]]:
    """(allow list?, rules kept) after liblxc's folding; None-like default: allow all."""
    allow_list = False
    rules: list[_Rule] = []
    for setting in settings:
        rule = _Rule(setting)
        if rule.kind == "a" and not rule.access:
            allow_list, rules = not rule.allow, []
            continue
        for old in rules:
            if old.same(rule):
                old.allow = rule.allow
                break
        else:
            rules.append(rule)
    return allow_list, [r for r in rules if r.allow == allow_list]


def allows(settings: tuple[CgroupSetting, ...], kind: str, major: int, minor: int,
           path: str, access: str = "rw") -> bool:
    """Whether the folded rules let the container use device kind major:minor (at path)
    for access: an allow list needs rules covering every letter; an allow-everything list
    (whose deny rules systemd cannot enforce) honours the rules' intent: no deny rule may
    touch any letter. The helper uses it to decide which optional /dev nodes to make."""
    allow_list, rules = fold(settings)
    letters: set[str] = set()
    for rule in rules:
        if _matches(rule, kind, str(major), str(minor), path):
            letters.update(rule.access)
    return set(access) <= letters if allow_list else not set(access) & letters


def _matches(rule: _Rule, kind: str, major: str, minor: str, path: str) -> bool:
    if rule.kind == "path":
        return rule.major == path
    return rule.kind in (kind, "a") and rule.major in ("*", major) and \
        rule.minor in ("*", minor)


def device_rules(settings: tuple[CgroupSetting, ...]) -> tuple[CgroupSetting, ...]:
    return tuple(s for s in settings if s.key in _RULE_KEYS)


class _Translation:
    """Accumulates DeviceAllow= lines and warnings for one rule list."""

    def __init__(self, names: DeviceNames) -> None:
        self.names = names
        self.lines: list[str] = []
        self.warnings: list[str] = []

    def rule(self, rule: _Rule) -> None:
        if rule.kind == "path":
            self.lines.append(f"DeviceAllow={rule.major} {rule.access}")
            return
        for kind in ("c", "b") if rule.kind == "a" else (rule.kind,):
            self.numbered(rule, kind)

    def numbered(self, rule: _Rule, kind: str) -> None:
        word = _KIND_WORD[kind]
        if rule.major == "*":
            if rule.minor == "*":
                self.lines.append(f"DeviceAllow={word}-* {rule.access}")
            else:
                self.skip(rule, f"systemd cannot allow minor {rule.minor} of every major")
        elif rule.minor == "*":
            self.lines.append(f"DeviceAllow={word}-{self.major_name(kind, rule.major)} "
                              f"{rule.access}")
        else:
            self.node(rule, kind)

    def node(self, rule: _Rule, kind: str) -> None:
        path = self.names.node(kind, rule.major, rule.minor)
        if path is None:
            self.skip(rule, f"no {_KIND_WORD[kind]} device {rule.major}:{rule.minor} on "
                      "this host now (systemd needs its /dev path)")
        else:
            self.lines.append(f"DeviceAllow={path} {rule.access}")

    def major_name(self, kind: str, major: str) -> str:
        names = self.names.major_names(kind, major)
        if len(names) == 1 and "/" not in names[0] and \
                self.names.major_of_name(kind, names[0]) == [major]:
            return names[0]
        return major

    def skip(self, rule: _Rule, why: str) -> None:
        self.warnings.append(f"{rule.text()}: not applied: {why}")


def translate(settings: tuple[CgroupSetting, ...], names: DeviceNames, source: str) -> Policy:
    """The policy for a config's device rules (``source`` names the keys, for comments)."""
    allow_list, rules = fold(settings)
    if not allow_list:
        comments = [f"{source}: every device allowed (liblxc's default or 'allow a')"]
        warnings = [f"{rule.text()}: not applied: systemd has no deny list, only "
                    "DeviceAllow=" for rule in rules]
        comments += [f"not enforced: {w}" for w in warnings]
        return Policy(("DevicePolicy=auto", "DeviceAllow="), tuple(comments), tuple(warnings))
    work = _Translation(names)
    for rule in rules:
        work.rule(rule)
    comments = [f"{source}: allow list (deny a), the template's list replaced"]
    comments += [f"skipped: {w}" for w in work.warnings]
    lines = ["DevicePolicy=closed", "DeviceAllow="] + list(dict.fromkeys(work.lines))
    return Policy(tuple(lines), tuple(comments), tuple(work.warnings))


_MEMO: dict[tuple[object, ...], Policy] = {}


def policy(cgroup2: tuple[CgroupSetting, ...], cgroup_v1: tuple[CgroupSetting, ...],
           names: DeviceNames) -> Policy:
    """The device policy of a container (memoized: every container including common.conf
    shares the same setting objects, see lxcsd.config.build's include folding)."""
    key = (cgroup2, cgroup_v1, names)
    found = _MEMO.get(key)
    if found is None:
        found = _policy(cgroup2, cgroup_v1, names)
        if len(_MEMO) < 4096:
            _MEMO[key] = found
    return found


def _policy(cgroup2: tuple[CgroupSetting, ...], cgroup_v1: tuple[CgroupSetting, ...],
            names: DeviceNames) -> Policy:
    rules = device_rules(cgroup2)
    if rules:
        return translate(rules, names, "lxc.cgroup2.devices.*")
    rules = device_rules(cgroup_v1)
    if rules:
        return translate(rules, names, "lxc.cgroup.devices.* (cgroup v1 keys; no cgroup2 ones)")
    return NO_RULES
