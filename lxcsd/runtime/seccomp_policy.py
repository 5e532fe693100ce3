"""LXC's seccomp policy files (lxc.seccomp.profile), parsed, compiled with libseccomp, loaded.

The format, as liblxc's seccomp.c reads it (and lxc.container.conf(5)):

    2                      <- version: 1 or 2
    denylist [ACTION]      <- denylist|blacklist or allowlist|whitelist (lxcsd also reads
                              blocklist), then optionally the action for system calls the
                              policy does not list
    reject_force_umount    <- umount2(..., MNT_FORCE) fails with EACCES
    [x86_64]               <- rules below apply on these hosts ([all]: everywhere)
    kexec_load errno 1     <- NAME [ACTION] [[ARG,VALUE,OP(,MASK)] ...]

Actions: ``kill``, ``allow``, ``trap``, ``notify``, ``errno N``. Without an action a rule
takes the opposite of the list's default: ``kill`` in a denylist, ``allow`` in an
allowlist; the unlisted default is ``allow`` for a denylist and ``kill`` for an allowlist.
Argument filters compare argument ARG (0-5) with VALUE (C integer syntax) by OP
(``SCMP_CMP_EQ`` or ``==``, NE ``!=``, LT ``<``, LE ``<=``, GE ``>=``, GT ``>``,
MASKED_EQ ``&=`` with MASK: ``arg & MASK == VALUE``). Version 1 is an allowlist of system
call numbers, one a line. ``#`` starts a comment line (v2).

As liblxc, a rule applies to every architecture of the filter (on x86_64: x86_64, x86 and
x32) when its section matches the host; system calls unknown to the host are skipped (and
reported). Deliberately stricter than liblxc: unknown words are errors with file:line
rather than silently skipped rules.

Parsing is pure (``parse``); ``build_filter`` imports the ``seccomp`` binding (Debian's
python3-seccomp) only when a policy is compiled. ``compiled`` turns a policy into the BPF
program libseccomp would load (``seccomp_export_bpf``), once per policy text, host and
libseccomp (a cache keyed by their hash); the start loads that program with one prctl
(``lxcsd.linux.seccomp_filter``) and never imports the binding: measured on this machine,
the import, the rules and libseccomp's code generation cost ~1.7 ms in C2 at every start,
the load of a ready program ~0.05 ms.
"""

from __future__ import annotations

import errno
import os

from lxcsd.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    Action = tuple[str, int]
    ArgFilter = tuple[int, str, int, int]

DEFAULT_POLICY = "common.seccomp"
ACTIONS = ("kill", "allow", "trap", "notify", "errno")
OPERATORS = {
    "SCMP_CMP_NE": "NE", "!=": "NE", "SCMP_CMP_LT": "LT", "<": "LT",
    "SCMP_CMP_LE": "LE", "<=": "LE", "SCMP_CMP_EQ": "EQ", "==": "EQ",
    "SCMP_CMP_GE": "GE", ">=": "GE", "SCMP_CMP_GT": "GT", ">": "GT",
    "SCMP_CMP_MASKED_EQ": "MASKED_EQ", "&=": "MASKED_EQ",
}
MAX_ERRNO = 4095
MNT_FORCE = 1
# Section -> the hosts (liblxc's names for uname machines) it applies on.
SECTIONS = {
    "all": None, "x86": ("x86", "x86_64"), "x32": ("x86_64",), "x86_64": ("x86_64",),
    "arm": ("arm", "arm64"), "arm64": ("arm64",), "ppc64le": ("ppc64le",),
    "ppc64": ("ppc64",), "ppc": ("ppc", "ppc64"), "mips64": ("mips64",),
    "mips64n32": ("mips64",), "mips": ("mips", "mips64"), "mipsel64": ("mipsel64",),
    "mipsel64n32": ("mipsel64",), "mipsel": ("mipsel", "mipsel64"), "s390x": ("s390x",),
    "s390": ("s390",), "loongarch64": ("loongarch64",),
}
# Host -> libseccomp architecture names added next to the native one (liblxc get_new_ctx).
COMPAT_ARCHES = {"x86_64": ("X86", "X32"), "arm64": ("ARM",), "ppc64": ("PPC",),
                 "mips64": ("MIPS", "MIPS64N32")}


