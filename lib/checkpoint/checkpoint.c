/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "checkpoint/checkpoint.h"

struct entry {
        wc_lsn end_lsn;
        unsigned pending;
        uint64_t changes, bytes; /* its load, while pending */
};

struct wc_checkpoint {
        struct entry *ring; /* capacity is a power of two */
        size_t cap;
        uint64_t head; /* id of the oldest entry */
        uint64_t tail; /* id the next entry gets */
        wc_lsn confirmed;
        uint64_t changes, bytes; /* the load of every pending entry */
};

struct wc_checkpoint *wc_checkpoint_new(wc_lsn confirmed)
{
        struct wc_checkpoint *cp = calloc(1, sizeof(*cp));

        if (!cp)
                return NULL;
        cp->cap = 64;
        cp->ring = calloc(cp->cap, sizeof(*cp->ring));
        if (!cp->ring) {
                free(cp);
                return NULL;
        }
        cp->confirmed = confirmed;
        return cp;
}

void wc_checkpoint_free(struct wc_checkpoint *cp)
{
        if (!cp)
                return;
        free(cp->ring);
        free(cp);
}

static struct entry *slot(const struct wc_checkpoint *cp, uint64_t id)
{
        return &cp->ring[id & (cp->cap - 1)];
}

static int grow(struct wc_checkpoint *cp)
{
        size_t cap = cp->cap * 2;
        struct entry *ring = calloc(cap, sizeof(*ring));

        if (!ring)
                return -ENOMEM;
        for (uint64_t id = cp->head; id < cp->tail; id++)
                ring[id & (cap - 1)] = *slot(cp, id);
        free(cp->ring);
        cp->ring = ring;
        cp->cap = cap;
        return 0;
}

/* Pops every complete entry at the head, moving the position. */
static void settle(struct wc_checkpoint *cp)
{
        while (cp->head < cp->tail) {
                const struct entry *e = slot(cp, cp->head);
                if (e->pending > 0)
                        break;
                if (e->end_lsn > cp->confirmed)
                        cp->confirmed = e->end_lsn;
                cp->head++;
        }
}

int wc_checkpoint_add(struct wc_checkpoint *cp, wc_lsn end_lsn, unsigned acks,
                      uint64_t *ret_id)
{
        uint64_t id;

        if (cp->tail - cp->head == cp->cap) {
                int r = grow(cp);
                if (r < 0)
                        return r;
        }
        id = cp->tail++;
        *slot(cp, id) = (struct entry){.end_lsn = end_lsn, .pending = acks};
        settle(cp);
        *ret_id = id;
        return 0;
}

int wc_checkpoint_ack(struct wc_checkpoint *cp, uint64_t id)
{
        struct entry *e;

        if (id < cp->head || id >= cp->tail)
                return -ENOENT;
        e = slot(cp, id);
        if (e->pending == 0)
                return -EINVAL;
        if (--e->pending == 0) {
                cp->changes -= e->changes;
                cp->bytes -= e->bytes;
        }
        settle(cp);
        return 0;
}

int wc_checkpoint_set_end(struct wc_checkpoint *cp, uint64_t id, wc_lsn end_lsn)
{
        if (id >= cp->tail)
                return -ENOENT;
        if (id < cp->head) {
                /* complete already (no sink to acknowledge it), and so is
                 * every earlier entry */
                if (end_lsn > cp->confirmed)
                        cp->confirmed = end_lsn;
                return 0;
        }
        slot(cp, id)->end_lsn = end_lsn;
        settle(cp);
        return 0;
}

int wc_checkpoint_set_load(struct wc_checkpoint *cp, uint64_t id,
                           uint64_t changes, uint64_t bytes)
{
        struct entry *e;

        if (id < cp->head || id >= cp->tail)
                return -ENOENT;
        e = slot(cp, id);
        if (e->pending == 0)
                return 0; /* already done: it holds nothing */
        cp->changes += changes - e->changes;
        cp->bytes += bytes - e->bytes;
        e->changes = changes;
        e->bytes = bytes;
        return 0;
}

void wc_checkpoint_load(const struct wc_checkpoint *cp, uint64_t *ret_changes,
                        uint64_t *ret_bytes)
{
        *ret_changes = cp->changes;
        *ret_bytes = cp->bytes;
}

void wc_checkpoint_idle_advance(struct wc_checkpoint *cp, wc_lsn wal_end)
{
        if (cp->head == cp->tail && wal_end > cp->confirmed)
                cp->confirmed = wal_end;
}

void wc_checkpoint_reset(struct wc_checkpoint *cp)
{
        cp->head = cp->tail;
        cp->changes = 0;
        cp->bytes = 0;
}

wc_lsn wc_checkpoint_confirmed(const struct wc_checkpoint *cp)
{
        return cp->confirmed;
}

size_t wc_checkpoint_in_flight(const struct wc_checkpoint *cp)
{
        return (size_t)(cp->tail - cp->head);
}
