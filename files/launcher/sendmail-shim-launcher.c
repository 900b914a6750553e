/* SPDX-License-Identifier: MIT */
/*
 * sendmail-shim launcher: the only privileged code of the project.
 *
 * Installed setuid root and setgid to the dedicated group, reached as /usr/sbin/sendmail through
 * alternatives. While privileged it parses nothing from the caller, reads no file a non-root user can
 * write and makes no NSS lookup: the dedicated group is its effective gid at start (the setgid bit), the
 * dedicated user is the owner of the state directory (which only root can set). It repairs what a caller
 * could have set up to sabotage the shim (limits, fds, inherited signal and scheduling state).
 *
 * Then it tries the resident recorder (docs/recorder.md): if its socket is in place, it connects with the
 * caller's ids as its effective ones (the recorder learns them from the kernel), passes the caller's fds
 * 0, 1, 2 and argv as bytes, and exits with the status the recorder replies. Anything that goes wrong
 * before the recorder was told to go takes the exec path, silently: it repairs environment, cwd and
 * umask, drops to the dedicated user for good and execs the Python shim. See docs/design.md and
 * docs/threat-model.md.
 *
 * Exit status 71 (EX_OSERR): the launcher failed and the message was NOT accepted (on the recorder's path:
 * the recorder ended without a status, after it may have read part of the message but recorded none of
 * it). It never uses 75 itself: in this project 75 promises that the message was kept in the fallback.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef SHIM_PYTHON
#define SHIM_PYTHON "/usr/bin/python3"
#endif
#ifndef SHIM_ENTRY
#define SHIM_ENTRY "/usr/local/lib/sendmail-shim/sendmail_shim/__main__.py"
#endif
#ifndef SHIM_STATE_DIR
#define SHIM_STATE_DIR "/var/lib/sendmail-shim"
#endif
#ifndef SHIM_RECORDER_SOCKET
#define SHIM_RECORDER_SOCKET "/run/sendmail-shim/recorder.sock"
#endif

#define EX_OSERR 71

/* One line on stderr (maybe /dev/null or a closed pipe: nothing more can be done), and nothing runs on. */
static _Noreturn void die(const char *what)
{
	const int err = errno;

	fprintf(stderr, "sendmail-shim: launcher: %s%s%s; message not accepted\n", what, err ? ": " : "",
		err ? strerror(err) : "");
	exit(EX_OSERR);
}

/*
 * A caller can lower any limit, soft and hard, before exec'ing us, to make the shim die half-way through
 * a write (FSIZE), fail to open its log (NOFILE), be killed (CPU, RTTIME), fail to allocate (AS, DATA,
 * STACK) or fail its own execve after the uid switch (NPROC is checked against the dedicated user's
 * process count at execve). Root with CAP_SYS_RESOURCE raises them back. Without it (containers, these
 * test hosts, the unprivileged path) a lowered hard limit stays: soft is raised to hard, and the shim
 * itself detects a too small FSIZE and uses its fallback rather than write part of a line.
 * NOFILE and STACK get fixed sane values rather than infinity: NOFILE cannot exceed fs.nr_open, and an
 * unlimited stack makes the kernel use the legacy mmap layout for the exec'd interpreter.
 */
static const struct {
	int resource;
	rlim_t want;
	const char *name;
} limits[] = {
	{RLIMIT_FSIZE, RLIM_INFINITY, "RLIMIT_FSIZE"},
	{RLIMIT_CPU, RLIM_INFINITY, "RLIMIT_CPU"},
	{RLIMIT_AS, RLIM_INFINITY, "RLIMIT_AS"},
	{RLIMIT_DATA, RLIM_INFINITY, "RLIMIT_DATA"},
	{RLIMIT_NPROC, RLIM_INFINITY, "RLIMIT_NPROC"},
	{RLIMIT_RTTIME, RLIM_INFINITY, "RLIMIT_RTTIME"},
	{RLIMIT_NOFILE, 1024, "RLIMIT_NOFILE"},
	{RLIMIT_STACK, 8UL << 20, "RLIMIT_STACK"},
	{RLIMIT_CORE, 0, "RLIMIT_CORE"}, /* no core file of a process holding a message */
};

