/* SPDX-License-Identifier: MIT */
/*
 * What the launcher trusts, from inode metadata only (lstat, never content), which only root can set: the
 * dedicated ids for the exec path and the recorder's socket for the hand-off. Nothing is compiled in but
 * the paths (paths.h), so one build serves hosts where the dedicated user has any uid.
 */
#include "trust.h"

#include <sys/stat.h>
#include <sys/un.h>

#include "die.h"
#include "paths.h"

_Static_assert(sizeof(SHIM_RECORDER_SOCKET) <= sizeof(((struct sockaddr_un *)0)->sun_path),
	       "SHIM_RECORDER_SOCKET is too long for a UNIX socket address");

/* A directory (not a link) that only root can write: whoever else could would choose what is in it. */
static int only_root_writes(const char *dir)
{
	struct stat st;

	return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0 && !(st.st_mode & (S_IWGRP | S_IWOTH));
}

/*
 * The dedicated uid is the owner of the state directory: only root can chown, and the directory sits in a
 * parent that only root can write, so nobody else can swap it. The dedicated user may chmod it, never
 * chown it. Returns NULL and the directory's stat, or why not (errno 0 when errno does not explain it).
 */
static const char *state_dir_owner(struct stat *st)
{
	errno = 0;
	if (!only_root_writes(SHIM_STATE_PARENT))
		return "the parent of " SHIM_STATE_DIR " is not a directory that only root can write";
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
 * The gid is our effective gid at start, which only the setgid bit (a statoverride root set) can give; the
 * state directory must have it too.
 */
struct service_ids service_ids(uid_t caller_uid, gid_t egid_at_start)
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

/*
 * The socket is trusted by where it is and whose it is, never by its peer: under socket activation the
 * listening end belongs to pid 1. Its directory is writable only by root, so only root can put a socket at
 * that name; the socket belongs to the dedicated user (the state directory's owner). A caller's socket, a
 * regular file or a link there is not connected to.
 */
int recorder_socket_trusted(void)
{
	struct stat st, state;

	return only_root_writes(SHIM_RECORDER_SOCKET_DIR) && lstat(SHIM_RECORDER_SOCKET, &st) == 0 &&
	       S_ISSOCK(st.st_mode) && state_dir_owner(&state) == NULL && st.st_uid == state.st_uid;
}
