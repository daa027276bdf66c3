/*
 * hashdir.c - bounded parallelism, as in Go's "Pipelines and cancellation"
 * (MD5All, bounded version): one task walks a directory tree and sends
 * file paths, a fixed number of digester tasks hash them, and the results
 * are collected, sorted and printed.  The hash is 64-bit FNV-1a, written
 * out below, so the example needs nothing but libcsp.
 *
 *   func walkFiles(done <-chan struct{}, root string) (<-chan string, <-chan error)
 *   func digester(done <-chan struct{}, paths <-chan string, c chan<- result) {
 *       for path := range paths {
 *           data, err := ioutil.ReadFile(path)
 *           select {
 *           case c <- result{path, md5.Sum(data), err}:
 *           case <-done:
 *               return
 *           }
 *       }
 *   }
 *   // Start a fixed number of goroutines to read and digest files.
 *   for i := 0; i < numDigesters; i++ { go func() { digester(done, paths, c); wg.Done() }() }
 *   go func() { wg.Wait(); close(c) }()
 *
 * Usage: hashdir [-j N] DIR
 * Prints "<16 hex digits>  <path relative to DIR>" for every regular file
 * under DIR, sorted by path, then a summary line.  As in Go, the first
 * error (an unreadable file or directory) cancels the whole pipeline: it
 * is printed to stderr and the exit status is 1.
 *
 * Ownership: a path string belongs to whoever holds it last: the walker
 * allocates it, a send hands it to a digester, the result hands it to the
 * collector, which frees it.  A path whose send was cancelled is freed by
 * the sender.  Channels: each task holds its own reference.
 */
#include <csp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- FNV-1a, 64 bits ------------------------------------------------------- */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* ---- the walker ------------------------------------------------------------ */

struct result {
    char *path;                           /* relative to the root */
    uint64_t hash;
    long long size;
    int err;                              /* 0 or an errno value */
};

struct walk_env {
    csp_chan *done, *paths, *errc;
    char *root;
};

/* Sends path (ownership included) unless done closes first.  0 if sent. */
static int send_path(struct walk_env *e, char *path)
{
    csp_case cs[2] = { CSP_SEND(e->paths, &path), CSP_RECV(e->done, NULL) };
    if (csp_select(cs, 2, CSP_FOREVER) == 0 && cs[0].err == 0)
        return 0;
    free(path);
    return -1;
}

static char *join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 2);
    if (!s)
        return NULL;
    memcpy(s, a, na);
    s[na] = '/';
    memcpy(s + na + 1, b, nb + 1);
    return s;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walks root/rel depth first.  0, -1 if cancelled, or an errno value.
 * Entries are visited in name order, which also gives the digesters
 * their work in a reproducible order. */
