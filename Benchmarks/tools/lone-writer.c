// A lone writer with nothing between it and the socket: one APPEND frame in flight, the next
// sent when its ACK is read; prints the p50/p90/p99 of send -> ACK. It measures auditd without
// a client library's own thread hops (auditbench socket --writers 1 --batch 1 --depth 1 adds
// those of AuditClient: NIO's loop and Swift's task pool).
//
//   gcc -O2 -o /tmp/lone-writer Benchmarks/tools/lone-writer.c
//   /tmp/lone-writer ./auditd.sock /tmp/ev1m.ndjson 20000
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s SOCKET EVENTS.ndjson COUNT\n", argv[0]);
        return 2;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", argv[1]);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("connect to the ingest socket (is auditd running?)");
        return 1;
    }
    FILE *events = fopen(argv[2], "r");
    if (!events) {
        perror("open the events file");
        return 1;
    }
    int want = atoi(argv[3]);
    double *lat = malloc(sizeof(double) * (want > 0 ? want : 1));
    static char line[1 << 16];
    static unsigned char frame[(1 << 16) + 13], reply[1 << 16];
    int n = 0;
    while (n < want && fgets(line, sizeof line, events)) {
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n') len--;
        // length:u32 type:u8 id:u64 body, little-endian (format-spec.md §9.1).
        uint32_t flen = (uint32_t)(1 + 8 + len);
        uint64_t id = (uint64_t)n + 1;
        memcpy(frame, &flen, 4);
        frame[4] = 0x01;
        memcpy(frame + 5, &id, 8);
        memcpy(frame + 13, line, len);
        double t0 = now_us();
        if (write(fd, frame, 13 + len) != (ssize_t)(13 + len)) {
            perror("write");
            return 1;
        }
        size_t got = 0;
        uint32_t need = 0;
        for (;;) {
            ssize_t k = read(fd, reply + got, sizeof reply - got);
            if (k <= 0) {
                fprintf(stderr, "the daemon closed the connection\n");
                return 1;
            }
            got += (size_t)k;
            if (got >= 4) {
                memcpy(&need, reply, 4);
                if (got >= 4 + (size_t)need) break;
            }
        }
        lat[n++] = now_us() - t0;
        if (reply[4] != 0x81) {
            fprintf(stderr, "entry %d refused: %.*s\n", n, (int)(need > 11 ? need - 11 : 0), reply + 15);
            return 1;
        }
    }
    if (n == 0) return 1;
    qsort(lat, n, sizeof(double), by_value);
    printf("lone writer (C): %d entries, ack p50 %.1f us, p90 %.1f us, p99 %.1f us\n", n, lat[n / 2],
           lat[n * 9 / 10], lat[n * 99 / 100]);
    return 0;
}
