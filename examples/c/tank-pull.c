/*
 * tank-pull: pull one image from an OCI / Docker registry with libtank and
 * write it to a directory as an OCI image layout.
 *
 *   tank-pull REGISTRY REPO REFERENCE OUTDIR [--platform os/arch[/variant]]
 *
 * It does what an image puller does: fetch the top manifest; when that is an
 * index (manifest list), pick one platform out of it (the host's unless
 * --platform says otherwise) and fetch that image manifest by digest; then
 * fetch the config blob and every layer blob. All the calls share one
 * TankCache, so a bearer token is earned once for the whole pull.
 *
 * OUTDIR receives:
 *   oci-layout                {"imageLayoutVersion":"1.0.0"}
 *   blobs/<algo>/<hex>        the top index (if any), the image manifest (raw
 *                             bytes as sent), the config and every layer
 *   index.json                one descriptor: the chosen image manifest
 *
 * Exit status: 0 on success, 1 when the pull fails, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "tank.h"

#define PROG "tank-pull"

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *or_empty(const char *s) { return s ? s : ""; }

static bool is_empty(const char *s) { return s == NULL || *s == '\0'; }

static bool str_eq(const char *a, const char *b) { return strcmp(or_empty(a), or_empty(b)) == 0; }

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* Heap-allocated formatted string; NULL when out of memory. */
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = malloc((size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* "application/foo+json; charset=utf-8" -> length of "application/foo+json" */
static size_t media_type_len(const char *mt)
{
    size_t n = strcspn(mt, ";");
    while (n > 0 && (mt[n - 1] == ' ' || mt[n - 1] == '\t'))
        n--;
    return n;
}

static bool media_type_is(const char *mt, const char *want)
{
    if (mt == NULL)
        return false;
    size_t n = media_type_len(mt);
    return n == strlen(want) && strncmp(mt, want, n) == 0;
}

/* ------------------------------------------------------------------------ */
/* error reporting                                                          */

/* tank-pull: <what failed>: <reason id> [HTTP <status>]: <message> */
static void report_tank_error(const char *what, TankStatus st, const TankError *err)
{
    if (err == NULL) {
        fprintf(stderr, "%s: %s: status %d: (no error details)\n", PROG, what, (int)st);
        return;
    }
    const char *reason = tank_error_reason(err);
    const char *message = tank_error_message(err);
    uint16_t http = tank_error_http_status(err);
    fprintf(stderr, "%s: %s: %s", PROG, what, is_empty(reason) ? "unknown" : reason);
    if (http != 0)
        fprintf(stderr, " HTTP %u", (unsigned)http);
    fprintf(stderr, ": %s\n", is_empty(message) ? "(no message)" : message);
}

static void report_errno(const char *what, const char *path)
{
    fprintf(stderr, "%s: %s %s: %s\n", PROG, what, path, strerror(errno));
}

/* ------------------------------------------------------------------------ */
/* platforms                                                                */

typedef struct Platform {
    char os[64];
    char arch[64];
    char variant[64]; /* "" when none */
} Platform;

static void platform_format(const Platform *p, char *buf, size_t len)
{
    if (p->variant[0])
        snprintf(buf, len, "%s/%s/%s", p->os, p->arch, p->variant);
    else
        snprintf(buf, len, "%s/%s", p->os, p->arch);
}

/* "os/arch[/variant]"; false when malformed. */
static bool platform_parse(const char *s, Platform *p)
{
    char *parts[3] = {p->os, p->arch, p->variant};
    size_t idx = 0;
    memset(p, 0, sizeof *p);
    for (const char *c = s;; c++) {
        if (*c == '/' || *c == '\0') {
            size_t n = strlen(parts[idx]);
            if (n == 0)
                return false; /* empty segment */
            if (*c == '\0')
                break;
            if (++idx == 3)
                return false; /* too many segments */
            continue;
        }
        size_t n = strlen(parts[idx]);
        if (n + 1 >= sizeof p->os)
            return false;
        parts[idx][n] = *c;
    }
    return idx >= 1;
}

/* The host's platform, spelled the way image indexes spell it. */
static void platform_host(Platform *p)
{
    struct utsname u;
    memset(p, 0, sizeof *p);
    snprintf(p->os, sizeof p->os, "linux");
    if (uname(&u) != 0) {
        snprintf(p->arch, sizeof p->arch, "amd64");
        return;
    }
    const char *m = u.machine;
    static const struct {
        const char *machine, *arch, *variant;
    } map[] = {
        {"x86_64", "amd64", ""},    {"amd64", "amd64", ""},     {"i386", "386", ""},
        {"i486", "386", ""},        {"i586", "386", ""},        {"i686", "386", ""},
        {"aarch64", "arm64", "v8"}, {"arm64", "arm64", "v8"},   {"armv8l", "arm", "v7"},
        {"armv7l", "arm", "v7"},    {"armv7", "arm", "v7"},     {"armv6l", "arm", "v6"},
        {"armv6", "arm", "v6"},     {"armv5tel", "arm", "v5"},  {"armv5tejl", "arm", "v5"},
        {"ppc64le", "ppc64le", ""}, {"ppc64", "ppc64", ""},     {"s390x", "s390x", ""},
        {"riscv64", "riscv64", ""}, {"mips64", "mips64", ""},   {"mips64el", "mips64le", ""},
        {"loongarch64", "loong64", ""},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(m, map[i].machine) == 0) {
            snprintf(p->arch, sizeof p->arch, "%s", map[i].arch);
            snprintf(p->variant, sizeof p->variant, "%s", map[i].variant);
            return;
        }
    }
    snprintf(p->arch, sizeof p->arch, "%.63s", m);
}

static bool is_attestation(const TankDescriptor *d)
{
    return str_eq(d->os, "unknown") && str_eq(d->architecture, "unknown");
}

/*
 * exact: os, architecture and variant all equal (absent == absent).
 * relaxed: os and architecture equal; a requested variant must match, except
 *          that arm64 without a variant and arm64/v8 are the same thing.
 */
static bool platform_matches(const Platform *want, const TankDescriptor *d, bool exact)
{
    if (is_attestation(d))
        return false;
    if (!str_eq(want->os, d->os) || !str_eq(want->arch, d->architecture))
        return false;
    const char *have = or_empty(d->variant);
    if (strcmp(want->variant, have) == 0)
        return true;
    if (exact)
        return false;
    if (want->variant[0] == '\0')
        return true;
    if (strcmp(want->arch, "arm64") == 0 && strcmp(want->variant, "v8") == 0 && have[0] == '\0')
        return true;
    return false;
}

static const TankDescriptor *platform_pick(const Platform *want, const TankManifest *index)
{
    for (int pass = 0; pass < 2; pass++) {
        bool exact = pass == 0;
        for (size_t i = 0; i < index->manifests_len; i++) {
            if (platform_matches(want, &index->manifests[i], exact))
                return &index->manifests[i];
        }
    }
    return NULL;
}

static void print_available(const TankManifest *index, FILE *out)
{
    size_t shown = 0;
    for (size_t i = 0; i < index->manifests_len; i++) {
        const TankDescriptor *d = &index->manifests[i];
        if (is_attestation(d))
            continue;
        if (is_empty(d->variant))
            fprintf(out, "  %s/%s  %s\n", or_empty(d->os), or_empty(d->architecture),
                    or_empty(d->digest));
        else
            fprintf(out, "  %s/%s/%s  %s\n", or_empty(d->os), or_empty(d->architecture),
                    d->variant, or_empty(d->digest));
        shown++;
    }
    if (shown == 0)
        fprintf(out, "  (none)\n");
}

/* ------------------------------------------------------------------------ */
/* the OCI layout on disk                                                   */

/* mkdir -p */
static bool mkdir_p(const char *path)
{
    if (*path == '\0') {
        errno = ENOENT;
        report_errno("cannot create directory", "\"\"");
        return false;
    }
    char *p = xstrdup(path);
    if (!p) {
        errno = ENOMEM;
        report_errno("cannot create directory", path);
        return false;
    }
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        p[--len] = '\0';
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char saved = *c;
        *c = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            report_errno("cannot create directory", p);
            free(p);
            return false;
        }
        *c = saved;
        if (saved == '\0')
            break;
    }
    struct stat st;
    bool ok = true;
    if (stat(p, &st) != 0) {
        report_errno("cannot create directory", p);
        ok = false;
    } else if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        report_errno("cannot create directory", p);
        ok = false;
    }
    free(p);
    return ok;
}

