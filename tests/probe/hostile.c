/* hostile: a root process inside a container trying to reach the host, one class of hole
 * per command (issue 15). Static, so it runs in any root file system; built by
 * tests/probe/build.py. Every command prints "CLASS detail..." lines and ends with one
 * verdict line "CLASS open" (the hole is there) or "CLASS closed".
 *
 * Nothing here changes the host when a hole is open: writability is shown by an open(2)
 * for writing that is closed unwritten, or by the kernel's own rule evaluated from what the
 * process holds (release_agent: never written); mounts are made in the container's own
 * mount namespace and removed again.
 *
 *   hostile caps             capabilities that reach the host's kernel, and their use:
 *                            kernel log, bpf maps, system-wide perf events, port I/O
 *   hostile cgroup1          every cgroup v1 hierarchy mounted fresh: its root (a host
 *                            release_agent the kernel would let us rewrite), siblings,
 *                            and a new hierarchy of our own
 *   hostile procsys          a fresh proc and sysfs: host core_pattern and sysfs writable?
 *   hostile hostfile PATH    PATH exists (a host marker seen through a bind mount)
 *   hostile watch SECONDS [FIFO]
 *                            every process that appears meanwhile (an attach from the
 *                            host): host executable or libraries reachable, traceable
 *                            while holding more than the container; FIFO (e.g.
 *                            /etc/passwd) is replaced by a FIFO first, which stalls a
 *                            naive attach that reads it, and restored at the end
 *   hostile tiocsti          TIOCSTI on fds 0-2 and /dev/tty (the attach caller's terminal?)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/nsfs.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define CAP_IPC_LOCK 14
#define CAP_SYS_MODULE 16
#define CAP_SYS_RAWIO 17
#define CAP_SYS_PACCT 20
#define CAP_SYS_ADMIN 21
#define CAP_SYS_TIME 25
#define CAP_MAC_OVERRIDE 32
#define CAP_MAC_ADMIN 33
#define CAP_SYSLOG 34
#define CAP_WAKE_ALARM 35
#define CAP_BLOCK_SUSPEND 36
#define CAP_AUDIT_READ 37
#define CAP_PERFMON 38
#define CAP_BPF 39

static const char *errname(int err)
{
	return err ? strerrorname_np(err) : "ok";
}

/* ---- what this process is ---------------------------------------------------------- */

static uint64_t status_mask(pid_t pid, const char *field)
{
	char path[64], line[256];
	uint64_t value = 0;
	size_t len = strlen(field);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, len) && line[len] == ':')
			value = strtoull(line + len + 1, NULL, 16);
	fclose(f);
	return value;
}

static int status_int(pid_t pid, const char *field)
{
	return (int)status_mask(pid, field); /* "Seccomp:\t2" reads the same in base 16 */
}

/* Root of the initial user namespace: uid_map is the identity of every id. */
static int in_init_userns(void)
{
	char line[128];
	unsigned long inside, outside, count;
	int identity = 0;
	FILE *f = fopen("/proc/self/uid_map", "re");

	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f) &&
	    sscanf(line, "%lu %lu %lu", &inside, &outside, &count) == 3)
		identity = inside == 0 && outside == 0 && count == 4294967295UL;
	fclose(f);
	return identity;
}

/* The user namespace owning our cgroup namespace is the initial one: compare inodes. */
static int cgroupns_owned_by_init(void)
{
	struct stat owner, own;
	int ns = open("/proc/self/ns/cgroup", O_RDONLY | O_CLOEXEC), user;

	if (ns < 0)
		return 0;
	user = ioctl(ns, NS_GET_USERNS);
	close(ns);
	if (user < 0)
		return 0; /* EPERM: outside our scope, so not ours */
	if (fstat(user, &owner) || stat("/proc/self/ns/user", &own)) {
		close(user);
		return 0;
	}
	close(user);
	return owner.st_ino == own.st_ino && in_init_userns();
}

/* ---- caps --------------------------------------------------------------------------- */

static const struct {
	int cap;
	const char *name;
} dangerous[] = {
	{ CAP_SYS_MODULE, "sys_module" }, { CAP_SYS_RAWIO, "sys_rawio" },
	{ CAP_SYS_PACCT, "sys_pacct" }, { CAP_SYS_TIME, "sys_time" },
	{ CAP_MAC_OVERRIDE, "mac_override" }, { CAP_MAC_ADMIN, "mac_admin" },
	{ CAP_SYSLOG, "syslog" }, { CAP_WAKE_ALARM, "wake_alarm" },
	{ CAP_BLOCK_SUSPEND, "block_suspend" }, { CAP_AUDIT_READ, "audit_read" },
	{ CAP_PERFMON, "perfmon" }, { CAP_BPF, "bpf" }, { CAP_IPC_LOCK, "ipc_lock" },
};

