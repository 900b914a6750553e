/* SPDX-License-Identifier: MIT */
/* What the launcher trusts, from inode metadata that only root can set (docs/threat-model.md). */
#pragma once

#include <sys/types.h>

struct service_ids {
	uid_t uid;
	gid_t gid;
};

struct service_ids service_ids(uid_t caller_uid, gid_t egid_at_start);
int recorder_socket_trusted(void);
