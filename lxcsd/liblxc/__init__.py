"""liblxc's command socket, spoken by lxcsd (docs/design.md, "LXC's tools").

``wire``: the binary format and the socket's name, as liblxc 4.0-6.0 use them; ``client``:
asking a command socket who runs a container (the helper's start refuses a container that
lxc-start runs; the CLI and the generator tell them apart). The server, one listening socket
per running container, lives in lxcsd-console (``lxcsd.console.lxccmd``).
"""
