/* SPDX-License-Identifier: MIT */
/*
 * sendmail-shim launcher: the only privileged code of the project, installed setuid root and setgid to the
 * dedicated group and reached as /usr/sbin/sendmail. While privileged it parses nothing from the caller,
 * reads no file a non-root user can write and makes no NSS lookup (trust.c).
 *
 * 1. It repairs what the caller could have set to sabotage the shim (repair.c).
 * 2. With the caller's ids as effective ones (root stays only as the saved uid) it offers the message to
 *    the resident recorder (handoff.c, docs/recorder.md): only after the recorder's greeting does it pass
 *    the caller's fds 0, 1, 2 and argv; once it told the recorder to go, it is the caller for good and
 *    exits with the recorder's status.
 * 3. Anything before that failing is the exec path, silently: a fixed environment, cwd and umask, root
 *    taken back only to drop to the dedicated user for good, and exec of the Python shim (docs/design.md).
 *
 * Exit status: the recorder's or the shim's; 71 (EX_OSERR) when the launcher failed and the message was
 * NOT accepted (also when the recorder ended without a status: it may have read part of the message but
 * recorded none of it). Never 75, which in this project promises that the message was kept.
 */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "die.h"
#include "handoff.h"
#include "paths.h"
#include "repair.h"
#include "trust.h"

/*
 * For the hand-off: SO_PEERCRED then names the caller, and nothing in it runs as root. The saved uid stays
 * 0 for the exec path; meanwhile the caller may signal us (as always) but not trace us (not dumpable).
 */
static void take_callers_ids(uid_t caller_uid, gid_t caller_gid)
{
	if (setresgid(-1, caller_gid, -1) != 0 || setresuid(-1, caller_uid, -1) != 0)
		die("cannot take the caller's ids for the hand-off");
}

/*
 * All ids made the effective ones, for good: after "G", and for the whole run when no privilege was
 * granted (NoNewPrivileges, nosuid, a container ignoring the setuid bit), where the shim keeps the message
 * in its fallback. A caller that had only lowered its euid cannot lend a way back this way.
 */
static void settle_as_caller(void)
{
	if (setresgid(getegid(), getegid(), getegid()) != 0 || setresuid(geteuid(), geteuid(), geteuid()) != 0)
		die("cannot settle as the caller");
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

	if (privileged)
		take_callers_ids(caller_uid, caller_gid);
	else
		settle_as_caller();
	const int recorder = recorder_socket_trusted() ? hand_off(argc, argv, invoked_as) : -1;
	if (recorder != -1) {
		settle_as_caller(); /* the recorder has the message: nothing needs root any more */
		await_status(recorder);
	}

	set_env(caller_uid, caller_gid, invoked_as, privileged);
	if (chdir("/") != 0)
		die("chdir /");
	umask(027);
	if (privileged) {
		if (setresuid(-1, 0, -1) != 0)
			die("cannot take root back for the exec path");
		drop_to_service_user(service_ids(caller_uid, egid_at_start));
	}
	/* Also on the caller's path: a caller with capabilities but another euid must not lend them on. */
	if (setuid(0) != -1 || (privileged && setgid(0) != -1))
		refuse("root could be regained after the switch");

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
