"""``lxcsd attach``: run a command inside a running container, as ``lxc-attach`` does.

Modules: :mod:`.host` (P), :mod:`.inside` (A and B, up to the stub's exec), :mod:`.relay`
(P's terminal relay), :mod:`.options` (what was asked, the environment, exit statuses).
The steps A shares with the helper's children are the runtime's: capabilities
(:mod:`lxcsd.runtime.caps`), seccomp (:mod:`lxcsd.runtime.seccomp_policy`), security
labels (:mod:`lxcsd.runtime.lsm`), ptys (:mod:`lxcsd.runtime.dev`), the exec report
(:mod:`lxcsd.runtime.exec_sync`) and PATH (:mod:`lxcsd.runtime.execpath`).

Process structure (P = the lxcsd process, on the host):

    P ── fork ──▶ A: non-dumpable at once; moves itself into the payload cgroup's ``.lxc``
    │               leaf (and init's v1 cgroups on a hybrid host), joins every namespace of
    │               init that differs from its own (one setns on init's pidfd) but stays in
    │               the host's pid namespace, where the container cannot see it: [pty from
    │               the container's devpts, master sent to P], cwd, then the command's
    │               privileges (bounding set, seccomp, ids, capabilities), and execs the
    │               stub from a sealed memfd
    │             stub (libexec/lxcsd-attach-exec.c, static): forks B into the container's
    │               pid namespace, forwards signals, exits with B's status
    │             B: [new session, the pty as its terminal], exec of the command
    └─ relays the terminal (pty mode) and returns A's exit status = the command's.

Against a hostile container (CVE-2019-5736 class): everything privileged happens in A,
invisible to the container; the first process it can see (B) holds only the command's
privileges, maps no host file (its /proc/PID/exe is a sealed memfd, no interpreter, no
shared library a privileged container could open through /proc/PID/map_files), and is
non-dumpable until its exec. Cost, measured here (medians of 200 on this shared 2-core
host): the sealed memfd copy of the 690 KB stub 0.28 ms; a fork and exec of /bin/true
through the stub 3.0 ms, against 2.8 ms for forking and exec'ing it from Python.

Decisions, with what LXC does (src/lxc/attach.c, cgroups/cgfsng.c):

- init: /run/lxcsd/NAME/state (init_pid) when that process still lives in the payload
  cgroup it names; else the unit's MainPID over D-Bus.
- cgroup: as liblxc on cgroup2 (cgroup_attach_leaf): the payload cgroup's ``.lxc`` child,
  made when missing (handed to the container's root for unprivileged containers, as the
  payload is); if a process cannot go there, the payload itself. Not init's own cgroup: a
  systemd guest moves itself into init.scope, which an attached process must not join.
  An empty ``.lxc`` is removed after the command.
- capabilities: the bounding set shrinks to the container's (lxc.cap.drop/keep on top of
  lxcsd's default set; net_admin only when init has a network namespace of its own); root
  in the container keeps exactly that set, another uid has none (no ambient capabilities,
  unlike init). seccomp: the container's policy (lxc.seccomp.profile, else the shipped
  default), loaded before the uid switch; lxc.no_new_privs honoured.
- security labels: the AppArmor label (or SELinux context) init got, read from the state
  file, written to B's exec attribute through the host's /proc (opened by P: a /proc the
  container mounted cannot stand in), so the command runs confined as init does.
- environment, as lxc-attach(1): kept by default; ``--clear-env`` starts empty but for
  ``--keep-var`` names and PATH (a default PATH when not kept). Then ``container=lxc``,
  lxc.environment and lxc.environment.runtime (NAME alone: the caller's value), then
  ``-v VAR=VALUE``.
- user: uid 0 and gid 0 of the container unless ``-u``/``-g``; with ``-u`` alone, the gid
  of that uid's /etc/passwd entry in the container. Unprivileged containers: these are ids
  of the container's user namespace (joined first), so root is the mapped root.
- command: the argv given, else the user's shell from the container's /etc/passwd (read
  inside, after joining the mount namespace), else /bin/sh. Exit status: the command's;
  128+N when a signal N killed it; 126/127 when it cannot be executed / is not found.
- cwd: ``--cwd``; else the caller's cwd if it exists in the container, else ``/``
  (liblxc's default).
- terminal: when any of stdin, stdout, stderr is a terminal (as lxc-attach), a pty
  allocated from the container's own devpts (A opens /dev/ptmx inside, so the pty belongs
  to the container), relayed by P (raw mode when stdin is a terminal) with window-size
  changes; the command never holds the caller's terminal, so TIOCSTI cannot type into it
  (the default seccomp policy denies TIOCSTI and TIOCLINUX too). Otherwise (``-T``, or no
  terminal at all) stdin/stdout/stderr are passed as they are.
"""
