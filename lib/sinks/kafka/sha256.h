/* SPDX-License-Identifier: MIT */
/* SHA-256 (FIPS 180-4), for columns.mask: no library for 100 lines. */
#ifndef WALCAST_SINKS_KAFKA_SHA256_H
#define WALCAST_SINKS_KAFKA_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct wc_sha256 {
        uint32_t h[8];
        uint64_t len; /* bytes so far */
        unsigned char block[64];
        size_t fill;
};

void wc_sha256_init(struct wc_sha256 *c);
void wc_sha256_update(struct wc_sha256 *c, const void *p, size_t n);
void wc_sha256_final(struct wc_sha256 *c, unsigned char out[32]);
/* The digest as 64 lowercase hex digits, not NUL-terminated. */
void wc_sha256_hex(struct wc_sha256 *c, char out[64]);

#endif
