/*
 * fileio.h - writing files so that what is written stays: every byte
 * written (past short writes and EINTR), a directory entry made durable,
 * a file replaced as a whole or not at all.  Error convention: diag.h
 * (0, or -1 with errno set; nothing printed).
 */
#ifndef PEERDEX_FILEIO_H
#define PEERDEX_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Write all len bytes of buf to fd.  0, or -1 with errno set. */
int write_all(int fd, const void *buf, size_t len);

/* Write all len bytes of buf to fd at offset off.  0, or -1 with errno set. */
int pwrite_all(int fd, const void *buf, size_t len, off_t off);

/* fsync a directory, so that a file created or renamed in it stays. */
int fsync_dir(const char *dir);

/* fsync the directory that holds path (a rename to path then stays). */
int fsync_parent(const char *path);

/*
 * Replace the file at path by len bytes of data, atomically: written to
 * path.tmp, fsync'd, renamed over path, and the directory fsync'd, so a
 * crash leaves the old file or the new one.  0, or -1 with errno set (the
 * temporary file removed).
 */
int file_replace(const char *path, const void *data, size_t len, mode_t mode);

#endif
