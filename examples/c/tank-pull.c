/*
 * tank-pull: pull an image from an OCI / Docker registry into an OCI image
 * layout directory with one libtank call, tank_pull (or tank_pull_unpack
 * with --rootfs: the image's root filesystem unpacked into DIR as well).
 *
 *   tank-pull REGISTRY REPO REFERENCE OUTDIR [--platform os/arch[/variant]] [--jobs N] [--rootfs DIR]
 *   tank-pull IMAGE-REFERENCE OUTDIR [--platform os/arch[/variant]] [--jobs N] [--rootfs DIR]
 *
 * REFERENCE is a tag or a digest; REGISTRY may start with http:// or https://.
 * IMAGE-REFERENCE is what docker pull takes ("alpine", "ghcr.io/o/r:1.2",
 * "localhost:5000/x@sha256:..."). Without --platform an index is resolved
 * for this host; --jobs is how many blobs arrive at once (default 4).
 *
 * --rootfs DIR: each layer is applied into DIR (which must not exist) as it
 * arrives; DIR appears whole, in one rename, once every layer is in.
 *
 * stdout: "name:", "digest:" (the image manifest) and "layout:" lines, and
 * "rootfs:" with --rootfs.
 * stderr: a progress line while stderr is a terminal; on failure
 * "tank-pull: <reason id>: <message>". SIGINT or SIGTERM cancels the pull
 * and leaves OUTDIR valid, its partial blobs resumed by the same command
 * run again; a second signal quits at once.
 *
 * Exit status: 0 pulled, 1 the pull failed, 2 usage error, 130 cancelled.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tank.h"

#define PROG "tank-pull"
#define USAGE                                                                                    \
    "usage: " PROG " REGISTRY REPO REFERENCE OUTDIR [--platform os/arch[/variant]] [--jobs N]" \
    " [--rootfs DIR]\n"                                                                            \
    "       " PROG " IMAGE-REFERENCE OUTDIR [--platform os/arch[/variant]] [--jobs N]"           \
    " [--rootfs DIR]\n"

static sigset_t watched; /* SIGINT and SIGTERM cancel; SIGUSR1 ends the watcher */
static atomic_bool pull_over;
static atomic_bool progress_shown;

/* tank_cancel_trigger takes a lock, so it is not async-signal-safe: no
 * handler calls it. Every thread blocks the signals (tank's threads inherit
 * main's mask) and this one takes them with sigwait. */
static void *watch_signals(void *cancel)
{
    for (int seen = 0;;) {
        int sig;
        if (sigwait(&watched, &sig) != 0 || atomic_load(&pull_over))
            return NULL;
        if (sig == SIGUSR1)
            continue;
        if (seen++)
            _exit(130);
        fprintf(stderr, "%s%s: interrupted (%s), cancelling; again to quit at once\n",
                atomic_load(&progress_shown) ? "\n" : "", PROG,
                sig == SIGINT ? "SIGINT" : "SIGTERM");
        tank_cancel_trigger(cancel);
    }
}

/* 1536 -> "1.5 KiB" */
static const char *human(uint64_t n, char buf[24])
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    for (; v >= 1024 && u < 4; u++)
        v /= 1024;
    snprintf(buf, 24, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
    return buf;
}

static void show_progress(void *name, uint64_t done, uint64_t total)
{
    char a[24], b[24];
    if (total)
        fprintf(stderr, "\r\033[K%s: %s of %s, %.0f%%", (const char *)name, human(done, a),
                human(total, b), 100.0 * (double)done / (double)total);
    else
        fprintf(stderr, "\r\033[K%s: %s", (const char *)name, human(done, a));
    atomic_store(&progress_shown, true);
}

static void report(const TankError *err)
{
    unsigned http = tank_error_http_status(err);
    const char *reason = tank_error_reason(err), *msg = tank_error_message(err);
    const char *body = tank_error_body(err);
    reason = reason ? reason : "unknown";
    fprintf(stderr, "%s: %s: %s", PROG, reason, msg ? msg : "(no message)");
    if (http && strcmp(reason, "http_status") != 0)
        fprintf(stderr, " (HTTP %u)", http);
    if (body && *body)
        fprintf(stderr, "\n%s: the registry said: %.*s", PROG, (int)strcspn(body, "\n"), body);
    fputc('\n', stderr);
}

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "%s: %s%s\n" USAGE, PROG, what, arg);
    return 2;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]: the value, else NULL. */
static const char *option(char **argv, int argc, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    *missing = *i + 1 == argc;
    return *missing ? NULL : argv[++*i];
}