static int try_syslog(void)
{
	char buf[16];

	return klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof(buf)) < 0 ? errno : 0;
}

static int try_bpf(void)
{
	union bpf_attr attr;
	long fd;

	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 4;
	attr.max_entries = 1;
	fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
	if (fd < 0)
		return errno;
	close((int)fd);
	return 0;
}

static int try_perf(void)
{
	struct perf_event_attr attr;
	long fd;

	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_SOFTWARE;
	attr.size = sizeof(attr);
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.disabled = 1;
	fd = syscall(SYS_perf_event_open, &attr, -1 /* every process */, 0, -1, 0);
	if (fd < 0)
		return errno;
	close((int)fd);
	return 0;
}

static int try_iopl(void)
{
#if defined(__x86_64__) || defined(__i386__)
	if (iopl(3) < 0)
		return errno;
	iopl(0);
	return 0;
#else
	return ENOSYS;
#endif
}

static int cmd_caps(void)
{
	uint64_t eff = status_mask(getpid(), "CapEff");
	int host = in_init_userns(), held = 0;
	int results[] = { try_syslog(), try_bpf(), try_perf(), try_iopl() };
	const char *what[] = { "syslog-read", "bpf-map", "perf-system-wide", "iopl" };

	printf("caps init_userns=%d CapEff=%016llx\n", host, (unsigned long long)eff);
	for (size_t i = 0; i < sizeof(dangerous) / sizeof(dangerous[0]); i++)
		if (eff >> dangerous[i].cap & 1) {
			printf("caps held %s\n", dangerous[i].name);
			held++;
		}
	for (size_t i = 0; i < 4; i++)
		printf("caps use %s %s\n", what[i], errname(results[i]));
	/* Capabilities of a non-initial user namespace do not count against the host; the
	 * uses above are evidence (a host's sysctls may allow some of them to anyone). */
	printf("caps %s\n", host && held ? "open" : "closed");
	return 0;
}

/* ---- cgroup v1 ----------------------------------------------------------------------- */

