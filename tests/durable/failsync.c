/*
 * failsync.c - an LD_PRELOAD shim for the state directory tests: while the
 * file named by $FAILSYNC_FLAG exists, fdatasync() fails with EIO (as a
 * disk that lost a write does); otherwise it is the real system call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int fdatasync(int fd)
{
    const char *flag = getenv("FAILSYNC_FLAG");
    if (flag != NULL && access(flag, F_OK) == 0) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fdatasync, fd);
}
