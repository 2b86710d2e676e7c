/* SPDX-License-Identifier: MIT */
/*
 * walcast demo: the real walcastd, with a generated configuration, on a
 * private PostgreSQL in a temporary directory, while a short workload
 * runs.  Every process it starts is its child, in a process group of its
 * own (so a Ctrl-C reaches the demo alone), and is stopped by its PID;
 * the directory is removed at the end.  Nothing here is a special mode
 * of walcastd: what the demo shows is what a user's configuration does.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "common/log.h"
#include "common/runner.h"
#include "demo.h"

#define DEMO_SLOT   "walcast_demo"
#define DEMO_PREFIX "walcast-demo"
/* How long one step of the workload may take to come through walcastd. */
#define STEP_TIMEOUT_MS  20000
#define START_TIMEOUT_MS 60000

enum demo_sink { SINK_FILE, SINK_PLUGIN, SINK_KAFKA };

/* What a pipe from walcastd gave that is not a whole line yet. */
struct pipe_in {
        int fd;
        size_t len;
        char buf[65536];
};

struct demo {
        /* the command line */
        bool keep;
        int port; /* 0: a free one */
        enum demo_sink sink;
        const char *bootstrap;
        const char *pg_bindir; /* --pg-bindir */

        char bindir[PATH_MAX];
        char walcastd[PATH_MAX];
        char plugin[PATH_MAX];
        int major;
        /* the server's user: ours, or postgres when we are root */
        bool drop_privileges;
        uid_t uid;
        gid_t gid;
        char user[64];

        char tmp[PATH_MAX];
        char pgdata[PATH_MAX + 16];
        char config[PATH_MAX + 16];
        char dsn[PATH_MAX + 128];
        pid_t postgres;
        pid_t daemon;
        struct pipe_in out; /* walcastd's standard output: the changes */
        struct pipe_in log; /* its standard error, shown as it comes */
        long lines;
        PGconn *conn;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
        interrupted = sig;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        fflush(stdout);
}

/* ---- processes --------------------------------------------------------- */

struct spawn_opts {
        bool as_server_user;
        bool new_session; /* the server: outlives us with --keep */
        int out_fd;       /* -1: /dev/null */
        int err_fd;       /* -1: /dev/null */
};

/*
 * Starts argv in a process group of its own, as the server's user when
 * asked.  Returns the PID, or -1 with errno set.  The demo has one
 * thread whenever it forks (librdkafka's start after the last spawn),
 * so the child may look PATH up before exec.
 */
static pid_t spawn(const struct demo *d, char *const argv[],
                   const struct spawn_opts *o)
{
        pid_t pid = fork();
        int null;

        if (pid != 0)
                return pid;
        if (o->new_session)
                setsid();
        else
                setpgid(0, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0)
                _exit(127);
        dup2(null, 0);
        dup2(o->out_fd >= 0 ? o->out_fd : null, 1);
        dup2(o->err_fd >= 0 ? o->err_fd : null, 2);
        if (o->as_server_user && d->drop_privileges &&
            (setgroups(0, NULL) < 0 || setgid(d->gid) < 0 ||
             setuid(d->uid) < 0))
                _exit(126);
        /* the server's user may not be able to enter our directory */
        if (chdir(d->tmp[0] ? d->tmp : "/") < 0 && chdir("/") < 0)
                _exit(127);
        execvp(argv[0], argv); /* pg_config from PATH, the rest by path */
        _exit(127);
}

/* Waits for pid, which it stops by its PID if we are interrupted.  The
 * exit status as waitpid gives it, or -1. */
static int wait_child(pid_t pid)
{
        int st;

        for (;;) {
                if (waitpid(pid, &st, 0) == pid)
                        return st;
                if (errno != EINTR)
                        return -1;
                if (interrupted)
                        kill(pid, SIGTERM);
        }
}

/* Stops pid: sig, then SIGKILL after grace_ms.  It is our child, so it is
 * waited for and its PID cannot be taken by another process meanwhile. */
static void stop_child(pid_t pid, int sig, int grace_ms)
{
        int64_t deadline = now_ms() + grace_ms;
        int st;

        if (pid <= 0)
                return;
        kill(pid, sig);
        while (waitpid(pid, &st, WNOHANG) == 0) {
                if (now_ms() > deadline) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &st, 0);
                        return;
                }
                poll(NULL, 0, 20);
        }
}

/* Runs argv (as the server's user when asked) and puts its standard
 * output, trimmed, in out.  The exit status (0 for success), or -1. */
static int capture(const struct demo *d, char *const argv[], bool as_server,
                   char *out, size_t outlen)
{
        struct spawn_opts o = {.as_server_user = as_server, .err_fd = -1};
        int fds[2], st;
        size_t len = 0;
        ssize_t n;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -1;
        o.out_fd = fds[1];
        pid = spawn(d, argv, &o);
        close(fds[1]);
        if (pid < 0) {
                close(fds[0]);
                return -1;
        }
        while ((n = read(fds[0], out + len, outlen - 1 - len)) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        break;
                len += (size_t)n;
                if (len == outlen - 1)
                        break;
        }
        close(fds[0]);
        while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
                len--;
        out[len] = '\0';
        st = wait_child(pid);
        if (st < 0 || !WIFEXITED(st))
                return -1;
        return WEXITSTATUS(st);
}

