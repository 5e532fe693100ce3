"""How lxcsd talks to systemd. Kept empty: hot paths import only the module they need.

- :mod:`lxcsd.systemd.sdnotify` — the sd_notify protocol (READY=1, MAINPID=, FDSTORE=,
  BARRIER=1) and socket activation's listen_fds, by hand on ``_socket`` (hot paths)
- :mod:`lxcsd.systemd.journal` — journald's native protocol (console lines, the generator's log)
- :mod:`lxcsd.systemd.sdbus` — one D-Bus call through libsystemd's sd-bus by ctypes (hot
  paths: machined registration)
- :mod:`lxcsd.systemd.manager` — systemd's D-Bus API (units, jobs, unit files) through
  pystemd, for the command line
"""
