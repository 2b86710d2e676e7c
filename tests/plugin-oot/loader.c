/* SPDX-License-Identifier: MIT */
/*
 * Loads each plugin named on the command line the way walcastd does
 * (dlopen, the entry symbol) and checks its descriptor against the header
 * this loader was compiled with: the same ABI major, the same descriptor
 * size.  Exit 0 when every plugin passes.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <walcast/plugin.h>

static int check(const char *path)
{
        const struct walcast_plugin_descriptor *d;
        walcast_entry_fn entry;
        void *dl, *sym;
        int ok = 0;

        dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                fprintf(stderr, "loader: %s\n", dlerror());
                return 0;
        }
        sym = dlsym(dl, WALCAST_PLUGIN_ENTRY_SYMBOL);
        if (!sym) {
                fprintf(stderr, "loader: %s: no %s\n", path,
                        WALCAST_PLUGIN_ENTRY_SYMBOL);
                goto out_close;
        }
        /* ISO C has no cast from an object pointer to a function pointer;
         * POSIX guarantees the representations agree, so copy the bits */
        memcpy(&entry, &sym, sizeof(entry));
        d = entry();
        if (!d) {
                fprintf(stderr, "loader: %s: entry returned NULL\n", path);
                goto out_close;
        }
        if (d->abi_major != WALCAST_ABI_MAJOR) {
                fprintf(stderr, "loader: %s: ABI major %u, expected %u\n", path,
                        (unsigned)d->abi_major, (unsigned)WALCAST_ABI_MAJOR);
                goto out_close;
        }
        if (d->size != sizeof(struct walcast_plugin_descriptor)) {
                fprintf(stderr, "loader: %s: descriptor size %u, expected %u\n",
                        path, (unsigned)d->size,
                        (unsigned)sizeof(struct walcast_plugin_descriptor));
                goto out_close;
        }
        if (!d->name || !d->version || !d->init) {
                fprintf(stderr, "loader: %s: no name, version or init\n", path);
                goto out_close;
        }
        printf("loader: %s: plugin \"%s\" %s, ABI %u.%u\n", path, d->name,
               d->version, (unsigned)d->abi_major, (unsigned)d->abi_minor);
        ok = 1;

out_close:
        dlclose(dl);
        return ok;
}

int main(int argc, char **argv)
{
        int ok = 1;

        if (sizeof(walcast_entry_fn) != sizeof(void *)) {
                fprintf(stderr, "loader: function pointers differ in size\n");
                return 1;
        }
        for (int i = 1; i < argc; i++)
                ok &= check(argv[i]);
        return ok && argc > 1 ? 0 : 1;
}