int main(int argc, char **argv)
{
    const char *pos[4], *platform = NULL, *jobs_arg = NULL, *rootfs = NULL, *v;
    int npos = 0;
    bool missing = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return fputs(USAGE, stdout), 0;
        if ((v = option(argv, argc, &i, "--platform", &missing)))
            platform = v;
        else if ((v = option(argv, argc, &i, "--jobs", &missing)))
            jobs_arg = v;
        else if ((v = option(argv, argc, &i, "--rootfs", &missing)))
            rootfs = v;
        else if (missing)
            return usage_error("a value must follow ", argv[i]);
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return usage_error("unknown option ", argv[i]);
        else if (npos == 4)
            return usage_error("too many arguments at ", argv[i]);
        else
            pos[npos++] = argv[i];
    }
    if (npos != 2 && npos != 4)
        return usage_error("expected 2 or 4 arguments", "");
    for (int k = 0; k < npos; k++)
        if (!*pos[k])
            return usage_error("an argument is empty", "");
    unsigned long jobs = 0;
    if (jobs_arg) {
        char *end;
        jobs = strtoul(jobs_arg, &end, 10);
        if (*jobs_arg < '0' || *jobs_arg > '9' || *end || jobs == 0 || jobs > UINT32_MAX)
            return usage_error("--jobs takes a whole number from 1, not ", jobs_arg);
    }
    const char *p = platform ? strchr(platform, '/') : NULL;
    if (platform && (!p || p == platform || !p[1] || p[1] == '/'))
        return usage_error("--platform takes os/arch[/variant], not ", platform);
    if (rootfs && !*rootfs)
        return usage_error("--rootfs takes a directory", "");

    char *reference;
    const char *outdir = pos[npos - 1];
    if (npos == 4) {
        const char *registry = pos[0], *tag_or_digest = pos[2];
        /* "myhost/repo" would name Docker Hub's "myhost/repo" */
        if (!strstr(registry, "://") && !strpbrk(registry, ".:") && strcmp(registry, "localhost"))
            return usage_error("REGISTRY is not a host: write it host:port or https://", registry);
        size_t n = strlen(registry) + strlen(pos[1]) + strlen(tag_or_digest) + 3;
        if (!(reference = malloc(n)))
            return perror(PROG), 1;
        snprintf(reference, n, "%s/%s%c%s", registry, pos[1],
                 strchr(tag_or_digest, ':') ? '@' : ':', tag_or_digest);
    } else if (!(reference = strdup(pos[0]))) {
        return perror(PROG), 1;
    }

    /* Before any tank call: threads started from here on block them too. */
    sigemptyset(&watched);
    sigaddset(&watched, SIGUSR1);
    int stops[] = {SIGINT, SIGTERM};
    for (int k = 0; k < 2; k++) {
        struct sigaction was;
        /* One ignored on entry (a background job's SIGINT) stays ignored. */
        if (sigaction(stops[k], NULL, &was) == 0 && was.sa_handler != SIG_IGN)
            sigaddset(&watched, stops[k]);
    }
    pthread_sigmask(SIG_BLOCK, &watched, NULL);

    TankReference ref = {0};
    TankManifest image = {0};
    TankError *err = NULL;
    TankCache *cache = NULL;
    TankCancel *cancel = NULL;
    pthread_t watcher;
    bool watching = false;
    int rc = 1;
    if (tank_reference_parse(reference, &ref, &err) != TANK_OK) {
        report(err);
        rc = 2;
        goto out;
    }
    if (!(cache = tank_cache_new()) || !(cancel = tank_cancel_new()) ||
        pthread_create(&watcher, NULL, watch_signals, cancel) != 0) {
        fprintf(stderr, "%s: cannot set up the pull (out of memory or threads)\n", PROG);
        goto out;
    }
    watching = true;

    TankProgressFn shown = isatty(STDERR_FILENO) ? show_progress : NULL;
    TankStatus st =
        rootfs ? tank_pull_unpack(reference, outdir, rootfs, platform, (uint32_t)jobs, 0, cache,
                                  cancel, shown, (void *)ref.name, &image, &err)
               : tank_pull(reference, outdir, platform, (uint32_t)jobs, cache, cancel, shown,
                           (void *)ref.name, &image, &err);
    if (atomic_load(&progress_shown))
        fputc('\n', stderr);
    if (st == TANK_OK) {
        printf("name:   %s\ndigest: %s\nlayout: %s\n", ref.name, image.digest, outdir);
        if (rootfs)
            printf("rootfs: %s\n", rootfs);
        rc = 0;
    } else {
        report(err);
        if (st == TANK_ERR_CANCELLED) {
            fprintf(stderr, "%s: %s keeps what arrived; the same command resumes it\n", PROG,
                    outdir);
            if (rootfs)
                fprintf(stderr, "%s: nothing was left at %s\n", PROG, rootfs);
            rc = 130;
        }
    }

out:
    if (watching) {
        atomic_store(&pull_over, true);
        pthread_kill(watcher, SIGUSR1);
        pthread_join(watcher, NULL);
    }
    tank_manifest_release(&image);
    tank_reference_release(&ref);
    tank_error_free(err);
    tank_cache_free(cache);
    tank_cancel_free(cancel);
    free(reference);
    return rc;
}
