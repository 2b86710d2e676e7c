/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bus/bus.h"
#include "config/config.h"
#include "plugin/plugin.h"

/* The descriptor as ABI 1.0 defines it: anything smaller is refused. */
#define DESCRIPTOR_MIN_SIZE                                                    \
        (offsetof(struct walcast_plugin_descriptor, reopen) +                  \
         sizeof(walcast_reopen_fn))

struct walcast_plugin {
        struct wc_plugin_host *host;
        char *name;
        void *dl; /* NULL for built-ins */
        const struct walcast_plugin_descriptor *d;
        void *state;
        bool initialized;
        bool in_init; /* connect is only allowed in init */
        bool has_commit;
        bool throttled;
        const struct wc_pattern_list *schemas;
        const struct wc_kv *config;
        size_t nconfig;
};

struct watch {
        struct walcast_plugin *p;
        int fd;
        uint32_t events;
        walcast_fd_fn fn;
        void *userdata;
};

struct wc_plugin_host {
        struct wc_bus *bus;
        struct wc_plugin_host_ops ops;
        struct walcast_plugin **plugins;
        size_t nplugins;
        struct watch *watches;
        size_t nwatches, capwatches;
        struct walcast_host api;
};

/* ---- the host API handed to plugins ---- */

static void api_log(struct walcast_plugin *self, int32_t level, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));

static void api_log(struct walcast_plugin *self, int32_t level, const char *fmt,
                    ...)
{
        char msg[2048];
        va_list ap;

        if (!self || !fmt)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (self->host->ops.log)
                self->host->ops.log(self->host->ops.ud, self->name, level, msg);
}

static int32_t api_connect(struct walcast_plugin *self, uint32_t kind,
                           const char *sender, const char *table,
                           walcast_handler_fn fn, void *userdata)
{
        if (!self || !self->in_init || !fn || kind >= WALCAST_SIG__COUNT)
                return WALCAST_ERROR;
        /* one acknowledgement per plugin and transaction: one handler */
        if (kind == WALCAST_SIG_COMMIT && self->has_commit)
                return WALCAST_ERROR;
        if (wc_bus_connect(self->host->bus, kind, sender, table, fn, userdata,
                           self, self->schemas) < 0)
                return WALCAST_ERROR;
        if (kind == WALCAST_SIG_COMMIT)
                self->has_commit = true;
        return WALCAST_OK;
}

static const char *api_config_get(struct walcast_plugin *self, const char *key)
{
        if (!self || !key)
                return NULL;
        return wc_kv_get(self->config, self->nconfig, key);
}

static int32_t api_ack(struct walcast_plugin *self, uint64_t txn_id,
                       int32_t status)
{
        if (!self || (status != WALCAST_OK && status != WALCAST_ERROR))
                return WALCAST_ERROR;
        self->host->ops.ack(self->host->ops.ud, self->name, txn_id, status);
        return WALCAST_OK;
}

static struct watch *find_watch(struct wc_plugin_host *h, int fd)
{
        for (size_t i = 0; i < h->nwatches; i++)
                if (h->watches[i].fd == fd)
                        return &h->watches[i];
        return NULL;
}

static int32_t api_watch_fd(struct walcast_plugin *self, int fd,
                            uint32_t events, walcast_fd_fn fn, void *userdata)
{
        struct wc_plugin_host *h;
        struct watch *w;

        if (!self || fd < 0 || !fn)
                return WALCAST_ERROR;
        h = self->host;
        w = find_watch(h, fd);
        if (w && w->p != self)
                return WALCAST_ERROR; /* another plugin's descriptor */
        if (!w) {
                if (h->nwatches == h->capwatches) {
                        size_t cap = h->capwatches ? h->capwatches * 2 : 8;
                        struct watch *p = realloc(h->watches, cap * sizeof(*p));
                        if (!p)
                                return WALCAST_ERROR;
                        h->watches = p;
                        h->capwatches = cap;
                }
                w = &h->watches[h->nwatches++];
        }
        *w = (struct watch){self, fd, events, fn, userdata};
        return WALCAST_OK;
}