static void reset_limits(void)
{
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		struct rlimit rl = {limits[i].want, limits[i].want};

		if (setrlimit(limits[i].resource, &rl) == 0)
			continue;
		if (errno != EPERM || getrlimit(limits[i].resource, &rl) != 0)
			die(limits[i].name);
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(limits[i].resource, &rl) != 0)
			die(limits[i].name);
	}
}

/*
 * fds above 2 the caller left open would give the shim (running as the dedicated user) the caller's
 * resources and keep the caller's pipes alive; closed 0/1/2 would make the shim's first open() land on
 * stdin/stdout/stderr, so that a message or an error is written into the log or the log is read as input.
 * A closed 0/1/2 of a setuid program is already reopened by glibc, on /dev/null in the wrong direction on
 * purpose (stdin write-only): the shim must read its stdin to the end and write its stderr line, so fd 0
 * must be readable and fds 1 and 2 writable, else they are replaced by /dev/null opened that way.
 * max_fd is the caller's hard NOFILE, only used where neither close_range nor /proc is available.
 */
static void fix_fds(rlim_t max_fd)
{
	for (int fd = 0; fd <= 2; fd++) {
		const int mode = fd == 0 ? O_RDONLY : O_WRONLY;
		const int unusable = fd == 0 ? O_WRONLY : O_RDONLY;
		const int flags = fcntl(fd, F_GETFL);

		if (flags == -1 && errno != EBADF)
			die("fcntl");
		if (flags != -1 && (flags & O_ACCMODE) != unusable && !(flags & O_PATH))
			continue;
		/* Lands on fd itself when fd is closed: the lower ones are open by now. */
		const int null = open("/dev/null", mode | O_NOCTTY);
		if (null == -1)
			die("cannot open /dev/null for fd 0, 1 or 2");
		if (null != fd && (dup2(null, fd) != fd || close(null) != 0))
			die("dup2");
	}
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
	if (errno != ENOSYS)
		die("close_range");
#endif
	/* Kernels before 5.9. */
	DIR *dir = opendir("/proc/self/fd");
	if (dir != NULL) {
		struct dirent *de;

		while ((de = readdir(dir)) != NULL) {
			int fd = atoi(de->d_name);

			if (fd > 2 && fd != dirfd(dir))
				close(fd);
		}
		closedir(dir);
		return;
	}
	for (rlim_t fd = 3; fd < max_fd && fd <= INT_MAX; fd++)
		close((int)fd);
}

/*
 * What else survives execve and is the caller's to choose: ignored or blocked signals (the shim could not
 * be stopped, or would never see the signals it holds back and releases), armed interval timers (a
 * SIGALRM or SIGPROF that kills the shim at a moment of the caller's choosing), SCHED_IDLE or another
 * policy (a shim that never gets the CPU while it holds the log's lock) and a CPU affinity pinned to a
 * busy CPU. The nice value stays the caller's: it only orders the shim among the caller's own work.
 */
static void reset_inherited_state(void)
{
	static const struct itimerval disarmed;
	const struct sched_param other = {.sched_priority = 0};
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;
	cpu_set_t all;

	/* 32 and 33 are glibc's own (EINVAL), SIGKILL and SIGSTOP cannot be changed: skipped. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, &dfl, NULL) != 0 && errno != EINVAL)
			die("sigaction");
	if (sigemptyset(&none) != 0 || sigprocmask(SIG_SETMASK, &none, NULL) != 0)
		die("sigprocmask");
	if (setitimer(ITIMER_REAL, &disarmed, NULL) != 0 || setitimer(ITIMER_VIRTUAL, &disarmed, NULL) != 0 ||
	    setitimer(ITIMER_PROF, &disarmed, NULL) != 0)
		die("setitimer");
	/* Leaving SCHED_IDLE needs CAP_SYS_NICE (not granted in containers): there the caller's stays. */
	if (sched_setscheduler(0, SCHED_OTHER, &other) != 0 && errno != EPERM)
		die("sched_setscheduler");
	/* The kernel keeps the CPUs of the caller's cpuset among these; only an empty result fails. */
	CPU_ZERO(&all);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		CPU_SET(cpu, &all);
	if (sched_setaffinity(0, sizeof(all), &all) != 0)
		die("sched_setaffinity");
}

