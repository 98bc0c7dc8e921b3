/* Scratch directories for the file-system areas.
 *
 * Every case works in its own fresh directory, made by scratch() with mkdtemp under /tmp;
 * P("name") is "<that directory>/name". Whatever is left in the directories is removed when
 * the process exits, so a case that fails half-way (a CHECK returns early) leaves nothing
 * behind. Cases may still remove what they create when the removal is part of the test.
 *
 * Included by the area files only (it is not an area: the runner builds `*.c`). */
#ifndef CONFORMANCE_SCRATCH_H
#define CONFORMANCE_SCRATCH_H

#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH_MAX 64

static char scratch_dirs[SCRATCH_MAX][32];
static int scratch_count;

/* Removes dfd/name and everything below it, without following symbolic links. */
static void scratch_remove_at(int dfd, const char *name, int depth) {
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
        unlinkat(dfd, name, 0);
        return;
    }
    if (depth > 32) return;
    /* A case may have left a directory without permissions (a no-op for root). */
    fchmodat(dfd, name, 0700, 0);
    for (int pass = 0; pass < 4; pass++) {
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) break;
        DIR *d = fdopendir(fd);
        if (!d) {
            close(fd);
            break;
        }
        struct dirent *e;
        /* Bounded, so that a broken directory listing cannot hang the exit. */
        for (int n = 0; n < 10000 && (e = readdir(d)); n++)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                scratch_remove_at(fd, e->d_name, depth + 1);
        closedir(d);
        if (unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno != ENOTEMPTY) return;
    }
}

static void scratch_cleanup(void) {
    for (int i = 0; i < scratch_count; i++) scratch_remove_at(AT_FDCWD, scratch_dirs[i], 0);
}

/* Makes a fresh directory /tmp/conf_XXXXXX (mode 0700); NULL on failure. */
__attribute__((unused)) static const char *scratch(void) {
    if (scratch_count == SCRATCH_MAX) return NULL;
    char *d = scratch_dirs[scratch_count];
    strcpy(d, "/tmp/conf_XXXXXX");
    if (!mkdtemp(d)) return NULL;
    if (scratch_count++ == 0) atexit(scratch_cleanup);
    return d;
}

/* "<latest scratch directory>/name", in one of 8 rotating buffers so that a few may be used
 * in one call. */
__attribute__((unused)) static const char *P(const char *name) {
    static char bufs[8][PATH_MAX];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", scratch_count ? scratch_dirs[scratch_count - 1] : "/nonexistent",
             name);
    return b;
}

/* Creates (or truncates) path with mode 0644 and writes s to it; the count written or -1. */
__attribute__((unused)) static long put_file(const char *path, const char *s) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    long n = write(fd, s, strlen(s));
    if (close(fd) != 0) return -1;
    return n;
}

/* Reads up to size-1 bytes of path into buf and NUL-terminates it; the count read or -1. */
__attribute__((unused)) static long get_file(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    long n = read(fd, buf, size - 1);
    close(fd);
    if (n >= 0) buf[n] = 0;
    return n;
}

/* Does path exist (without following a final symbolic link)? */
__attribute__((unused)) static int exists(const char *path) {
    struct stat st;
    return fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

__attribute__((unused)) static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

#endif