/* Write the file through "<path>.tmp" + rename, so a file that exists is whole. */
static bool write_file(const char *path, const void *data, size_t len)
{
    char *tmp = xasprintf("%s.tmp", path);
    if (!tmp) {
        errno = ENOMEM;
        report_errno("cannot write", path);
        return false;
    }
    bool ok = false;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        report_errno("cannot create", tmp);
        goto out;
    }
    if (len > 0 && fwrite(data, 1, len, f) != len) {
        report_errno("cannot write", tmp);
        fclose(f);
        unlink(tmp);
        goto out;
    }
    if (fclose(f) != 0) {
        report_errno("cannot write", tmp);
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        report_errno("cannot rename into place:", path);
        unlink(tmp);
        goto out;
    }
    ok = true;
out:
    free(tmp);
    return ok;
}

/*
 * "algo:encoded" -> "OUTDIR/blobs/algo/encoded", creating the directory.
 * The digest came from a registry, so it is checked before it becomes a
 * path: algorithm [a-z0-9+._-] (not leading with a separator), encoded part
 * [A-Za-z0-9=_-], nothing else (no '/', no "..").
 */
static char *blob_path(const char *outdir, const char *digest)
{
    const char *colon = digest ? strchr(digest, ':') : NULL;
    if (!colon || colon == digest || colon[1] == '\0') {
        fprintf(stderr, "%s: refusing malformed digest \"%s\"\n", PROG, or_empty(digest));
        return NULL;
    }
    for (const char *c = digest; c < colon; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                  (c != digest && (*c == '+' || *c == '.' || *c == '_' || *c == '-'));
        if (!ok) {
            fprintf(stderr, "%s: refusing malformed digest \"%s\"\n", PROG, digest);
            return NULL;
        }
    }
    for (const char *c = colon + 1; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '=' || *c == '_' || *c == '-';
        if (!ok) {
            fprintf(stderr, "%s: refusing malformed digest \"%s\"\n", PROG, digest);
            return NULL;
        }
    }
    int algo_len = (int)(colon - digest);
    char *dir = xasprintf("%s/blobs/%.*s", outdir, algo_len, digest);
    if (!dir) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        return NULL;
    }
    if (!mkdir_p(dir)) {
        free(dir);
        return NULL;
    }
    char *path = xasprintf("%s/%s", dir, colon + 1);
    free(dir);
    if (!path)
        fprintf(stderr, "%s: out of memory\n", PROG);
    return path;
}

