/* SPDX-License-Identifier: MIT */
#ifndef WALCAST_CMD_SNAPSHOT_H
#define WALCAST_CMD_SNAPSHOT_H

#include "config/config.h"

/* walcast snapshot [status|cancel] -c FILE [PATTERN...]: argv after
 * "snapshot".  The exit status. */
int wc_cmd_snapshot(int argc, char **argv);

/* The snapshot progress of slot in the state directory of cfg, printed
 * as `walcast slot status` and `walcast snapshot status` show it; conn a
 * PGconn to estimate rows with (NULL: none). */
void wc_print_snapshot_status(const struct wc_config *cfg, const char *slot,
                              void *conn);

#endif
