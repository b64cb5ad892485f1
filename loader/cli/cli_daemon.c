// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatctl and the running xdnatd: requests over its control socket
 * (ctl_sock.h), daemon stats|ping, and reload-programs.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "cli.h"
#include "ctl_sock.h"

/*
 * Print a response of xdnatd's control socket: with -j its object without
 * the "ok" member (the same as the direct path prints), else its text.
 * Exit status 0, or 1 with the daemon's error on stderr.  With @text_out
 * the text goes there (malloc'd) instead.
 */
int cli_print_response(const char *resp, char **text_out)
{
	static const char okp[] = "{\"ok\":true";
	const char *v;
	size_t vl;
	char *msg = NULL;

	if (ctl_json_member(resp, "ok", &v, &vl)) {
		xd_err("xdnatd sent a malformed response: %.200s", resp);
		return 1;
	}
	if (vl == 4 && !memcmp(v, "true", 4)) {
		if (cli.json && !text_out) {
			/* The daemon always begins with {"ok":true. */
			if (!strncmp(resp, okp, sizeof(okp) - 1))
				printf("{%s", resp + sizeof(okp) - 1 +
				       (resp[sizeof(okp) - 1] == ',' ? 1 : 0));
			else
				fputs(resp, stdout);
			return 0;
		}
		if (!ctl_json_member(resp, "text", &v, &vl) && !ctl_json_string(v, vl, &msg)) {
			if (text_out) {
				*text_out = msg;
				return 0;
			}
			fputs(msg, stdout);
			free(msg);
			return 0;
		}
		xd_err("xdnatd sent a malformed response: %.200s", resp);
		return 1;
	}
	if (!ctl_json_member(resp, "error", &v, &vl) && !ctl_json_string(v, vl, &msg)) {
		xd_err("%s", msg);
		free(msg);
	} else {
		xd_err("xdnatd refused the request: %.200s", resp);
	}
	return 1;
}

/* cli.h; -1: no xdnatd listens (the caller decides what that means). */
int cli_via_daemon(int argc, char **argv, char **text_out)
{
	char line[CTL_MAX_REQ], path[128];
	size_t off = 0;
	char *resp = NULL;
	int rc;

	ctl_sock_path(cli.instance, path, sizeof(path));
	off = (size_t)snprintf(line, sizeof(line), "%s", cli.json && !text_out ? "" : "--text");
	for (int i = 0; i < argc; i++) {
		for (const char *c = argv[i]; *c; c++)
			if (*c <= ' ' || *c > '~') {
				xd_err("'%s' cannot be sent to xdnatd: only printable ASCII without spaces",
				       argv[i]);
				return 1;
			}
		rc = snprintf(line + off, sizeof(line) - off, "%s%s", off ? " " : "", argv[i]);
		if (rc < 0 || (size_t)rc >= sizeof(line) - off) {
			xd_err("request too long for xdnatd's control socket");
			return 1;
		}
		off += (size_t)rc;
	}
	/* Busy (all its connections taken): wait for a free one. */
	for (int i = 0; i < CLI_BUSY_TRIES; i++) {
		rc = ctl_client_request(cli.instance, line, CLI_TIMEOUT_MS, &resp);
		if (rc || !strstr(resp, "\"ok\":false") || !strstr(resp, "\"errno\":16}"))
			break;
		free(resp);
		resp = NULL;
		usleep(20 * 1000);
	}
	if (rc == -ENOENT || rc == -ECONNREFUSED)
		return -1;
	if (rc == -EACCES || rc == -EPERM) {
		xd_err("%s: permission denied (the control socket is for root only)", path);
		return 1;
	}
	if (rc) {
		xd_err("xdnatd's control socket %s: %s", path, strerror(-rc));
		return 1;
	}
	rc = cli_print_response(resp, text_out);
	free(resp);
	return rc;
}

