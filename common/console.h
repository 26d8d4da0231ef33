/*
 * console.h - the server's console: the `s> ...` lines the protocol asks
 * for, written to stdout by one thread of their own, so that a handler
 * never waits for stdout (a file on a busy disk, a paused terminal, a pipe
 * nobody reads) nor holds a lock across that write.
 *
 * Lines keep the order in which they were submitted.  A submitter never
 * waits for the stream: when a stream's buffer (1 MiB unless told) is full,
 * a line is dropped and counted, and the writer follows what it writes
 * next with one line "console: N lines dropped (...)", as memcached and
 * redis never block serving on their logs.  Under load lines reach stdout
 * within about a millisecond; when idle, at once.  Lines on stderr are the
 * diagnostics of diag.h.
 */
#ifndef PEERDEX_CONSOLE_H
#define PEERDEX_CONSOLE_H

#include <stddef.h>

/*
 * Start the writer thread, with a buffer of `bytes` per stream (0: 1 MiB;
 * at least 256).  Returns 0, or -1 (lines then go out directly).
 */
int console_start(size_t bytes);

/*
 * Queue one formatted line (the caller includes the newline).  Without a
 * running writer (not started, or stopped) the line is written at once, as
 * is a line longer than the whole buffer (once the lines before it are
 * taken: the one case that waits).
 */
void console_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Write every queued line, then end the writer thread. */
void console_stop(void);

/* The size of a buffer that holds any string of n bytes escaped, with its NUL. */
#define CONSOLE_ESCAPED_MAX(n) (4 * (n) + 1)

/*
 * Copy `in` to `out` (`outsz` bytes, NUL included) so that it cannot change
 * what a terminal shows: ASCII controls and DEL, C1 controls (U+0080..U+009F),
 * bidi and other invisible format characters (U+00AD, U+061C, U+180E,
 * U+200B..U+200F, U+2028..U+202E, U+2060..U+206F, U+FEFF, U+FFF9..U+FFFB)
 * become `\u202e`-style escapes, bytes that are not UTF-8 become `\xff`-style
 * escapes; anything else is copied as is, so plain names print unchanged.
 * Stops at a character boundary if `out` is too small.  Returns `out`.
 * For names and paths from the network in console lines.
 */
const char *console_escape(const char *in, char *out, size_t outsz);

#endif
