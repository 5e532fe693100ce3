"""A stand-in for LXC's monitor on a container's command socket, for tests of the code that
asks who runs a container (lxcsd.liblxc.owner and its callers).

It answers as liblxc's lxc_cmd_process does (commands.c): GET_INIT_PID and GET_STATE in the
pointer field, -ENOSYS for numbers it does not know (lxcsd's LXCSD_WHO among them), or, with
``who``, as lxcsd-console does. The sandbox test drives real lxc-start monitors instead.
"""

from __future__ import annotations

import errno
import socket
import threading

from lxcsd.liblxc import wire


class FakeMonitor:
    """Accepts connections on ``address`` and answers each request."""

    def __init__(self, address: bytes, who: bytes | None = None, init_pid: int = 4242) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(8)
        self.who, self.init_pid = who, init_pid
        self.asked: list[int] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                cmd, _, _ = wire.unpack(conn.recv(wire.REQ.size))
                self.asked.append(cmd)
                if cmd == wire.GET_INIT_PID:
                    conn.sendall(wire.pack(0, 0, self.init_pid))
                elif cmd == wire.GET_STATE:
                    conn.sendall(wire.pack(0, 0, wire.RUNNING))
                elif cmd == wire.LXCSD_WHO and self.who is not None:
                    conn.sendall(wire.pack(0, len(self.who)) + self.who)
                else:
                    conn.sendall(wire.pack(-errno.ENOSYS))

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
