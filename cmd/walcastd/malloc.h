/* SPDX-License-Identifier: MIT */
/* Which malloc walcastd runs on (see malloc.c). */
#ifndef WC_CMD_MALLOC_H
#define WC_CMD_MALLOC_H

#include <stddef.h>

/* Writes the allocator in use to buf, e.g. "mimalloc 2.0.9" or
 * "glibc 2.36", as found at run time rather than as configured. */
void wc_malloc_describe(char *buf, size_t n);

#endif