static int32_t api_unwatch_fd(struct walcast_plugin *self, int fd)
{
        struct wc_plugin_host *h;
        struct watch *w;

        if (!self)
                return WALCAST_ERROR;
        h = self->host;
        w = find_watch(h, fd);
        if (!w || w->p != self)
                return WALCAST_ERROR;
        *w = h->watches[--h->nwatches];
        return WALCAST_OK;
}

static int32_t api_throttle(struct walcast_plugin *self, int32_t on)
{
        if (!self)
                return WALCAST_ERROR;
        self->throttled = on != 0;
        return WALCAST_OK;
}

bool wc_plugin_host_throttled(const struct wc_plugin_host *h)
{
        for (size_t i = 0; i < h->nplugins; i++)
                if (h->plugins[i]->throttled)
                        return true;
        return false;
}

/* ---- the host itself ---- */

struct wc_plugin_host *wc_plugin_host_new(struct wc_bus *bus,
                                          const struct wc_plugin_host_ops *ops)
{
        struct wc_plugin_host *h = calloc(1, sizeof(*h));

        if (!h)
                return NULL;
        h->bus = bus;
        h->ops = *ops;
        h->api = (struct walcast_host){
            .abi_major = WALCAST_ABI_MAJOR,
            .abi_minor = WALCAST_ABI_MINOR,
            .size = sizeof(struct walcast_host),
            .log = api_log,
            .connect = api_connect,
            .config_get = api_config_get,
            .ack = api_ack,
            .watch_fd = api_watch_fd,
            .unwatch_fd = api_unwatch_fd,
            .throttle = api_throttle,
        };
        return h;
}

static void plugin_free(struct walcast_plugin *p)
{
        struct wc_plugin_host *h;
        size_t j = 0;

        if (!p)
                return;
        h = p->host;
        if (p->initialized && p->d->close)
                p->d->close(p->state);
        /* nothing may call into a plugin that is gone */
        wc_bus_disconnect_owner(h->bus, p);
        for (size_t i = 0; i < h->nwatches; i++)
                if (h->watches[i].p != p)
                        h->watches[j++] = h->watches[i];
        h->nwatches = j;
        if (p->dl)
                dlclose(p->dl);
        free(p->name);
        free(p);
}

void wc_plugin_host_free(struct wc_plugin_host *h)
{
        if (!h)
                return;
        /* in reverse, like a stack of resources */
        for (size_t i = h->nplugins; i > 0; i--)
                plugin_free(h->plugins[i - 1]);
        free(h->plugins);
        free(h->watches);
        free(h);
}

int wc_plugin_host_name_last(struct wc_plugin_host *h, const char *name)
{
        char *copy;

        if (h->nplugins == 0)
                return -ENOENT;
        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        free(h->plugins[h->nplugins - 1]->name);
        h->plugins[h->nplugins - 1]->name = copy;
        return 0;
}

size_t wc_plugin_host_count(const struct wc_plugin_host *h)
{
        return h->nplugins;
}

const char *wc_plugin_owner_name(const void *owner)
{
        return owner ? ((const struct walcast_plugin *)owner)->name : "?";
}