static int count_subdirs(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_type == DT_DIR && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* One v1 hierarchy (controllers as /proc/self/cgroup names them): 1 when its root is ours
 * to see (the host's tree), 0 when we see only our own subtree or cannot mount it. */
static int probe_hierarchy(const char *controllers, int rewritable)
{
	char dir[] = "/tmp/hostile-cg-XXXXXX", opts[256], agent[512];
	struct stat st;
	int root, err;

	if (!mkdtemp(dir)) {
		printf("cgroup1 %s mkdtemp %s\n", controllers, errname(errno));
		return 0;
	}
	if (!strncmp(controllers, "name=", 5))
		snprintf(opts, sizeof(opts), "none,%s", controllers);
	else
		snprintf(opts, sizeof(opts), "%s", controllers);
	if (mount("cgroup", dir, "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0) {
		err = errno;
		printf("cgroup1 %s mount %s\n", controllers, errname(err));
		rmdir(dir);
		return 0;
	}
	snprintf(agent, sizeof(agent), "%s/release_agent", dir);
	root = stat(agent, &st) == 0;
	printf("cgroup1 %s mounted root=%s release_agent=%s subdirs=%d\n", controllers,
	       root ? "host" : "own", !root ? "absent" : rewritable ? "rewritable" : "read-only",
	       count_subdirs(dir));
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	return root;
}

static int cmd_cgroup1(void)
{
	char line[512];
	int open_ = 0, hierarchies = 0, err;
	/* The kernel's rule for writing release_agent (cgroup_release_agent_write): our cgroup
	 * namespace's owner is the initial user namespace, and CAP_SYS_ADMIN there. */
	int rewritable = cgroupns_owned_by_init() &&
			 status_mask(getpid(), "CapEff") >> CAP_SYS_ADMIN & 1;
	char dir[] = "/tmp/hostile-cg-XXXXXX";
	FILE *f = fopen("/proc/self/cgroup", "re");

	if (!f)
		return 2;
	while (fgets(line, sizeof(line), f)) {
		char *controllers = strchr(line, ':'), *end;

		if (!controllers || line[0] == '0')
			continue;
		controllers++;
		end = strchr(controllers, ':');
		if (!end || end == controllers)
			continue;
		*end = '\0';
		hierarchies++;
		open_ |= probe_hierarchy(controllers, rewritable);
	}
	fclose(f);
	/* A hierarchy of our own, with a release agent: only the initial cgroup namespace may
	 * create one (and it is destroyed again when unmounted, having no children). */
	if (mkdtemp(dir)) {
		err = mount("cgroup", dir, "cgroup", 0, "none,name=hostile,release_agent=/nonexistent")
		      < 0 ? errno : 0;
		printf("cgroup1 new-hierarchy %s\n", errname(err));
		if (!err) {
			umount2(dir, MNT_DETACH);
			open_ = 1;
		}
		rmdir(dir);
	}
	printf("cgroup1 hierarchies=%d\ncgroup1 %s\n", hierarchies, open_ ? "open" : "closed");
	return 0;
}

/* ---- proc and sysfs ------------------------------------------------------------------ */

static int writable(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return errno;
	close(fd); /* nothing written */
	return 0;
}

static int cmd_procsys(void)
{
	char proc[] = "/tmp/hostile-proc-XXXXXX", sys[] = "/tmp/hostile-sys-XXXXXX";
	char path[256];
	int open_ = 0, err;

	err = writable("/proc/sys/kernel/core_pattern");
	printf("procsys own-proc core_pattern-writable %s\n", errname(err));
	open_ |= !err;
	if (mkdtemp(proc)) {
		err = mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ? errno : 0;
		printf("procsys mount-proc %s\n", errname(err));
		if (!err) {
			snprintf(path, sizeof(path), "%s/sys/kernel/core_pattern", proc);
			err = writable(path);
			printf("procsys fresh-proc core_pattern-writable %s\n", errname(err));
			open_ |= !err;
			snprintf(path, sizeof(path), "%s/sysrq-trigger", proc);
			err = writable(path);
			printf("procsys fresh-proc sysrq-trigger-writable %s\n", errname(err));
			open_ |= !err;
			umount2(proc, MNT_DETACH);
		}
		rmdir(proc);
	}
	if (mkdtemp(sys)) {
		err = mount("sysfs", sys, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ? errno : 0;
		printf("procsys mount-sysfs %s\n", errname(err));
		if (!err) {
			snprintf(path, sizeof(path), "%s/kernel/mm/transparent_hugepage/enabled", sys);
			err = writable(path);
			printf("procsys fresh-sysfs host-file-writable %s\n", errname(err));
			open_ |= !err;
			umount2(sys, MNT_DETACH);
		}
		rmdir(sys);
	}
	printf("procsys %s\n", open_ ? "open" : "closed");
	return 0;
}

static int cmd_hostfile(const char *path)
{
	int seen = access(path, F_OK) == 0;

	printf("hostfile %s %s\nhostfile %s\n", path, seen ? "seen" : "absent",
	       seen ? "open" : "closed");
	return 0;
}

/* ---- watch: a process entering from the host ---------------------------------------- */

/* A file another process maps or executes, reached through /proc, is the host's when our
 * root has nothing at that path with the same device and inode. */
static int is_host_file(const char *magic, const char *shown)
{
	struct stat via, here;
	char path[4096];
	size_t len;

	if (stat(magic, &via))
		return 0;
	snprintf(path, sizeof(path), "%s", shown);
	len = strlen(path);
	if (len > 10 && !strcmp(path + len - 10, " (deleted)"))
		path[len - 10] = '\0';
	if (!strncmp(path, "/memfd:", 7))
		return 0;
	return stat(path, &here) || here.st_dev != via.st_dev || here.st_ino != via.st_ino;
}

static void inspect(pid_t pid, int *verdict)
{
	char path[128], link[4096], entry[512];
	int exe_host = 0, mapped_host = 0, writable_host = 0, traced, richer = 0, err;
	uint64_t bnd = status_mask(pid, "CapBnd"), own_bnd = status_mask(getpid(), "CapBnd");
	int seccomp = status_int(pid, "Seccomp"), own_seccomp = status_int(getpid(), "Seccomp");
	ssize_t n;
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, link, sizeof(link) - 1);
	err = n < 0 ? errno : 0;
	link[n < 0 ? 0 : n] = '\0';
	if (!err)
		exe_host = is_host_file(path, link);
	snprintf(path, sizeof(path), "/proc/%d/map_files", (int)pid);
	if ((d = opendir(path))) {
		while ((e = readdir(d))) {
			char target[4096];

			if (e->d_name[0] == '.')
				continue;
			snprintf(entry, sizeof(entry), "%s/%s", path, e->d_name);
			n = readlink(entry, target, sizeof(target) - 1);
			if (n < 0)
				continue;
			target[n] = '\0';
			if (is_host_file(entry, target)) {
				mapped_host++;
				writable_host += !writable(entry);
			}
		}
		closedir(d);
	}
	traced = ptrace(PTRACE_SEIZE, pid, 0, 0) == 0 ? 0 : errno;
	if (!traced) {
		richer = (bnd & ~own_bnd) != 0 || seccomp < own_seccomp;
		ptrace(PTRACE_DETACH, pid, 0, 0);
	}
	printf("watch pid=%d exe=%s exe_error=%s exe_host=%d mapped_host=%d writable_host=%d "
	       "ptrace=%s richer=%d\n", (int)pid, link, errname(err), exe_host, mapped_host,
	       writable_host, errname(traced), richer);
	fflush(stdout);
	if (exe_host || writable_host || (!traced && richer))
		*verdict = 1;
}

static int cmd_watch(int seconds, const char *fifo)
{
	char saved[65536], backup[4200];
	ssize_t saved_len = -1;
	static char known[4194305];
	struct timespec end, now;
	int verdict = 0, seen = 0, fd;

	if (fifo) {
		fd = open(fifo, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			saved_len = read(fd, saved, sizeof(saved));
			close(fd);
		}
		snprintf(backup, sizeof(backup), "%s.hostile", fifo);
		if (saved_len < 0 || rename(fifo, backup) || mkfifo(fifo, 0644)) {
			printf("watch cannot set the FIFO trap at %s: %s\n", fifo, errname(errno));
			fifo = NULL;
		}
	}
	for (DIR *d = opendir("/proc"); d; d = NULL) { /* what exists already is ours */
		struct dirent *e;

		while ((e = readdir(d)))
			if (atoi(e->d_name) > 0 && atoi(e->d_name) < (int)sizeof(known))
				known[atoi(e->d_name)] = 1;
		closedir(d);
	}
	printf("watch ready\n");
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += seconds;
	do {
		DIR *d = opendir("/proc");
		struct dirent *e;

		while (d && (e = readdir(d))) {
			int pid = atoi(e->d_name);

			if (pid <= 0 || pid >= (int)sizeof(known) || known[pid])
				continue;
			known[pid] = 1;
			seen++;
			inspect(pid, &verdict);
		}
		if (d)
			closedir(d);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	if (fifo) { /* release a reader stalled on the trap, then put the file back */
		fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			if (write(fd, saved, saved_len) < 0)
				printf("watch could not release the FIFO: %s\n", errname(errno));
			close(fd);
		}
		unlink(fifo);
		rename(backup, fifo);
	}
	printf("watch seen=%d\nwatch %s\n", seen, verdict ? "open" : "closed");
	return 0;
}

/* ---- TIOCSTI ------------------------------------------------------------------------- */

static int cmd_tiocsti(void)
{
	const char *marker = "#hostile-typed\n";
	int open_ = 0, tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	int fds[] = { 0, 1, 2, tty };

	for (size_t i = 0; i < 4; i++) {
		int fd = fds[i], err = 0;
		char name[64] = "-";

		if (fd < 0 || !isatty(fd))
			continue;
		ttyname_r(fd, name, sizeof(name));
		for (const char *c = marker; *c && !err; c++)
			err = ioctl(fd, TIOCSTI, c) < 0 ? errno : 0;
		/* The kernel reads the request as 32 bits: a filter must not compare all 64. */
		if (err)
			err = syscall(SYS_ioctl, fd, 0x100000000UL | TIOCSTI, marker) < 0 ? errno : 0;
		printf("tiocsti fd=%s tty=%s %s\n", i == 3 ? "/dev/tty" : (char[]){ '0' + (char)i, 0 },
		       name, errname(err));
		open_ |= !err;
	}
	printf("tiocsti %s\n", open_ ? "open" : "closed");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "caps"))
		return cmd_caps();
	if (argc == 2 && !strcmp(argv[1], "cgroup1"))
		return cmd_cgroup1();
	if (argc == 2 && !strcmp(argv[1], "procsys"))
		return cmd_procsys();
	if (argc == 3 && !strcmp(argv[1], "hostfile"))
		return cmd_hostfile(argv[2]);
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "watch"))
		return cmd_watch(atoi(argv[2]), argc == 4 ? argv[3] : NULL);
	if (argc == 2 && !strcmp(argv[1], "tiocsti"))
		return cmd_tiocsti();
	fprintf(stderr, "usage: hostile caps|cgroup1|procsys|hostfile PATH|watch SECONDS "
		"[FIFO]|tiocsti\n");
	return 2;
}
