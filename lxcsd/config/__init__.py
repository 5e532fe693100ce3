"""Reading, validating and writing LXC container configs (lxc.container.conf(5)).

Kept empty on purpose: the generator imports the submodules it needs (see docs/design.md,
"Imports"). Modules:

- :mod:`lxcsd.config.load` — ``load_container``, ``load_path``, ``discover``, ``lxcpaths``
- :mod:`lxcsd.config.model` — the typed ``Container`` model
- :mod:`lxcsd.config.keys` — the one key table; :mod:`lxcsd.config.values` — value parsers
  (``parse_signal``)
- :mod:`lxcsd.config.reader`, :mod:`lxcsd.config.build` — text → entries → model
- :mod:`lxcsd.config.names` — container names and ``lxc@NAME.service`` escaping
- :mod:`lxcsd.config.globalconf` — /etc/lxc/lxc.conf
- :mod:`lxcsd.config.document` — line-preserving editing (``lxcsd config set``)
- :mod:`lxcsd.config.docs` — generates docs/config-keys.md
"""
