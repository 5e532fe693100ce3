/* A static probe run inside test containers: it reports what the container really sees,
 * independently of the runtime that built it (the oracle crun and youki use).
 *
 *   probe syscall NAME [ARG...]   call a system call by name (numbers for arguments,
 *                                 strings for paths), print "NAME ret=R errno=E"
 *   probe ids                     print "uid=U gid=G euid=E egid=G2"
 *   probe caps                    print the CapInh/CapPrm/CapEff/CapBnd/CapAmb lines
 *   probe notify [-n N] LINE... [-- CMD...]  send the LINEs as one sd_notify datagram
 *                                 (N times: a flood) to $NOTIFY_SOCKET, then exec CMD (so
 *                                 an init stays PID 1)
 *
 * Built at test time by tests/integration/primitives (gcc -static); no libc beyond glibc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

struct call {
	const char *name;
	long nr;
};

static const struct call calls[] = {
	{ "keyctl", SYS_keyctl },
	{ "add_key", SYS_add_key },
	{ "kexec_load", SYS_kexec_load },
	{ "init_module", SYS_init_module },
	{ "finit_module", SYS_finit_module },
	{ "delete_module", SYS_delete_module },
	{ "open_by_handle_at", SYS_open_by_handle_at },
	{ "umount2", SYS_umount2 },
	{ "getpid", SYS_getpid },
	{ "sethostname", SYS_sethostname },
	{ NULL, 0 },
};

static long argument(const char *text)
{
	char *end;
	long value = strtol(text, &end, 0);

	if (*text && !*end)
		return value;
	return (long)text; /* a string argument: pass the pointer */
}

static int do_syscall(int argc, char **argv)
{
	long args[6] = { 0 };
	long ret;

	for (const struct call *c = calls; c->name; c++) {
		if (strcmp(c->name, argv[0]) != 0)
			continue;
		for (int i = 1; i < argc && i <= 6; i++)
			args[i - 1] = argument(argv[i]);
		errno = 0;
		ret = syscall(c->nr, args[0], args[1], args[2], args[3], args[4], args[5]);
		printf("%s ret=%ld errno=%d\n", c->name, ret, ret < 0 ? errno : 0);
		return 0;
	}
	fprintf(stderr, "probe: unknown system call %s\n", argv[0]);
	return 2;
}

static int do_caps(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");

	if (!f) {
		perror("probe: /proc/self/status");
		return 1;
	}
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "Cap", 3) == 0 || strncmp(line, "NoNewPrivs", 10) == 0 ||
		    strncmp(line, "Seccomp:", 8) == 0)
			fputs(line, stdout);
	fclose(f);
	return 0;
}

static int do_notify(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = getenv("NOTIFY_SOCKET");
	char text[4096] = "";
	long count = 1, n;
	int i, first, fd;

	if (argc >= 2 && strcmp(argv[0], "-n") == 0) {
		count = strtol(argv[1], NULL, 10);
		argc -= 2;
		argv += 2;
	}
	for (i = first = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (i > first)
			strncat(text, "\n", sizeof(text) - strlen(text) - 1);
		strncat(text, argv[i], sizeof(text) - strlen(text) - 1);
	}
	if (!path || strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "probe: no usable NOTIFY_SOCKET\n");
	} else {
		strcpy(sa.sun_path, path);
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		for (n = 0; n < count; n++)
			if (fd < 0 || sendto(fd, text, strlen(text), 0, (struct sockaddr *)&sa,
					     sizeof(sa)) < 0) {
				perror("probe: notify");
				break;
			}
	}
	if (i + 1 < argc) {
		execv(argv[i + 1], argv + i + 1);
		perror("probe: exec");
		return 127;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "syscall") == 0)
		return do_syscall(argc - 2, argv + 2);
	if (argc == 2 && strcmp(argv[1], "ids") == 0) {
		printf("uid=%d gid=%d euid=%d egid=%d\n", getuid(), getgid(), geteuid(), getegid());
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "caps") == 0)
		return do_caps();
	if (argc >= 3 && strcmp(argv[1], "notify") == 0)
		return do_notify(argc - 2, argv + 2);
	fprintf(stderr, "usage: probe syscall NAME [ARG...] | ids | caps | "
		"notify LINE... [-- CMD...]\n");
	return 2;
}
