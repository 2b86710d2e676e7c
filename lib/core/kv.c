/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "core/kv.h"

const char *wc_kv_get(const struct wc_kv *kv, size_t n, const char *key)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(kv[i].key, key) == 0)
                        return kv[i].value;
        return NULL;
}

void wc_kv_free(struct wc_kv *kv, size_t n)
{
        for (size_t i = 0; kv && i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
        }
        free(kv);
}
