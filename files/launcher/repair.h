/* SPDX-License-Identifier: MIT */
/* What a caller could have set up to sabotage the shim, repaired before anything else runs. */
#pragma once

#include <sys/resource.h>

void reset_limits(void);
void reset_inherited_state(void);
void fix_fds(rlim_t max_fd);