static bool write_blob(const char *outdir, const char *digest, const void *data, size_t len)
{
    char *path = blob_path(outdir, digest);
    if (!path)
        return false;
    bool ok = write_file(path, data, len);
    free(path);
    return ok;
}

/* A growable string, for index.json. */
typedef struct Buf {
    char *data;
    size_t len, cap;
    bool oom;
} Buf;

static void buf_putn(Buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_puts(Buf *b, const char *s) { buf_putn(b, s, strlen(s)); }

/* A JSON string literal, quotes included. Bytes >= 0x80 pass through (UTF-8). */
static void buf_put_json_string(Buf *b, const char *s)
{
    buf_puts(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        switch (*c) {
        case '"': buf_puts(b, "\\\""); break;
        case '\\': buf_puts(b, "\\\\"); break;
        case '\b': buf_puts(b, "\\b"); break;
        case '\f': buf_puts(b, "\\f"); break;
        case '\n': buf_puts(b, "\\n"); break;
        case '\r': buf_puts(b, "\\r"); break;
        case '\t': buf_puts(b, "\\t"); break;
        default:
            if (*c < 0x20 || *c == 0x7f) {
                snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*c);
                buf_puts(b, esc);
            } else {
                buf_putn(b, (const char *)c, 1);
            }
        }
    }
    buf_puts(b, "\"");
}

