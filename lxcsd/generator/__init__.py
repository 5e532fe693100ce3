"""lxcsd-generator: containers' configs → systemd units (systemd.generator(7)).

Kept empty on purpose: the generator runs at every boot and daemon-reload and imports only
the submodules it needs (docs/design.md, "Imports"). Modules, pure first:

- :mod:`~lxcsd.generator.autostart` — the autostart graph: boot order, groups, delays
- :mod:`~lxcsd.generator.devices` — ``lxc.cgroup2.devices.*`` → ``DevicePolicy=``/``DeviceAllow=``
- :mod:`~lxcsd.generator.render` — a container → the text of its drop-in
- :mod:`~lxcsd.generator.scan` — find containers, refuse bad names, spot lxcpaths mounted late
- :mod:`~lxcsd.generator.plan` — all of the above → the list of files and links to write
- :mod:`~lxcsd.generator.output` — the one module that writes (atomically), or prints them
- :mod:`~lxcsd.generator.log` — /dev/kmsg, else the journal, else stderr
- :mod:`~lxcsd.generator.main` — the entry point systemd runs
"""
