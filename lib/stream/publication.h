/* SPDX-License-Identifier: MIT */
/*
 * The publication pgoutput reads: looked up, and created when missing and
 * allowed, before the slot (pgoutput reads a publication as of each
 * change's position in the WAL, so one created after the slot's start
 * is not there for the changes before it).  walcast never alters or
 * drops a publication.
 */
#ifndef WALCAST_PUBLICATION_H
#define WALCAST_PUBLICATION_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

/*
 * Makes sure publication `name` exists on conn's database.  When it does
 * not and `create` is true, creates it: FOR TABLES IN SCHEMA the schemas
 * (nschemas literal names) on PostgreSQL 15 and later
 * when there are some, FOR ALL TABLES otherwise.  0 (with *ret_created),
 * -ENOENT (missing and not to be created), -EPERM (the role may not create
 * it), -EIO; errbuf says what to do.
 */
int wc_publication_ensure(PGconn *conn, const char *name, bool create,
                          const char *const *schemas, size_t nschemas,
                          bool *ret_created, char *errbuf, size_t errlen);

#endif
