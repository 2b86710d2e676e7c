/* SPDX-License-Identifier: MIT */
/*
 * The decoder interface's dispatch and its option lists.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decode/decoder.h"

struct wc_decoder *wc_decoder_new(const struct wc_decoder_ops *ops)
{
        struct wc_decoder *d = ops->create();

        if (d)
                d->ops = ops;
        return d;
}

void wc_decoder_free(struct wc_decoder *d)
{
        if (d)
                d->ops->destroy(d);
}

int wc_decoder_decode(struct wc_decoder *d, char *msg, size_t len, wc_lsn at,
                      const struct wc_change **ret_change, char *errbuf,
                      size_t errlen)
{
        return d->ops->decode(d, msg, len, at, ret_change, errbuf, errlen);
}

int wc_decoder_relation(struct wc_decoder *d, char *msg, size_t len,
                        const struct wc_change **ret_change)
{
        if (!d->ops->relation)
                return -EBADMSG;
        return d->ops->relation(d, msg, len, ret_change);
}

int wc_decoder_next(struct wc_decoder *d, const struct wc_change **ret_change)
{
        if (!d->ops->next)
                return 0;
        return d->ops->next(d, ret_change);
}

void wc_decoder_options_init(struct wc_decoder_options *o)
{
        memset(o, 0, sizeof(*o));
}

void wc_decoder_options_free(struct wc_decoder_options *o)
{
        if (!o)
                return;
        for (size_t i = 0; i < o->n_owned; i++)
                free(o->owned[i]);
        wc_decoder_options_init(o);
}

int wc_decoder_options_add(struct wc_decoder_options *o, const char *key,
                           const char *value, size_t len)
{
        char *copy;

        if (o->n == WC_DECODER_OPTIONS_MAX)
                return -E2BIG;
        copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, value, len);
        copy[len] = '\0';
        o->owned[o->n_owned++] = copy;
        o->kv[2 * o->n] = key;
        o->kv[2 * o->n + 1] = copy;
        o->n++;
        o->kv[2 * o->n] = NULL;
        return 0;
}

int wc_decoder_options_same(const struct wc_decoder_ops *ops,
                            const struct wc_filter_config *a,
                            const struct wc_filter_config *b)
{
        struct wc_decoder_options x, y;
        int r;

        wc_decoder_options_init(&x);
        wc_decoder_options_init(&y);
        r = ops->options(a, &x);
        if (r == 0)
                r = ops->options(b, &y);
        if (r == 0) {
                r = x.n == y.n ? 1 : 0;
                for (size_t i = 0; r == 1 && i < 2 * x.n; i++)
                        if (strcmp(x.kv[i], y.kv[i]) != 0)
                                r = 0;
        }
        wc_decoder_options_free(&x);
        wc_decoder_options_free(&y);
        return r;
}