/* Runs init and keeps the plugin; takes ownership of p. */
static int start_plugin(struct wc_plugin_host *h, struct walcast_plugin *p,
                        char *errbuf, size_t errlen)
{
        struct walcast_plugin **list;
        char perr[512] = "";
        int32_t r;

        list = realloc(h->plugins, (h->nplugins + 1) * sizeof(*list));
        if (!list) {
                plugin_free(p);
                wc_errorf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        h->plugins = list;
        p->in_init = true;
        r = p->d->init(&h->api, p, &p->state, perr, sizeof(perr));
        p->in_init = false;
        if (r != WALCAST_OK) {
                wc_errorf(errbuf, errlen, "plugin \"%s\" failed to start: %s",
                          p->name,
                          perr[0] ? perr : "its init returned an error");
                plugin_free(p);
                return -EINVAL;
        }
        p->initialized = true;
        h->plugins[h->nplugins++] = p;
        return 0;
}

static struct walcast_plugin *plugin_new(struct wc_plugin_host *h,
                                         const char *name,
                                         const struct wc_pattern_list *schemas,
                                         const struct wc_kv *config,
                                         size_t nconfig)
{
        struct walcast_plugin *p = calloc(1, sizeof(*p));

        if (!p)
                return NULL;
        p->name = strdup(name);
        if (!p->name) {
                free(p);
                return NULL;
        }
        p->host = h;
        p->schemas = schemas;
        p->config = config;
        p->nconfig = nconfig;
        return p;
}

int wc_plugin_host_add(struct wc_plugin_host *h, const char *name,
                       const struct walcast_plugin_descriptor *d,
                       const struct wc_pattern_list *schemas,
                       const struct wc_kv *config, size_t nconfig, char *errbuf,
                       size_t errlen)
{
        struct walcast_plugin *p =
            plugin_new(h, name, schemas, config, nconfig);

        if (!p) {
                wc_errorf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        p->d = d;
        return start_plugin(h, p, errbuf, errlen);
}

/* The daemon must not run code that others can change. */
static int check_permissions(const char *path, char *errbuf, size_t errlen)
{
        struct stat st;
        char *copy, *dir;
        int r = 0;

        if (stat(path, &st) < 0) {
                wc_errorf(errbuf, errlen, "plugin \"%s\": %s", path,
                          strerror(errno));
                return -errno;
        }
        if (!S_ISREG(st.st_mode)) {
                wc_errorf(errbuf, errlen, "plugin \"%s\" is not a regular file",
                          path);
                return -EINVAL;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                wc_errorf(errbuf, errlen,
                          "plugin \"%s\" is writable by group or others: "
                          "walcastd refuses to run code others can change; "
                          "run chmod go-w on it",
                          path);
                return -EPERM;
        }
        /* the directory that matters is the one holding the file itself,
         * not the one holding a symlink to it */
        copy = realpath(path, NULL);
        if (!copy) {
                wc_errorf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        dir = dirname(copy);
        if (stat(dir, &st) < 0) {
                wc_errorf(errbuf, errlen, "plugin directory \"%s\": %s", dir,
                          strerror(errno));
                r = -errno;
        } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                wc_errorf(errbuf, errlen,
                          "plugin \"%s\" is in directory \"%s\", which is "
                          "writable by group or others: walcastd refuses to "
                          "run code others can change; move the plugin or run "
                          "chmod go-w on the directory",
                          path, dir);
                r = -EPERM;
        }
        free(copy);
        return r;
}

/* Opens the shared object at path and checks it as far as that can be
 * done without starting it: everything wc_plugin_host_load() refuses
 * but a failing init.  0 with *ret_dl and *ret_d, or a negative errno. */
static int open_plugin(const char *path, void **ret_dl,
                       const struct walcast_plugin_descriptor **ret_d,
                       char *errbuf, size_t errlen)
{
        const struct walcast_plugin_descriptor *d;
        walcast_entry_fn entry;
        const char *err;
        void *dl;
        int r;

        if (path[0] != '/') {
                wc_errorf(errbuf, errlen, "plugin \"%s\": use an absolute path",
                          path);
                return -EINVAL;
        }
        r = check_permissions(path, errbuf, errlen);
        if (r < 0)
                return r;

        dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                err = dlerror();
                if (err && (strstr(err, "invalid ELF header") ||
                            strstr(err, "file too short") ||
                            strstr(err, "not an ELF")))
                        wc_errorf(errbuf, errlen,
                                  "plugin \"%s\" is not a shared object (%s)",
                                  path, err);
                else
                        wc_errorf(errbuf, errlen,
                                  "could not load plugin \"%s\": %s", path,
                                  err ? err : "unknown error");
                return -ENOEXEC;
        }
        dlerror();
        *(void **)&entry = dlsym(dl, WALCAST_PLUGIN_ENTRY_SYMBOL);
        if (!entry) {
                wc_errorf(errbuf, errlen,
                          "plugin \"%s\" does not export %s: define it with "
                          "WALCAST_PLUGIN_DEFINE from <walcast/plugin.h>",
                          path, WALCAST_PLUGIN_ENTRY_SYMBOL);
                r = -ENOEXEC;
                goto err_dlclose;
        }
        d = entry();
        if (!d) {
                wc_errorf(errbuf, errlen,
                          "plugin \"%s\": %s returned no descriptor", path,
                          WALCAST_PLUGIN_ENTRY_SYMBOL);
                r = -ENOEXEC;
                goto err_dlclose;
        }
        if (d->abi_major != WALCAST_ABI_MAJOR) {
                wc_errorf(errbuf, errlen,
                          "plugin \"%s\" was built for walcast plugin ABI %u, "
                          "this walcastd speaks ABI %u: rebuild it against "
                          "this version's <walcast/plugin.h>",
                          path, d->abi_major, WALCAST_ABI_MAJOR);
                r = -EPROTO;
                goto err_dlclose;
        }
        if (d->size < DESCRIPTOR_MIN_SIZE) {
                wc_errorf(
                    errbuf, errlen,
                    "plugin \"%s\" has a descriptor of %u bytes, ABI %u.0 "
                    "needs at least %zu: rebuild it against "
                    "<walcast/plugin.h>",
                    path, d->size, WALCAST_ABI_MAJOR, DESCRIPTOR_MIN_SIZE);
                r = -EPROTO;
                goto err_dlclose;
        }
        if (!d->init) {
                wc_errorf(errbuf, errlen, "plugin \"%s\" has no init function",
                          path);
                r = -EPROTO;
                goto err_dlclose;
        }
        *ret_dl = dl;
        *ret_d = d;
        return 0;

err_dlclose:
        dlclose(dl);
        return r;
}

int wc_plugin_check(const char *path, char *errbuf, size_t errlen)
{
        const struct walcast_plugin_descriptor *d;
        void *dl;
        int r = open_plugin(path, &dl, &d, errbuf, errlen);

        if (r == 0)
                dlclose(dl);
        return r;
}

int wc_plugin_host_load(struct wc_plugin_host *h, const char *path,
                        const struct wc_pattern_list *schemas,
                        const struct wc_kv *config, size_t nconfig,
                        char *errbuf, size_t errlen)
{
        const struct walcast_plugin_descriptor *d;
        struct walcast_plugin *p;
        void *dl;
        int r;

        r = open_plugin(path, &dl, &d, errbuf, errlen);
        if (r < 0)
                return r;
        p = plugin_new(h, path, schemas, config, nconfig);
        if (!p) {
                wc_errorf(errbuf, errlen, "out of memory");
                dlclose(dl);
                return -ENOMEM;
        }
        p->dl = dl;
        p->d = d;
        return start_plugin(h, p, errbuf, errlen);
}

struct commit_ctx {
        struct wc_plugin_host *h;
        const struct walcast_txn *txn;
};

static void on_commit_result(void *ud, void *owner, int32_t r)
{
        struct commit_ctx *c = ud;
        struct walcast_plugin *p = owner;

        if (r == WALCAST_OK)
                c->h->ops.ack(c->h->ops.ud, p->name, c->txn->id, WALCAST_OK);
}

int wc_plugin_host_commit(struct wc_plugin_host *h,
                          const struct walcast_txn *txn,
                          struct wc_bus_error *ret_err)
{
        struct commit_ctx c = {h, txn};
        int r = wc_bus_commit(h->bus, txn, on_commit_result, &c, ret_err);

        if (r < 0)
                return r;
        for (size_t i = 0; i < h->nplugins; i++)
                if (!h->plugins[i]->has_commit)
                        h->ops.ack(h->ops.ud, h->plugins[i]->name, txn->id,
                                   WALCAST_OK);
        return 0;
}

size_t wc_plugin_host_pollfds(const struct wc_plugin_host *h,
                              struct pollfd *pfds, size_t max)
{
        for (size_t i = 0; i < h->nwatches && i < max; i++)
                pfds[i] =
                    (struct pollfd){.fd = h->watches[i].fd,
                                    .events = (short)h->watches[i].events};
        return h->nwatches;
}

void wc_plugin_host_dispatch(struct wc_plugin_host *h,
                             const struct pollfd *pfds, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                struct watch *w;
                if (!pfds[i].revents)
                        continue;
                /* a callback may unwatch descriptors: look each one up */
                w = find_watch(h, pfds[i].fd);
                if (w)
                        w->fn(w->userdata, w->fd, (uint32_t)pfds[i].revents);
        }
}

void wc_plugin_host_reopen(struct wc_plugin_host *h)
{
        for (size_t i = 0; i < h->nplugins; i++)
                if (h->plugins[i]->d->reopen)
                        h->plugins[i]->d->reopen(h->plugins[i]->state);
}