class SeccompRule:
    """One rule: syscall (a name, or a number in version 1), action, argument filters
    (arg index, operator name, value, mask), section (None before any section), line."""

    __slots__ = ("syscall", "action", "args", "section", "line")

    def __init__(self, *, syscall: str | int, action: Action,
                 args: tuple[ArgFilter, ...] = (), section: str | None = None,
                 line: int = 0) -> None:
        self.syscall = syscall
        self.action = action
        self.args = args
        self.section = section
        self.line = line

    def __repr__(self) -> str:
        return f"SeccompRule({self.syscall!r}, {self.action}, {self.args}, [{self.section}])"


class SeccompPolicy:
    """A parsed policy file: allowlist or denylist, default action, rules in order."""

    __slots__ = ("path", "version", "allowlist", "default_action", "rules")

    def __init__(self, *, path: str, version: int, allowlist: bool, default_action: Action,
                 rules: tuple[SeccompRule, ...]) -> None:
        self.path = path
        self.version = version
        self.allowlist = allowlist
        self.default_action = default_action
        self.rules = rules


def policy_path(profile: str | None, datadir: str = "") -> str | None:
    """The policy file of lxc.seccomp.profile (``profile``); when unset, the shipped
    default denylist (LXC's templates include common.conf, which sets common.seccomp); an
    empty value disables seccomp (None)."""
    if profile is None:
        if not datadir:
            from lxcsd import paths

            datadir = paths.datadir()
        return os.path.join(datadir, DEFAULT_POLICY)
    return profile or None


# ------------------------------------------------------------------------------------------
# Parsing


def read(path: str) -> SeccompPolicy:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read seccomp policy: {exc.strerror}", path=path) from None
    return parse(text, path)


def parse(text: str, path: str = "<policy>") -> SeccompPolicy:
    lines = text.splitlines()
    version = _version(lines, path)
    header = lines[1].strip() if len(lines) > 1 else ""
    allowlist, default = _header(header, version, path)
    rule_default: Action = ("allow", 0) if allowlist else ("kill", 0)
    if version == 1:
        rules = _v1_rules(lines[2:], path)
    else:
        rules = _v2_rules(lines[2:], rule_default, path)
    return SeccompPolicy(path=path, version=version, allowlist=allowlist,
                         default_action=default, rules=tuple(rules))


def _error(path: str, line: int, message: str, hint: str = "") -> ConfigError:
    return ConfigError(message, path=path, line=line, hint=hint)


def _version(lines: Sequence[str], path: str) -> int:
    first = lines[0].strip() if lines else ""
    if first not in ("1", "2"):
        raise _error(path, 1, f"invalid seccomp policy version {first!r}",
                     "the first line must be 1 or 2")
    return int(first)


def _header(header: str, version: int, path: str) -> tuple[bool, Action]:
    words = header.split(None, 1)
    kind = words[0] if words else ""
    if "debug" in header:
        raise _error(path, 2, "seccomp policy 'debug' is not implemented (nor in liblxc)")
    if kind in ("allowlist", "whitelist"):
        allowlist = True
    elif kind in ("denylist", "blacklist", "blocklist") and version == 2:
        allowlist = False
    else:
        raise _error(path, 2, f"invalid seccomp policy type {header!r}",
                     "write allowlist or denylist (version 1: allowlist only)")
    fallback: Action = ("kill", 0) if allowlist else ("allow", 0)
    rest = words[1] if len(words) > 1 else ""
    return allowlist, parse_action(rest, fallback, path, 2)


def parse_action(text: str, fallback: Action, path: str = "<policy>", line: int = 0
                 ) -> Action:
    """An action ("kill", "errno 1", ...), or fallback for empty text."""
    words = text.split()
    if not words:
        return fallback
    name = words[0]
    if name not in ACTIONS:
        raise _error(path, line, f"unknown seccomp action {text.strip()!r}",
                     "use kill, allow, trap, notify or errno N")
    if name != "errno":
        if len(words) > 1:
            raise _error(path, line, f"unexpected {' '.join(words[1:])!r} after {name!r}")
        return (name, 0)
    if len(words) != 2 or not _is_int(words[1]) or not 0 <= int(words[1]) <= MAX_ERRNO:
        raise _error(path, line, f"invalid errno action {text.strip()!r}",
                     f"write errno N with N from 0 to {MAX_ERRNO}")
    return ("errno", int(words[1]))


def _is_int(word: str) -> bool:
    return word.isascii() and word.isdigit()


