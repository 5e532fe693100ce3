/* lxcsd-attach-exec: the last step of `lxcsd attach`, the only code of lxcsd that runs
 * where the container can see it.
 *
 * The attach process (lxcsd.runtime.attach, Python) joins the container's namespaces and
 * cgroups, then drops to the command's privileges (bounding set, seccomp, ids,
 * capabilities) while it is still invisible to the container: it is in the host's pid
 * namespace. A process in the container's pid namespace must be forked, and whatever it is
 * until its exec, the container can see it (/proc/PID/exe, /proc/PID/map_files, ptrace by a
 * privileged container's root, which keeps CAP_SYS_PTRACE and CAP_SYS_ADMIN). A fork of the
 * Python process would show the host's interpreter and its shared libraries there, which a
 * privileged container could open for writing (CVE-2019-5736). So the attach process
 * executes this program from a sealed memfd copy, and this program forks the command: from
 * the moment it is visible, the process maps no host file at all (static, no interpreter,
 * no libraries) and its /proc/PID/exe is a memfd nobody can write.
 *
 *     lxcsd-attach-exec t|- REPORT_FD PATH ARGV0 [ARG...]      (environment: the command's)
 *
 * t: make fd 0 the controlling terminal of a new session (the container's pty). The child
 * resets SIGINT and SIGQUIT to their default and execs PATH; if that fails it writes
 * "ARGV0: error" to REPORT_FD and exits 127 (not found) or 126. The parent closes REPORT_FD
 * (so the reader sees EOF once the child has exec'd), passes SIGTERM, SIGHUP, SIGUSR1 and
 * SIGUSR2 on to the child (lxc-attach's signal proxy), and exits with the child's status:
 * its exit code, or 128+N when signal N killed it.
 *
 * Built by packaging/install.sh (gcc -static); written by hand because no packaged tool
 * does exactly this (tini and catatonit fork and forward signals, but neither makes the
 * child a session leader with the pty as its terminal, nor reports exec errors this way).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const int forwarded[] = { SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 };
#define NFORWARDED (sizeof(forwarded) / sizeof(forwarded[0]))
static volatile pid_t child;

static void forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

static void usage(void)
{
	static const char text[] = "usage: lxcsd-attach-exec t|- REPORT_FD PATH ARGV0 [ARG...]\n";

	write(2, text, sizeof(text) - 1);
	exit(125);
}

static void run_child(int pty, int report, const char *path, char **argv, sigset_t *old)
{
	int err;

	if (pty && (setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0)) {
		dprintf(report, "cannot make the pty the controlling terminal: %s", strerror(errno));
		_exit(125);
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	for (size_t i = 0; i < NFORWARDED; i++)
		signal(forwarded[i], SIG_DFL);
	sigprocmask(SIG_SETMASK, old, NULL);
	execv(path, argv); /* REPORT_FD is close-on-exec: EOF for the reader */
	err = errno;
	dprintf(report, "%s: %s", argv[0], strerror(err));
	_exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t block, old;
	int report, status;
	pid_t pid;

	if (argc < 5 || (strcmp(argv[1], "t") && strcmp(argv[1], "-")))
		usage();
	report = atoi(argv[2]);
	/* Nothing to gain from this process, but keep it untraceable until the exec. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (fcntl(report, F_SETFD, FD_CLOEXEC) < 0)
		usage();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&block);
	for (size_t i = 0; i < NFORWARDED; i++) {
		sigaddset(&block, forwarded[i]);
		sigaction(forwarded[i], &sa, NULL);
	}
	/* The terminal's signals are the command's alone. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	/* Signals that arrive before the fork wait until the child's pid is known. */
	sigprocmask(SIG_BLOCK, &block, &old);
	pid = fork();
	if (pid < 0) {
		dprintf(report, "fork: %s", strerror(errno));
		return 125;
	}
	if (pid == 0)
		run_child(argv[1][0] == 't', report, argv[3], argv + 4, &old);
	child = pid;
	close(report);
	sigprocmask(SIG_SETMASK, &old, NULL);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 125;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