/* ---- files ------------------------------------------------------------- */

static int write_file(const char *path, const char *text, bool append)
{
        int fd =
            open(path,
                 O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
                 0600);
        size_t len = strlen(text), off = 0;

        if (fd < 0)
                return -errno;
        while (off < len) {
                ssize_t n = write(fd, text + off, len - off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;

                        close(fd);
                        return r;
                }
                off += (size_t)n;
        }
        return close(fd) < 0 ? -errno : 0;
}

/* Prints the last lines of a log file the demo kept, after a failure. */
static void show_tail(const char *what, const char *path)
{
        char buf[4096];
        ssize_t n;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        off_t size;

        if (fd < 0)
                return;
        size = lseek(fd, 0, SEEK_END);
        if (size > (off_t)sizeof(buf) - 1)
                lseek(fd, size - (off_t)sizeof(buf) + 1, SEEK_SET);
        else
                lseek(fd, 0, SEEK_SET);
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return;
        buf[n] = '\0';
        fprintf(stderr, "--- the end of %s:\n%s%s", what, buf,
                buf[n - 1] == '\n' ? "" : "\n");
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0)
                log_warning("could not remove \"%s\": %s", path,
                            strerror(errno));
        return 0;
}

static bool is_exec(const char *dir, const char *name)
{
        char p[PATH_MAX + 64];

        snprintf(p, sizeof(p), "%s/%s", dir, name);
        return access(p, X_OK) == 0;
}

/* ---- finding things ---------------------------------------------------- */

static int version_of_dir(const char *bindir)
{
        /* /usr/lib/postgresql/15/bin */
        const char *end = strrchr(bindir, '/'), *p = end;

        while (p && p > bindir && p[-1] != '/')
                p--;
        return p ? atoi(p) : 0;
}

static int by_version_desc(const void *a, const void *b)
{
        return version_of_dir(*(char *const *)b) -
               version_of_dir(*(char *const *)a);
}

static bool server_bindir(const char *dir)
{
        return is_exec(dir, "initdb") && is_exec(dir, "postgres");
}

/* --pg-bindir, else `pg_config --bindir`, else the newest of
 * /usr/lib/postgresql/N/bin that has a server. */
static int find_bindir(struct demo *d)
{
        char *pgc[] = {"pg_config", "--bindir", NULL};
        char out[PATH_MAX];
        glob_t g;

        if (d->pg_bindir) {
                if (!server_bindir(d->pg_bindir)) {
                        log_error("--pg-bindir \"%s\" has no initdb and "
                                  "postgres: name the bin directory of a "
                                  "PostgreSQL server",
                                  d->pg_bindir);
                        return -ENOENT;
                }
                snprintf(d->bindir, sizeof(d->bindir), "%s", d->pg_bindir);
                return 0;
        }
        if (capture(d, pgc, false, out, sizeof(out)) == 0 &&
            server_bindir(out)) {
                snprintf(d->bindir, sizeof(d->bindir), "%s", out);
                return 0;
        }
        if (glob("/usr/lib/postgresql/*/bin", GLOB_ONLYDIR, NULL, &g) == 0) {
                qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), by_version_desc);
                for (size_t i = 0; i < g.gl_pathc; i++) {
                        if (server_bindir(g.gl_pathv[i])) {
                                snprintf(d->bindir, sizeof(d->bindir), "%s",
                                         g.gl_pathv[i]);
                                globfree(&g);
                                return 0;
                        }
                }
                globfree(&g);
        }
        log_error(
            "no PostgreSQL server found (no initdb in `pg_config "
            "--bindir` nor in /usr/lib/postgresql/*/bin): install one "
            "(Debian: apt-get install postgresql postgresql-15-wal2json), "
            "or name its bin directory with --pg-bindir DIR");
        return -ENOENT;
}

/* The server's major version, and wal2json.so where that server loads
 * its modules from: `pg_config --pkglibdir` of that bin directory, or
 * the lib directory beside it (Debian's layout). */
static int check_wal2json(struct demo *d)
{
        char bin[PATH_MAX + 32], out[PATH_MAX], lib[PATH_MAX + 16],
            so[PATH_MAX + 32];
        char *ver[] = {bin, "--version", NULL};
        char *pkg[] = {bin, "--pkglibdir", NULL};
        const char *v;

        snprintf(bin, sizeof(bin), "%s/postgres", d->bindir);
        if (capture(d, ver, false, out, sizeof(out)) != 0 ||
            !(v = strstr(out, ") ")) || (d->major = atoi(v + 2)) <= 0) {
                log_error("could not run \"%s --version\": is it a PostgreSQL "
                          "server?",
                          bin);
                return -ENOEXEC;
        }
        snprintf(bin, sizeof(bin), "%s/pg_config", d->bindir);
        if (access(bin, X_OK) == 0 &&
            capture(d, pkg, false, out, sizeof(out)) == 0 && out[0] == '/') {
                snprintf(lib, sizeof(lib), "%s", out);
        } else {
                snprintf(lib, sizeof(lib), "%s/../lib", d->bindir);
                if (realpath(lib, out))
                        snprintf(lib, sizeof(lib), "%s", out);
        }
        snprintf(so, sizeof(so), "%s/wal2json.so", lib);
        if (access(so, R_OK) < 0) {
                log_error("wal2json is not installed for PostgreSQL %d (no "
                          "wal2json.so in \"%s\"): install it (Debian, "
                          "Ubuntu: apt-get install postgresql-%d-wal2json), "
                          "then run walcast demo again",
                          d->major, lib, d->major);
                return -ENOENT;
        }
        return 0;
}