def _v1_rules(lines: Sequence[str], path: str) -> list[SeccompRule]:
    rules = []
    for number, raw in enumerate(lines, 3):
        word = raw.strip()
        if not word:
            continue
        if not _is_int(word):
            raise _error(path, number, f"version 1 policies list system call numbers, not "
                         f"{word!r}", "use version 2 for names")
        rules.append(SeccompRule(syscall=int(word), action=("allow", 0), line=number))
    return rules


def _v2_rules(lines: Sequence[str], rule_default: Action, path: str) -> list[SeccompRule]:
    rules: list[SeccompRule] = []
    section: str | None = None
    for number, raw in enumerate(lines, 3):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        if text.startswith("["):
            section = _section(text, path, number)
            continue
        rules.append(_rule(text, rule_default, section, path, number))
    return rules


def _section(text: str, path: str, line: int) -> str:
    name = text[1:-1].strip().lower() if text.endswith("]") else ""
    if name not in SECTIONS:
        raise _error(path, line, f"unsupported architecture section {text!r}",
                     "use [all], [x86_64], [x86], [x32], [arm64], [arm], ...")
    return name


def _rule(text: str, rule_default: Action, section: str | None, path: str,
          line: int) -> SeccompRule:
    name, _, rest = text.partition(" ")
    if name == "reject_force_umount":
        return SeccompRule(syscall="umount2", action=("errno", errno.EACCES),
                           args=((1, "MASKED_EQ", MNT_FORCE, MNT_FORCE),),
                           section=section, line=line)
    action_text, bracket, args_text = rest.partition("[")
    args = _args(bracket + args_text, path, line) if bracket else ()
    if args and not action_text.strip():
        raise _error(path, line, "argument filters need an explicit action",
                     f"e.g. {name} errno 1 {bracket}{args_text}")
    action = parse_action(action_text, rule_default, path, line)
    return SeccompRule(syscall=name, action=action, args=args, section=section, line=line)


def _args(text: str, path: str, line: int) -> tuple[ArgFilter, ...]:
    parts = [part.strip() for part in text.split("]")]
    if parts[-1]:
        raise _error(path, line, f"unterminated argument filter {parts[-1]!r}")
    filters = tuple(_arg(part, path, line) for part in parts[:-1] if part)
    if len(filters) > 6:
        raise _error(path, line, "at most 6 argument filters per rule")
    return filters


def _arg(part: str, path: str, line: int) -> ArgFilter:
    fields = [field.strip() for field in part.lstrip("[").split(",")]
    hint = "write [ARG,VALUE,OP] or [ARG,VALUE,SCMP_CMP_MASKED_EQ,MASK], ARG from 0 to 5"
    if len(fields) not in (3, 4) or not _is_int(fields[0]) or int(fields[0]) > 5:
        raise _error(path, line, f"invalid argument filter [{part.lstrip('[')}]", hint)
    op = OPERATORS.get(fields[2])
    if op is None:
        raise _error(path, line, f"unknown comparison {fields[2]!r}", hint)
    value = c_integer(fields[1])
    mask = c_integer(fields[3]) if len(fields) == 4 else 0
    if value is None or mask is None:
        raise _error(path, line, f"invalid number in [{part.lstrip('[')}]",
                     "numbers are decimal, 0x hexadecimal or 0 octal, below 2^64")
    return (int(fields[0]), op, value, mask)


def c_integer(word: str) -> int | None:
    """strtoull(word, NULL, 0) for a whole word: decimal, 0x hex, leading-0 octal."""
    text = word.lower()
    base = 16 if text.startswith("0x") else 8 if text.startswith("0") and len(text) > 1 else 10
    digits = text[2:] if base == 16 else text
    try:
        value = int(digits, base) if digits and digits.isalnum() else None
    except ValueError:
        return None
    return value if value is not None and value < 2**64 else None


# ------------------------------------------------------------------------------------------
# Compiling and loading


def host_arch(machine: str | None = None) -> str:
    """liblxc's name (get_hostarch) for a uname machine."""
    machine = machine or os.uname().machine
    for prefix, name in (("x86_64", "x86_64"), ("i686", "x86"), ("i386", "x86"),
                         ("armv7", "arm"), ("aarch64", "arm64"), ("ppc64le", "ppc64le"),
                         ("ppc64", "ppc64"), ("ppc", "ppc"), ("mips64", "mips64"),
                         ("mips", "mips"), ("s390x", "s390x"), ("s390", "s390"),
                         ("loongarch64", "loongarch64")):
        if machine.startswith(prefix):
            return name
    return machine


