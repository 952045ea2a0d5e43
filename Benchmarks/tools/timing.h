// What every tool here shares: a monotonic clock in microseconds and a qsort comparator for
// latencies. Included by path from the tool's own folder: gcc finds it with no -I.
#ifndef AUDITLOG_TOOLS_TIMING_H
#define AUDITLOG_TOOLS_TIMING_H
#include <time.h>

static inline double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static inline int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
#endif
