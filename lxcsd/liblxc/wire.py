"""liblxc's command socket: its name and its binary messages.

Read from LXC 5.0.2 (src/lxc/commands.c, commands.h, commands_utils.c, af_unix.c,
monitor.h, cgroups/cgroup.h) and compared with 4.0.12 and 6.0.6: the layout and the numbers
below are the same in all three (4.0 lacks only GET_SYSTEMD_SCOPE; 6.0 adds a client-side
receive timeout). Watched with strace between Debian's lxc-* 5.0.2 tools and a real
``lxc-start -d`` container before writing this.

A running container listens on the abstract unix socket ``@LXCPATH/NAME/command``
(SOCK_STREAM). Each connection carries one request and one response:

    request   struct lxc_cmd_req {int cmd; int datalen; void *data}   (with SCM_CREDENTIALS)
              then ``datalen`` bytes of data
    response  struct lxc_cmd_rsp {int ret; int datalen; void *data}   (with SCM_RIGHTS when
              the answer is a descriptor), then ``datalen`` bytes of data

``ret`` is 0 or a negative errno. A small value travels in the pointer field itself
(liblxc's INT_TO_PTR): the init pid, the state, the clone flags, a tty number in either
direction, the state asked for by SERVE_STATE_CLIENTS. Clients read the pointer field as an
int (PTR_TO_INT: its low 32 bits). The connection then closes, except for GET_TTY_FD (the
open connection marks the tty busy), ADD_STATE_CLIENT (a ``struct lxc_msg`` follows when
the state is reached) and STOP (the client waits for the close).

Standard library only (os, struct): the helper's start and its cleanup use this module on
their hot paths. The socket's address is lxcsd.liblxc.address's (re-exported here), which
the generator uses without this module.
"""

from __future__ import annotations

import os
import struct

from lxcsd.liblxc.address import SUN_PATH as SUN_PATH
from lxcsd.liblxc.address import fnv1a_64 as fnv1a_64
from lxcsd.liblxc.address import socket_name as socket_name

# enum lxc_cmd_t (commands.h)
GET_TTY_FD = 0
TERMINAL_WINCH = 1
STOP = 2
GET_STATE = 3
GET_INIT_PID = 4
GET_CLONE_FLAGS = 5
GET_CGROUP = 6
GET_CONFIG_ITEM = 7
GET_NAME = 8
GET_LXCPATH = 9
ADD_STATE_CLIENT = 10
CONSOLE_LOG = 11
SERVE_STATE_CLIENTS = 12
SECCOMP_NOTIFY_ADD_LISTENER = 13
ADD_BPF_DEVICE_CGROUP = 14
FREEZE = 15
UNFREEZE = 16
GET_CGROUP2_FD = 17
GET_INIT_PIDFD = 18
GET_LIMIT_CGROUP = 19
GET_LIMIT_CGROUP2_FD = 20
GET_DEVPTS_FD = 21
GET_SECCOMP_NOTIFY_FD = 22
GET_CGROUP_CTX = 23
GET_CGROUP_FD = 24
GET_LIMIT_CGROUP_FD = 25
GET_SYSTEMD_SCOPE = 26  # 5.0 and later
CMD_MAX = 27
# lxcsd's own question, far above liblxc's numbers: LXC's monitor answers any number from
# CMD_MAX up with -ENOSYS (lxc_cmd_rsp_send_enosys), lxcsd-console with "lxcsd UNIT". It is
# how lxcsd tells its own containers from those lxc-start runs.
LXCSD_WHO = 0x4C584353

COMMAND_NAMES = {
    GET_TTY_FD: "get_tty_fd", TERMINAL_WINCH: "terminal_winch", STOP: "stop",
    GET_STATE: "get_state", GET_INIT_PID: "get_init_pid", GET_CLONE_FLAGS: "get_clone_flags",
    GET_CGROUP: "get_cgroup", GET_CONFIG_ITEM: "get_config_item", GET_NAME: "get_name",
    GET_LXCPATH: "get_lxcpath", ADD_STATE_CLIENT: "add_state_client",
    CONSOLE_LOG: "console_log", SERVE_STATE_CLIENTS: "serve_state_clients",
    SECCOMP_NOTIFY_ADD_LISTENER: "seccomp_notify_add_listener",
    ADD_BPF_DEVICE_CGROUP: "add_bpf_device_cgroup", FREEZE: "freeze", UNFREEZE: "unfreeze",
    GET_CGROUP2_FD: "get_cgroup2_fd", GET_INIT_PIDFD: "get_init_pidfd",
    GET_LIMIT_CGROUP: "get_limit_cgroup", GET_LIMIT_CGROUP2_FD: "get_limit_cgroup2_fd",
    GET_DEVPTS_FD: "get_devpts_fd", GET_SECCOMP_NOTIFY_FD: "get_seccomp_notify_fd",
    GET_CGROUP_CTX: "get_cgroup_ctx", GET_CGROUP_FD: "get_cgroup_fd",
    GET_LIMIT_CGROUP_FD: "get_limit_cgroup_fd", GET_SYSTEMD_SCOPE: "get_systemd_scope",
    LXCSD_WHO: "lxcsd_who",
}

