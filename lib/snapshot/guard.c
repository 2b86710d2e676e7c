/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "snapshot/guard.h"

void wc_snap_guard_saw(struct wc_snap_guard *g, uint32_t xid)
{
        g->ring[g->ring_count % WC_SNAP_GUARD_RING] = xid;
        g->ring_count++;
}

void wc_snap_guard_keys_from_now(struct wc_snap_guard *g)
{
        uint64_t n = g->ring_count < WC_SNAP_GUARD_RING ? g->ring_count
                                                        : WC_SNAP_GUARD_RING;

        for (uint64_t i = 0; i < n; i++)
                g->before[i] =
                    g->ring[(g->ring_count - n + i) % WC_SNAP_GUARD_RING];
        g->nbefore = (size_t)n;
}

static void clear(struct wc_snap_guard *g)
{
        g->have = false;
        g->nxip = 0;
}

int wc_snap_guard_set(struct wc_snap_guard *g, const char *text)
{
        uint64_t *xip;
        char *end;
        size_t n = 0;

        /* the previous chunk's snapshot must never stand in for this one */
        clear(g);
        if (!text)
                return 0;
        g->xmin = strtoull(text, &end, 10);
        if (end == text || *end != ':')
                return -EBADMSG;
        text = end + 1;
        g->xmax = strtoull(text, &end, 10);
        if (end == text || *end != ':')
                return -EBADMSG;
        for (const char *p = end + 1; *p; p++)
                n += *p == ',';
        xip = realloc(g->xip, (n + 1) * sizeof(*xip));
        if (!xip)
                return -ENOMEM;
        g->xip = xip;
        for (const char *p = end + 1; *p;) {
                if (g->nxip > n)
                        return -EBADMSG;
                g->xip[g->nxip++] = strtoull(p, &end, 10);
                if (end == p || (*end && *end != ','))
                        return -EBADMSG;
                p = *end ? end + 1 : end;
        }
        g->have = true;
        return 0;
}

/* Is the stream's (32-bit) xid invisible to the snapshot?  The snapshot's
 * xids carry the epoch in their high half; the stream's do not, and
 * compare as PostgreSQL compares them, modulo 2^32. */
static bool invisible(const struct wc_snap_guard *g, uint32_t xid)
{
        /* no id (a decoder that did not give one), or a special one */
        if (xid < 3)
                return false;
        if ((int32_t)(xid - (uint32_t)g->xmax) >= 0)
                return true;
        for (size_t i = 0; i < g->nxip; i++)
                if ((uint32_t)g->xip[i] == xid)
                        return true;
        return false;
}

bool wc_snap_guard_torn(const struct wc_snap_guard *g)
{
        if (!g->have)
                return false;
        for (size_t i = 0; i < g->nbefore; i++)
                if (invisible(g, g->before[i]))
                        return true;
        return false;
}

void wc_snap_guard_free(struct wc_snap_guard *g)
{
        free(g->xip);
        g->xip = NULL;
        clear(g);
}
