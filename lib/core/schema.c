/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "core/core.h"

static const char *const op_names[WC_OP__COUNT] = {
    [WC_OP_BEGIN] = "begin",     [WC_OP_COMMIT] = "commit",
    [WC_OP_INSERT] = "insert",   [WC_OP_UPDATE] = "update",
    [WC_OP_DELETE] = "delete",   [WC_OP_TRUNCATE] = "truncate",
    [WC_OP_MESSAGE] = "message", [WC_OP_READ] = "read",
};

const char *wc_op_name(enum wc_op op)
{
        if ((unsigned)op >= WC_OP__COUNT)
                return NULL;
        return op_names[op];
}

int wc_op_parse(const char *name, enum wc_op *ret_op)
{
        for (unsigned i = 0; i < WC_OP__COUNT; i++) {
                if (strcmp(op_names[i], name) == 0) {
                        *ret_op = (enum wc_op)i;
                        return 0;
                }
        }
        return -EINVAL;
}

void wc_schema_split(const char *schema, size_t len, struct wc_str *ret_ns,
                     struct wc_str *ret_tenant)
{
        const char *dash = memchr(schema, '-', len);

        if (!dash) {
                *ret_ns = (struct wc_str){schema, len};
                *ret_tenant = (struct wc_str){schema + len, 0};
                return;
        }
        *ret_ns = (struct wc_str){schema, (size_t)(dash - schema)};
        *ret_tenant =
            (struct wc_str){dash + 1, len - (size_t)(dash - schema) - 1};
}