/* daemon stats | daemon ping: only the running xdnatd can answer. */
int cli_daemon(int argc, char **argv)
{
	char path[128];
	int rc;

	if (argc != 2 || (strcmp(argv[1], "stats") && strcmp(argv[1], "ping")))
		return cli_usage_err("daemon: expected 'stats' or 'ping'%s", NULL);
	rc = cli_via_daemon(argc - 1, argv + 1, NULL);
	if (rc < 0) {
		ctl_sock_path(cli.instance, path, sizeof(path));
		xd_err("no xdnatd answers on %s: is it running?", path);
		rc = 1;
	}
	return rc;
}

/* Program id now behind the instance's WAN or LAN hook: the pinned XDP
 * link's program, or the pinned tc program.  0 if none. */
static uint32_t hook_prog_id(const char *pin_dir, const char *side)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/link_%s", pin_dir, side);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		struct bpf_link_info li = {};
		__u32 len = sizeof(li);
		uint32_t id = bpf_obj_get_info_by_fd(fd, &li, &len) ? 0 : li.prog_id;

		close(fd);
		return id;
	}
	snprintf(path, sizeof(path), "%s/prog_%s", pin_dir, side);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		struct bpf_prog_info pi = {};
		__u32 len = sizeof(pi);
		uint32_t id = bpf_obj_get_info_by_fd(fd, &pi, &len) ? 0 : pi.id;

		close(fd);
		return id;
	}
	return 0;
}

/*
 * reload-programs: ask the running xdnatd (SIGUSR2) to re-execute its
 * binary, whose programs replace the running ones through the pinned links;
 * wait until both hooks run new programs.
 */
int cli_reload(void)
{
	char lock[300], pin_dir[256], buf[64], comm[64] = "";
	uint32_t old_wan, old_lan, wan = 0, lan = 0;
	long pid;
	int fd, i;
	ssize_t n;

	if (xd_pin_dir(cli.pin_base, cli.instance, pin_dir, sizeof(pin_dir)))
		return 1;
	snprintf(lock, sizeof(lock), "/run/xdnat/%s.lock", cli.instance);
	fd = open(lock, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0 || (buf[n] = '\0', (pid = strtol(buf, NULL, 10)) <= 0)) {
		xd_err("no running xdnatd for instance '%s' (%s)", cli.instance, lock);
		return 1;
	}
	snprintf(lock, sizeof(lock), "/proc/%ld/comm", pid);
	fd = open(lock, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, comm, sizeof(comm) - 1) : -1;
	if (fd >= 0)
		close(fd);
	comm[n > 0 ? n : 0] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	if (strcmp(comm, "xdnatd")) {
		xd_err("instance '%s': pid %ld is not a running xdnatd", cli.instance, pid);
		return 1;
	}
	old_wan = hook_prog_id(pin_dir, "wan");
	old_lan = hook_prog_id(pin_dir, "lan"); /* 0 in one-arm mode: one hook */
	if (!old_wan) {
		xd_err("instance '%s' has no pinned link or program in %s", cli.instance, pin_dir);
		return 1;
	}
	if (kill((pid_t)pid, SIGUSR2)) {
		xd_err("cannot signal xdnatd (pid %ld): %s", pid, strerror(errno));
		return 1;
	}
	for (i = 0; i < 200; i++) { /* 20 s */
		wan = hook_prog_id(pin_dir, "wan");
		lan = hook_prog_id(pin_dir, "lan");
		if (wan && wan != old_wan && (!old_lan || (lan && lan != old_lan)))
			break;
		usleep(100 * 1000);
	}
	if (!wan || wan == old_wan || (old_lan && (!lan || lan == old_lan))) {
		xd_err("xdnatd did not replace its programs within 20 s (WAN %u -> %u, LAN %u -> %u); "
		       "see its log", old_wan, wan, old_lan, lan);
		return 1;
	}
	if (cli.json) {
		struct xd_json j;

		xd_json_begin(&j, stdout);
		xd_json_u64(&j, "wan_old", old_wan);
		xd_json_u64(&j, "wan_new", wan);
		xd_json_u64(&j, "lan_old", old_lan);
		xd_json_u64(&j, "lan_new", lan);
		xd_json_end(&j);
	} else {
		printf("programs replaced: WAN %u -> %u, LAN %u -> %u\n", old_wan, wan, old_lan, lan);
	}
	return 0;
}