# lxc_state_t (state.h)
STOPPED, STARTING, RUNNING, STOPPING, ABORTING, FREEZING, FROZEN, THAWED = range(8)
MAX_STATE = 8
STATE_NAMES = ("STOPPED", "STARTING", "RUNNING", "STOPPING", "ABORTING", "FREEZING",
               "FROZEN", "THAWED")

# Native layout and alignment, as the C structs: 16 bytes on 64-bit ('n' is pointer-sized).
REQ = struct.Struct("@iin")
RSP = REQ
# struct lxc_msg {lxc_msg_type_t type; char name[NAME_MAX + 1]; int value} (monitor.h):
# what a state client receives, and what the lxc-monitord FIFO carries.
MSG = struct.Struct("@i256si")
MSG_STATE = 0  # lxc_msg_state
# struct cgroup_fd {s32 layout; u32 utilities; s32 type; s32 fd; char controller[64]},
# aligned(8): 80 bytes.
CGROUP_FD = struct.Struct("@iIii64s")
# struct cgroup_ctx {s32 layout; u32 utilities; u32 fd_len; s32 fd[20]}, aligned(8): 96.
CGROUP_CTX_MAX_FD = 20
CGROUP_CTX = struct.Struct(f"@iII{CGROUP_CTX_MAX_FD}i4x")
# struct lxc_cmd_console_log {bool clear; bool read; uint64_t read_max; bool write_logfile}
CONSOLE_LOG_REQ = struct.Struct("@??Q?7x")
STATES = struct.Struct(f"@{MAX_STATE}i")  # lxc_state_t states[MAX_STATE]

DATA_MAX = 8192  # LXC_CMD_DATA_MAX: PATH_MAX * 2; longer requests are dropped unanswered
# cgroup_layout_t and cgroupfs_type_magic_t (cgroups/cgroup.h)
LAYOUT_LEGACY, LAYOUT_HYBRID, LAYOUT_UNIFIED = 0, 1, 2
LEGACY_HIERARCHY = 0x27E0EB  # CGROUP_SUPER_MAGIC
UNIFIED_HIERARCHY = 0x63677270  # CGROUP2_SUPER_MAGIC
DEVICES_CONTROLLER, FREEZER_CONTROLLER = 1, 2  # cgroup "utilities" bits

def pack(first: int, datalen: int = 0, value: int = 0) -> bytes:
    """A request (cmd, datalen, value in the pointer field) or a response (ret, ...)."""
    return REQ.pack(first, datalen, value)


def unpack(header: bytes) -> tuple[int, int, int]:
    """(cmd or ret, datalen, the pointer field as liblxc's PTR_TO_INT reads it)."""
    first, datalen, pointer = REQ.unpack(header)
    low = pointer & 0xFFFFFFFF
    return first, datalen, low - (1 << 32) if low & 0x80000000 else low


def state_message(name: str, state: int) -> bytes:
    """A struct lxc_msg announcing ``state`` of container ``name``."""
    return MSG.pack(MSG_STATE, os.fsencode(name)[:255], state)


def encode_item(text: str | None) -> str:
    """A config item's answer as one line of lxcsd-console's registration: "+TEXT" with
    backslash and newline escaped, "-" for liblxc's "no value"."""
    if text is None:
        return "-"
    return "+" + text.replace("\\", "\\\\").replace("\n", "\\n")


def decode_item(value: str) -> str | None:
    """The inverse of encode_item."""
    if not value.startswith("+"):
        return None
    out, i = [], 1
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append("\n" if value[i + 1] == "n" else value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def c_string(data: bytes) -> str | None:
    """A NUL-terminated string request as liblxc validates it (validate_string_request):
    None unless the last byte is the only NUL."""
    if not data or data[-1] != 0 or 0 in data[:-1]:
        return None
    return os.fsdecode(data[:-1])