/* The whole environment is the caller's: only these values reach the shim. */
static void set_env(uid_t caller_uid, gid_t caller_gid, const char *invoked_as, int privileged)
{
	char uid[24], gid[24];

	snprintf(uid, sizeof(uid), "%lu", (unsigned long)caller_uid);
	snprintf(gid, sizeof(gid), "%lu", (unsigned long)caller_gid);
	if (clearenv() != 0 || setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1) != 0 ||
	    setenv("LANG", "C.UTF-8", 1) != 0 || setenv("SENDMAIL_SHIM_CALLER_UID", uid, 1) != 0 ||
	    setenv("SENDMAIL_SHIM_CALLER_GID", gid, 1) != 0 ||
	    setenv("SENDMAIL_SHIM_INVOKED_AS", invoked_as, 1) != 0 ||
	    (!privileged && setenv("SENDMAIL_SHIM_UNPRIVILEGED", "1", 1) != 0))
		die("cannot build the environment");
}

struct service_ids {
	uid_t uid;
	gid_t gid;
};

/* A refusal that errno does not explain. */
static _Noreturn void refuse(const char *why)
{
	errno = 0;
	die(why);
}

/*
 * The dedicated ids are not compiled in, so that one build serves hosts where the user has any uid. The
 * uid is the owner of the state directory: only root can chown, and the directory sits in a root-owned
 * parent that nobody else can write, so nobody else can swap it. The dedicated user may chmod it, never
 * chown it. Only inode metadata is read (lstat), never content. Both paths use this: the uid switch and
 * the check of the recorder's socket (which the unprivileged path makes too).
 * Returns NULL and the directory's stat, or why not (errno 0 when errno does not explain it).
 */
static const char *state_dir_owner(struct stat *st)
{
	char parent[sizeof(SHIM_STATE_DIR)] = SHIM_STATE_DIR;
	char *slash = strrchr(parent, '/');

	errno = 0;
	if (SHIM_STATE_DIR[0] != '/' || slash == NULL)
		return "the state directory is not an absolute path";
	*(slash == parent ? slash + 1 : slash) = '\0';
	if (lstat(parent, st) != 0)
		return "cannot stat the parent of " SHIM_STATE_DIR;
	if (!S_ISDIR(st->st_mode) || st->st_uid != 0 || (st->st_mode & (S_IWGRP | S_IWOTH))) {
		errno = 0;
		return "the parent of " SHIM_STATE_DIR " is not a directory that only root can write";
	}
	if (lstat(SHIM_STATE_DIR, st) != 0)
		return "cannot stat " SHIM_STATE_DIR;
	errno = 0;
	if (!S_ISDIR(st->st_mode))
		return SHIM_STATE_DIR " is not a directory";
	if (st->st_uid == 0)
		return SHIM_STATE_DIR " must belong to the dedicated user and the launcher's group";
	return NULL;
}

/*
 * The gid is our effective gid at start, which only the setgid bit (a statoverride root set) can give.
 */
static struct service_ids service_ids(uid_t caller_uid, gid_t egid_at_start)
{
	struct stat st;
	const char *why = state_dir_owner(&st);