/* A tag is a reference that is not a digest (a tag can never contain ':'). */
static bool reference_is_tag(const char *reference) { return strchr(reference, ':') == NULL; }

/* "registry/repo:tag" or "registry/repo@digest", for messages. */
static const char *ref_sep(const char *reference) { return reference_is_tag(reference) ? ":" : "@"; }

static bool write_index_json(const char *outdir, const char *media_type, size_t mt_len,
                             const char *digest, uint64_t size, const char *reference)
{
    Buf b = {0};
    char num[32];
    char *mt = malloc(mt_len + 1);
    if (mt) {
        memcpy(mt, media_type, mt_len);
        mt[mt_len] = '\0';
    } else {
        b.oom = true;
    }
    buf_puts(&b, "{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"" MT_OCI_INDEX "\",\n"
                 "  \"manifests\": [\n    {\n      \"mediaType\": ");
    if (mt)
        buf_put_json_string(&b, mt);
    buf_puts(&b, ",\n      \"digest\": ");
    buf_put_json_string(&b, digest);
    snprintf(num, sizeof num, "%" PRIu64, size);
    buf_puts(&b, ",\n      \"size\": ");
    buf_puts(&b, num);
    if (reference_is_tag(reference)) {
        buf_puts(&b, ",\n      \"annotations\": {\n        \"org.opencontainers.image.ref.name\": ");
        buf_put_json_string(&b, reference);
        buf_puts(&b, "\n      }");
    }
    buf_puts(&b, "\n    }\n  ]\n}\n");
    free(mt);

    bool ok = false;
    char *path = xasprintf("%s/index.json", outdir);
    if (b.oom || !path)
        fprintf(stderr, "%s: out of memory\n", PROG);
    else
        ok = write_file(path, b.data, b.len);
    free(path);
    free(b.data);
    return ok;
}

static bool write_oci_layout(const char *outdir)
{
    static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}\n";
    char *path = xasprintf("%s/oci-layout", outdir);
    if (!path) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        return false;
    }
    bool ok = write_file(path, layout, sizeof layout - 1);
    free(path);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* the pull                                                                 */

typedef struct Pull {
    const char *registry, *repo, *reference, *outdir;
    TankCache *cache;
    size_t blobs;
    uint64_t bytes;
} Pull;

static void print_blob_line(const char *digest, uint64_t size, double seconds)
{
    printf("%s %" PRIu64 " bytes %.3fs\n", digest, size, seconds);
    fflush(stdout);
}

static bool is_index(const TankManifest *m)
{
    return m->manifests_len > 0 || media_type_is(m->media_type, MT_OCI_INDEX) ||
           media_type_is(m->media_type, MT_DOCKER_LIST);
}

/* Fetch one blob, check it against its descriptor, store it. */
static bool pull_blob(Pull *p, const char *what, const TankDescriptor *d)
{
    TankBytes bytes = {0};
    TankError *err = NULL;
    bool ok = false;

    if (is_empty(d->digest)) {
        fprintf(stderr, "%s: %s: descriptor without a digest\n", PROG, what);
        return false;
    }
    double t0 = now_seconds();
    /* The descriptor's size bounds the read: a registry cannot make us
       buffer more than the blob can be. */
    TankStatus st = tank_blob_sized(p->registry, p->repo, d->digest, d->size, p->cache, &bytes, &err);
    double dt = now_seconds() - t0;
    if (st != TANK_OK) {
        char *label = xasprintf("%s %s", what, d->digest);
        report_tank_error(label ? label : what, st, err);
        free(label);
        goto out;
    }
    if ((uint64_t)bytes.len != d->size) {
        fprintf(stderr, "%s: %s %s: size mismatch: manifest says %" PRIu64 " bytes, got %zu\n",
                PROG, what, d->digest, d->size, bytes.len);
        goto out;
    }
    if (!write_blob(p->outdir, d->digest, bytes.data, bytes.len))
        goto out;
    print_blob_line(d->digest, (uint64_t)bytes.len, dt);
    p->blobs++;
    p->bytes += bytes.len;
    ok = true;
out:
    tank_error_free(err);
    tank_bytes_release(&bytes);
    return ok;
}

