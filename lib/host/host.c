/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/filter.h"
#include "core/kv.h"
#include "core/pattern.h"
#include "host/host.h"

/* The descriptor as ABI 1.0 defines it: anything smaller is refused. */
#define DESCRIPTOR_MIN_SIZE                                                    \
        (offsetof(struct walcast_plugin_descriptor, reopen) +                  \
         sizeof(walcast_reopen_fn))
/* Symlinks followed in one plugin path at most, as the kernel's limit. */
#define MAX_LINKS 40

struct walcast_plugin {
        struct wc_plugin_host *host;
        char *name;
        void *dl; /* NULL for built-ins */
        const struct walcast_plugin_descriptor *d;
        void *state;
        bool initialized;
        bool in_init;  /* connect is only allowed in init */
        bool in_check; /* check may only read its config and log */
        bool has_commit;
        bool throttled;
        /* ABI 1.4: what the sink holds (0: nothing reported), and whether
         * it is passed over for the transaction being read */
        wc_lsn position;
        bool skip;
        const struct wc_filter_config *filter; /* NULL: everything */
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
        /* the ABI's levels are syslog's: anything else is the nearest */
        if (level < WC_LOG_ERR)
                level = WC_LOG_ERR;
        if (level > WC_LOG_DEBUG)
                level = WC_LOG_DEBUG;
        if (self->host->ops.log)
                self->host->ops.log(self->host->ops.ud, self->name,
                                    (enum wc_log_level)level, msg);
}

/* Does the sink's filter take signals of kind?  begin, commit and a
 * table's snapshot_begin/end are not operations: every sink has them. */
static bool filter_takes(const struct wc_filter_config *f, uint32_t kind)
{
        switch (kind) {
        case WALCAST_SIG_INSERT:
        case WALCAST_SIG_READ: /* a snapshot's rows go where inserts go */
                return f->ops & WC_OP_BIT(WC_OP_INSERT);
        case WALCAST_SIG_UPDATE:
                return f->ops & WC_OP_BIT(WC_OP_UPDATE);
        case WALCAST_SIG_DELETE:
        case WALCAST_SIG_BULK_DELETE:
                return f->ops & WC_OP_BIT(WC_OP_DELETE);
        case WALCAST_SIG_TRUNCATE:
                return f->ops & WC_OP_BIT(WC_OP_TRUNCATE);
        case WALCAST_SIG_MESSAGE:
                return f->ops & WC_OP_BIT(WC_OP_MESSAGE);
        default:
                return true;
        }
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
        /* an operation the sink's filter leaves out never reaches it */
        if (self->filter && !filter_takes(self->filter, kind))
                return WALCAST_OK;
        if (wc_bus_connect(self->host->bus, kind, sender, table, fn, userdata,
                           self, self->filter) < 0)
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
        if (!self || self->in_check ||
            (status != WALCAST_OK && status != WALCAST_ERROR))
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

        if (!self || self->in_check || fd < 0 || !fn)
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

        if (!self || self->in_check)
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
        if (!self || self->in_check)
                return WALCAST_ERROR;
        self->throttled = on != 0;
        return WALCAST_OK;
}

static int32_t api_position(struct walcast_plugin *self, uint64_t end_lsn)
{
        if (!self || self->in_check)
                return WALCAST_ERROR;
        self->position = end_lsn;
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

static void host_api_init(struct wc_plugin_host *h)
{
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
            .position = api_position,
        };
}

struct wc_plugin_host *wc_plugin_host_new(struct wc_bus *bus,
                                          const struct wc_plugin_host_ops *ops)
{
        struct wc_plugin_host *h = calloc(1, sizeof(*h));

        if (!h)
                return NULL;
        h->bus = bus;
        h->ops = *ops;
        host_api_init(h);
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

/* The plugin's own check of its config, when its descriptor has one
 * (ABI 1.3): 0, or -EINVAL with a message naming the plugin. */
static int check_config(struct wc_plugin_host *h, struct walcast_plugin *p,
                        char *errbuf, size_t errlen)
{
        char perr[512] = "";
        int32_t r;

        if (p->d->size < offsetof(struct walcast_plugin_descriptor, check) +
                             sizeof(walcast_check_fn) ||
            !p->d->check)
                return 0;
        p->in_check = true;
        r = p->d->check(&h->api, p, perr, sizeof(perr));
        p->in_check = false;
        if (r == WALCAST_OK)
                return 0;
        wc_errorf(errbuf, errlen, "plugin \"%s\" refused its configuration: %s",
                  p->name, perr[0] ? perr : "its check returned an error");
        return -EINVAL;
}

/* Checks the config, runs init and keeps the plugin; takes ownership of
 * p. */
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
        r = check_config(h, p, errbuf, errlen);
        if (r < 0) {
                plugin_free(p);
                return r;
        }
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
                                         const struct wc_filter_config *filter,
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
        p->filter = filter;
        p->config = config;
        p->nconfig = nconfig;
        return p;
}

