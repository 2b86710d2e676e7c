/* SPDX-License-Identifier: MIT */
/*
 * The slot guard: holds a (re)start to the slot the state file recorded.
 * A slot that vanished, was recreated or moved, or a server that is
 * another one, is refused (or, with source.on_slot_lost: recreate,
 * accepted); then the slot as it is now is recorded in the state file.
 *
 * The guard decides and words the refusal; opening the stream, dropping a
 * slot and logging are the caller's (lib/ does not log).
 */
#ifndef WALCAST_GUARD_H
#define WALCAST_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint/state.h"
#include "core/core.h"

/* What a (re)start is held to.  Everything is borrowed for the call. */
struct wc_guard {
        const char *slot;
        /* named in a refusal's remedy (`walcast slot create --force -c
         * FILE`); NULL: "CONFIG" */
        const char *config_path;
        /* the state file, to record the slot in; NULL or "": none */
        const char *state_path;
        /* what the state file recorded; NULL: nothing (or not guarded) */
        const struct wc_slot_state *saved;
        bool accept;      /* source.on_slot_lost: recreate */
        bool create;      /* a missing slot may be created */
        bool had_slot;    /* a reconnect: this process streamed from it */
        wc_lsn confirmed; /* had_slot: the position confirmed on it */
};

/* What the server said when the stream opened (IDENTIFY_SYSTEM and the
 * slot's row). */
struct wc_guard_server {
        const char *system_id;
        uint32_t timeline;
        const char *database;
        wc_lsn xlogpos;
        wc_lsn slot_confirmed;
        bool slot_created; /* the open created the slot */
};

/* May the stream's open create a missing slot?  Never a new slot in
 * place of one changes were confirmed on, unless that is accepted. */
bool wc_guard_may_create(const struct wc_guard *g);

/* Refuses to go on where changes may have been lost, saying how to
 * accept it: -ESTALE (exit 69) with `why` and the remedy in errbuf. */
int wc_guard_refuse(const struct wc_guard *g, const char *why, char *errbuf,
                    size_t errlen);

/*
 * The verdict on an open: r is the open's result (0, -ENOENT for a
 * missing slot, another error is returned as it is with errbuf left
 * alone); `dropped`: a lost slot was dropped and created anew because
 * on_slot_lost is recreate.  srv is needed for r 0 and -ENOENT.
 * 0 (*ret_verdict FIRST or SAME, or what on_slot_lost: recreate accepted
 * where nothing was guarded), 1 (accepted by on_slot_lost: recreate
 * although changes may have been lost: errbuf says what happened, for a
 * warning), or <0 refused with a message: -ESTALE (exit 69), -EEXIST (a
 * configuration mistake).
 */
int wc_guard_verdict(const struct wc_guard *g, int r, bool dropped,
                     const struct wc_guard_server *srv,
                     enum wc_slot_verdict *ret_verdict, char *errbuf,
                     size_t errlen);

/*
 * Records the slot as it is now (after a verdict v that let it go on) in
 * the state file: the one to hold on to.  0 when the file already says
 * so (or there is none), 1 with *ret_state written, <0 with a message:
 * -EEXIST, the state directory cannot be written (a configuration
 * matter).
 */
int wc_guard_record_state(const struct wc_guard *g,
                          const struct wc_guard_server *srv,
                          enum wc_slot_verdict v,
                          struct wc_slot_state *ret_state, char *errbuf,
                          size_t errlen);

/* Records slot at position `confirmed` of server srv in the state file at
 * path, as walcastd does at its first start (`walcast slot create`).
 * 0 or <0 with a message. */
int wc_guard_record(const char *path, const char *slot,
                    const struct wc_guard_server *srv, wc_lsn confirmed,
                    char *errbuf, size_t errlen);

#endif
