/*
 * diag.h - diagnostics of both programs, and the error convention.
 *
 * Error convention (every module of server/, rpc/ and common/):
 *   - A function that can fail returns 0, or a descriptor or count, on
 *     success and -1 on failure (false for a bool-returning one).
 *   - Low-level helpers (net.h, fileio.h) say nothing: they leave errno set,
 *     and the caller, who knows what the operation was for, words it.
 *   - A function that can tell more than errno says takes a message buffer,
 *     `char *err, size_t errlen`, and writes one line into it, without the
 *     program's prefix or a newline (as logmac_load_key() does).
 *   - Modules that run on their own (a thread, a start-up step) say it
 *     themselves, once, through diag() below, prefixed with the program's
 *     name ("server: ...", "log_server: ...").
 *
 * diag() writes one line on stderr through the console's ordered stream
 * (console.h): while the console thread runs, the line is queued and never
 * makes the caller wait; before it starts or after it stops, it is written
 * at once.  Nothing in either program writes to stderr by another way.
 */
#ifndef PEERDEX_DIAG_H
#define PEERDEX_DIAG_H

/* One line on stderr (the caller ends it with a newline). */
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "what: <strerror(errno)>" on stderr, as perror() would say it. */
void diag_errno(const char *what);

#endif