	if (why != NULL)
		die(why);
	/*
	 * A root caller under NoNewPrivileges or on a nosuid mount keeps egid 0: the setgid bit had no
	 * effect. Root may run anything as anyone anyway; the directory's group stands in for it.
	 */
	const gid_t gid = caller_uid == 0 && egid_at_start == 0 ? st.st_gid : egid_at_start;
	if (gid == 0)
		refuse("the launcher is not setgid to the dedicated group");
	if (st.st_gid != gid)
		refuse(SHIM_STATE_DIR " must belong to the dedicated user and the launcher's group");
	return (struct service_ids){st.st_uid, gid};
}

static void drop_to_service_user(struct service_ids svc)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	/* Groups first: once the uid is not 0 any more, the groups cannot be changed. */
	if (setgroups(0, NULL) != 0)
		die("setgroups");
	if (setresgid(svc.gid, svc.gid, svc.gid) != 0)
		die("setresgid");
	if (setresuid(svc.uid, svc.uid, svc.uid) != 0)
		die("setresuid");
	/* Trust but verify: a partial switch must never reach the interpreter. */
	if (getresuid(&r, &e, &s) != 0 || r != svc.uid || e != svc.uid || s != svc.uid ||
	    getresgid(&rg, &eg, &sg) != 0 || rg != svc.gid || eg != svc.gid || sg != svc.gid ||
	    getgroups(0, NULL) != 0)
		refuse("the switch to the dedicated user did not take");
}

/*
 * No privilege was granted (NoNewPrivileges, a nosuid mount, a container ignoring the setuid bit): run
 * the shim as the caller, which keeps the message through its fallback. Real, effective and saved ids are
 * made equal to the effective ones, so that a caller that had only lowered its euid cannot lend the shim
 * a way back (an unprivileged process may always set all three to its current effective id).
 */
static void settle_as_caller(void)
{
	if (setresgid(getegid(), getegid(), getegid()) != 0)
		die("setresgid");
	if (setresuid(geteuid(), geteuid(), geteuid()) != 0)
		die("setresuid");
}

/*
 * The hand-off to the resident recorder (docs/recorder.md). Until the recorder is told to go ("G"), every
 * failure returns to the exec path without a word: no recorder is the normal case without systemd.
 */
#define HANDOFF_WAIT_SECONDS 10

_Static_assert(sizeof(SHIM_RECORDER_SOCKET) <= sizeof(((struct sockaddr_un *)0)->sun_path),
	       "SHIM_RECORDER_SOCKET is too long for a UNIX socket address");

/*
 * The socket is trusted by where it is and whose it is, never by its peer: under socket activation the
 * listening end belongs to pid 1. Its directory is root's and writable by nobody else, so only root can
 * put a socket at that name; the socket belongs to the dedicated user (the state directory's owner). A
 * caller's socket, a regular file or a link there is not connected to.
 */
static int recorder_socket_trusted(void)
{
	char dir[sizeof(SHIM_RECORDER_SOCKET)] = SHIM_RECORDER_SOCKET;
	char *slash = strrchr(dir, '/');
	struct stat st, state;

	if (SHIM_RECORDER_SOCKET[0] != '/' || slash == NULL)
		return 0;
	*(slash == dir ? slash + 1 : slash) = '\0';
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return 0;
	if (lstat(SHIM_RECORDER_SOCKET, &st) != 0 || !S_ISSOCK(st.st_mode))
		return 0;
	return state_dir_owner(&state) == NULL && st.st_uid == state.st_uid;
}

/*
 * SO_PEERCRED holds the effective ids at connect(): connect with the caller's real ones, keeping root as
 * the saved uid to take it back for the exec path. In between, the caller may signal us (it always may:
 * our real uid is its own) but not trace us (saved uid 0, not dumpable). -1 when not connected; a full
 * backlog (EAGAIN: the socket is non-blocking) is not connected either.
 */
