/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "checkpoint/guard.h"

bool wc_guard_may_create(const struct wc_guard *g)
{
        bool guarded = g->saved != NULL;

        return g->create && ((!guarded && !g->had_slot) || g->accept);
}

int wc_guard_refuse(const struct wc_guard *g, const char *why, char *errbuf,
                    size_t errlen)
{
        wc_errorf(errbuf, errlen,
                  "%s. walcastd will not go on from there by itself: to accept "
                  "this and continue from the slot as it is now, run `walcast "
                  "slot create --force -c %s`, or set source.on_slot_lost: "
                  "recreate",
                  why, g->config_path ? g->config_path : "CONFIG");
        return -ESTALE;
}

int wc_guard_verdict(const struct wc_guard *g, int r, bool dropped,
                     const struct wc_guard_server *srv,
                     enum wc_slot_verdict *ret_verdict, char *errbuf,
                     size_t errlen)
{
        bool guarded = g->saved != NULL;
        enum wc_slot_verdict v = dropped ? WC_SLOT_VANISHED : WC_SLOT_FIRST;
        char why[1024] = "";

        /* a state file of another slot or database, or from the future,
         * holds the slot to nothing: refused whatever on_slot_lost says */
        if (guarded && (r == 0 || r == -ENOENT)) {
                struct wc_state_expect x = {
                    .slot = g->slot,
                    .system_id = srv->system_id,
                    .database = srv->database,
                    .server_lsn = srv->xlogpos > srv->slot_confirmed
                                      ? srv->xlogpos
                                      : srv->slot_confirmed,
                };
                int m =
                    wc_state_match(g->saved, g->state_path, &x, errbuf, errlen);
                if (m < 0)
                        return m;
        }
        if (r == -ENOENT && guarded) {
                (void)wc_state_check(g->saved, srv->system_id, false, 0, why,
                                     sizeof(why));
                return wc_guard_refuse(g, why, errbuf, errlen);
        }
        if (r == -ENOENT && g->had_slot && g->create) {
                char a[WC_LSN_STRLEN];

                wc_errorf(why, sizeof(why),
                          "replication slot \"%s\" has vanished while "
                          "walcastd was running: it had confirmed changes up "
                          "to %s on it, and whatever was committed after that "
                          "and before a new slot is created will not be "
                          "delivered",
                          g->slot, wc_lsn_format(g->confirmed, a));
                return wc_guard_refuse(g, why, errbuf, errlen);
        }
        if (r < 0)
                return r;
        if (guarded && srv->slot_created)
                v = wc_state_check(g->saved, srv->system_id, false, 0, why,
                                   sizeof(why));
        else if (guarded)
                v = wc_state_check(g->saved, srv->system_id, true,
                                   srv->slot_confirmed, why, sizeof(why));
        if (v != WC_SLOT_FIRST && v != WC_SLOT_SAME) {
                if (!g->accept)
                        return wc_guard_refuse(g, why, errbuf, errlen);
                if (guarded) {
                        wc_errorf(errbuf, errlen, "%s", why);
                        *ret_verdict = v;
                        return 1;
                }
        }
        *ret_verdict = v;
        return 0;
}

static void state_of(struct wc_slot_state *st, const char *slot,
                     const struct wc_guard_server *srv, wc_lsn confirmed)
{
        memset(st, 0, sizeof(*st));
        snprintf(st->system_id, sizeof(st->system_id), "%s", srv->system_id);
        st->timeline = srv->timeline;
        snprintf(st->database, sizeof(st->database), "%s", srv->database);
        snprintf(st->slot, sizeof(st->slot), "%s", slot);
        st->confirmed = confirmed;
}

static bool same_state(const struct wc_slot_state *a,
                       const struct wc_slot_state *b)
{
        return strcmp(a->system_id, b->system_id) == 0 &&
               a->timeline == b->timeline &&
               strcmp(a->database, b->database) == 0 &&
               strcmp(a->slot, b->slot) == 0 && a->confirmed == b->confirmed;
}

int wc_guard_record_state(const struct wc_guard *g,
                          const struct wc_guard_server *srv,
                          enum wc_slot_verdict v,
                          struct wc_slot_state *ret_state, char *errbuf,
                          size_t errlen)
{
        struct wc_slot_state st;
        char err[1024];
        bool same = v == WC_SLOT_SAME && g->saved;

        if (!g->state_path || !g->state_path[0])
                return 0;

        /* the slot as it is now is the one to hold on to */
        state_of(&st, g->slot, srv, srv->slot_confirmed);
        if (same && g->saved->confirmed > st.confirmed)
                st.confirmed = g->saved->confirmed; /* a status was lost */
        if (same && same_state(&st, g->saved))
                return 0;
        if (wc_state_write(g->state_path, &st, err, sizeof(err)) < 0)
                return wc_fail(errbuf, errlen,
                               -EEXIST, /* exit 78: a configuration matter */
                               "%s; state_dir must be a writable directory: "
                               "walcast records there which slot it confirms "
                               "positions on",
                               err);
        *ret_state = st;
        return 1;
}

int wc_guard_record(const char *path, const char *slot,
                    const struct wc_guard_server *srv, wc_lsn confirmed,
                    char *errbuf, size_t errlen)
{
        struct wc_slot_state state;

        state_of(&state, slot, srv, confirmed);
        return wc_state_write(path, &state, errbuf, errlen);
}