/* Was this digest already stored by this pull (config == layer, repeated layer)? */
static bool seen_before(const TankManifest *m, size_t layer_index)
{
    const char *dg = m->layers[layer_index].digest;
    if (m->config && str_eq(m->config->digest, dg))
        return true;
    for (size_t i = 0; i < layer_index; i++)
        if (str_eq(m->layers[i].digest, dg))
            return true;
    return false;
}

static int run(Pull *p, const Platform *want, bool platform_given)
{
    TankManifest top = {0}, image = {0};
    TankError *err = NULL;
    int rc = 1;
    char what[512];
    char plat[200];
    const TankManifest *chosen = &top;
    const char *chosen_mt = NULL; /* media type for index.json */
    double start = now_seconds();

    platform_format(want, plat, sizeof plat);
    printf("pulling %s/%s%s%s for %s%s into %s (libtank %s)\n", p->registry, p->repo,
           ref_sep(p->reference), p->reference, plat, platform_given ? "" : " (host)", p->outdir,
           or_empty(tank_version()));
    fflush(stdout);

    if (!mkdir_p(p->outdir) || !write_oci_layout(p->outdir))
        goto out;

    /* 1. the top manifest: an index or an image manifest */
    double t0 = now_seconds();
    TankStatus st = tank_manifest(p->registry, p->repo, p->reference, p->cache, &top, &err);
    double dt = now_seconds() - t0;
    if (st != TANK_OK) {
        snprintf(what, sizeof what, "manifest %s/%s%s%s", p->registry, p->repo,
                 ref_sep(p->reference), p->reference);
        report_tank_error(what, st, err);
        goto out;
    }
    if (is_empty(top.digest)) {
        fprintf(stderr, "%s: manifest %s: no digest\n", PROG, p->reference);
        goto out;
    }

    if (is_index(&top)) {
        /* 2. pick the platform, fetch its image manifest by digest */
        if (!write_blob(p->outdir, top.digest, top.raw, top.raw_len))
            goto out;
        print_blob_line(top.digest, (uint64_t)top.raw_len, dt);
        p->blobs++;
        p->bytes += top.raw_len;

        const TankDescriptor *d = platform_pick(want, &top);
        if (!d) {
            fprintf(stderr, "%s: %s/%s%s%s has no image for platform %s; available:\n", PROG,
                    p->registry, p->repo, ref_sep(p->reference), p->reference, plat);
            print_available(&top, stderr);
            goto out;
        }
        if (is_empty(d->digest)) {
            fprintf(stderr, "%s: index entry for %s has no digest\n", PROG, plat);
            goto out;
        }
        printf("index %s: picked %s/%s%s%s %s\n", top.digest, or_empty(d->os),
               or_empty(d->architecture), is_empty(d->variant) ? "" : "/", or_empty(d->variant),
               d->digest);
        fflush(stdout);

        t0 = now_seconds();
        st = tank_manifest(p->registry, p->repo, d->digest, p->cache, &image, &err);
        dt = now_seconds() - t0;
        if (st != TANK_OK) {
            snprintf(what, sizeof what, "manifest %s", d->digest);
            report_tank_error(what, st, err);
            goto out;
        }
        if (!str_eq(image.digest, d->digest)) {
            fprintf(stderr, "%s: manifest %s: registry answered with %s\n", PROG, d->digest,
                    or_empty(image.digest));
            goto out;
        }
        if ((uint64_t)image.raw_len != d->size) {
            fprintf(stderr,
                    "%s: manifest %s: size mismatch: index says %" PRIu64 " bytes, got %zu\n",
                    PROG, d->digest, d->size, image.raw_len);
            goto out;
        }
        if (is_index(&image)) {
            fprintf(stderr, "%s: manifest %s: nested index, expected an image manifest\n", PROG,
                    d->digest);
            goto out;
        }
        chosen = &image;
        chosen_mt = d->media_type;
    } else {
        if (platform_given)
            printf("note: %s is a single image manifest; --platform %s not checked\n",
                   p->reference, plat);
    }

    if (chosen->config == NULL) {
        fprintf(stderr, "%s: manifest %s: no config descriptor (not an image manifest?)\n",
                PROG, chosen->digest);
        goto out;
    }

    /* 3. the image manifest itself */
    if (!write_blob(p->outdir, chosen->digest, chosen->raw, chosen->raw_len))
        goto out;
    print_blob_line(chosen->digest, (uint64_t)chosen->raw_len, dt);
    p->blobs++;
    p->bytes += chosen->raw_len;

    /* 4. the config and every layer */
    if (!pull_blob(p, "config", chosen->config))
        goto out;
    for (size_t i = 0; i < chosen->layers_len; i++) {
        if (seen_before(chosen, i))
            continue;
        snprintf(what, sizeof what, "layer %zu/%zu", i + 1, chosen->layers_len);
        if (!pull_blob(p, what, &chosen->layers[i]))
            goto out;
    }

    /* 5. index.json last: a layout with an index.json is a complete one */
    {
        /* what the index said, else the Content-Type the manifest came with */
        const char *mt = chosen_mt;
        if (is_empty(mt) || media_type_len(mt) == 0)
            mt = chosen->media_type;
        if (is_empty(mt) || media_type_len(mt) == 0)
            mt = "application/vnd.oci.image.manifest.v1+json";
        if (!write_index_json(p->outdir, mt, media_type_len(mt), chosen->digest,
                              (uint64_t)chosen->raw_len, p->reference))
            goto out;
    }

    printf("pulled %s/%s%s%s (%s, %zu layers): %zu blobs, %" PRIu64 " bytes in %.3fs -> %s\n",
           p->registry, p->repo, ref_sep(p->reference), p->reference, chosen->digest,
           chosen->layers_len, p->blobs, p->bytes, now_seconds() - start, p->outdir);
    rc = 0;
out:
    tank_error_free(err);
    tank_manifest_release(&image);
    tank_manifest_release(&top);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s REGISTRY REPO REFERENCE OUTDIR [--platform os/arch[/variant]]\n"
            "  e.g. %s 127.0.0.1:5000 library/alpine latest ./alpine --platform linux/arm64\n"
            "Pulls an image and writes it to OUTDIR as an OCI image layout.\n"
            "Without --platform, an index is resolved for the host's platform.\n",
            PROG, PROG);
}