static int connect_as_caller(uid_t caller_uid, gid_t caller_gid, gid_t egid_at_start, int privileged)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX, .sun_path = SHIM_RECORDER_SOCKET};
	int sock;

	if (privileged && (setresgid(-1, caller_gid, -1) != 0 || setresuid(-1, caller_uid, -1) != 0))
		die("cannot take the caller's ids to connect to the recorder");
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sock != -1 && connect(sock, (const struct sockaddr *)&addr, sizeof(addr)) != 0) {
		close(sock);
		sock = -1;
	}
	if (privileged && (setresuid(-1, 0, -1) != 0 || setresgid(-1, egid_at_start, -1) != 0))
		die("cannot take back the launcher's ids after connecting to the recorder");
	return sock;
}

static int ms_left(const struct timespec *deadline)
{
	struct timespec now;

	if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
		return 0;
	const long long ms = (deadline->tv_sec - now.tv_sec) * 1000LL + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Whether sock has one of events (or an error or hang-up, which the next call reports) by the deadline. */
static int ready_by(int sock, short events, const struct timespec *deadline)
{
	struct pollfd pfd = {.fd = sock, .events = events};
	int n;

	while ((n = poll(&pfd, 1, ms_left(deadline))) == -1 && errno == EINTR)
		;
	return n > 0;
}

/*
 * The header and the argv block, the caller's fds 0, 1 and 2 riding on the first byte sent. The bytes are
 * the caller's argv copied as they are: nothing in them is looked at.
 */
static int send_handoff(int sock, const unsigned char *buf, size_t len, const struct timespec *deadline)
{
	static const int fds[3] = {0, 1, 2};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(fds))];
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf)};
	struct cmsghdr *cmsg;

	memset(&control, 0, sizeof(control));
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
	while (len > 0) {
		/* MSG_NOSIGNAL: a recorder that closed (it refused) means the exec path, not death by SIGPIPE. */
		const ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);

		if (n > 0) {
			iov.iov_base = (char *)iov.iov_base + n;
			iov.iov_len = len -= (size_t)n;
			msg.msg_control = NULL;
			msg.msg_controllen = 0;
		} else if (errno != EAGAIN && errno != EINTR) {
			return 0;
		} else if (!ready_by(sock, POLLOUT, deadline)) {
			return 0;
		}
	}
	return 1;
}

static void put_u32(unsigned char *at, uint32_t value)
{
	at[0] = value >> 24;
	at[1] = value >> 16;
	at[2] = value >> 8;
	at[3] = value;
}

/* "SSHM", version 1, argc, block size, then argc NUL-terminated strings; NULL when it cannot be built. */
static unsigned char *handoff_bytes(int argc, char **argv, const char *invoked_as, size_t *len)
{
	const size_t count = argc > 0 ? (size_t)argc : 1;
	size_t block = 0;

	for (size_t i = 0; i < count; i++) {
		block += strlen(i == 0 ? invoked_as : argv[i]) + 1;
		if (block > UINT32_MAX)
			return NULL;
	}
	unsigned char *buf = malloc(16 + block), *at = buf + 16;
	if (buf == NULL)
		return NULL;
	memcpy(buf, "SSHM", 4);
	put_u32(buf + 4, 1);
	put_u32(buf + 8, (uint32_t)count);
	put_u32(buf + 12, (uint32_t)block);
	for (size_t i = 0; i < count; i++) {
		const char *arg = i == 0 ? invoked_as : argv[i];
		const size_t size = strlen(arg) + 1;

		memcpy(at, arg, size);
		at += size;
	}
	*len = 16 + block;
	return buf;
}

/*
 * After "G" the recorder owns the message and there is no exec path left, so nothing needs root any more:
 * the launcher becomes the caller for good and waits for the status byte, as long as the recorder's own
 * budget for the message allows. A signal to the launcher meanwhile (the caller's, or Ctrl-C on its
 * terminal) has its default action: the launcher dies, and the recorder still reads the caller's stdin
 * to its end and records it; only the status is lost. No status (the recorder was killed while it had the
 * message): one stderr line and 71, and the recorder left no partial record (docs/record.md).
 */
