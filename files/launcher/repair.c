/* SPDX-License-Identifier: MIT */
/* What a caller could have set up to sabotage the shim: limits, fds, inherited signal and scheduling state. */
#define _GNU_SOURCE
#include "repair.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "die.h"

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

void reset_limits(void)
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
 * max_fd is the caller's hard NOFILE, only used where close_range is not available.
 */
/* glibc before 2.34 (Debian 11's) names no SYS_close_range; the kernel headers have its number. */
#ifndef SYS_close_range
#define SYS_close_range __NR_close_range
#endif

void fix_fds(rlim_t max_fd)
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
	/* close_range is in every supported kernel (5.9 and later); the loop is for a filter that refuses it. */
	if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
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
void reset_inherited_state(void)
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
	memset(&all, 0xff, sizeof(all));
	if (sched_setaffinity(0, sizeof(all), &all) != 0)
		die("sched_setaffinity");
}