def applies(rule: SeccompRule, host: str) -> bool:
    hosts = SECTIONS.get(rule.section or "all")
    return hosts is None or host in hosts


def build_filter(policy: SeccompPolicy) -> tuple[Any, list[SeccompRule]]:
    """A seccomp.SyscallFilter for this host, and the rules skipped because the host does
    not know their system call (liblxc logs those and goes on)."""
    import seccomp

    host = host_arch()
    flt = seccomp.SyscallFilter(_scmp_action(seccomp, policy.default_action))
    flt.set_attr(seccomp.Attr.CTL_NNP, 0)  # as liblxc: no_new_privs would break setuid
    for arch in COMPAT_ARCHES.get(host, ()):
        flt.add_arch(getattr(seccomp.Arch, arch))
    unknown = []
    for rule in policy.rules:
        if not applies(rule, host) or rule.action == policy.default_action:
            continue  # a rule repeating the default changes nothing (libseccomp refuses it)
        if isinstance(rule.syscall, str) and \
                seccomp.resolve_syscall(seccomp.Arch.NATIVE, rule.syscall) == -1:
            unknown.append(rule)
            continue
        _add_rule(seccomp, flt, rule, policy.path)
    return flt, unknown


def _scmp_action(seccomp: Any, action: Action) -> Any:
    name, value = action
    if name == "errno":
        return seccomp.ERRNO(value)
    return {"kill": seccomp.KILL, "allow": seccomp.ALLOW, "trap": seccomp.TRAP,
            "notify": seccomp.NOTIFY}[name]


def _add_rule(seccomp: Any, flt: Any, rule: SeccompRule, path: str) -> None:
    args = []
    for index, op, value, mask in rule.args:
        if op == "MASKED_EQ":
            args.append(seccomp.Arg(index, seccomp.MASKED_EQ, mask, value))
        else:
            args.append(seccomp.Arg(index, getattr(seccomp, op), value))
    try:
        flt.add_rule(_scmp_action(seccomp, rule.action), rule.syscall, *args)
    except (RuntimeError, ValueError) as exc:
        raise _error(path, rule.line, f"libseccomp refused the rule for {rule.syscall}: "
                     f"{exc}") from None


def compiled(policy: SeccompPolicy) -> bytes:
    """The BPF program (struct sock_filter[]) of a parsed policy, for this host's
    architecture, as this host's libseccomp builds it (callers cache it per policy)."""
    flt, _unknown = build_filter(policy)
    return export(flt)


def export(flt: Any) -> bytes:
    """The program libseccomp would load for ``flt`` (seccomp_export_bpf, into a memfd)."""
    fd = os.memfd_create("lxcsd-seccomp", os.MFD_CLOEXEC)
    try:
        flt.export_bpf(_Fd(fd))
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class _Fd:
    """What SyscallFilter.export_bpf wants: an object with fileno()."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


def load_program(program: bytes) -> None:
    """Load a compiled program into this process (the last step before exec, while
    CAP_SYS_ADMIN is still effective: liblxc does not set no_new_privs)."""
    from lxcsd import linux

    try:
        linux.seccomp_filter(program)
    except OSError as exc:
        raise OSError(exc.errno, f"loading the seccomp filter failed: {exc.strerror}") \
            from None


def wants_notify(policy: SeccompPolicy) -> bool:
    return policy.default_action[0] == "notify" or \
        any(rule.action[0] == "notify" for rule in policy.rules)


def load(flt: Any, notify: bool = False) -> int | None:
    """Load the filter into this process (the last step before exec, while CAP_SYS_ADMIN is
    still effective: liblxc does not set no_new_privs). Returns the notify listener fd when
    notify (to hand to the host), else None."""
    try:
        flt.load()
    except (RuntimeError, ValueError) as exc:
        raise OSError(errno.EINVAL, f"loading the seccomp filter failed: {exc}") from None
    return int(flt.get_notify_fd()) if notify else None


def already_confined(status_path: str = "/proc/self/status") -> bool:
    """Whether a seccomp filter is already loaded (liblxc's use_seccomp skips the policy
    then, unless lxc.seccomp.allow_nesting)."""
    with open(status_path, encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("Seccomp:"):
                return line.split()[1] != "0"
    return False
