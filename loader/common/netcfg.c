// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * System configuration for the xdnat tools: sysctls, interfaces, and
 * iproute2 commands.  xdnat-host changes addresses and routes with the `ip`
 * command an operator would use, so what it does can be read in -v output
 * and undone by hand; xdnatd keeps neighbour entries over netlink instead
 * (loader/daemon/neigh.c).  Interface facts are read in the caller's own
 * network namespace (ioctl, netlink), never from /sys, which shows the
 * namespace that mounted it.
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "xdnat.h"

extern char **environ;

static void print_argv(FILE *f, const char *const argv[])
{
	for (int i = 0; argv[i]; i++)
		fprintf(f, "%s%s", i ? " " : "", argv[i]);
}

/*
 * Run argv[0] from PATH with stdout captured into @out (if given) and stderr
 * captured for the error message.  Returns the exit status or -1.
 */
int xd_run_capture(const char *const argv[], char *out, size_t outlen)
{
	posix_spawn_file_actions_t fa;
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
	char errbuf[1024];
	size_t errlen = 0, olen = 0;
	pid_t pid;
	int status, rc;

	if (xd_verbose) {
		fprintf(stderr, "%s: + ", xd_progname);
		print_argv(stderr, argv);
		fputc('\n', stderr);
	}
	if (pipe2(outp, O_CLOEXEC) || pipe2(errp, O_CLOEXEC)) {
		xd_err("pipe: %s", strerror(errno));
		goto fail_pipes;
	}
	if (posix_spawn_file_actions_init(&fa))
		goto fail_pipes;
	posix_spawn_file_actions_adddup2(&fa, outp[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, errp[1], STDERR_FILENO);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	if (rc) {
		xd_err("cannot run %s: %s", argv[0], strerror(rc));
		goto fail_pipes;
	}
	/* Outputs are small (one command's answer): read stdout then stderr. */
	for (;;) {
		char tmp[512];
		ssize_t n = read(outp[0], tmp, sizeof(tmp));

		if (n <= 0)
			break;
		if (out && olen + 1 < outlen) {
			size_t k = (size_t)n < outlen - 1 - olen ? (size_t)n : outlen - 1 - olen;

			memcpy(out + olen, tmp, k);
			olen += k;
		}
	}
	if (out && outlen)
		out[olen] = '\0';
	for (;;) {
		ssize_t n = read(errp[0], errbuf + errlen, sizeof(errbuf) - 1 - errlen);

		if (n <= 0)
			break;
		errlen += (size_t)n;
		if (errlen >= sizeof(errbuf) - 1)
			break;
	}
	errbuf[errlen] = '\0';
	close(outp[0]);
	close(errp[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			xd_err("waitpid: %s", strerror(errno));
			return -1;
		}
	}
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (rc != 0 && errlen) {
		while (errlen && errbuf[errlen - 1] == '\n')
			errbuf[--errlen] = '\0';
		fprintf(stderr, "%s: `", xd_progname);
		print_argv(stderr, argv);
		fprintf(stderr, "` failed: %s\n", errbuf);
	}
	return rc;

fail_pipes:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return -1;
}

int xd_run(const char *const argv[])
{
	return xd_run_capture(argv, NULL, 0);
}

int xd_sysctl_get(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

int xd_sysctl_set(const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;

		xd_err("cannot open %s: %s", path, strerror(e));
		return -e;
	}
	n = write(fd, val, len);
	if (n != (ssize_t)len) {
		int e = n < 0 ? errno : EIO;

		xd_err("cannot write '%s' to %s: %s", val, path, strerror(e));
		close(fd);
		return -e;
	}
	if (close(fd)) {
		xd_err("cannot write '%s' to %s: %s", val, path, strerror(errno));
		return -errno;
	}
	xd_info("%s = %s", path, val);
	return 0;
}

int xd_ifindex(const char *ifname)
{
	unsigned int idx;

	if (!ifname || !*ifname || strlen(ifname) >= IF_NAMESIZE)
		return -EINVAL;
	idx = if_nametoindex(ifname);
	return idx ? (int)idx : -ENODEV;
}

int xd_if_first_ipv4(const char *ifname, uint32_t *addr_be)
{
	struct ifaddrs *ifa, *i;
	int rc = -EADDRNOTAVAIL;

	if (getifaddrs(&ifa))
		return -errno;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, ifname))
			continue;
		*addr_be = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
		rc = 0;
		break;
	}
	freeifaddrs(ifa);
	return rc;
}

int xd_bind_maybe_virtual(int fd, const struct sockaddr_in *sa, const char *what)
{
	char a[INET_ADDRSTRLEN];
	int one = 1;

	if (!bind(fd, (const struct sockaddr *)sa, sizeof(*sa)))
		return 0;
	if (errno != EADDRNOTAVAIL)
		return -1;
	if (setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) ||
	    bind(fd, (const struct sockaddr *)sa, sizeof(*sa)))
		return -1;
	xd_warn("%s: %s is not an address of this router (yet): using it all the same, "
		"as on a virtual address that VRRP (keepalived) adds when this router becomes "
		"the master",
		what, xd_ipstr(sa->sin_addr.s_addr, a));
	return 0;
}

int xd_if_mtu(const char *ifname, uint32_t *mtu)
{
	struct ifreq ifr = { 0 };
	int fd, rc = 0;

	if (!ifname || strlen(ifname) >= sizeof(ifr.ifr_name))
		return -EINVAL;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	if (ioctl(fd, SIOCGIFMTU, &ifr) < 0)
		rc = -errno;
	else if (ifr.ifr_mtu <= 0)
		rc = -EINVAL;
	else
		*mtu = (uint32_t)ifr.ifr_mtu;
	close(fd);
	return rc;
}
