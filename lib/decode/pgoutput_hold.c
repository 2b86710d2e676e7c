/* SPDX-License-Identifier: MIT */
/*
 * Holding a pgoutput transaction until its Commit (pgoutput.h): the
 * messages, each framed as its position, its length and its bytes, in
 * memory up to WC_PGOUTPUT_HOLD_MEMORY and in an unlinked temporary file
 * after that, so that memory does not grow with the transaction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/pgoutput.h"

/* stdio's buffer for the temporary file */
#define SPILL_BUFFER (1u << 20)

struct wc_pgoutput_hold {
        bool holding;
        struct wc_buf mem;
        FILE *spill;
        size_t spilled; /* bytes in spill */
        size_t limit;
        /* replay */
        bool replaying;
        size_t at_mem;
        struct wc_buf one; /* a message read back from spill */
};

struct frame {
        wc_lsn at;
        uint64_t len;
};

struct wc_pgoutput_hold *wc_pgoutput_hold_new(size_t memory)
{
        struct wc_pgoutput_hold *h = calloc(1, sizeof(*h));

        if (h)
                h->limit = memory;
        return h;
}

void wc_pgoutput_hold_reset(struct wc_pgoutput_hold *h)
{
        h->holding = h->replaying = false;
        h->at_mem = 0;
        wc_buf_reset(&h->mem);
        if (h->spill) {
                fclose(h->spill);
                h->spill = NULL;
        }
        h->spilled = 0;
        /* a huge transaction's buffer is not kept */
        if (h->mem.cap > h->limit) {
                wc_buf_free(&h->mem);
                wc_buf_init(&h->mem);
        }
}

bool wc_pgoutput_hold_holding(const struct wc_pgoutput_hold *h)
{
        return h->holding;
}

bool wc_pgoutput_hold_replaying(const struct wc_pgoutput_hold *h)
{
        return h->replaying;
}

void wc_pgoutput_hold_free(struct wc_pgoutput_hold *h)
{
        if (!h)
                return;
        wc_pgoutput_hold_reset(h);
        wc_buf_free(&h->mem);
        wc_buf_free(&h->one);
        free(h);
}

static int put(struct wc_pgoutput_hold *h, const char *msg, size_t len,
               wc_lsn at)
{
        struct frame f = {at, len};

        if (!h->spill && h->mem.len + sizeof(f) + len > h->limit) {
                h->spill = tmpfile();
                if (!h->spill)
                        return -errno;
                /* few system calls for many small messages */
                setvbuf(h->spill, NULL, _IOFBF, SPILL_BUFFER);
        }
        if (h->spill) {
                if (fwrite(&f, sizeof(f), 1, h->spill) != 1 ||
                    (len && fwrite(msg, len, 1, h->spill) != 1))
                        return -EIO;
                h->spilled += sizeof(f) + len;
                return 0;
        }
        if (wc_buf_append(&h->mem, &f, sizeof(f)) < 0 ||
            wc_buf_append(&h->mem, msg, len) < 0)
                return -ENOMEM;
        return 0;
}

int wc_pgoutput_hold_add(struct wc_pgoutput_hold *h, const char *msg,
                         size_t len, wc_lsn at, wc_lsn *ret_end)
{
        int r;

        if (len == 0)
                return 0;
        if (!h->holding) {
                if (msg[0] != 'B')
                        return 0; /* outside a transaction: at once */
                h->holding = true;
        }
        if (msg[0] == 'C') {
                /* Int8 flags, Int64 commit LSN, Int64 end LSN, ...; one of
                 * another length has no end: the decoder refuses it, in
                 * its place */
                wc_lsn end = 0;

                for (int i = 0; len == 26 && i < 8; i++)
                        end = end << 8 | (unsigned char)msg[10 + i];
                *ret_end = len == 26 ? end : WC_LSN_INVALID;
                /* the Commit is handed on last, like the others */
                r = put(h, msg, len, at);
                if (r < 0)
                        return r;
                h->holding = false;
                h->replaying = true;
                h->at_mem = 0;
                if (h->spill && fseek(h->spill, 0, SEEK_SET) != 0)
                        return -errno;
                return 2;
        }
        r = put(h, msg, len, at);
        return r < 0 ? r : 1;
}

int wc_pgoutput_hold_next(struct wc_pgoutput_hold *h, char **ret_msg,
                          size_t *ret_len, wc_lsn *ret_at)
{
        struct frame f;

        if (!h->replaying)
                return 0;
        if (h->at_mem < h->mem.len) {
                memcpy(&f, h->mem.data + h->at_mem, sizeof(f));
                *ret_msg = h->mem.data + h->at_mem + sizeof(f);
                *ret_len = (size_t)f.len;
                *ret_at = f.at;
                h->at_mem += sizeof(f) + (size_t)f.len;
                return 1;
        }
        if (h->spill && h->spilled) {
                if (fread(&f, sizeof(f), 1, h->spill) != 1)
                        return -EIO;
                wc_buf_reset(&h->one);
                if (wc_buf_reserve(&h->one, (size_t)f.len + 1) < 0)
                        return -ENOMEM;
                if (f.len &&
                    fread(h->one.data, (size_t)f.len, 1, h->spill) != 1)
                        return -EIO;
                h->spilled -= sizeof(f) + (size_t)f.len;
                *ret_msg = h->one.data;
                *ret_len = (size_t)f.len;
                *ret_at = f.at;
                return 1;
        }
        wc_pgoutput_hold_reset(h);
        return 0;
}