/* path of the first candidate that exists, as "DIR/../REL/name" pieces:
 * the build tree keeps walcastd beside walcast and the plugins in
 * ../plugins; an install has them in sbindir and libdir/walcast/plugins,
 * under the prefix walcast is in or the one it was configured for. */
static int find_beside(const char *name, const char *const rels[],
                       char *ret_path, size_t len)
{
        char exe[PATH_MAX], p[2 * PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        char *slash;

        if (n <= 0)
                return -errno;
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash)
                *slash = '\0';
        for (size_t i = 0; rels[i]; i++) {
                if (rels[i][0] == '/')
                        snprintf(p, sizeof(p), "%s/%s", rels[i], name);
                else
                        snprintf(p, sizeof(p), "%s/%s/%s", exe, rels[i], name);
                if (access(p, R_OK) == 0 && strlen(p) < len) {
                        if (!realpath(p, ret_path))
                                snprintf(ret_path, len, "%s", p);
                        return 0;
                }
        }
        return -ENOENT;
}

static int find_walcast_parts(struct demo *d)
{
        static const char *const daemon[] = {".", "../" WALCAST_SBINDIR,
                                             WALCAST_FULL_SBINDIR, NULL};
        static const char *const plugins[] = {
            "../plugins", "../" WALCAST_LIBDIR "/walcast/plugins",
            WALCAST_FULL_LIBDIR "/walcast/plugins", NULL};

        if (find_beside("walcastd", daemon, d->walcastd, sizeof(d->walcastd)) <
            0) {
                log_error("walcastd not found beside walcast nor in \"%s\": "
                          "build it (cmake --build build) or install walcast",
                          WALCAST_FULL_SBINDIR);
                return -ENOENT;
        }
        if (d->sink == SINK_PLUGIN &&
            find_beside("jsonl.so", plugins, d->plugin, sizeof(d->plugin)) <
                0) {
                log_error("the jsonl plugin was not found in the build tree "
                          "nor in \"%s/walcast/plugins\": build or install "
                          "walcast with its plugins",
                          WALCAST_FULL_LIBDIR);
                return -ENOENT;
        }
        return 0;
}

/* initdb and postgres refuse to run as root: then the server runs as
 * postgres, the user Debian's server package creates. */
static int pick_user(struct demo *d)
{
        struct passwd *pw;

        if (geteuid() != 0) {
                pw = getpwuid(geteuid());
                d->uid = geteuid();
                d->gid = getegid();
                snprintf(d->user, sizeof(d->user), "%s",
                         pw ? pw->pw_name : "?");
                return 0;
        }
        pw = getpwnam("postgres");
        if (!pw || pw->pw_uid == 0) {
                log_error("running as root, and there is no user \"postgres\" "
                          "to run the server as (PostgreSQL refuses root): "
                          "run walcast demo as an ordinary user");
                return -ESRCH;
        }
        d->drop_privileges = true;
        d->uid = pw->pw_uid;
        d->gid = pw->pw_gid;
        snprintf(d->user, sizeof(d->user), "%s", pw->pw_name);
        return 0;
}

/* ---- the server -------------------------------------------------------- */

static int make_tmp(struct demo *d)
{
        const char *base = getenv("TMPDIR");

        /* the server's user must reach it: no private TMPDIR of root's */
        if (!base || !*base || geteuid() == 0)
                base = "/tmp";
        /* it goes into postgresql.conf and YAML between quotes */
        if (base[0] != '/' || strpbrk(base, "\"'\\ \t\n")) {
                log_error("TMPDIR \"%s\" is not an absolute path without "
                          "quotes or blanks: unset it or name another",
                          base);
                return -EINVAL;
        }
        snprintf(d->tmp, sizeof(d->tmp), "%s/walcast-demo-XXXXXX", base);
        if (!mkdtemp(d->tmp)) {
                log_error("could not create a directory in \"%s\": %s", base,
                          strerror(errno));
                d->tmp[0] = '\0';
                return -errno;
        }
        if (d->drop_privileges && chown(d->tmp, d->uid, d->gid) < 0) {
                log_error("could not give \"%s\" to user %s: %s", d->tmp,
                          d->user, strerror(errno));
                return -errno;
        }
        snprintf(d->pgdata, sizeof(d->pgdata), "%s/pgdata", d->tmp);
        snprintf(d->config, sizeof(d->config), "%s/walcast.yaml", d->tmp);
        return 0;
}

