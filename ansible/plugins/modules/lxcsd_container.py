#!/usr/bin/python
# Copyright: lxcsd developers
# GNU Lesser General Public License v2.1 or later (see COPYING or
# https://www.gnu.org/licenses/old-licenses/lgpl-2.1.txt)
"""Ansible module lxcsd_container: one container of lxcsd on the managed host.

Every change goes through lxcsd's own tools on the host, never around them: ``lxcsd create``
and ``lxcsd copy``/``destroy`` (they check names and clean up after a failure, and take
the container's lock), ``lxcsd config apply`` for the config (lxcsd's own reader and
writer: a bad key fails with its file and line, and the file is saved once, checked as a
whole), ``lxcsd start|stop|restart|enable|disable`` (jobs on lxc@NAME.service through
systemd's D-Bus API) and ``systemctl`` for the unit's state. So the module needs nothing
on the host but lxcsd, whichever way it was installed (the .deb or install.sh).
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lxcsd_container
short_description: LXC system containers run as systemd services by lxcsd
description:
  - Creates, configures, starts, stops and removes a container of lxcsd
    (C(/var/lib/lxc/NAME/config), run by systemd as C(lxc@NAME.service)).
  - The config is edited with C(lxcsd config apply), lxcsd's own config reader and writer
    - every key given in C(config), C(network) and the autostart options gets exactly that
    value in effect, keys not given are left alone, comments and includes are kept, and a
    key that already has its value is not touched. A bad key or value fails with lxcsd's
    message (its file and line when the config file itself is wrong) and leaves the file
    as it was.
  - Containers are created and destroyed with C(lxcsd create), C(lxcsd copy) and
    C(lxcsd destroy), and started, stopped and enabled through systemd
    (C(lxcsd start|stop|enable), the jobs of C(systemctl)).
version_added: "0.1.0"
author: lxcsd developers
requirements:
  - lxcsd on the managed host (the C(lxcsd.lxcsd.lxcsd) role installs it)
options:
  name:
    description: The container's name (letters, digits, C(_), C(.), C(:), C(-)).
    type: str
    required: true
  state:
    description:
      - C(started) - created if missing, running (C(systemctl start lxc@NAME)).
      - C(stopped) - created if missing, not running.
      - C(present) - created if missing; whether it runs is left alone.
      - C(absent) - stopped if it runs, then destroyed (its directory and root file
        system, as C(lxcsd destroy --force)).
    type: str
    choices: [started, stopped, present, absent]
    default: started
  lxcpath:
    description: The directory holding the containers (C(lxcsd -P)); default is lxcsd's
      (C(lxc.lxcpath) of C(/etc/lxc/lxc.conf), else C(/var/lib/lxc)).
    type: path
  template:
    description: The root file system of a new container (C(lxcsd create -t); default
      C(busybox)). C(debian) runs debootstrap, so it needs a Debian mirror.
    type: str
    choices: [busybox, debian]
  release:
    description: The Debian suite of a new C(debian) container (C(lxcsd create --release)).
    type: str
  mirror:
    description: The Debian mirror for a new C(debian) container.
    type: str
  clone_from:
    description: Make a new container as a copy of this stopped container on the same host
      (C(lxcsd copy)) instead of from C(template).
    type: str
  base_config:
    description: The file a new container's config starts from (C(lxcsd create -f));
      default is C(lxc.default_config), C(/etc/lxc/default.conf).
    type: path
  privileged:
    description: Create a privileged container, whose root is the host's root
      (C(lxcsd create --privileged)); by default root is mapped to root's subordinate ids,
      as C(lxcsd create) does. Only used when the container is created.
    type: bool
    default: false
  config:
    description:
      - C(lxc.*) keys and their values, as in the config file. A list gives a list key
        (C(lxc.mount.entry), C(lxc.cap.drop)) exactly these lines; an empty list or null
        clears a key, also a value that comes from an included file.
      - Booleans are written C(1)/C(0).
    type: dict
    default: {}
  network:
    description:
      - The container's networks, exactly - C(lxc.net.N.*) for each item N, and no other
        network. Each item maps C(lxc.net.N) subkeys to values (C(type) is required,
        C(ipv4.address) may be a list). Omitted - networks are left alone; an empty list -
        no network.
    type: list
    elements: dict
  autostart:
    description: Start at boot, in C(start_order) (C(lxc.start.auto)).
    type: bool
  start_order:
    description: C(lxc.start.order); higher starts first, as C(lxc-autostart).
    type: int
  start_delay:
    description: C(lxc.start.delay), seconds to wait after starting it at boot.
    type: int
  groups:
    description: C(lxc.group) values; C(lxc-group@GROUP.target) starts a group.
    type: list
    elements: str
  enabled:
    description: Whether C(lxc@NAME.service) is enabled (C(systemctl enable), a second way
      to start at boot besides C(autostart)). Omitted - left alone.
    type: bool
  restart_on_change:
    description: Restart a running container whose config this task changed, so that it
      runs with it. Otherwise the change applies at its next start (a warning says so).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - A container whose name needs escaping in a unit name (anything outside letters,
    digits, C(_.:-)) is refused.
  - The key table, and what every key means, is lxcsd's (C(docs/config-keys.md)).
"""

