/*
 * regress_main.c - run fuzz inputs without libFuzzer, as a regression test.
 *
 * Linked (with gcc, in `make test`) with one fuzz target, it feeds every file
 * named on the command line, and every file in every directory named there,
 * to LLVMFuzzerTestOneInput() once.  A broken invariant aborts the run; a
 * clean run prints how many inputs held and exits 0.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input being run, named when a check aborts. */
static const char *current = "";

/* SIGABRT: say which input failed, then die of the signal as usual. */
static void name_input(int sig)
{
    /* write() only: it is safe in a signal handler. */
    static const char prefix[] = "failing input: ";
    (void)!write(2, prefix, sizeof prefix - 1);
    (void)!write(2, current, strlen(current));
    (void)!write(2, "\n", 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Read a whole file into an exactly sized heap block; -1 on error. */
static int read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    struct stat st;
    if (fstat(fileno(f), &st) < 0) {
        fclose(f);
        return -1;
    }
    *size = (size_t)st.st_size;
    *data = malloc(*size ? *size : 1);
    int ok = *data != NULL && fread(*data, 1, *size, f) == *size;
    fclose(f);
    if (!ok) {
        free(*data);
        return -1;
    }
    return 0;
}

/* Feed one file to the target; returns 0, or -1 when it cannot be read. */
static int run_file(const char *path)
{
    uint8_t *data;
    size_t size;
    if (read_file(path, &data, &size) < 0) {
        perror(path);
        return -1;
    }
    current = path;
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

/* Only regular files count as inputs (skips ".", ".." and READMEs' dirs). */
static int is_input(const struct dirent *d)
{
    return d->d_type == DT_REG || d->d_type == DT_UNKNOWN;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    int failed = 0;
    signal(SIGABRT, name_input);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed |= run_file(argv[i]);
            count++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, is_input, alphasort);
        if (n < 0) {
            perror(argv[i]);
            return 1;
        }
        for (int j = 0; j < n; j++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
            failed |= run_file(path);
            count++;
            free(names[j]);
        }
        free(names);
    }
    if (count == 0) {
        fprintf(stderr, "%s: no inputs\n", argv[0]);
        return 1;
    }
    printf("%s: %zu inputs, every check held\n", argv[0], count);
    return failed ? 1 : 0;
}
