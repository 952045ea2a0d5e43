// The machine's floor under a lone writer's ack: two processes on a Unix socket pair, the
// "daemon" doing nothing but what durability needs (write the ~400-byte block, fdatasync,
// answer 62 bytes). Mode 0: no write (the socket round trip alone); 1: append to the file
// (each fdatasync also writes the inode: the size changed); 2: overwrite zeros filled ahead
// (format-spec.md §2.3: the fdatasync writes the block alone).
//
//   gcc -O2 -o /tmp/floor Benchmarks/tools/floor.c && for m in 0 1 2; do /tmp/floor $m DIR; done
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODE(0|1|2) DIR\n", argv[0]);
        return 2;
    }
    int mode = atoi(argv[1]), n = 20000, sv[2];
    char path[4096];
    snprintf(path, sizeof path, "%s/floor.dat", argv[2]);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    pid_t child = fork();
    if (child == 0) {
        close(sv[0]);
        int ep = epoll_create1(0);
        struct epoll_event e = {.events = EPOLLIN};
        epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &e);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) _exit(1);
        if (mode == 2) {
            char *zeros = calloc(1, 1 << 20);
            for (int i = 0; i < 12; i++)
                if (write(fd, zeros, 1 << 20) != 1 << 20) _exit(1);
            fdatasync(fd);
        }
        char b[600];
        off_t off = 0;
        for (;;) {
            struct epoll_event o;
            epoll_wait(ep, &o, 1, -1);
            ssize_t k = read(sv[1], b, sizeof b);
            if (k <= 0) _exit(0);
            if (mode) {
                if (pwrite(fd, b, (size_t)k, off) != k) _exit(1);
                off += k;
                fdatasync(fd);
            }
            if (write(sv[1], b, 62) != 62) _exit(1);
        }
    }
    close(sv[1]);
    double *lat = malloc(sizeof(double) * n);
    char b[600];
    memset(b, 1, sizeof b);
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        if (write(sv[0], b, 412) != 412 || read(sv[0], b, sizeof b) <= 0) return 1;
        lat[i] = now_us() - t0;
    }
    close(sv[0]);
    waitpid(child, NULL, 0);
    unlink(path);
    qsort(lat, n, sizeof(double), by_value);
    const char *what[] = {"socket round trip alone", "append + fdatasync", "overwrite filled zeros + fdatasync"};
    printf("floor, mode %d (%s): p50 %.1f us, p90 %.1f us, p99 %.1f us\n", mode, what[mode % 3], lat[n / 2],
           lat[n * 9 / 10], lat[n * 99 / 100]);
    return 0;
}
