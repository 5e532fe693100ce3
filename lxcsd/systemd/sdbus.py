"""One D-Bus method call on the system bus through libsystemd's sd-bus, by ctypes.

For the helper's hot path (machined registration, lxcsd.runtime.machined) and the console
service's worker (lxc-stop's STOP as systemctl stop, lxcsd.console.lxcwork), where pystemd
(~25 ms to import) and dbus-fast (~45 ms) cost more than the call: libsystemd is loaded on
first use (~4 ms), never at import, and a call costs ~1-2 ms once the peer runs. The
command line uses systemd's D-Bus API through pystemd instead (:mod:`.manager`).
"""

from __future__ import annotations

import ctypes
import os


class BusError(OSError):
    """A failed D-Bus call: errno from sd-bus, ``name`` the D-Bus error name (or "")."""

    def __init__(self, err: int, message: str, name: str = "") -> None:
        super().__init__(err, message)
        self.name = name


class _SdBusError(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("message", ctypes.c_char_p),
                ("_need_free", ctypes.c_int)]


_lib: ctypes.CDLL | None = None


def _libsystemd() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        lib = ctypes.CDLL("libsystemd.so.0")
        vp, cp = ctypes.c_void_p, ctypes.c_char_p
        lib.sd_bus_open_system.argtypes = [ctypes.POINTER(vp)]
        lib.sd_bus_message_new_method_call.argtypes = [vp, ctypes.POINTER(vp), cp, cp, cp, cp]
        lib.sd_bus_message_append_basic.argtypes = [vp, ctypes.c_char, vp]
        lib.sd_bus_message_append_array.argtypes = [vp, ctypes.c_char, vp, ctypes.c_size_t]
        lib.sd_bus_call.argtypes = [vp, vp, ctypes.c_uint64, ctypes.POINTER(_SdBusError),
                                    ctypes.POINTER(vp)]
        lib.sd_bus_message_unref.argtypes = [vp]
        lib.sd_bus_message_unref.restype = vp
        lib.sd_bus_flush_close_unref.argtypes = [vp]
        lib.sd_bus_flush_close_unref.restype = vp
        lib.sd_bus_error_free.argtypes = [ctypes.POINTER(_SdBusError)]
        _lib = lib
    return _lib


def _bus_check(ret: int, call: str) -> None:
    if ret < 0:
        raise BusError(-ret, f"{call}: {os.strerror(-ret)}")


def _bus_append(lib: ctypes.CDLL, msg: ctypes.c_void_p, sig: str, value: object) -> None:
    """Append one argument: "s", "u", "i", or the arrays "ay" (bytes) and "ai" (ints)."""
    if sig == "s":
        ret = lib.sd_bus_message_append_basic(msg, b"s", ctypes.c_char_p(str(value).encode()))
    elif sig in ("u", "i"):
        num = (ctypes.c_uint32 if sig == "u" else ctypes.c_int32)(value)  # type: ignore[arg-type]
        ret = lib.sd_bus_message_append_basic(msg, sig.encode(), ctypes.byref(num))
    elif sig == "ay":
        data = bytes(value)  # type: ignore[call-overload]
        buf = ctypes.create_string_buffer(data, len(data) or 1)
        ret = lib.sd_bus_message_append_array(msg, b"y", buf, len(data))
    elif sig == "ai":
        ints = list(value)  # type: ignore[call-overload]
        arr = (ctypes.c_int32 * max(len(ints), 1))(*ints)
        ret = lib.sd_bus_message_append_array(msg, b"i", arr, 4 * len(ints))
    else:
        raise ValueError(f"unsupported D-Bus signature {sig!r}")
    _bus_check(ret, "sd_bus_message_append")


def bus_call(destination: str, path: str, interface: str, member: str,
             args: list[tuple[str, object]], timeout_usec: int = 0) -> None:
    """Call a method on the system bus and wait for the reply (its content is dropped).

    ``args`` is a list of (signature, value) pairs, see _bus_append. Raises BusError;
    OSError when libsystemd cannot be loaded.
    """
    lib = _libsystemd()
    bus, msg, reply = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    error = _SdBusError()
    try:
        _bus_check(lib.sd_bus_open_system(ctypes.byref(bus)), "sd_bus_open_system")
        _bus_check(lib.sd_bus_message_new_method_call(
            bus, ctypes.byref(msg), destination.encode(), path.encode(), interface.encode(),
            member.encode()), "sd_bus_message_new_method_call")
        for sig, value in args:
            _bus_append(lib, msg, sig, value)
        ret = lib.sd_bus_call(bus, msg, timeout_usec, ctypes.byref(error), ctypes.byref(reply))
        if ret < 0:
            name = (error.name or b"").decode(errors="replace")
            text = (error.message or b"").decode(errors="replace") or os.strerror(-ret)
            raise BusError(-ret, f"{member}: {text}", name)
    finally:
        lib.sd_bus_error_free(ctypes.byref(error))
        if reply:
            lib.sd_bus_message_unref(reply)
        if msg:
            lib.sd_bus_message_unref(msg)
        if bus:
            lib.sd_bus_flush_close_unref(bus)
