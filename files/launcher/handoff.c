/* SPDX-License-Identifier: MIT */
/*
 * The hand-off to the resident recorder, protocol version 2 (docs/recorder.md), with the caller's ids as
 * effective ones. No fd of the caller is sent before the recorder's greeting, when it has accepted the
 * connection and reads it: a launcher that gives up later leaves no copy of them in the kernel. Before
 * "G" every failure is the exec path, without a word (no recorder is the normal case without systemd).
 */
#define _GNU_SOURCE
#include "handoff.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "die.h"
#include "paths.h"

#define HANDOFF_VERSION 2
/* One budget from the connection on for every wait before "G": the greeting, sending, the "A". */
#define HANDOFF_WAIT_SECONDS 10

/* The time left until the deadline becomes the socket's timeout for its next step; 0 when none is left. */
static int wait_at_most(int sock, const struct timespec *deadline)
{
	struct timespec now;

	if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
		return 0;
	const long long us = (deadline->tv_sec - now.tv_sec) * 1000000LL + (deadline->tv_nsec - now.tv_nsec) / 1000;
	const struct timeval left = {.tv_sec = us / 1000000, .tv_usec = us % 1000000};
	return us > 0 && setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &left, sizeof(left)) == 0 &&
	       setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &left, sizeof(left)) == 0;
}

/* Whether the next len bytes (at most 8) from the recorder are exactly these, by the deadline. */
static int receive_exactly(int sock, const char *expected, size_t len, const struct timespec *deadline)
{
	char got[8];

	return len <= sizeof(got) && wait_at_most(sock, deadline) &&
	       recv(sock, got, len, MSG_WAITALL) == (ssize_t)len && memcmp(got, expected, len) == 0;
}

/* "SSHM", the version, argc, block size, then argc NUL-terminated strings; NULL when it cannot be built. */
static unsigned char *handoff_bytes(int argc, char **argv, const char *invoked_as, size_t *len)
{
	const size_t count = argc > 0 ? (size_t)argc : 1;
	size_t block = 0;

	for (size_t i = 0; i < count; i++)
		block += strlen(i == 0 ? invoked_as : argv[i]) + 1;
	unsigned char *buf = block <= UINT32_MAX ? malloc(16 + block) : NULL;
	if (buf == NULL)
		return NULL;
	unsigned char *at = buf + 16;
	const uint32_t numbers[3] = {htonl(HANDOFF_VERSION), htonl((uint32_t)count), htonl((uint32_t)block)};
	memcpy(buf, "SSHM", 4);
	memcpy(buf + 4, numbers, sizeof(numbers));
	for (size_t i = 0; i < count; i++) {
		const char *arg = i == 0 ? invoked_as : argv[i];
		const size_t size = strlen(arg) + 1;

		memcpy(at, arg, size);
		at += size;
	}
	*len = 16 + block;
	return buf;
}

/* Header and argv block in one send, the caller's fds 0, 1, 2 on its first byte; argv is not looked at. */
static int send_handoff(int sock, unsigned char *bytes, size_t len, const struct timespec *deadline)
{
	static const int fds[3] = {0, 1, 2};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(fds))];
	} control = {0};
	struct iovec iov = {.iov_base = bytes, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf)};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
	/* MSG_NOSIGNAL: a recorder that closed means the exec path, not death by SIGPIPE. */
	return wait_at_most(sock, deadline) && sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)len;
}

/* The socket, connected to a recorder that was told to go, or -1 when no recorder took the message. */
int hand_off(int argc, char **argv, const char *invoked_as)
{
	static const char greeting[8] = {'S', 'S', 'H', 'M', 0, 0, 0, HANDOFF_VERSION};
	const struct sockaddr_un addr = {.sun_family = AF_UNIX, .sun_path = SHIM_RECORDER_SOCKET};
	struct timespec deadline;
	size_t len;
	unsigned char *bytes = handoff_bytes(argc, argv, invoked_as, &len);
	int sock = bytes == NULL ? -1 : socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (sock == -1 || clock_gettime(CLOCK_MONOTONIC, &deadline) != 0) {
		free(bytes);
		return -1;
	}
	deadline.tv_sec += HANDOFF_WAIT_SECONDS;
	/* A full backlog (EAGAIN at the non-blocking connect) is the exec path; then each step has a timeout. */
	const int taken = connect(sock, (const struct sockaddr *)&addr, sizeof(addr)) == 0 &&
			  fcntl(sock, F_SETFL, 0) == 0 &&
			  receive_exactly(sock, greeting, sizeof(greeting), &deadline) &&
			  send_handoff(sock, bytes, len, &deadline) && receive_exactly(sock, "A", 1, &deadline) &&
			  send(sock, "G", 1, MSG_NOSIGNAL) == 1;
	free(bytes);
	if (taken)
		return sock;
	/* The recorder sees the connection end without "G" and drops the hand-off unread. */
	close(sock);
	return -1;
}

/*
 * After "G" the recorder owns the message: wait for its status as long as its own budget allows. A signal
 * meanwhile kills the launcher (default action) and loses only the status: the recorder still records the
 * message. No status (the recorder was killed): 71, and it left no partial record (docs/record.md).
 */
_Noreturn void await_status(int sock)
{
	static const struct timeval forever; /* zero: no timeout */
	unsigned char status;
	ssize_t n;

	if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &forever, sizeof(forever)) != 0)
		die("cannot wait for the recorder's status");
	while ((n = recv(sock, &status, 1, 0)) == -1 && errno == EINTR)
		;
	if (n == 1)
		exit(status);
	if (n == 0)
		errno = 0;
	die("the recorder ended before it gave a status");
}
