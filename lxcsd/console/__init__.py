"""The console service: one long-lived process for the consoles of all containers.

- :mod:`.handoff` — what ``lxcsd-helper start`` calls to hand a container's pty masters over;
- :mod:`.daemon` — ``lxcsd-console.service``: holds the masters (and keeps them in systemd's
  file-descriptor store), forwards console lines to the journal, keeps the ring buffer and the
  console log file, serves ``lxcsd console``;
- :mod:`.client` — the attach loop behind ``lxcsd console``;
- :mod:`.protocol` — the messages all three speak on ``/run/lxcsd/console.sock``.

Kept empty on purpose: the helper imports :mod:`.handoff` on its hot path.
"""
