/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tablemap.h"

struct entry {
        char *key; /* "schema\0table\0"; NULL when the slot is empty */
        size_t slen, tlen;
        uint64_t hash;
        void *value;
};

struct wc_tablemap {
        struct entry *slots;
        size_t cap; /* a power of two */
        size_t used;
        size_t max;
        void (*free_value)(void *);
};

#define HASH_MUL 0x9e3779b97f4a7c15ull

static inline uint64_t hash_word(uint64_t h, uint64_t w)
{
        h = (h ^ w) * HASH_MUL;
        return h ^ (h >> 32);
}

/* s[0..n) eight bytes at a time: names are hashed for every change. */
static uint64_t hash_part(uint64_t h, const char *s, size_t n)
{
        uint64_t w;
        size_t i = 0;

        for (; i + 8 <= n; i += 8) {
                memcpy(&w, s + i, 8);
                h = hash_word(h, w);
        }
        if (i < n) {
                if (n >= 8) {
                        /* the last eight bytes, overlapping the word before */
                        memcpy(&w, s + n - 8, 8);
                } else {
                        w = 0;
                        for (size_t j = 0; j < n; j++)
                                w = w << 8 | (unsigned char)s[j];
                }
                h = hash_word(h, w);
        }
        return h;
}

/* The lengths first, so that where schema ends and table begins counts. */
static uint64_t hash(const char *schema, size_t slen, const char *table,
                     size_t tlen)
{
        uint64_t h = hash_word(0xcbf29ce484222325ull,
                               (uint64_t)slen << 32 ^ (uint64_t)tlen);

        return hash_part(hash_part(h, schema, slen), table, tlen);
}

struct wc_tablemap *wc_tablemap_new(size_t max_entries,
                                    void (*free_value)(void *value))
{
        struct wc_tablemap *m = calloc(1, sizeof(*m));

        if (!m)
                return NULL;
        m->cap = 64;
        m->slots = calloc(m->cap, sizeof(*m->slots));
        if (!m->slots) {
                free(m);
                return NULL;
        }
        m->max = max_entries ? max_entries : 1;
        m->free_value = free_value;
        return m;
}

void wc_tablemap_clear(struct wc_tablemap *m)
{
        for (size_t i = 0; i < m->cap; i++) {
                struct entry *e = &m->slots[i];
                if (!e->key)
                        continue;
                if (m->free_value)
                        m->free_value(e->value);
                free(e->key);
                *e = (struct entry){0};
        }
        m->used = 0;
}

void wc_tablemap_free(struct wc_tablemap *m)
{
        if (!m)
                return;
        wc_tablemap_clear(m);
        free(m->slots);
        free(m);
}

size_t wc_tablemap_count(const struct wc_tablemap *m)
{
        return m->used;
}

static bool same(const struct entry *e, uint64_t h, const char *schema,
                 size_t slen, const char *table, size_t tlen)
{
        return e->hash == h && e->slen == slen && e->tlen == tlen &&
               memcmp(e->key, schema, slen) == 0 &&
               memcmp(e->key + slen + 1, table, tlen) == 0;
}

void *wc_tablemap_get(const struct wc_tablemap *m, const char *schema,
                      size_t slen, const char *table, size_t tlen)
{
        uint64_t h = hash(schema, slen, table, tlen);

        for (size_t j = h & (m->cap - 1); m->slots[j].key;
             j = (j + 1) & (m->cap - 1))
                if (same(&m->slots[j], h, schema, slen, table, tlen))
                        return m->slots[j].value;
        return NULL;
}

static void place(struct entry *slots, size_t cap, const struct entry *e)
{
        size_t j = e->hash & (cap - 1);

        while (slots[j].key)
                j = (j + 1) & (cap - 1);
        slots[j] = *e;
}

static int grow(struct wc_tablemap *m)
{
        size_t cap = m->cap * 2;
        struct entry *slots = calloc(cap, sizeof(*slots));

        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < m->cap; i++)
                if (m->slots[i].key)
                        place(slots, cap, &m->slots[i]);
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
        return 0;
}

int wc_tablemap_put(struct wc_tablemap *m, const char *schema, size_t slen,
                    const char *table, size_t tlen, void *value)
{
        struct entry e = {.slen = slen, .tlen = tlen, .value = value};

        if (m->used >= m->max)
                wc_tablemap_clear(m);
        if ((m->used + 1) * 4 > m->cap * 3 && grow(m) < 0)
                goto err_free_value;
        e.key = malloc(slen + tlen + 2);
        if (!e.key)
                goto err_free_value;
        memcpy(e.key, schema, slen);
        e.key[slen] = '\0';
        memcpy(e.key + slen + 1, table, tlen);
        e.key[slen + 1 + tlen] = '\0';
        e.hash = hash(schema, slen, table, tlen);
        place(m->slots, m->cap, &e);
        m->used++;
        return 0;

err_free_value:
        if (m->free_value)
                m->free_value(value);
        return -ENOMEM;
}
