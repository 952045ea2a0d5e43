// Many writers with nothing between them and the socket: W connections, each keeping up to
// DEPTH batches of BATCH APPEND frames in flight (one write(2) a batch), all driven by one
// thread and epoll. It prints entries/s and the p50/p99/max of send -> ACK per entry. It
// measures auditd with a load generator that costs a few microseconds an entry, where
// `auditbench socket` (AuditClient: NIO's loop and Swift's task pool) costs tens on the same
// two cores.
//
// With RATE (entries/s), batches are offered on a schedule instead of as fast as ACKs come
// back: batch k is due at k x BATCH / RATE seconds, goes out on a connection with fewer than
// DEPTH in flight, and each entry's latency counts from when its batch was due, not when it
// could be sent. A daemon that falls behind therefore shows it in the latencies (no
// coordinated omission), and the rate printed is the one achieved. WRITERS_TIMELINE=1 also
// prints, on stderr, the worst latency of the entries due in each 100 ms: when the tail
// happened (at 60,000/s offered it comes with each rotation and seal).
//
//   gcc -O2 -o /tmp/writers Benchmarks/tools/writers.c
//   /tmp/writers ./auditd.sock /tmp/ev1m.ndjson 300000 64 1 1     (64 writers, one entry each)
//   /tmp/writers ./auditd.sock /tmp/ev1m.ndjson 300000 8 128 4    (8 x batch 128 x depth 4)
//   /tmp/writers ./auditd.sock /tmp/ev1m.ndjson 300000 8 32 4 100000   (100,000 a second offered)
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

static void die(const char *what) {
    perror(what);
    exit(1);
}

struct conn {
    int fd;
    int in_flight; // batches sent and not wholly acknowledged
    int owed[64];  // ACKs still owed for each batch in flight, oldest first
    unsigned char buf[1 << 17];
    size_t got;
};

static int want, batch, depth, next_entry, writers;
static unsigned char *frames;
static size_t *start;
static double *sent;
static double rate, t0; // entries/s offered (0: closed loop), and when the run began

