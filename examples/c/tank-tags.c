/*
 * tank-tags: list a repository's tags, or a registry's catalog, with one
 * libtank call, tank_tags (or tank_catalog), every page followed.
 *
 *   tank-tags REGISTRY REPO    the tags of REPO, one a line
 *   tank-tags REGISTRY         the repositories of REGISTRY, one a line
 *
 * REGISTRY is host[:port] and may start with http:// or https://.
 * Credentials come from the usual auth files (REGISTRY_AUTH_FILE, then
 * podman's and docker's), as tank_cache_load_auth_config finds them.
 *
 * stdout: the names, in the registry's order.
 * stderr: on failure "tank-tags: <reason id>: <message>".
 *
 * Exit status: 0 listed, 1 the listing failed, 2 usage error (a REGISTRY or
 * REPO tank refuses too).
 */
#include <stdio.h>
#include <string.h>

#include "tank.h"

#define PROG "tank-tags"
#define USAGE "usage: " PROG " REGISTRY [REPO]\n"

static int failed(TankError *err)
{
    const char *reason = tank_error_reason(err), *msg = tank_error_message(err);
    unsigned http = tank_error_http_status(err);
    fprintf(stderr, "%s: %s: %s", PROG, reason ? reason : "unknown", msg ? msg : "(no message)");
    if (http && reason && strcmp(reason, "http_status") != 0)
        fprintf(stderr, " (HTTP %u)", http);
    fputc('\n', stderr);
    tank_error_free(err);
    return 1;
}

/* The listing's exit status: 0 listed, 1 failed, 2 bad input. */
static int list(TankCache *cache, const char *registry, const char *repo)
{
    TankError *err = NULL;
    TankStrings names = {0};
    if (tank_cache_load_auth_config(cache, NULL, &err) != TANK_OK)
        return failed(err);
    TankStatus listed = repo ? tank_tags(registry, repo, cache, NULL, &names, &err)
                             : tank_catalog(registry, cache, NULL, &names, &err);
    if (listed != TANK_OK) {
        failed(err);
        return listed == TANK_ERR_BAD_INPUT ? 2 : 1;
    }
    for (size_t i = 0; i < names.len; i++)
        puts(names.items[i]);
    tank_strings_release(&names);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || argv[1][0] == '-') {
        fputs(USAGE, stderr);
        return 2;
    }
    TankCache *cache = tank_cache_new();
    if (!cache) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        return 1;
    }
    int status = list(cache, argv[1], argc == 3 ? argv[2] : NULL);
    tank_cache_free(cache);
    return status;
}