EXAMPLES = r"""
- name: A web container with a veth on lxcbr0, started now and at boot
  lxcsd.lxcsd.lxcsd_container:
    name: web1
    template: busybox
    network:
      - type: veth
        link: lxcbr0
        flags: up
        hwaddr: 00:16:3e:xx:xx:xx
    config:
      lxc.cgroup2.memory.max: 256M
      lxc.mount.entry:
        - /srv/www srv/www none bind,create=dir 0 0
    autostart: true
    start_order: 10
    groups: [web]

- name: A copy of a stopped template container, not running
  lxcsd.lxcsd.lxcsd_container:
    name: web2
    clone_from: web-template
    state: stopped

- name: Gone, with its root file system
  lxcsd.lxcsd.lxcsd_container:
    name: old1
    state: absent
"""

RETURN = r"""
container:
  description: The container after the task.
  returned: always
  type: dict
  contains:
    name: {description: Its name., type: str, returned: always}
    config: {description: Its config file., type: str, returned: when it exists}
    active_state: {description: ActiveState of lxc@NAME.service., type: str,
                   returned: always}
    unit_file_state: {description: UnitFileState of lxc@NAME.service., type: str,
                      returned: always}
keys_changed:
  description: The keys (or groups, such as C(lxc.net)) whose values the task changed.
  returned: always
  type: list
  elements: str
  sample: [lxc.start.auto, lxc.net]
"""

import json  # noqa: E402
import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

# lxcsd's unit template takes the instance as written (%i): names of these characters are
# their own unit instance; others would need systemd's escaping (lxcsd.config.names).
NAME = re.compile(r"[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,200}")
RUNNING = ("active", "reloading", "activating")
ARGUMENTS = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="started",
               choices=["started", "stopped", "present", "absent"]),
    lxcpath=dict(type="path"),
    template=dict(type="str", choices=["busybox", "debian"]),
    release=dict(type="str"),
    mirror=dict(type="str"),
    clone_from=dict(type="str"),
    base_config=dict(type="path"),
    privileged=dict(type="bool", default=False),
    config=dict(type="dict", default={}),
    network=dict(type="list", elements="dict"),
    autostart=dict(type="bool"),
    start_order=dict(type="int"),
    start_delay=dict(type="int"),
    groups=dict(type="list", elements="str"),
    enabled=dict(type="bool"),
    restart_on_change=dict(type="bool", default=False),
)


