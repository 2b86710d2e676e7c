/* SPDX-License-Identifier: MIT */
/*
 * Which malloc walcastd runs on.
 *
 * Builds without sanitizers link mimalloc ahead of the C library
 * (WALCAST_MIMALLOC, see the top-level CMakeLists.txt), so that it takes
 * the place of malloc for every library in the process.  librdkafka makes
 * and frees half a dozen blocks for each Kafka message, a whole batch at
 * a time, and on that pattern glibc's malloc costs the Kafka sink 15-70 %
 * more CPU per change (bench/kafka.md has the figures).
 *
 * Whether the replacement took is a property of how the process was
 * linked and loaded (link order, LD_PRELOAD), so it is checked here on a
 * real block rather than assumed from the build.
 */
#include "malloc.h"

#include <gnu/libc-version.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef WALCAST_MIMALLOC
#include <mimalloc.h>

static bool malloc_is_mimalloc(void)
{
        void *p = malloc(64);
        bool yes = p && mi_is_in_heap_region(p);

        free(p);
        return yes;
}
#endif

void wc_malloc_describe(char *buf, size_t n)
{
        const char *preload = getenv("LD_PRELOAD");

#ifdef WALCAST_MIMALLOC
        if (malloc_is_mimalloc()) {
                int v = mi_version();

                snprintf(buf, n, "mimalloc %d.%d.%d", v / 100, v / 10 % 10,
                         v % 10);
                return;
        }
#endif
        if (preload && *preload)
                snprintf(buf, n, "glibc %s or LD_PRELOAD=%s",
                         gnu_get_libc_version(), preload);
        else
                snprintf(buf, n, "glibc %s", gnu_get_libc_version());
}