// Sends the next batch (up to BATCH entries) on `c`, whose entries count from `t`.
static void send_batch(struct conn *c, double t) {
    int k = want - next_entry < batch ? want - next_entry : batch;
    for (int j = 0; j < k; j++) sent[next_entry + j] = t;
    const unsigned char *p = frames + start[next_entry];
    size_t len = start[next_entry + k] - start[next_entry];
    while (len > 0) {
        ssize_t w = write(c->fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("write to the ingest socket");
        p += w;
        len -= (size_t)w;
    }
    c->owed[c->in_flight++] = k;
    next_entry += k;
}

// Sends the connection's next batches until DEPTH are in flight or no entries are left. The
// write blocks when the socket's buffer is full: DEPTH x BATCH ACKs (62 bytes each) fit in the
// daemon's side, so the daemon never waits on us while we wait on it.
static void fill(struct conn *c) {
    while (c->in_flight < depth && next_entry < want) send_batch(c, now_us());
}

// When the next batch is due (RATE only).
static double due(void) { return t0 + (double)next_entry / rate * 1e6; }

// The next connection, round robin from `turn`, with fewer than DEPTH batches in flight; -1 if
// none has room.
static int with_room(struct conn *cs, int turn) {
    for (int i = 0; i < writers; i++)
        if (cs[(turn + i) % writers].in_flight < depth) return (turn + i) % writers;
    return -1;
}

// Sends every batch due by now, each on the next connection with room; a batch for which none
// has room waits for an ACK, and its latency still counts from when it was due.
static void offer(struct conn *cs) {
    static int turn;
    double t = now_us();
    while (next_entry < want && due() <= t) {
        int i = with_room(cs, turn);
        if (i < 0) return;
        send_batch(&cs[i], due());
        turn = (i + 1) % writers;
    }
}

// Arms `timer` for the next batch's due time (absolute, CLOCK_MONOTONIC like now_us; a time
// already past fires at once), or disarms it when no connection has room: then only an ACK
// can let the next batch go, and each ACK calls `offer`.
static void arm(int timer, struct conn *cs) {
    struct itimerspec at = {0};
    if (next_entry < want && with_room(cs, 0) >= 0) {
        double d = due();
        time_t sec = (time_t)(d / 1e6);
        at.it_value.tv_sec = sec;
        at.it_value.tv_nsec = (long)((d - (double)sec * 1e6) * 1e3);
        if (at.it_value.tv_sec == 0 && at.it_value.tv_nsec == 0) at.it_value.tv_nsec = 1; // 0 would disarm
    }
    if (timerfd_settime(timer, TFD_TIMER_ABSTIME, &at, NULL) != 0) die("timerfd_settime");
}

int main(int argc, char **argv) {
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: %s SOCKET EVENTS.ndjson COUNT WRITERS BATCH DEPTH [RATE]\n", argv[0]);
        return 2;
    }
    want = atoi(argv[3]);
    writers = atoi(argv[4]);
    batch = atoi(argv[5]);
    depth = atoi(argv[6]);
    rate = argc == 8 ? atof(argv[7]) : 0;
    if (want < 1 || writers < 1 || writers > 1024 || batch < 1 || batch > 1024 || depth < 1 || depth > 64 ||
        (argc == 8 && !(rate >= 1 && rate <= 1e8))) {
        fprintf(stderr, "COUNT >= 1, WRITERS 1-1024, BATCH 1-1024, DEPTH 1-64, RATE 1-100000000 entries/s\n");
        return 2;
    }
    // Every frame built before the clock starts: length:u32 type:u8 id:u64 body, little-endian
    // (format-spec.md §9.1); the id is the entry's index + 1, so an ACK names its send time.
    FILE *events = fopen(argv[2], "r");
    if (!events) die("open the events file");
    size_t cap = (size_t)want * 1024, used = 0;
    frames = malloc(cap);
    start = malloc(sizeof(size_t) * ((size_t)want + 1));
    sent = malloc(sizeof(double) * want);
    double *lat = malloc(sizeof(double) * want);
    if (!frames || !start || !sent || !lat) die("malloc");
    static char line[1 << 16];
    int n = 0;
    while (n < want && fgets(line, sizeof line, events)) {
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n') len--;
        if (used + 13 + len > cap) {
            cap = cap * 2 + 13 + len;
            if (!(frames = realloc(frames, cap))) die("realloc");
        }
        uint32_t flen = (uint32_t)(1 + 8 + len);
        uint64_t id = (uint64_t)n + 1;
        start[n] = used;
        memcpy(frames + used, &flen, 4);
        frames[used + 4] = 0x01;
        memcpy(frames + used + 5, &id, 8);
        memcpy(frames + used + 13, line, len);
        used += 13 + len;
        n++;
    }
    start[n] = used;
    want = n;
    if (want == 0) {
        fprintf(stderr, "no events in %s\n", argv[2]);
        return 1;
    }

    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    struct conn *cs = calloc((size_t)writers, sizeof(struct conn));
    if (!cs) die("calloc");
    for (int i = 0; i < writers; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        snprintf(addr.sun_path, sizeof addr.sun_path, "%s", argv[1]);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect to the ingest socket (is auditd running?)");
        cs[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
    }

    // The schedule's clock: a timer in the same epoll set, woken when the next batch is due.
    int timer = -1;
    if (rate > 0) {
        timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
        if (timer < 0) die("timerfd_create");
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, timer, &ev) != 0) die("epoll_ctl");
    }

    // WRITERS_TIMELINE=1: the worst latency of the entries sent in each 100 ms, on stderr at
    // the end, to see when a run's tail happened (for example, at each seal).
    int windows = 36000;
    double *worst = getenv("WRITERS_TIMELINE") ? calloc((size_t)windows, sizeof(double)) : NULL;

    int done = 0, refused = 0;
    t0 = now_us();
    if (rate > 0) {
        offer(cs);
        arm(timer, cs);
    } else {
        for (int i = 0; i < writers; i++) fill(&cs[i]);
    }
    struct epoll_event evs[256];
    while (done + refused < want) {
        int k = epoll_wait(ep, evs, 256, 10000);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            fprintf(stderr, "no ACK for 10 s (%d of %d acknowledged)\n", done, want);
            return 1;
        }
        double t = now_us();
        for (int e = 0; e < k; e++) {
            if (evs[e].data.u32 == UINT32_MAX) {
                uint64_t fired;
                if (read(timer, &fired, sizeof fired) < 0 && errno != EAGAIN) die("read the timer");
                continue;
            }
            struct conn *c = &cs[evs[e].data.u32];
            ssize_t r = read(c->fd, c->buf + c->got, sizeof c->buf - c->got);
            if (r <= 0) {
                fprintf(stderr, "the daemon closed a connection (%d of %d acknowledged)\n", done, want);
                return 1;
            }
            c->got += (size_t)r;
            size_t at = 0;
            while (c->got - at >= 13) {
                uint32_t flen;
                memcpy(&flen, c->buf + at, 4);
                if (flen < 9 || flen > sizeof c->buf - 4) {
                    fprintf(stderr, "a reply frame of %u bytes: not the protocol\n", flen);
                    return 1;
                }
                if (c->got - at < 4 + (size_t)flen) break;
                unsigned char type = c->buf[at + 4];
                uint64_t id;
                memcpy(&id, c->buf + at + 5, 8);
                if (id < 1 || id > (uint64_t)want) {
                    fprintf(stderr, "a reply names entry %llu, never sent\n", (unsigned long long)id);
                    return 1;
                }
                if (type == 0x81) {
                    lat[done++] = t - sent[id - 1];
                    if (worst) {
                        int w = (int)((sent[id - 1] - t0) / 1e5);
                        if (w >= 0 && w < windows && t - sent[id - 1] > worst[w]) worst[w] = t - sent[id - 1];
                    }
                } else {
                    if (refused++ == 0)
                        fprintf(stderr, "entry %llu refused: %.*s\n", (unsigned long long)id,
                                (int)(flen > 11 ? flen - 11 : 0), c->buf + at + 15);
                }
                if (--c->owed[0] == 0) {
                    memmove(c->owed, c->owed + 1, sizeof(int) * (size_t)(--c->in_flight));
                }
                at += 4 + (size_t)flen;
            }
            memmove(c->buf, c->buf + at, c->got - at);
            c->got -= at;
            if (rate == 0) fill(c);
        }
        if (rate > 0) {
            offer(cs);
            arm(timer, cs);
        }
    }
    double secs = (now_us() - t0) / 1e6;
    if (worst)
        for (int w = 0; w < windows && w < (int)(secs * 10) + 1; w++)
            fprintf(stderr, "%6.1f s: worst %.2f ms\n", w / 10.0, worst[w] / 1e3);
    if (done == 0) return 1;
    qsort(lat, done, sizeof(double), by_value);
    char offered[64] = "";
    if (rate > 0) snprintf(offered, sizeof offered, ", %d/s offered", (int)rate);
    printf("writers (C): %d durable entries by %d connections (batch %d, depth %d%s): %.2f s, %d entries/s; "
           "ack p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d refused\n",
           done, writers, batch, depth, offered, secs, (int)(done / secs), lat[done / 2] / 1e3,
           lat[done * 99 / 100] / 1e3, lat[done - 1] / 1e3, refused);
    return refused ? 1 : 0;
}
