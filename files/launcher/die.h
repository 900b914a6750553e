/* SPDX-License-Identifier: MIT */
/* How the launcher stops when it cannot go on: one line on stderr and 71, the message not accepted. */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EX_OSERR 71

/* stderr may be /dev/null or a closed pipe: nothing more can be done, and nothing runs on. */
static inline _Noreturn void die(const char *what)
{
	const int err = errno;

	fprintf(stderr, "sendmail-shim: launcher: %s%s%s; message not accepted\n", what, err ? ": " : "",
		err ? strerror(err) : "");
	exit(EX_OSERR);
}

/* A refusal that errno does not explain. */
static inline _Noreturn void refuse(const char *why)
{
	errno = 0;
	die(why);
}