static int open_log(const struct demo *d, const char *name)
{
        char p[PATH_MAX + 32];

        snprintf(p, sizeof(p), "%s/%s", d->tmp, name);
        return open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static int init_cluster(struct demo *d)
{
        char bin[PATH_MAX + 32], logp[PATH_MAX + 32];
        char *argv[] = {bin, "-D", d->pgdata, "-U", "postgres",
                        "--auth-local=trust",
                        /* the socket's directory is ours alone; TCP
                         * would let every local user in */
                        "--auth-host=reject", "--no-locale", "-E", "UTF8",
                        "--no-sync", NULL};
        struct spawn_opts o = {.as_server_user = true};
        pid_t pid;
        int st;

        snprintf(bin, sizeof(bin), "%s/initdb", d->bindir);
        snprintf(logp, sizeof(logp), "%s/initdb.log", d->tmp);
        o.out_fd = o.err_fd = open_log(d, "initdb.log");
        if (o.out_fd < 0) {
                log_error("could not create \"%s\": %s", logp, strerror(errno));
                return -errno;
        }
        pid = spawn(d, argv, &o);
        close(o.out_fd);
        if (pid < 0) {
                log_error("could not start \"%s\": %s", bin, strerror(errno));
                return -EIO;
        }
        st = wait_child(pid);
        if (interrupted)
                return -EINTR;
        if (st != 0) {
                log_error("initdb failed (user %s, directory \"%s\")", d->user,
                          d->pgdata);
                show_tail("initdb's output", logp);
                return -EIO;
        }
        return 0;
}

/* What the server needs for logical decoding with wal2json, and
 * output_plugin_libraries where the server has that setting (a server
 * that has it refuses wal2json unless it is named there). */
static int configure_cluster(struct demo *d)
{
        char bin[PATH_MAX + 32], conf[PATH_MAX + 32], opl[1024],
            text[PATH_MAX + 2048];
        char *argv[] = {bin, "-D", d->pgdata, "-C", "output_plugin_libraries",
                        NULL};
        int r;

        snprintf(bin, sizeof(bin), "%s/postgres", d->bindir);
        snprintf(conf, sizeof(conf), "%s/postgresql.conf", d->pgdata);
        r = snprintf(text, sizeof(text),
                     "\n# walcast demo\n"
                     "listen_addresses = '127.0.0.1'\n"
                     "unix_socket_directories = '%s'\n"
                     "wal_level = logical\n"
                     "max_replication_slots = 4\n"
                     "max_wal_senders = 4\n"
                     "fsync = off\n"
                     "full_page_writes = off\n"
                     "shared_buffers = 32MB\n"
                     "log_min_messages = warning\n",
                     d->tmp);
        if (capture(d, argv, true, opl, sizeof(opl)) == 0 &&
            !strstr(opl, "wal2json"))
                snprintf(text + r, sizeof(text) - (size_t)r,
                         "output_plugin_libraries = '%s%swal2json'\n", opl,
                         opl[0] ? ", " : "");
        r = write_file(conf, text, true);
        if (r < 0)
                log_error("could not write \"%s\": %s", conf, strerror(-r));
        return r;
}

static int free_port(void)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t len = sizeof(a);

        if (fd < 0)
                return -1;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &len) == 0)
                port = ntohs(a.sin_port);
        close(fd);
        return port;
}

static bool log_says_port_busy(const struct demo *d)
{
        char p[PATH_MAX + 32], buf[8192];
        ssize_t n;
        int fd;

        snprintf(p, sizeof(p), "%s/postgres.log", d->tmp);
        fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        return strstr(buf, "could not bind") || strstr(buf, "already in use") ||
               strstr(buf, "could not create any TCP/IP sockets");
}

/* Starts the server on d->port (or a free port, retried while another
 * process takes it first) and waits until it accepts connections. */
