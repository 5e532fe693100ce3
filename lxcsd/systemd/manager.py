"""systemd's D-Bus API for the command line: unit properties, jobs, unit files.

A thin layer over pystemd's low-level bus (``pystemd.dbuslib.DBus``, sd-bus underneath)
rather than its introspecting objects: each call names its signature, so a call costs one
round trip and no XML parsing. Only the CLI imports this module (pystemd adds ~25 ms; the
hot paths never pay it, docs/design.md "Imports").

- :class:`Systemd` — a connection: ``unit_properties``, ``start``/``stop``/``restart``
  (waiting for the job like ``systemctl``), ``enable``/``disable`` + ``reload``.
- :func:`container_state` — LXC's state names (RUNNING, STOPPED, STARTING, STOPPING,
  FAILED) from a unit's ActiveState/SubState.
- :func:`journal_tail` — the unit's last journal lines for error reports.

Errors become :class:`lxcsd.errors.LxcsdError` with the D-Bus error text.
"""

from __future__ import annotations

import os
import time

from lxcsd.errors import LxcsdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

DEST = b"org.freedesktop.systemd1"
ROOT = b"/org/freedesktop/systemd1"
MANAGER = b"org.freedesktop.systemd1.Manager"
UNIT = b"org.freedesktop.systemd1.Unit"
SERVICE = b"org.freedesktop.systemd1.Service"
PROPERTIES = b"org.freedesktop.DBus.Properties"
PRIVATE_SOCKET = "/run/systemd/private"
# systemd reports "not available" for counters as the largest uint64.
UNSET = 2**64 - 1
# Job results (JobRemoved's last argument) and what a user should read.
JOB_RESULTS = {
    "done": "done", "canceled": "the job was canceled (another job replaced it)",
    "timeout": "the job timed out", "failed": "the unit failed",
    "dependency": "a unit it depends on failed", "skipped": "skipped",
    "invalid": "the operation is not valid for this unit",
    "assert": "an assertion of the unit failed", "unsupported": "not supported",
    "collected": "the unit was garbage-collected", "once": "the unit may not be started again",
}


def container_state(active: str, sub: str = "") -> str:
    """LXC's state name for a unit's ActiveState/SubState."""
    if active in ("active", "reloading"):
        return "RUNNING"
    if active == "activating":
        return "STARTING"
    if active == "deactivating":
        return "STOPPING"
    if active == "failed":
        return "FAILED"
    return "STOPPED"


STATES = ("RUNNING", "STOPPED", "STARTING", "STOPPING", "FAILED")


