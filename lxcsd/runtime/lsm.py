"""``lxc.apparmor.*`` and ``lxc.selinux.context``: which label init gets, decided up front.

:func:`decide` (pure, given the host's facts) runs in the plan, so ``lxcsd check`` reports
what the start would refuse:

- AppArmor ``generated``: a profile made for the container (``lxcsd.runtime.apparmor``),
  loaded by the helper and applied as ``NAME//&:NAMESPACE:`` on stacking hosts; refused
  without apparmor_parser. A host without AppArmor starts the container unconfined with
  one warning, as liblxc does there (it ignores the key).
- a named profile: applied; refused when AppArmor is on and the profile is not loaded
  (the kernel would refuse it at exec); a warning on a host without AppArmor.
- ``unconfined``, ``unchanged``, unset: nothing is written (lxcsd does not impose LXC's
  lxc-container-default-cgns on configs that name no profile).
- any profile but unconfined on a kernel that does not enforce AppArmor's mount rules:
  refused unless ``lxc.apparmor.allow_incomplete = 1`` (liblxc's rule).
- SELinux: applied when SELinux is on, else a warning.

Labels are applied as LXC applies them on exec: written to the task's exec attribute
(/proc/self/attr/apparmor/exec, else /proc/self/attr/exec; SELinux: /proc/self/attr/exec),
which the kernel applies at the next execve (init's, or an attached command's). The
attribute is opened through the host's /proc (before pivot_root for init; through a host
/proc directory fd for attach, so a container's own /proc cannot stand in for it) and
written right before exec.
"""

from __future__ import annotations

import os

from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxcsd.config.model import Container
    from lxcsd.runtime.apparmor_profile import Features

APPARMOR = "AppArmor"
SELINUX = "SELinux"
SELINUX_ENFORCE = "/sys/fs/selinux/enforce"
AA_ATTRS = ("self/attr/apparmor/exec", "self/attr/exec")
SELINUX_ATTRS = ("self/attr/exec",)
NO_LABEL = ("unconfined", "unchanged")


