/* SPDX-License-Identifier: MIT */
/* walcast demo: walcastd on a throwaway PostgreSQL (docs/walcast.1.md). */
#ifndef WALCAST_CMD_DEMO_H
#define WALCAST_CMD_DEMO_H

/* Runs "walcast demo"; argv[0] is "demo".  Returns the exit code: 0 (also
 * after SIGINT or SIGTERM, once everything is stopped and removed), 1 on
 * a failure, 78 on a bad command line. */
int wc_demo_main(int argc, char **argv);

#endif
