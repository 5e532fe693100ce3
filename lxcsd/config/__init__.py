"""Reading, validating and writing LXC container configs (lxc.container.conf(5)).

Kept empty on purpose: the generator imports the submodules it needs (see docs/design.md,
"Imports"). From the bottom up (each imports only modules above it in this list):

- :mod:`lxcsd.config.record` — frozen, slotted, keyword-only records (the model's classes)
- :mod:`lxcsd.config.model` — the typed ``Container`` model and the reader's ``Entry``
- :mod:`lxcsd.config.values` — value parsers with liblxc's semantics (``parse_signal``)
- :mod:`lxcsd.config.cgroups` — cgroup2 value checks, cgroup v1 → v2 translation
- :mod:`lxcsd.config.parsers` — how a key's lines fold (reset rules, lists, dicts)
- :mod:`lxcsd.config.globalconf` — /etc/lxc/lxc.conf
- :mod:`lxcsd.config.keys` — the one key table, lookup, network folding
- :mod:`lxcsd.config.reader`, :mod:`lxcsd.config.build` — text → entries → model
- :mod:`lxcsd.config.names` — container names and ``lxc@NAME.service`` escaping
- :mod:`lxcsd.config.load` — ``load_container``, ``load_path``, ``discover``, ``lxcpaths``
- :mod:`lxcsd.config.document`, :mod:`lxcsd.config.query`, :mod:`lxcsd.config.desired` —
  line-preserving editing, ``lxcsd config get``, ``lxcsd config apply``
- :mod:`lxcsd.config.netconf` — net.conf, lxcsd-net.service's settings
- :mod:`lxcsd.config.docs` — generates docs/config-keys.md
"""
