/* SPDX-License-Identifier: MIT */
/*
 * The slot's state file: what walcast last confirmed, and where.
 *
 * A small text file in the state directory (systemd's StateDirectory=),
 * one per slot, holding the server's system identifier, the timeline, the
 * database, the slot and the last position confirmed to the server.  It is
 * written (atomically, synced) before a new position is sent, so the file
 * is never behind the slot.  At start it tells a slot that vanished or was
 * recreated, or a server that is another one, from a first start: changes
 * may have been lost there, and walcast must not go on silently.
 *
 *   # walcast slot state (docs/reliability.md); written by walcastd
 *   system_id=7312345678901234567
 *   timeline=1
 *   database=app
 *   slot=walcast
 *   confirmed_lsn=0/16B3748
 */
#ifndef WALCAST_STATE_H
#define WALCAST_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct wc_slot_state {
        char system_id[32];
        uint32_t timeline;
        char database[64];
        char slot[64];
        wc_lsn confirmed;
};

/* "DIR/SLOT.state".  0 or -ENAMETOOLONG. */
int wc_state_path(const char *dir, const char *slot, char *buf, size_t len);

/* A file of the slot beside its state file: "DIR/SLOT" + suffix from
 * state_path "DIR/SLOT.state".  0, or -EINVAL (not such a path) or
 * -ENAMETOOLONG with buf "". */
int wc_state_sibling(const char *state_path, const char *suffix, char *buf,
                     size_t len);

/* 1 with *ret filled, 0 when there is no file, <0 with a message naming
 * the file (unreadable, malformed, a symbolic link: never followed, or
 * not a regular file). */
int wc_state_read(const char *path, struct wc_slot_state *ret, char *errbuf,
                  size_t errlen);

/* Replaces the file atomically: a temporary file (PATH.tmp: one left by
 * a crash, or a symbolic link put there, is removed, and the new one is
 * created with O_EXCL), fsync, rename, fsync of the directory.  0 or <0
 * with a message. */
int wc_state_write(const char *path, const struct wc_slot_state *st,
                   char *errbuf, size_t errlen);

/* 0 also when there was no file. */
int wc_state_remove(const char *path, char *errbuf, size_t errlen);

enum wc_slot_verdict {
        WC_SLOT_FIRST,        /* no state: nothing was confirmed before */
        WC_SLOT_SAME,         /* the slot walcast confirmed positions on */
        WC_SLOT_VANISHED,     /* the slot is gone */
        WC_SLOT_MOVED,        /* ahead of what walcast confirmed */
        WC_SLOT_OTHER_SERVER, /* another system identifier */
};

/*
 * Compares the state with what the server says: its system identifier,
 * whether the slot exists and its confirmed_flush_lsn.  Anything but
 * FIRST and SAME comes with a message saying what happened and that
 * changes may have been lost.
 */
enum wc_slot_verdict wc_state_check(const struct wc_slot_state *saved,
                                    const char *system_id, bool slot_exists,
                                    wc_lsn slot_confirmed, char *errbuf,
                                    size_t errlen);

/* What a state file must agree with besides the slot's fate. */
struct wc_state_expect {
        const char *slot;      /* source.slot */
        const char *system_id; /* the server's */
        const char *database;  /* the database the connection is to */
        /* the server's current WAL position (IDENTIFY_SYSTEM's xlogpos),
         * or the slot's confirmed position when that is later */
        wc_lsn server_lsn;
};

/*
 * Is the state file at path (read into saved) one for this slot, database
 * and server history?  0 when it is, or when it is another server's
 * (wc_state_check() says so).  Another slot recorded (a copied, renamed
 * or edited file) is damage: -ESTALE.  Another database of the same
 * server is a configuration mistake: -EEXIST.  A confirmed position
 * beyond the server's current one was never confirmed there (damage, or
 * a server restored to an earlier point): -ESTALE.  Each with a message
 * saying what to do.
 */
int wc_state_match(const struct wc_slot_state *saved, const char *path,
                   const struct wc_state_expect *x, char *errbuf,
                   size_t errlen);

#endif