int main(int argc, char **argv)
{
    const char *positional[4];
    size_t npos = 0;
    const char *platform_arg = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--platform") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: --platform needs a value\n", PROG);
                usage(stderr);
                return 2;
            }
            platform_arg = argv[++i];
        } else if (strncmp(a, "--platform=", 11) == 0) {
            platform_arg = a + 11;
        } else if (strcmp(a, "--") != 0 && a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "%s: unknown option %s\n", PROG, a);
            usage(stderr);
            return 2;
        } else if (strcmp(a, "--") == 0) {
            continue;
        } else {
            if (npos == 4) {
                fprintf(stderr, "%s: too many arguments\n", PROG);
                usage(stderr);
                return 2;
            }
            positional[npos++] = a;
        }
    }
    if (npos != 4) {
        usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < 4; i++) {
        if (positional[i][0] == '\0') {
            fprintf(stderr, "%s: empty argument\n", PROG);
            usage(stderr);
            return 2;
        }
    }

    Platform want;
    if (platform_arg) {
        if (!platform_parse(platform_arg, &want)) {
            fprintf(stderr, "%s: bad --platform \"%s\", expected os/arch[/variant]\n", PROG,
                    platform_arg);
            return 2;
        }
    } else {
        platform_host(&want);
    }

    Pull p = {
        .registry = positional[0],
        .repo = positional[1],
        .reference = positional[2],
        .outdir = positional[3],
    };
    p.cache = tank_cache_new();
    if (!p.cache) {
        fprintf(stderr, "%s: tank_cache_new failed\n", PROG);
        return 1;
    }
    int rc = run(&p, &want, platform_arg != NULL);
    tank_cache_free(p.cache);
    return rc;
}
