/* SPDX-License-Identifier: MIT */
/*
 * systemd's notification protocol (sd_notify(3)): datagrams to the socket
 * named by $NOTIFY_SOCKET.  Without it (not under systemd) every call does
 * nothing, so walcastd behaves the same anywhere.
 */
#ifndef WALCAST_CMD_NOTIFY_H
#define WALCAST_CMD_NOTIFY_H

#include <stdint.h>

/* Reads $NOTIFY_SOCKET and $WATCHDOG_USEC once. */
void wc_notify_init(void);

/* Sends "READY=1", "STATUS=...", ...; 0, or -errno (only logged at debug:
 * a missing systemd is no error). */
int wc_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* How often WATCHDOG=1 is due (half of $WATCHDOG_USEC), in ms; 0 when
 * there is no watchdog. */
int64_t wc_notify_watchdog_ms(void);

#endif