int wc_plugin_host_add(struct wc_plugin_host *h, const char *name,
                       const struct walcast_plugin_descriptor *d,
                       const struct wc_filter_config *filter,
                       const struct wc_kv *config, size_t nconfig, char *errbuf,
                       size_t errlen)
{
        struct walcast_plugin *p = plugin_new(h, name, filter, config, nconfig);

        if (!p) {
                wc_errorf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        p->d = d;
        return start_plugin(h, p, errbuf, errlen);
}

/* ---- what walcastd runs: only code nobody else can change ---- */

/* A directory the plugin's path depends on, and why. */
enum dir_role {
        DIR_OF_FILE,    /* holds the file, or is above it */
        DIR_OF_LINK,    /* holds a symlink on the way */
        DIR_ABOVE_LINK, /* is above such a directory */
};

struct path_dir {
        char *path;
        enum dir_role role;
};

struct dir_list {
        struct path_dir *items;
        size_t count, cap;
};

static void dir_list_free(struct dir_list *l)
{
        for (size_t i = 0; i < l->count; i++)
                free(l->items[i].path);
        free(l->items);
}

/* Adds dir (a resolved path) and each of its ancestors up to "/", once
 * each, nearest first; role is dir's own, DIR_OF_LINK or DIR_OF_FILE. */
static int dir_list_add_chain(struct dir_list *l, const char *dir,
                              enum dir_role role)
{
        char *p = strdup(dir);
        size_t len;
        int r = 0;

        if (!p)
                return -ENOMEM;
        for (;;) {
                size_t i;

                for (i = 0; i < l->count; i++)
                        if (strcmp(l->items[i].path, p) == 0)
                                break;
                if (i == l->count) {
                        char *copy = strdup(p);
                        if (l->count == l->cap) {
                                size_t cap = l->cap ? 2 * l->cap : 16;
                                struct path_dir *n =
                                    realloc(l->items, cap * sizeof(*n));
                                if (!n) {
                                        free(copy);
                                        r = -ENOMEM;
                                        break;
                                }
                                l->items = n;
                                l->cap = cap;
                        }
                        if (!copy) {
                                r = -ENOMEM;
                                break;
                        }
                        l->items[l->count++] = (struct path_dir){copy, role};
                }
                if (role == DIR_OF_LINK)
                        role = DIR_ABOVE_LINK;
                if (strcmp(p, "/") == 0)
                        break;
                len = strlen(p);
                while (len > 1 && p[len - 1] != '/')
                        len--;
                p[len > 1 ? len - 1 : 1] = '\0';
        }
        free(p);
        return r;
}

/* Removes the first k bytes of b. */
static void drop_front(struct wc_buf *b, size_t k)
{
        memmove(b->data, b->data + k, b->len - k + 1);
        b->len -= k;
}

/*
 * Resolves path as realpath() does, component by component, so that it
 * also learns where the symlinks on the way are: *ret_real is the
 * resolved path, and links gets every directory that holds a symlink on
 * the way (resolved), whoever can write to one of them can make path name
 * other code.  0 or a negative errno (failed names the path that failed).
 */
static int resolve_path(const char *path, char **ret_real,
                        struct dir_list *links, char *failed, size_t flen)
{
        struct wc_buf real, rest, next;
        unsigned nlinks = 0;
        int r = 0;

        wc_buf_init(&real);
        wc_buf_init(&rest);
        wc_buf_init(&next);
        if (wc_buf_append_str(&real, "/") < 0 ||
            wc_buf_append_str(&rest, path) < 0) {
                r = -ENOMEM;
                goto out;
        }
        while (rest.len) {
                const char *comp = rest.data;
                size_t n = 0, skip;
                size_t keep = real.len;
                char target[PATH_MAX];
                struct stat st;
                ssize_t tl;

                while (n < rest.len && comp[n] != '/')
                        n++;
                skip = n < rest.len ? n + 1 : n;
                if (n == 0 || (n == 1 && comp[0] == '.')) {
                        drop_front(&rest, skip);
                        continue;
                }
                if (n == 2 && comp[0] == '.' && comp[1] == '.') {
                        /* real has no symlinks: ".." is its parent */
                        while (real.len > 1 && real.data[real.len - 1] != '/')
                                real.len--;
                        if (real.len > 1)
                                real.len--;
                        real.data[real.len] = '\0';
                        drop_front(&rest, skip);
                        continue;
                }
                if ((real.len > 1 && wc_buf_append_char(&real, '/') < 0) ||
                    wc_buf_append(&real, comp, n) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                if (lstat(real.data, &st) < 0) {
                        r = -errno;
                        snprintf(failed, flen, "%s", real.data);
                        goto out;
                }
                if (!S_ISLNK(st.st_mode)) {
                        drop_front(&rest, skip);
                        continue;
                }
                if (++nlinks > MAX_LINKS) {
                        r = -ELOOP;
                        snprintf(failed, flen, "%s", path);
                        goto out;
                }
                tl = readlink(real.data, target, sizeof(target) - 1);
                if (tl < 0) {
                        r = -errno;
                        snprintf(failed, flen, "%s", real.data);
                        goto out;
                }
                target[tl] = '\0';
                /* back to the directory holding the link, which matters
                 * as much as those of the file */
                real.len = keep;
                real.data[real.len] = '\0';
                r = dir_list_add_chain(links, real.data, DIR_OF_LINK);
                if (r < 0)
                        goto out;
                /* the link's target takes its place in what is left */
                drop_front(&rest, n);
                if (wc_buf_append(&next, target, (size_t)tl) < 0 ||
                    wc_buf_append(&next, rest.data, rest.len) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                wc_buf_reset(&rest);
                if (wc_buf_append(&rest, next.data, next.len) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                wc_buf_reset(&next);
                if (target[0] == '/') {
                        real.len = 1;
                        real.data[1] = '\0';
                }
        }
        *ret_real = strdup(real.data);
        if (!*ret_real)
                r = -ENOMEM;
out:
        wc_buf_free(&real);
        wc_buf_free(&rest);
        wc_buf_free(&next);
        return r;
}

/* Root, and walcastd's own user, are the ones walcastd trusts anyway. */
static bool trusted_owner(const struct stat *st)
{
        return st->st_uid == 0 || st->st_uid == geteuid();
}

static int check_dir(const char *plugin, const struct path_dir *d, char *errbuf,
                     size_t errlen)
{
        static const char *const roles[] = {
            [DIR_OF_FILE] = "is in directory",
            [DIR_OF_LINK] = "is reached through a symlink in directory",
            [DIR_ABOVE_LINK] = "is reached through a symlink under directory",
        };
        const char *role = roles[d->role];
        struct stat st;

        if (lstat(d->path, &st) < 0) {
                int r = -errno;
                wc_errorf(errbuf, errlen, "plugin \"%s\": directory \"%s\": %s",
                          plugin, d->path, strerror(-r));
                return r;
        }
        if (!trusted_owner(&st)) {
                wc_errorf(errbuf, errlen,
                          "plugin \"%s\" %s \"%s\", which is owned by uid %u: "
                          "walcastd runs only code that root or its own user "
                          "(uid %u) alone can change; move the plugin to a "
                          "directory that root owns, or run chown root "
                          "\"%s\"",
                          plugin, role, d->path, (unsigned)st.st_uid,
                          (unsigned)geteuid(), d->path);
                return -EPERM;
        }
        if ((st.st_mode & S_IWOTH) && (st.st_mode & S_ISVTX)) {
                wc_errorf(errbuf, errlen,
                          "plugin \"%s\" %s \"%s\", which is writable by "
                          "group or others (a sticky directory like /tmp): "
                          "walcastd refuses to run code others can change; "
                          "move the plugin to a directory that only root can "
                          "write to",
                          plugin, role, d->path);
                return -EPERM;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                wc_errorf(errbuf, errlen,
                          "plugin \"%s\" %s \"%s\", which is writable by "
                          "group or others: walcastd refuses to run code "
                          "others can change; move the plugin or run chmod "
                          "go-w \"%s\"",
                          plugin, role, d->path, d->path);
                return -EPERM;
        }
        return 0;
}

/* The checks on the open file itself. */
static int check_file(const char *plugin, int fd, struct stat *ret_st,
                      char *errbuf, size_t errlen)
{
        struct stat st;

        if (fstat(fd, &st) < 0) {
                int r = -errno;
                wc_errorf(errbuf, errlen, "plugin \"%s\": %s", plugin,
                          strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                wc_errorf(errbuf, errlen, "plugin \"%s\" is not a regular file",
                          plugin);
                return -EINVAL;
        }
        if (!trusted_owner(&st)) {
                wc_errorf(errbuf, errlen,
                          "plugin \"%s\" is owned by uid %u: walcastd runs "
                          "only code that root or its own user (uid %u) alone "
                          "can change; run chown root \"%s\"",
                          plugin, (unsigned)st.st_uid, (unsigned)geteuid(),
                          plugin);
                return -EPERM;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                wc_errorf(errbuf, errlen,
                          "plugin \"%s\" is writable by group or others: "
                          "walcastd refuses to run code others can change; "
                          "run chmod go-w \"%s\"",
                          plugin, plugin);
                return -EPERM;
        }
        *ret_st = st;
        return 0;
}

/*
 * The daemon must not run code that others can change: opens the plugin
 * at path, once, after checking that the file and every directory its
 * path goes through (those of the file and those holding a symlink on
 * the way, up to "/") are owned by root or walcastd's user and writable
 * by nobody else.  The checks on the file are made on the open file, which
 * is what the caller loads.  0 with *ret_fd and *ret_st, or a negative
 * errno.
 */
static int open_checked(const char *path, int *ret_fd, struct stat *ret_st,
                        char *errbuf, size_t errlen)
{
        struct dir_list links = {0}, dirs = {0};
        char failed[PATH_MAX] = "", *real = NULL, *dir = NULL;
        struct stat st;
        int fd = -1, r;

        r = resolve_path(path, &real, &links, failed, sizeof(failed));
        if (r == -ENOMEM) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto out;
        }
        if (r < 0) {
                if (strcmp(failed, path) == 0)
                        wc_errorf(errbuf, errlen, "plugin \"%s\": %s", path,
                                  strerror(-r));
                else
                        wc_errorf(errbuf, errlen, "plugin \"%s\": %s (at %s)",
                                  path, strerror(-r), failed);
                goto out;
        }
        /* no FIFO or device is opened (and blocked on) */
        if (lstat(real, &st) < 0 || !S_ISREG(st.st_mode)) {
                wc_errorf(errbuf, errlen, "plugin \"%s\" is not a regular file",
                          path);
                r = -EINVAL;
                goto out;
        }
        fd = open(real,
                  O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                wc_errorf(errbuf, errlen, "plugin \"%s\": %s", path,
                          strerror(-r));
                goto out;
        }
        r = check_file(path, fd, &st, errbuf, errlen);
        if (r < 0)
                goto out;

        dir = strdup(real);
        r = dir ? dir_list_add_chain(&dirs, dirname(dir), DIR_OF_FILE)
                : -ENOMEM;
        for (size_t i = 0; i < links.count && r == 0; i++)
                if (links.items[i].role == DIR_OF_LINK)
                        r = dir_list_add_chain(&dirs, links.items[i].path,
                                               DIR_OF_LINK);
        if (r < 0) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < dirs.count && r == 0; i++)
                r = check_dir(path, &dirs.items[i], errbuf, errlen);
        if (r < 0)
                goto out;
        *ret_fd = fd;
        *ret_st = st;
        fd = -1;
out:
        if (fd >= 0)
                close(fd);
        free(dir);
        free(real);
        dir_list_free(&dirs);
        dir_list_free(&links);
        return r;
}

/*
 * Whether the shared object dl was mapped from the file st describes:
 * /proc/self/maps names the file (device and inode) of the mapping that
 * holds its dynamic section.  glibc finds an object it has loaded by
 * name before it looks at the file, and the name /proc/self/fd/N outlives
 * the descriptor: this tells a stale name from the file just checked.
 */
static bool object_is_file(void *dl, const struct stat *st)
{
        struct link_map *lm = NULL;
        uintptr_t addr;
        char line[4096];
        bool found = false;
        FILE *f;

        if (dlinfo(dl, RTLD_DI_LINKMAP, &lm) < 0 || !lm || !lm->l_ld)
                return false;
        addr = (uintptr_t)lm->l_ld;
        f = fopen("/proc/self/maps", "re");
        if (!f)
                return false;
        while (!found && fgets(line, sizeof(line), f)) {
                unsigned long long start, end, off, ino;
                unsigned maj, min;

                if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu", &start, &end,
                           &off, &maj, &min, &ino) != 6)
                        continue;
                if (addr < start || addr >= end)
                        continue;
                found = ino == (unsigned long long)st->st_ino &&
                        maj == major(st->st_dev) && min == minor(st->st_dev);
                break;
        }
        fclose(f);
        return found;
}

/* dlopen() of the open file fd, which st describes; NULL with *ret_err
 * (dlerror()'s message, or NULL). */
static void *dlopen_fd(int fd, const struct stat *st, const char **ret_err)
{
        char name[64];
        int cur = fd, dup_fd = -1;
        void *dl = NULL;

        *ret_err = NULL;
        for (int tries = 0; tries < 16; tries++) {
                int next;

                snprintf(name, sizeof(name), "/proc/self/fd/%d", cur);
                dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
                if (!dl) {
                        *ret_err = dlerror();
                        break;
                }
                if (object_is_file(dl, st))
                        break;
                /* an object loaded earlier through a descriptor of this
                 * number: another number */
                dlclose(dl);
                dl = NULL;
                next = fcntl(cur, F_DUPFD_CLOEXEC, cur + 1);
                if (next < 0)
                        break;
                if (dup_fd >= 0)
                        close(dup_fd);
                dup_fd = cur = next;
        }
        if (dup_fd >= 0)
                close(dup_fd);
        return dl;
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
        struct stat st;
        void *dl;
        int fd, r;

        if (path[0] != '/') {
                wc_errorf(errbuf, errlen, "plugin \"%s\": use an absolute path",
                          path);
                return -EINVAL;
        }
        r = open_checked(path, &fd, &st, errbuf, errlen);
        if (r < 0)
                return r;
        dl = dlopen_fd(fd, &st, &err);
        /* the mapping keeps the file: the descriptor is no longer needed */
        close(fd);
        if (!dl) {
                /* dlerror() names the descriptor: the path says more */
                if (err && strncmp(err, "/proc/self/fd/", 14) == 0 &&
                    strstr(err, ": "))
                        err = strstr(err, ": ") + 2;
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

int wc_plugin_check(const char *path, const struct wc_kv *config,
                    size_t nconfig, char *errbuf, size_t errlen)
{
        const struct walcast_plugin_descriptor *d;
        struct wc_plugin_host h = {0};
        struct walcast_plugin *p;
        void *dl;
        int r = open_plugin(path, &dl, &d, errbuf, errlen);

        if (r < 0)
                return r;
        /* a host without a bus: the check may only read its config */
        host_api_init(&h);
        p = plugin_new(&h, path, NULL, config, nconfig);
        if (!p) {
                wc_errorf(errbuf, errlen, "out of memory");
                r = -ENOMEM;
        } else {
                p->d = d;
                r = check_config(&h, p, errbuf, errlen);
                free(p->name);
                free(p);
        }
        dlclose(dl);
        return r;
}

int wc_plugin_host_load(struct wc_plugin_host *h, const char *path,
                        const struct wc_filter_config *filter,
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
        p = plugin_new(h, path, filter, config, nconfig);
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

static bool is_skipped(const void *owner)
{
        return ((const struct walcast_plugin *)owner)->skip;
}

unsigned wc_plugin_host_begin(struct wc_plugin_host *h, wc_lsn end_lsn,
                              wc_lsn lsn)
{
        unsigned n = 0;

        for (size_t i = 0; i < h->nplugins; i++) {
                struct walcast_plugin *p = h->plugins[i];
                /* a transaction by its end, a message outside one (end 0)
                 * by its own position */
                p->skip = p->position && (end_lsn ? end_lsn <= p->position
                                                  : lsn < p->position);
                n += !p->skip;
        }
        wc_bus_skip(h->bus, n < h->nplugins ? is_skipped : NULL);
        return n;
}

wc_lsn wc_plugin_host_position(const struct wc_plugin_host *h, size_t i,
                               const char **ret_name)
{
        if (ret_name)
                *ret_name = i < h->nplugins ? h->plugins[i]->name : NULL;
        return i < h->nplugins ? h->plugins[i]->position : 0;
}

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
                if (!h->plugins[i]->has_commit && !h->plugins[i]->skip)
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