static int walk(struct walk_env *e, const char *rel)
{
    char *dir = *rel ? join(e->root, rel) : strdup(e->root);
    if (!dir)
        return ENOMEM;
    DIR *d = opendir(dir);
    if (!d) {
        int err = errno;
        fprintf(stderr, "hashdir: %s: %s\n", dir, strerror(err));
        free(dir);
        return err;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int err = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                err = ENOMEM;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) {
            err = ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n && !err; i++) {
        char *sub = *rel ? join(rel, names[i]) : strdup(names[i]);
        char *full = sub ? join(e->root, sub) : NULL;
        struct stat st;
        if (!sub || !full) {
            err = ENOMEM;
        } else if (lstat(full, &st) != 0) {
            err = errno;
            fprintf(stderr, "hashdir: %s: %s\n", full, strerror(err));
        } else if (S_ISDIR(st.st_mode)) {
            err = walk(e, sub);
        } else if (S_ISREG(st.st_mode)) {
            err = send_path(e, sub);
            sub = NULL;                   /* sent or freed */
        }
        free(sub);
        free(full);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(dir);
    return err;
}

static void walker(void *arg)
{
    struct walk_env *e = arg;
    int err = walk(e, "");
    csp_close(e->paths);                  /* defer close(paths) */
    if (err < 0)
        err = 0;                          /* cancelled: not an error */
    csp_send(e->errc, &err);              /* errc has room for it */
    csp_chan_release(e->done);
    csp_chan_release(e->paths);
    csp_chan_release(e->errc);
}

/* ---- the digesters --------------------------------------------------------- */

struct digest_env {
    csp_chan *done, *paths, *results;
    const char *root;
    csp_waitgroup *wg;
};

static void digest_file(const char *root, struct result *r)
{
    char *full = join(root, r->path);
    if (!full) {
        r->err = ENOMEM;
        return;
    }
    int fd = open(full, O_RDONLY);
    r->err = fd < 0 ? errno : 0;
    free(full);
    if (fd < 0)
        return;
    unsigned char *buf = malloc(65536);
    r->hash = FNV_OFFSET;
    ssize_t k = 0;
    while (buf && (k = read(fd, buf, 65536)) > 0) {
        r->hash = fnv1a(r->hash, buf, (size_t)k);
        r->size += k;
    }
    r->err = !buf ? ENOMEM : k < 0 ? errno : 0;
    free(buf);
    close(fd);
}

static void digester(void *arg)
{
    struct digest_env *e = arg;
    char *path;
    CSP_RANGE(e->paths, path) {           /* for path := range paths */
        struct result r = { path, 0, 0, 0 };
        digest_file(e->root, &r);
        csp_case cs[2] = { CSP_SEND(e->results, &r), CSP_RECV(e->done, NULL) };
        if (csp_select(cs, 2, CSP_FOREVER) != 0 || cs[0].err) {
            free(path);
            break;
        }
    }
    csp_chan_release(e->done);
    csp_chan_release(e->paths);
    csp_chan_release(e->results);
    csp_wg_done(e->wg);
}

struct closer_env {
    csp_waitgroup *wg;
    csp_chan *results;
};

static void closer(void *arg)
{
    struct closer_env *e = arg;
    csp_wg_wait(e->wg);                   /* go func() { wg.Wait(); close(c) }() */
    csp_close(e->results);
    csp_chan_release(e->results);
}

/* ---- main ------------------------------------------------------------------ */

struct params {
    char *root;
    int ndigesters;
    int status;
};

static int cmp_results(const void *a, const void *b)
{
    return strcmp(((const struct result *)a)->path, ((const struct result *)b)->path);
}

static void hashdir_main(void *arg)
{
    struct params *p = arg;
    csp_chan *done = csp_chan_make(0, 0);
    csp_chan *paths = csp_chan_make(sizeof(char *), 0);
    csp_chan *errc = csp_chan_make(sizeof(int), 1);
    csp_chan *results = csp_chan_make(sizeof(struct result), 0);
    csp_waitgroup wg = CSP_WAITGROUP_INIT;
    if (!done || !paths || !errc || !results) {
        fprintf(stderr, "hashdir: out of memory\n");
        exit(1);
    }

    struct walk_env we = { csp_chan_retain(done), csp_chan_retain(paths),
                           csp_chan_retain(errc), p->root };
    csp_go_copy(walker, &we, sizeof we);
    for (int i = 0; i < p->ndigesters; i++) {
        struct digest_env de = { csp_chan_retain(done), csp_chan_retain(paths),
                                 csp_chan_retain(results), p->root, &wg };
        csp_wg_add(&wg, 1);
        csp_go_copy(digester, &de, sizeof de);
    }
    struct closer_env ce = { &wg, csp_chan_retain(results) };
    csp_go_copy(closer, &ce, sizeof ce);

    struct result *all = NULL, r;
    size_t n = 0, cap = 0;
    int err = 0;
    CSP_RANGE(results, r) {
        if (r.err && !err) {
            err = r.err;
            fprintf(stderr, "hashdir: %s/%s: %s\n", p->root, r.path, strerror(err));
            csp_close(done);              /* cancel the walker and digesters */
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            struct result *na = realloc(all, cap * sizeof *na);
            if (!na) {
                fprintf(stderr, "hashdir: out of memory\n");
                exit(1);
            }
            all = na;
        }
        all[n++] = r;
    }
    /* results is closed: the digesters are gone.  Now the walker's verdict
     * (in Go: if err := <-errc; err != nil { return nil, err }). */
    int werr = 0;
    csp_recv(errc, &werr);
    if (!err)
        err = werr;

    if (!err) {
        long long bytes = 0;
        if (n > 1)
            qsort(all, n, sizeof *all, cmp_results);
        for (size_t i = 0; i < n; i++) {
            printf("%016llx  %s\n", (unsigned long long)all[i].hash, all[i].path);
            bytes += all[i].size;
        }
        printf("%zu files, %lld bytes, %d digesters\n", n, bytes, p->ndigesters);
    }
    for (size_t i = 0; i < n; i++)
        free(all[i].path);
    free(all);
    p->status = err ? 1 : 0;
    if (!err)
        csp_close(done);
    csp_chan_release(done);
    csp_chan_release(paths);
    csp_chan_release(errc);
    csp_chan_release(results);
    /* wg: the closer's csp_wg_wait has returned (results was closed), so
     * it may go out of scope with this function. */
}

int main(int argc, char **argv)
{
    struct params p = { NULL, 4, 0 };
    int i = 1;
    if (i + 1 < argc && !strcmp(argv[i], "-j")) {
        p.ndigesters = atoi(argv[i + 1]);
        i += 2;
    }
    if (i + 1 != argc || p.ndigesters < 1 || p.ndigesters > 1024) {
        fprintf(stderr, "usage: hashdir [-j N] DIR\n");
        return 2;
    }
    p.root = argv[i];
    size_t len = strlen(p.root);
    while (len > 1 && p.root[len - 1] == '/')
        p.root[--len] = '\0';
    if (csp_run(hashdir_main, &p) != 0)
        return 1;
    return p.status;
}