static int start_server(struct demo *d)
{
        char bin[PATH_MAX + 32], port[16], logp[PATH_MAX + 32];
        char *argv[] = {bin, "-D", d->pgdata, "-p", port, NULL};
        struct spawn_opts o = {.as_server_user = true, .new_session = true};
        bool fixed = d->port > 0;

        snprintf(bin, sizeof(bin), "%s/postgres", d->bindir);
        snprintf(logp, sizeof(logp), "%s/postgres.log", d->tmp);
        for (int attempt = 0; attempt < 8; attempt++) {
                int64_t deadline = now_ms() + START_TIMEOUT_MS;
                int st;

                if (!fixed)
                        d->port = free_port();
                if (d->port <= 0) {
                        log_error("no free TCP port on 127.0.0.1");
                        return -EADDRNOTAVAIL;
                }
                snprintf(port, sizeof(port), "%d", d->port);
                snprintf(d->dsn, sizeof(d->dsn),
                         "host=%s port=%d dbname=postgres user=postgres",
                         d->tmp, d->port);
                /* a fresh log, so that a busy port is told from the
                 * last attempt's */
                unlink(logp);
                o.out_fd = o.err_fd = open_log(d, "postgres.log");
                if (o.out_fd < 0) {
                        log_error("could not create \"%s\": %s", logp,
                                  strerror(errno));
                        return -errno;
                }
                d->postgres = spawn(d, argv, &o);
                close(o.out_fd);
                if (d->postgres < 0) {
                        log_error("could not start \"%s\": %s", bin,
                                  strerror(errno));
                        d->postgres = 0;
                        return -errno;
                }
                for (;;) {
                        if (interrupted)
                                return -EINTR;
                        if (waitpid(d->postgres, &st, WNOHANG) == d->postgres) {
                                d->postgres = 0;
                                break;
                        }
                        if (PQping(d->dsn) == PQPING_OK)
                                return 0;
                        if (now_ms() > deadline) {
                                log_error("the server did not accept "
                                          "connections within %d s",
                                          START_TIMEOUT_MS / 1000);
                                show_tail("the server's log", logp);
                                return -ETIMEDOUT;
                        }
                        poll(NULL, 0, 50);
                }
                if (fixed || !log_says_port_busy(d))
                        break;
        }
        log_error("the server did not start (port %d)", d->port);
        show_tail("the server's log", logp);
        return -EIO;
}

static int sql(struct demo *d, const char *query, char *ret_value, size_t len)
{
        PGresult *res = PQexec(d->conn, query);
        ExecStatusType st = PQresultStatus(res);
        int r = 0;

        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                log_error("%s failed: %s", query, PQerrorMessage(d->conn));
                r = -EIO;
        } else if (ret_value) {
                snprintf(ret_value, len, "%s",
                         PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
        }
        PQclear(res);
        return r;
}

/* ---- walcastd ---------------------------------------------------------- */

static int write_config(const struct demo *d)
{
        char text[3 * PATH_MAX + 1024];
        int n, r;

        n = snprintf(text, sizeof(text),
                     "# walcast demo: the server in %s\n"
                     "source:\n"
                     "  dsn: \"%s\"\n"
                     "  slot: %s\n"
                     "  status_interval: 200ms\n"
                     "filter:\n"
                     "  schemas: { include: [\"town6-*\", \"org-*\"] }\n"
                     "log:\n"
                     "  level: warning\n"
                     "sinks:\n",
                     d->tmp, d->dsn, DEMO_SLOT);
        switch (d->sink) {
        case SINK_FILE:
                snprintf(text + n, sizeof(text) - (size_t)n,
                         "  - file:\n"
                         "      path: \"-\"            # standard output\n");
                break;
        case SINK_PLUGIN:
                snprintf(text + n, sizeof(text) - (size_t)n,
                         "  - plugin:\n"
                         "      path: \"%s\"\n"
                         "      config: { file: /dev/stdout, fsync: false }\n",
                         d->plugin);
                break;
        case SINK_KAFKA:
                snprintf(text + n, sizeof(text) - (size_t)n,
                         "  - kafka:\n"
                         "      prefix: %s\n"
                         "      properties:\n"
                         "        bootstrap.servers: \"%s\"\n",
                         DEMO_PREFIX, d->bootstrap);
                break;
        }
        r = write_file(d->config, text, false);
        if (r < 0)
                log_error("could not write \"%s\": %s", d->config,
                          strerror(-r));
        return r;
}

/* One line of walcastd's log, "<4>text" (sd-daemon priorities), on our
 * standard error as "walcastd: warning: text". */
static void show_log_line(const char *line, size_t len)
{
        static const char *const level[8] = {"error: ", "error: ",   "error: ",
                                             "error: ", "warning: ", "",
                                             "",        ""};

        if (len >= 3 && line[0] == '<' && line[1] >= '0' && line[1] <= '7' &&
            line[2] == '>') {
                fprintf(stderr, "walcastd: %s%.*s", level[line[1] - '0'],
                        (int)(len - 3), line + 3);
                return;
        }
        fprintf(stderr, "walcastd: %.*s", (int)len, line);
}

/* Prints the complete lines of p so far: changes on standard output,
 * log lines on standard error. */
static void drain_pipe(struct demo *d, struct pipe_in *p)
{
        bool is_log = p == &d->log;

        while (p->fd >= 0) {
                ssize_t n =
                    read(p->fd, p->buf + p->len, sizeof(p->buf) - 1 - p->len);
                char *nl, *start = p->buf;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                p->len += (size_t)n;
                while ((nl = memchr(start, '\n',
                                    p->len - (size_t)(start - p->buf)))) {
                        size_t len = (size_t)(nl - start) + 1;

                        if (is_log) {
                                show_log_line(start, len);
                        } else {
                                fwrite(start, 1, len, stdout);
                                d->lines++;
                        }
                        start = nl + 1;
                }
                p->len -= (size_t)(start - p->buf);
                memmove(p->buf, start, p->len);
                if (p->len == sizeof(p->buf) - 1) { /* a giant line */
                        fwrite(p->buf, 1, p->len, is_log ? stderr : stdout);
                        p->len = 0;
                }
        }
        fflush(stdout);
}

