/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the wal2json decoder: any bytes must decode or be
 * refused with -EBADMSG and a message, never crash, overrun or leak; and
 * the decoder that has seen every earlier input (with its remembered
 * column entries) must decode them as a new decoder does.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "change_diff.h"
#include "decode/decoder.h"
#include "decode/wal2json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* what the checks read, kept so they are not optimized away */
static volatile size_t sink;

/* Every column's strings and value are readable (the value is in the
 * message, or in the decoder's corrected copy of it for wal2json's
 * unescaped type names): touch them all so ASan sees any bad pointer. */
static size_t touch(const struct walcast_columns *l)
{
        size_t sum = 0;

        for (size_t i = 0; i < l->count; i++) {
                const struct walcast_column *c = &l->items[i];

                if (strlen(c->name) != c->name_len ||
                    strlen(c->type) != c->type_len)
                        abort();
                for (size_t k = 0; k < c->value_len; k++)
                        sum += (unsigned char)c->value[k];
        }
        return sum;
}

/* A list's text as sent, when the decoder hands it on, is inside the
 * message and a list. */
static void check_json(struct wc_str json, const char *msg, size_t len)
{
        if (!json.ptr) {
                if (json.len)
                        abort();
                return;
        }
        if (json.len < 2 || json.ptr[0] != '[' || json.ptr[json.len - 1] != ']')
                abort();
        /* outside the message only in a corrected copy: read it */
        if (json.ptr < msg || json.ptr + json.len > msg + len)
                for (size_t k = 0; k < json.len; k++)
                        sink += (unsigned char)json.ptr[k];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* one decoder for the whole run, as the daemon has: state left
         * behind by one input must not hurt the next */
        static struct wc_decoder *d;
        struct wc_decoder *fresh;
        const struct wc_change *ch = NULL, *fch = NULL;
        char err[512], ferr[512];
        char *msg, *fmsg;
        int r, fr;

        if (!d)
                d = wc_decoder_new(&wc_wal2json);
        if (!d)
                abort();
        /* an exact-size heap copy: ASan catches a read or write past it */
        msg = malloc(size ? size : 1);
        fmsg = malloc(size ? size : 1);
        fresh = wc_decoder_new(&wc_wal2json);
        if (!msg || !fmsg || !fresh)
                abort();
        /* and the other string scanner, where there are two */
        wc_wal2json_set_avx2(fresh, false);
        memcpy(msg, data, size);
        memcpy(fmsg, data, size);
        err[0] = ferr[0] = '\0';
        r = wc_decoder_decode(d, msg, size, 0x1547700, &ch, err, sizeof(err));
        fr = wc_decoder_decode(fresh, fmsg, size, 0x1547700, &fch, ferr,
                               sizeof(ferr));
        if (r != fr || strcmp(err, ferr) != 0 ||
            (r == 0 && change_diff(ch, msg, fch, fmsg)))
                abort();
        /* the message is never modified, whatever happened */
        if (size && memcmp(msg, data, size) != 0)
                abort();
        if (r == 0) {
                if (!ch)
                        abort();
                if (ch->schema && strlen(ch->schema) != ch->schema_len)
                        abort();
                if (ch->table && strlen(ch->table) != ch->table_len)
                        abort();
                if (ch->prefix && strlen(ch->prefix) != ch->prefix_len)
                        abort();
                sink += touch(&ch->columns);
                sink += touch(&ch->identity);
                sink += touch(&ch->pk);
                check_json(ch->columns_json, msg, size);
                check_json(ch->identity_json, msg, size);
                check_json(ch->pk_json, msg, size);
        } else {
                if (r != -EBADMSG && r != -ENOMEM)
                        abort();
                /* what a filter would be asked about it */
                if (r == -EBADMSG &&
                    wc_decoder_relation(d, msg, size, &ch) == 0) {
                        if (!ch->schema || !ch->table ||
                            strlen(ch->schema) != ch->schema_len ||
                            strlen(ch->table) != ch->table_len)
                                abort();
                        ch = NULL;
                }
                if (ch != NULL ||
                    strncmp(err,
                            "could not decode wal2json message at 0/1547700: ",
                            48) != 0)
                        abort();
        }
        wc_decoder_free(fresh);
        free(fmsg);
        free(msg);
        return 0;
}