def _text(value: Any) -> Any:
    """bytes from sd-bus as str (recursively); other values unchanged."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, list):
        return [_text(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_text(item) for item in value)
    if isinstance(value, dict):
        return {_text(key): _text(item) for key, item in value.items()}
    return value


def counter(value: Any) -> int | None:
    """A systemd counter property, None when systemd does not track it."""
    return None if value is None or value == UNSET else int(value)


class Systemd:
    """A connection to PID 1 over the system bus (or, as root without a bus daemon, its
    private socket, as systemctl does)."""

    def __init__(self) -> None:
        try:
            from pystemd.dbuslib import DBus, DBusAddress
        except ImportError as exc:  # pragma: no cover - packaging problem
            raise LxcsdError(f"pystemd is missing: {exc}", "reinstall lxcsd") from None
        self._bus: Any = None
        self._job_results: dict[bytes, str] | None = None
        self._on_removed: Any = None
        errors = []
        candidates: list[Callable[[], Any]] = [DBus]
        if os.geteuid() == 0 and os.path.exists(PRIVATE_SOCKET):
            candidates.insert(0, lambda: DBusAddress(
                f"unix:path={PRIVATE_SOCKET}".encode(), peer_to_peer=True))
        for make in candidates:
            try:
                bus = make()
                bus.open()
                self._bus = bus
                break
            except Exception as exc:  # pystemd raises its own DBusError types
                errors.append(str(exc))
        if self._bus is None:
            raise LxcsdError(f"cannot reach systemd over D-Bus: {'; '.join(errors)}",
                             "is systemd PID 1 and dbus running?")

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None

    def __enter__(self) -> Systemd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------
    # Calls

    def call(self, path: bytes, interface: bytes, method: bytes, signature: bytes = b"",
             *args: Any) -> Any:
        from pystemd.dbuslib import apply_signature

        call_args = apply_signature(signature, list(args)) if signature else []
        try:
            return self._bus.call_method(DEST, path, interface, method, call_args).body
        except Exception as exc:
            raise LxcsdError(f"{method.decode()}: {_bus_error(exc)}") from None

    def manager(self, method: bytes, signature: bytes = b"", *args: Any) -> Any:
        return self.call(ROOT, MANAGER, method, signature, *args)

    def unit_path(self, unit: str) -> bytes:
        """The object path of unit (LoadUnit: works for units not loaded yet)."""
        path: bytes = self.manager(b"LoadUnit", b"s", unit.encode())
        return path

    def properties(self, path: bytes, interface: bytes) -> dict[str, Any]:
        reply = self.call(path, PROPERTIES, b"GetAll", b"s", interface)
        return {key.decode(): value for key, value in reply.items()}

    def unit_properties(self, unit: str, service: bool = True) -> dict[str, Any]:
        """Unit (and, for services, Service) properties of unit, bytes decoded."""
        path = self.unit_path(unit)
        props = self.properties(path, UNIT)
        if service and unit.endswith(".service"):
            props.update(self.properties(path, SERVICE))
        return {key: _text(value) for key, value in props.items()}

    def list_units(self, patterns: Sequence[str]) -> dict[str, tuple[str, str, str]]:
        """{unit: (load state, active state, sub state)} of loaded units matching patterns."""
        rows = self.manager(b"ListUnitsByPatterns", b"asas", [],
                            [p.encode() for p in patterns])
        return {_text(row[0]): (_text(row[2]), _text(row[3]), _text(row[4])) for row in rows}

    # -------------------------------------------------------------------------------------
    # Jobs

    def start(self, unit: str, mode: str = "replace") -> str:
        return self.run_job(b"StartUnit", unit, mode)

    def stop(self, unit: str, mode: str = "replace") -> str:
        return self.run_job(b"StopUnit", unit, mode)

    def restart(self, unit: str, mode: str = "replace") -> str:
        return self.run_job(b"RestartUnit", unit, mode)

    def run_job(self, method: bytes, unit: str, mode: str = "replace",
                timeout: float | None = None) -> str:
        """Queue a job (StartUnit, StopUnit, ...) and wait until systemd removes it, as
        systemctl does (JobRemoved); returns its result ("done", "failed", ...)."""
        job = self.queue_job(method, unit, mode)
        return self.wait_jobs([job], timeout)[job]

    def queue_job(self, method: bytes, unit: str, mode: str = "replace") -> bytes:
        """Queue a job; its object path (wait for it with wait_jobs)."""
        if self._job_results is None:
            self._subscribe_jobs()  # before queueing: a job that ends at once is not missed
        job: bytes = self.manager(method, b"ss", unit.encode(), mode.encode())
        return job

    def wait_jobs(self, jobs: Sequence[bytes], timeout: float | None = None
                  ) -> dict[bytes, str]:
        """{job: result} once systemd has removed every job of jobs."""
        results = self._job_results
        assert results is not None, "queue_job first"
        deadline = None if timeout is None else time.monotonic() + timeout
        while any(job not in results for job in jobs):
            if deadline is not None and time.monotonic() > deadline:
                raise LxcsdError(f"the job did not finish within {timeout:g} s")
            # process() runs on_removed for a queued signal; with nothing queued, wait
            # (at most a second, to re-check the deadline).
            if self._bus.process().is_empty() and any(job not in results for job in jobs):
                self._bus.wait(1_000_000)
        return {job: results[job] for job in jobs}

    def _subscribe_jobs(self) -> None:
        results: dict[bytes, str] = {}

        def on_removed(msg: Any, error: Any = None, userdata: Any = None) -> None:
            msg.process_reply(False)
            _, job, _, result = msg.body
            results[job] = _text(result)

        # sd-bus keeps only a C pointer to the callback: keep the function alive as long
        # as the connection. Subscribe before the first job, so a job that ends at once
        # is not missed.
        self._on_removed = on_removed
        self._bus.match_signal(DEST, ROOT, MANAGER, b"JobRemoved", on_removed)
        self.manager(b"Subscribe")
        self._job_results = results

    # -------------------------------------------------------------------------------------
    # Unit files

    def enable(self, units: Iterable[str]) -> list[tuple[str, str, str]]:
        """EnableUnitFiles (persistent, not forced); returns the changes (type, file, dest)."""
        reply = self.manager(b"EnableUnitFiles", b"asbb",
                             [u.encode() for u in units], False, False)
        return [_text(tuple(change)) for change in reply[1]]

    def disable(self, units: Iterable[str]) -> list[tuple[str, str, str]]:
        reply = self.manager(b"DisableUnitFiles", b"asb", [u.encode() for u in units], False)
        return [_text(tuple(change)) for change in reply]

    def reload(self) -> None:
        self.manager(b"Reload")

    def reset_failed(self, unit: str) -> None:
        """ResetFailedUnit; a unit that is not loaded (nothing to reset) is fine."""
        try:
            self.manager(b"ResetFailedUnit", b"s", unit.encode())
        except LxcsdError as exc:
            if "not loaded" not in str(exc):
                raise

    def unit_file_state(self, unit: str) -> str:
        try:
            return str(_text(self.manager(b"GetUnitFileState", b"s", unit.encode())))
        except LxcsdError:
            return ""


def _bus_error(exc: Exception) -> str:
    """The D-Bus error text of a pystemd DBusError (its args: errno, name, message)."""
    parts = [a.decode(errors="replace") if isinstance(a, bytes) else str(a)
             for a in getattr(exc, "args", ()) if a not in (None, b"")]
    message = parts[-1] if parts else str(exc)
    return message or type(exc).__name__


def journal_tail(unit: str, lines: int = 10, since: float | None = None) -> str:
    """The unit's last journal lines, since a time.time() value if given (journalctl;
    empty when it is not available)."""
    import subprocess

    cmd = ["journalctl", "--no-pager", "-q", "-o", "short", "-n", str(lines), "-u", unit]
    if since is not None:
        cmd += ["--since", f"@{int(since)}"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.rstrip("\n")