static void drain(struct demo *d)
{
        drain_pipe(d, &d->out);
        drain_pipe(d, &d->log);
}

static int start_daemon(struct demo *d)
{
        char *argv[] = {d->walcastd, "-c", d->config, NULL};
        struct spawn_opts o = {0};
        int out[2], log[2] = {-1, -1};

        if (pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(log, O_CLOEXEC) < 0) {
                int r = -errno;

                close(out[0]);
                close(out[1]);
                return r;
        }
        o.out_fd = out[1];
        o.err_fd = log[1];
        d->daemon = spawn(d, argv, &o);
        close(out[1]);
        close(log[1]);
        if (d->daemon < 0) {
                log_error("could not start \"%s\": %s", d->walcastd,
                          strerror(errno));
                d->daemon = 0;
                close(out[0]);
                close(log[0]);
                return -EIO;
        }
        d->out.fd = out[0];
        d->log.fd = log[0];
        fcntl(d->out.fd, F_SETFL, O_NONBLOCK);
        fcntl(d->log.fd, F_SETFL, O_NONBLOCK);
        return 0;
}

/* False, with what walcastd said, when it is gone. */
static bool daemon_alive(struct demo *d)
{
        int st;

        if (waitpid(d->daemon, &st, WNOHANG) != d->daemon)
                return true;
        d->daemon = 0;
        drain(d);
        log_error("walcastd exited (%s %d)",
                  WIFEXITED(st) ? "status" : "signal",
                  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        return false;
}

/*
 * Waits, printing what walcastd writes meanwhile, until query (a test
 * on the demo slot) is true: walcastd confirms a position only once its
 * sink has taken everything before it, so the step's changes are then
 * out.
 */
static int wait_for(struct demo *d, const char *query, const char *what)
{
        int64_t deadline = now_ms() + STEP_TIMEOUT_MS;
        char v[16];

        for (;;) {
                struct pollfd p[2] = {{.fd = d->out.fd, .events = POLLIN},
                                      {.fd = d->log.fd, .events = POLLIN}};

                poll(p, 2, 50);
                drain(d);
                if (interrupted)
                        return -EINTR;
                if (!daemon_alive(d))
                        return -EIO;
                if (sql(d, query, v, sizeof(v)) < 0)
                        return -EIO;
                if (strcmp(v, "t") == 0) {
                        drain(d);
                        return 0;
                }
                if (now_ms() > deadline) {
                        log_error("walcastd did not confirm %s within %d s",
                                  what, STEP_TIMEOUT_MS / 1000);
                        return -ETIMEDOUT;
                }
        }
}

/* ---- the workload ------------------------------------------------------ */

static const char *const setup_sql =
    "CREATE SCHEMA \"town6-govikon\";"
    "CREATE SCHEMA \"town6-bern\";"
    "CREATE SCHEMA \"org-acme\";"
    "CREATE TABLE \"town6-govikon\".ticket (id int PRIMARY KEY, title text,"
    " done boolean NOT NULL DEFAULT false);"
    "CREATE TABLE \"town6-bern\".ticket (id int PRIMARY KEY, title text,"
    " done boolean NOT NULL DEFAULT false);"
    "CREATE TABLE \"org-acme\".invoice (id int PRIMARY KEY,"
    " amount numeric(10,2), paid boolean NOT NULL DEFAULT false);";

static const struct step {
        const char *heading;
        const char *sql;
} steps[] = {
    {"insert: four tickets in town6-govikon, one in town6-bern, an invoice "
     "in org-acme",
     "INSERT INTO \"town6-govikon\".ticket (id, title) VALUES"
     " (1, 'water meter'), (2, 'street lamp'), (3, 'park bench'),"
     " (4, 'graffiti');"
     "INSERT INTO \"town6-bern\".ticket (id, title) VALUES (1, 'tram stop');"
     "INSERT INTO \"org-acme\".invoice (id, amount) VALUES (1, 120.50);"},
    {"update: town6-govikon closes ticket 1",
     "UPDATE \"town6-govikon\".ticket SET done = true WHERE id = 1;"},
    {"bulk delete: DELETE FROM \"town6-govikon\".ticket WHERE id > 1 "
     "(each row by its primary key)",
     "DELETE FROM \"town6-govikon\".ticket WHERE id > 1;"},
    {"truncate: TRUNCATE \"town6-bern\".ticket",
     "TRUNCATE \"town6-bern\".ticket;"},
    {"message: pg_logical_emit_message(true, 'walcast-demo', 'hello')",
     "SELECT pg_logical_emit_message(true, 'walcast-demo', 'hello');"},
};

static int run_steps(struct demo *d)
{
        size_t n = sizeof(steps) / sizeof(steps[0]);
        char lsn[64], q[256];
        int r;

        for (size_t i = 0; i < n; i++) {
                say("== %zu/%zu %s\n", i + 1, n, steps[i].heading);
                /* one implicit transaction; synchronous_commit is on, so
                 * the WAL written is flushed past its commit */
                r = sql(d, steps[i].sql, NULL, 0);
                if (r == 0)
                        r = sql(d, "SELECT pg_current_wal_lsn()", lsn,
                                sizeof(lsn));
                if (r < 0)
                        return r;
                snprintf(q, sizeof(q),
                         "SELECT confirmed_flush_lsn >= '%s' FROM "
                         "pg_replication_slots WHERE slot_name = '" DEMO_SLOT
                         "'",
                         lsn);
                r = wait_for(d, q, "the step");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The demo's topics on the user's Kafka, with their message counts. */
static int list_topics(const struct demo *d)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        const struct rd_kafka_metadata *md = NULL;
        char err[512];
        rd_kafka_t *rk;
        rd_kafka_resp_err_t e;
        int found = 0;

        if (rd_kafka_conf_set(conf, "bootstrap.servers", d->bootstrap, err,
                              sizeof(err)) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(conf);
                log_error("bootstrap \"%s\": %s", d->bootstrap, err);
                return -EINVAL;
        }
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk) { /* conf is freed only on success */
                rd_kafka_conf_destroy(conf);
                log_error("could not create a Kafka client: %s", err);
                return -EIO;
        }
        e = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
        if (e) {
                log_error("could not list the topics of %s: %s", d->bootstrap,
                          rd_kafka_err2str(e));
                rd_kafka_destroy(rk);
                return -EIO;
        }
        say("== topics written on %s\n", d->bootstrap);
        for (int i = 0; i < md->topic_cnt; i++) {
                const rd_kafka_metadata_topic_t *t = &md->topics[i];
                int64_t total = 0;

                if (strncmp(t->topic, DEMO_PREFIX ".",
                            strlen(DEMO_PREFIX) + 1) != 0)
                        continue;
                for (int p = 0; p < t->partition_cnt; p++) {
                        int64_t lo = 0, hi = 0;

                        if (!rd_kafka_query_watermark_offsets(
                                rk, t->topic, t->partitions[p].id, &lo, &hi,
                                5000))
                                total += hi - lo;
                }
                say("%s: %lld message%s\n", t->topic, (long long)total,
                    total == 1 ? "" : "s");
                found++;
        }
        if (!found)
                say("(none)\n");
        rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return 0;
}

/* ---- the end ----------------------------------------------------------- */

static void stop_daemon(struct demo *d)
{
        struct pipe_in *pipes[] = {&d->out, &d->log};

        if (d->daemon > 0) {
                stop_child(d->daemon, SIGTERM, 10000);
                d->daemon = 0;
        }
        drain(d);
        for (size_t i = 0; i < 2; i++) {
                if (pipes[i]->fd >= 0)
                        close(pipes[i]->fd);
                pipes[i]->fd = -1;
        }
}

static void teardown(struct demo *d)
{
        stop_daemon(d);
        PQfinish(d->conn);
        d->conn = NULL;
        if (d->postgres > 0) {
                /* fast shutdown, then immediate, then kill */
                stop_child(d->postgres, SIGINT, 30000);
                d->postgres = 0;
        }
        if (d->tmp[0])
                nftw(d->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void print_file(const char *path)
{
        char buf[4096];
        ssize_t n;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                fwrite(buf, 1, (size_t)n, stdout);
        close(fd);
        fflush(stdout);
}

static void print_kept(const struct demo *d)
{
        char psql[PATH_MAX + 32], self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

        self[n > 0 ? n : 0] = '\0';
        snprintf(psql, sizeof(psql), "%s/psql", d->bindir);
        say("\nthe server keeps running, as user %s, PID %ld, in %s:\n"
            "  dsn:     %s\n"
            "  psql:    %s \"%s\"\n"
            "  config:  %s\n"
            "  watch:   %s tail -c %s\n"
            "  stream:  %s -c %s\n"
            "  stop:    kill -INT %ld\n"
            "  remove:  rm -rf %s   (once it has stopped)\n"
            "\n",
            d->user, (long)d->postgres, d->tmp, d->dsn,
            access(psql, X_OK) == 0 ? psql : "psql", d->dsn, d->config,
            n > 0 ? self : "walcast", d->config, d->walcastd, d->config,
            (long)d->postgres, d->tmp);
        say("--- %s:\n", d->config);
        print_file(d->config);
}

static void usage_demo(FILE *f)
{
        fprintf(f, "usage: walcast demo [--keep] [--port N] "
                   "[--sink file|plugin|kafka] [--bootstrap HOST:PORT]\n"
                   "                   [--pg-bindir DIR]\n");
}

static int parse_demo_args(int argc, char **argv, struct demo *d)
{
        static const struct option longopts[] = {
            {"keep", no_argument, NULL, 'k'},
            {"port", required_argument, NULL, 'p'},
            {"sink", required_argument, NULL, 's'},
            {"bootstrap", required_argument, NULL, 'b'},
            {"pg-bindir", required_argument, NULL, 'B'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        char *end;
        long v;
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (c) {
                case 'k':
                        d->keep = true;
                        break;
                case 'p':
                        errno = 0;
                        v = strtol(optarg, &end, 10);
                        if (errno || *end || v < 1024 || v > 65535) {
                                log_error("--port wants a TCP port from 1024 "
                                          "to 65535, not \"%s\"",
                                          optarg);
                                return -EINVAL;
                        }
                        d->port = (int)v;
                        break;
                case 's':
                        if (strcmp(optarg, "file") == 0) {
                                d->sink = SINK_FILE;
                        } else if (strcmp(optarg, "plugin") == 0) {
                                d->sink = SINK_PLUGIN;
                        } else if (strcmp(optarg, "kafka") == 0) {
                                d->sink = SINK_KAFKA;
                        } else {
                                log_error("--sink wants file, plugin or "
                                          "kafka, not \"%s\"",
                                          optarg);
                                return -EINVAL;
                        }
                        break;
                case 'b':
                        d->bootstrap = optarg;
                        break;
                case 'B':
                        d->pg_bindir = optarg;
                        break;
                case 'h':
                        usage_demo(stdout);
                        exit(WC_EXIT_OK);
                default:
                        usage_demo(stderr);
                        return -EINVAL;
                }
        }
        if (optind != argc) {
                log_error("unexpected argument \"%s\"", argv[optind]);
                return -EINVAL;
        }
        if (d->sink == SINK_KAFKA && !d->bootstrap) {
                log_error("--sink kafka needs --bootstrap HOST:PORT, the "
                          "address of a Kafka broker you run");
                return -EINVAL;
        }
        if (d->bootstrap && d->sink != SINK_KAFKA) {
                log_error("--bootstrap goes with --sink kafka");
                return -EINVAL;
        }
        if (d->bootstrap && strpbrk(d->bootstrap, "\"\\\n")) {
                log_error("--bootstrap \"%s\" is not a list of HOST:PORT",
                          d->bootstrap);
                return -EINVAL;
        }
        return 0;
}

int wc_demo_main(int argc, char **argv)
{
        struct demo d = {.out.fd = -1, .log.fd = -1};
        struct sigaction sa = {.sa_handler = on_signal};
        int r;

        if (parse_demo_args(argc, argv, &d) < 0)
                return WC_EXIT_CONFIG;
        /* no SA_RESTART: a wait is interrupted, and then stops */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        /* a closed standard output must not kill us before the cleanup */
        signal(SIGPIPE, SIG_IGN);

        r = find_bindir(&d);
        if (r == 0)
                r = check_wal2json(&d);
        if (r == 0)
                r = find_walcast_parts(&d);
        if (r == 0)
                r = pick_user(&d);
        if (r < 0)
                return WC_EXIT_FAILURE;
        if (interrupted)
                return WC_EXIT_OK; /* nothing started yet */

        r = make_tmp(&d);
        if (r == 0)
                r = init_cluster(&d);
        if (r == 0)
                r = configure_cluster(&d);
        if (r == 0)
                r = start_server(&d);
        if (r < 0)
                goto out;
        say("walcast demo: PostgreSQL %d (%s) as user %s, listening on "
            "127.0.0.1:%d, PID %ld, in %s\n",
            d.major, d.bindir, d.user, d.port, (long)d.postgres, d.tmp);

        d.conn = PQconnectdb(d.dsn);
        if (PQstatus(d.conn) != CONNECTION_OK) {
                log_error("could not connect to the demo server: %s",
                          PQerrorMessage(d.conn));
                r = -EIO;
                goto out;
        }
        r = sql(&d, setup_sql, NULL, 0);
        if (r == 0)
                r = write_config(&d);
        if (r == 0)
                r = start_daemon(&d);
        if (r < 0)
                goto out;
        say("walcast demo: walcastd (%s), PID %ld, config %s, sink %s\n",
            d.walcastd, (long)d.daemon, d.config,
            d.sink == SINK_FILE     ? "file \"-\" (its standard output)"
            : d.sink == SINK_PLUGIN ? d.plugin
                                    : "kafka");
        r = wait_for(&d,
                     "SELECT active FROM pg_replication_slots WHERE "
                     "slot_name = '" DEMO_SLOT "'",
                     "its start");
        if (r == 0)
                r = run_steps(&d);
        if (r == 0 && d.sink == SINK_KAFKA)
                r = list_topics(&d);
        if (r < 0)
                goto out;
        stop_daemon(&d);
        if (d.keep) {
                PQfinish(d.conn);
                print_kept(&d);
                return WC_EXIT_OK;
        }
out:
        teardown(&d);
        if (interrupted) {
                fprintf(stderr,
                        "walcast demo: interrupted: stopped walcastd and the "
                        "server, removed %s\n",
                        d.tmp[0] ? d.tmp : "nothing");
                return WC_EXIT_OK;
        }
        if (r < 0)
                return WC_EXIT_FAILURE;
        if (d.sink != SINK_KAFKA)
                say("walcast demo: done: %ld lines from walcastd\n", d.lines);
        say("walcast demo: stopped walcastd and the server, removed %s\n",
            d.tmp);
        return WC_EXIT_OK;
}
