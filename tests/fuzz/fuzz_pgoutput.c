/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the pgoutput decoder.  An input is a run of
 * messages, each a 2-byte big-endian length and the message
 * (tests/data/pgoutput/seeds.py), decoded in order by one decoder: the
 * decoder keeps Relation messages between messages, so a run reaches the
 * changes.  Any bytes must decode or be refused with -EBADMSG and a
 * message naming the position, never crash, overrun or leak, and never
 * modify the message.  The catalog answers every type and primary-key
 * question as a fake would.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/decoder.h"
#include "decode/pgoutput.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static int cat_type(void *ud, uint32_t oid, int32_t typmod, struct wc_buf *out,
                    char *errbuf, size_t errlen)
{
        (void)ud;
        if (oid % 7 == 0) {
                snprintf(errbuf, errlen, "no type %u", oid);
                return -ENOENT;
        }
        return wc_buf_printf(out, "public.t%u_%d", oid, typmod);
}

static int cat_pk(void *ud, uint32_t relid, struct wc_buf *out, char *errbuf,
                  size_t errlen)
{
        (void)ud;
        (void)errbuf;
        (void)errlen;
        /* some names, some of which a relation may have */
        if (relid % 3 == 0)
                return 0;
        return wc_buf_append(out, "a\0id\0", 5);
}

static size_t touch(const struct walcast_columns *l, bool values)
{
        size_t sum = 0;

        for (size_t i = 0; i < l->count; i++) {
                const struct walcast_column *c = &l->items[i];

                if (strlen(c->name) != c->name_len ||
                    strlen(c->type) != c->type_len)
                        abort();
                if (values && (!c->value || c->value_len == 0))
                        abort();
                for (size_t k = 0; k < c->value_len; k++)
                        sum += (unsigned char)c->value[k];
        }
        return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct wc_decoder *d = wc_decoder_new(&wc_pgoutput);
        struct wc_pgoutput_catalog cat = {NULL, cat_type, cat_pk};
        size_t at = 0;

        if (!d)
                abort();
        wc_pgoutput_set_catalog(d, &cat);
        while (size - at >= 2) {
                size_t n = (size_t)data[at] << 8 | data[at + 1];
                const struct wc_change *ch = NULL;
                char err[512];
                char *msg;
                int r;

                at += 2;
                if (n > size - at)
                        n = size - at;
                /* an exact-size heap copy: ASan catches a read past it */
                msg = malloc(n ? n : 1);
                if (!msg)
                        abort();
                memcpy(msg, data + at, n);
                err[0] = '\0';
                r = wc_decoder_decode(d, msg, n, 0x1547700, &ch, err,
                                      sizeof(err));
                if (n && memcmp(msg, data + at, n) != 0)
                        abort();
                if (r == 0 && ch) {
                        do {
                                if (ch->schema &&
                                    strlen(ch->schema) != ch->schema_len)
                                        abort();
                                if (ch->table &&
                                    strlen(ch->table) != ch->table_len)
                                        abort();
                                if (ch->prefix &&
                                    strlen(ch->prefix) != ch->prefix_len)
                                        abort();
                                sink += touch(&ch->columns, true);
                                sink += touch(&ch->identity, true);
                                sink += touch(&ch->pk, false);
                                sink += touch(&ch->missing, false);
                                for (size_t k = 0; k < ch->content.len; k++)
                                        sink +=
                                            (unsigned char)ch->content.ptr[k];
                        } while (wc_decoder_next(d, &ch) == 1);
                } else if (r < 0) {
                        if (r != -EBADMSG && r != -ENOENT && r != -ENOMEM)
                                abort();
                        if (!strstr(err, "at 0/1547700"))
                                abort();
                        if (r == -EBADMSG &&
                            wc_decoder_relation(d, msg, n, &ch) == 0 &&
                            (!ch->schema || !ch->table))
                                abort();
                }
                free(msg);
                at += n;
        }
        wc_decoder_free(d);
        return 0;
}
