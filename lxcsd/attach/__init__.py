"""lxcsd attach: run a command inside a running container (see lxcsd.attach.attach)."""