class LabelError(LxcsdError):
    """A label the start would refuse; ``key`` names the config key."""

    def __init__(self, key: str, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.key = key


class Host:
    """What the host offers: AppArmor features (None: not enabled), loaded profiles (None:
    unknown), apparmor_parser's path, SELinux."""

    __slots__ = ("apparmor", "profiles", "parser", "selinux")

    def __init__(self, *, apparmor: Features | None = None, profiles: set[str] | None = None,
                 parser: str | None = None, selinux: bool = False) -> None:
        self.apparmor = apparmor
        self.profiles = profiles
        self.parser = parser
        self.selinux = selinux


def host_facts(container: Container) -> Host:
    """Read only what the container's keys need (the sysfs reads cost ~0.1 ms)."""
    if not (container.apparmor.profile or container.selinux.context):
        return Host()
    from lxcsd.runtime import apparmor

    feats = apparmor.features()
    if not feats.enabled:
        return Host(selinux=os.path.exists(SELINUX_ENFORCE))
    return Host(apparmor=feats, profiles=apparmor.loaded(), parser=apparmor.parser(),
                selinux=os.path.exists(SELINUX_ENFORCE))


class Decision:
    """labels: [(key, label, module)] to apply at exec; generate: the host's AppArmor
    features when a profile must be generated and loaded first; warnings."""

    __slots__ = ("labels", "generate", "warnings")

    def __init__(self) -> None:
        self.labels: list[tuple[str, str, str]] = []
        self.generate: Features | None = None
        self.warnings: list[tuple[str, str]] = []  # (key, message)


def decide(container: Container, name: str, host: Host) -> Decision:
    """Raises LabelError for what the start cannot apply."""
    decision = Decision()
    _apparmor(container, name, host, decision)
    context = container.selinux.context
    if context:
        if host.selinux:
            decision.labels.append(("lxc.selinux.context", context, SELINUX))
        else:
            decision.warnings.append(("lxc.selinux.context", "ignored: SELinux is not enabled "
                                      "on this host; the container runs without it"))
    return decision


def _apparmor(c: Container, name: str, host: Host, decision: Decision) -> None:
    key = "lxc.apparmor.profile"
    profile = c.apparmor.profile
    if not profile or profile in NO_LABEL:
        return
    feats = host.apparmor
    if feats is None:
        what = "no profile is generated" if profile == "generated" else "the profile is " \
            "not applied"
        decision.warnings.append((key, f"{profile!r} ignored: AppArmor is not enabled on this "
                                  f"host; {what} and the container runs unconfined"))
        return
    if not feats.mount:
        if not c.apparmor.allow_incomplete:
            raise LabelError(key, "this kernel does not enforce AppArmor mount rules, so the "
                             "profile would not confine mounts",
                             "set lxc.apparmor.allow_incomplete = 1 to start anyway")
        decision.warnings.append((key, "AppArmor mount rules are not enforced by this kernel "
                                  "(lxc.apparmor.allow_incomplete = 1)"))
    if profile == "generated":
        if host.parser is None:
            raise LabelError(key, "a generated profile needs apparmor_parser, which is not "
                             "installed", "apt-get install apparmor")
        from lxcsd.runtime import apparmor, apparmor_profile

        lxcpath = apparmor.lxcpath_of(c)
        decision.labels.append((key, apparmor_profile.label(name, lxcpath, feats), APPARMOR))
        decision.generate = feats
        return
    plain = "//" not in profile and not profile.startswith(":")
    if plain and host.profiles is not None and profile not in host.profiles:
        raise LabelError(key, f"AppArmor profile {profile!r} is not loaded",
                         "load it (apparmor_parser -r /etc/apparmor.d/FILE), or use generated")
    decision.labels.append((key, profile, APPARMOR))


# ------------------------------------------------------------------------------------------
# Applying: the exec attribute


def prepare(labels: list[tuple[str, str, str]], proc: int | None = None
            ) -> list[tuple[int, str, str]]:
    """Open the exec attribute for each label: [(fd, text, key)]. proc: a directory fd of
    the host's /proc (attach), else /proc (init, before pivot_root). The writer must be the
    task that opened it (the kernel checks), through its own /proc/self."""
    prepared = []
    try:
        for key, label, module in labels:
            paths = AA_ATTRS if module == APPARMOR else SELINUX_ATTRS
            text = f"exec {label}" if module == APPARMOR else label
            prepared.append((_open_first(paths, key, proc), text, key))
    except BaseException:
        for fd, _, _ in prepared:
            os.close(fd)
        raise
    return prepared


def _open_first(paths: tuple[str, ...], key: str, proc: int | None) -> int:
    for path in paths:
        try:
            if proc is None:
                return os.open(f"/proc/{path}", os.O_WRONLY | os.O_CLOEXEC)
            return os.open(path, os.O_WRONLY | os.O_CLOEXEC, dir_fd=proc)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise LxcsdError(f"{key}: cannot open /proc/{path}: {exc.strerror}") from None
    raise LxcsdError(f"{key}: none of {', '.join('/proc/' + p for p in paths)} exists")


def apply(prepared: list[tuple[int, str, str]]) -> None:
    """Write each label (the last step before exec); the fds are closed."""
    for fd, text, key in prepared:
        try:
            os.write(fd, text.encode())
        except OSError as exc:
            raise LxcsdError(f"{key}: the kernel refused {text!r}: {exc.strerror}") from None
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------------------
# The state file: what attach applies


def state_fields(labels: list[tuple[str, str, str]]) -> dict[str, str]:
    """The labels init got, for the state file (attach gives its commands the same)."""
    return {"apparmor_label" if module == APPARMOR else "selinux_context": label
            for _, label, module in labels}


def recorded(fields: dict[str, str]) -> list[tuple[str, str, str]]:
    """The labels of a state file's fields (none from an older state file)."""
    labels = []
    if fields.get("apparmor_label"):
        labels.append(("lxc.apparmor.profile", fields["apparmor_label"], APPARMOR))
    if fields.get("selinux_context"):
        labels.append(("lxc.selinux.context", fields["selinux_context"], SELINUX))
    return labels