def value_text(value):
    """A YAML value as the config writes it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (dict, list)):
        raise ValueError(f"{value!r} is not a single value")
    return str(value)


def key_lines(key, value):
    """``KEY = VALUE`` lines for one key; a list gives one line per item, an empty list or
    None an empty value (the key cleared)."""
    values = value if isinstance(value, list) else [value]
    values = [v for v in values if v is not None]
    if not values:
        return [f"{key} ="]
    return [f"{key} = {value_text(v)}" for v in values]


def option_keys(params):
    """The keys the autostart options stand for."""
    keys = {}
    if params["autostart"] is not None:
        keys["lxc.start.auto"] = params["autostart"]
    if params["start_order"] is not None:
        keys["lxc.start.order"] = params["start_order"]
    if params["start_delay"] is not None:
        keys["lxc.start.delay"] = params["start_delay"]
    if params["groups"] is not None:
        keys["lxc.group"] = params["groups"]
    return keys


def network_lines(networks):
    """``lxc.net =`` (the networks are exactly these), then each network, its type first."""
    lines = ["lxc.net ="]
    for index, network in enumerate(networks):
        if "type" not in network:
            raise ValueError(f"network {index} has no type")
        for sub in sorted(network, key=lambda s: s != "type"):
            lines += key_lines(f"lxc.net.{index}.{sub}", network[sub])
    return lines


def fragment(params):
    """The LXC config lines the task asks for ('' when it asks for no key)."""
    config = dict(params["config"] or {})
    for key, value in option_keys(params).items():
        if key in config:
            raise ValueError(f"{key} is given twice: in config and by its option")
        config[key] = value
    lines = []
    for key, value in config.items():
        if params["network"] is not None and (key == "lxc.net" or key.startswith("lxc.net.")):
            raise ValueError(f"{key}: give networks either in network or as lxc.net.* keys "
                             "in config, not both")
        lines += key_lines(key, value)
    if params["network"] is not None:
        lines += network_lines(params["network"])
    return "".join(line + "\n" for line in lines)


class Host:
    """lxcsd and systemd on the managed host, for one container."""

    def __init__(self, module):
        self.module = module
        self.name = module.params["name"]
        self.unit = f"lxc@{self.name}.service"
        self.lxcsd = module.get_bin_path("lxcsd", opt_dirs=["/usr/local/bin"])
        if self.lxcsd is None:
            module.fail_json(msg="lxcsd is not installed on this host (the lxcsd.lxcsd.lxcsd "
                             "role installs it)")
        lxcpath = module.params["lxcpath"]
        self.where = ["-P", lxcpath] if lxcpath else []

    def run(self, *args, data=None, check=True):
        cmd = [self.lxcsd, *args]
        rc, out, err = self.module.run_command(cmd, data=data, binary_data=True)
        if check and rc != 0:
            self.module.fail_json(msg=f"{self.name}: lxcsd {args[0]} failed: "
                                  f"{err.strip() or out.strip()}", rc=rc, stdout=out,
                                  stderr=err)
        return rc, out, err

    def exists(self):
        _, out, _ = self.run("ls", "-1", *self.where)
        return self.name in out.splitlines()

    def unit_state(self):
        cmd = ["systemctl", "show", self.unit, "-p", "ActiveState", "-p", "UnitFileState"]
        rc, out, err = self.module.run_command(cmd)
        if rc != 0:
            self.module.fail_json(msg=f"systemctl show {self.unit}: {err.strip()}")
        pairs = (line.partition("=") for line in out.splitlines())
        return {key: value for key, _, value in pairs}

    def apply(self, text, check):
        """lxcsd config apply: {changed, path, keys, before, after} or {error: ...}."""
        args = ["config", "apply", *self.where, self.name, "-", "--format", "json"]
        rc, out, err = self.run(*args, *(["--check"] if check else []), data=text,
                                check=False)
        try:
            result = json.loads(out)
        except ValueError:
            self.module.fail_json(msg=f"{self.name}: lxcsd config apply failed: "
                                  f"{err.strip() or out.strip()}", rc=rc)
        if rc != 0 and "error" not in result:
            self.module.fail_json(msg=f"{self.name}: lxcsd config apply: {err.strip()}")
        return result

    def reload(self):
        rc, _, err = self.module.run_command(["systemctl", "daemon-reload"])
        if rc != 0:
            self.module.fail_json(msg=f"systemctl daemon-reload: {err.strip()}")


def error_text(name, error):
    """lxcsd's error: located in the config file, or (for what the task gave) named by the
    key, the fragment's line numbers meaning nothing to the task's author."""
    if error.get("path") != "<stdin>":
        return f"{name}: {error['text']}"
    hint = f" ({error['hint']})" if error.get("hint") else ""
    return f"{name}: {error['key']}: {error['message']}{hint}"


class Task:
    """One run of the module: what it found, what it did."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.host = Host(module)
        self.changed = False
        self.created = False
        self.keys = []
        self.path = ""
        self.diff = {"before": "", "after": "", "before_header": "", "after_header": ""}
        self.warnings = []

    def absent(self):
        if not self.host.exists():
            return
        current = self.host.apply("", check=True)
        self.path = current["path"]
        self.diff.update(before=current["before"], before_header=current["path"],
                         after_header="(absent)")
        self.changed = True
        if not self.check:
            self.host.run("destroy", *self.host.where, "--force", self.host.name)
            self.host.reload()  # the generator forgets its wiring (autostart, groups)

    def create(self):
        if self.host.exists():
            return
        self.changed = self.created = True
        self.diff["before_header"] = "(absent)"
        if self.check:
            return
        self.host.run(*self.create_args())

    def create_args(self):
        p = self.params
        if p["clone_from"]:
            return ["copy", *self.host.where, p["clone_from"], self.host.name]
        args = ["create", *self.host.where, self.host.name, "-t", p["template"] or "busybox"]
        for option, value in (("-f", p["base_config"]), ("--release", p["release"]),
                              ("--mirror", p["mirror"])):
            args += [option, value] if value else []
        return args + (["--privileged"] if p["privileged"] else [])

    def configure(self, text):
        if self.created and self.check:
            # Nothing to apply to yet: show how it would be made and the keys it would get.
            command = " ".join(["lxcsd", *self.create_args()])
            self.diff.update(after=f"# {command}\n{text}",
                             after_header=f"{self.host.name} (new)")
            return
        result = self.host.apply(text, self.check)
        if "error" in result:
            self.rollback()
            self.module.fail_json(msg=error_text(self.host.name, result["error"]),
                                  error=result["error"])
        self.path = result["path"]
        self.diff.update(before="" if self.created else result["before"],
                         after=result["after"], after_header=result["path"])
        self.diff["before_header"] = self.diff["before_header"] or result["path"]
        self.keys = result["keys"]
        self.changed = self.changed or result["changed"]

    def rollback(self):
        """A container this task created and could not configure is removed again."""
        if self.created and not self.check:
            self.host.run("destroy", *self.host.where, "--force", self.host.name,
                          check=False)

    def run_state(self):
        """started/stopped, and a restart for a config change when asked; True when the
        unit was (re)started, which reloads systemd for the new config."""
        state = self.params["state"]
        active = self.host.unit_state().get("ActiveState", "")
        verb = None
        if state == "started" and active not in RUNNING:
            verb = "start"
        elif state == "stopped" and active in RUNNING:
            verb = "stop"
        elif self.keys and active in RUNNING and state != "stopped":
            if self.params["restart_on_change"]:
                verb = "restart"
            else:
                self.warnings.append(f"{self.host.name} runs with its previous config until "
                                     "it is restarted (restart_on_change: true does it)")
        if verb is None:
            return False
        self.changed = True
        if not self.check:
            self.host.run(verb, *self.host.where, self.host.name)
        return verb != "stop"

    def enablement(self):
        wanted = self.params["enabled"]
        if wanted is None:
            return
        current = self.host.unit_state().get("UnitFileState", "") == "enabled"
        if current != wanted:
            self.changed = True
            if not self.check:
                self.host.run("enable" if wanted else "disable", *self.host.where,
                              self.host.name)

    def result(self):
        state = {} if self.check and self.created else self.host.unit_state()
        container = {"name": self.host.name, "active_state": state.get("ActiveState", ""),
                     "unit_file_state": state.get("UnitFileState", "")}
        if self.path and self.params["state"] != "absent":
            container["config"] = self.path
        out = {"changed": self.changed, "container": container, "keys_changed": self.keys}
        if self.module._diff and self.changed:
            out["diff"] = self.diff
        for warning in self.warnings:
            self.module.warn(warning)
        return out


def main():
    module = AnsibleModule(argument_spec=ARGUMENTS, supports_check_mode=True,
                           mutually_exclusive=[("clone_from", "template")])
    name = module.params["name"]
    if not NAME.fullmatch(name):
        module.fail_json(msg=f"{name!r}: this module takes container names of letters, "
                         "digits and _.:- (not starting with '.')")
    try:
        text = fragment(module.params)
    except ValueError as exc:
        module.fail_json(msg=f"{name}: {exc}")
    task = Task(module)
    if module.params["state"] == "absent":
        task.absent()
        module.exit_json(**task.result())
    task.create()
    task.configure(text)
    restarted = task.run_state()
    task.enablement()
    if (task.keys or task.created) and not restarted and not module.check_mode:
        task.host.reload()  # the generator's view of the new config (autostart, drop-in)
    module.exit_json(**task.result())


if __name__ == "__main__":
    main()
