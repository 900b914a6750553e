/* SPDX-License-Identifier: MIT */
/* The hand-off to the resident recorder, protocol version 2 (docs/recorder.md). */
#pragma once

int hand_off(int argc, char **argv, const char *invoked_as);
_Noreturn void await_status(int sock);