static _Noreturn void await_status(int sock, uid_t caller_uid, gid_t caller_gid, int privileged)
{
	unsigned char status;
	ssize_t n;

	if (privileged && (setresgid(caller_gid, caller_gid, caller_gid) != 0 ||
			   setresuid(caller_uid, caller_uid, caller_uid) != 0))
		die("cannot become the caller while the recorder has the message");
	for (;;) {
		n = recv(sock, &status, 1, 0);
		if (n != -1 || (errno != EAGAIN && errno != EINTR))
			break;
		struct pollfd pfd = {.fd = sock, .events = POLLIN};
		if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
			break;
	}
	if (n == 1)
		exit(status);
	if (n == 0)
		errno = 0;
	die("the recorder ended before it gave a status");
}

/* Returns when the recorder did not take the message; exits with its status when it did. */
static void try_recorder(uid_t caller_uid, gid_t caller_gid, gid_t egid_at_start, int privileged, int argc,
			 char **argv, const char *invoked_as)
{
	struct timespec deadline;
	unsigned char *bytes, reply;
	size_t len;
	int sock;

	if (!recorder_socket_trusted() || clock_gettime(CLOCK_MONOTONIC, &deadline) != 0)
		return;
	/* One budget for sending and for the "A": the recorder may be at its bound with us in its backlog. */
	deadline.tv_sec += HANDOFF_WAIT_SECONDS;
	bytes = handoff_bytes(argc, argv, invoked_as, &len);
	if (bytes == NULL)
		return;
	sock = connect_as_caller(caller_uid, caller_gid, egid_at_start, privileged);
	if (sock != -1 && send_handoff(sock, bytes, len, &deadline) && ready_by(sock, POLLIN, &deadline) &&
	    recv(sock, &reply, 1, 0) == 1 && reply == 'A' && send(sock, "G", 1, MSG_NOSIGNAL) == 1) {
		free(bytes);
		await_status(sock, caller_uid, caller_gid, privileged);
	}
	/* The recorder sees the connection end without "G" and drops the hand-off unread. */
	if (sock != -1)
		close(sock);
	free(bytes);
}

int main(int argc, char **argv)
{
	const uid_t caller_uid = getuid();
	const gid_t caller_gid = getgid();
	const gid_t egid_at_start = getegid();
	const int privileged = geteuid() == 0;
	/* argc is 0 when the caller execs us with an empty argv: then argv[1] would be the environment. */
	const char *invoked_as = argc > 0 ? argv[0] : "sendmail";
	const int nargs = argc > 1 ? argc - 1 : 0;
	struct rlimit nofile;

	if (getrlimit(RLIMIT_NOFILE, &nofile) != 0)
		die("getrlimit");
	reset_limits();
	reset_inherited_state();
	fix_fds(nofile.rlim_max);
	try_recorder(caller_uid, caller_gid, egid_at_start, privileged, argc, argv, invoked_as);
	set_env(caller_uid, caller_gid, invoked_as, privileged);

	if (chdir("/") != 0)
		die("chdir /");
	umask(027);
	if (privileged)
		drop_to_service_user(service_ids(caller_uid, egid_at_start));
	else
		settle_as_caller();
	/* Also on the caller's path: a caller with capabilities but another euid must not lend them on. */
	if (setuid(0) != -1 || (privileged && setgid(0) != -1)) {
		errno = 0;
		die("root could be regained after the switch");
	}

	/*
	 * argv[0] of the interpreter is its own absolute path: CPython derives sys.executable and its prefix
	 * from it, and a bare "sendmail" would be searched on PATH and find this launcher.
	 */
	char **args = calloc((size_t)nargs + 5, sizeof(*args));
	if (args == NULL)
		die("out of memory");
	args[0] = SHIM_PYTHON;
	args[1] = "-I"; /* ignore PYTHON* variables, user site and the script's directory */
	args[2] = "-S"; /* no site module: no .pth file runs */
	args[3] = SHIM_ENTRY;
	for (int i = 0; i < nargs; i++)
		args[4 + i] = argv[1 + i];
	execv(SHIM_PYTHON, args);
	die("cannot exec " SHIM_PYTHON);
}
