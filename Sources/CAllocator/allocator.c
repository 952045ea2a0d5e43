// auditd allocates on its event loops (an entry's bytes, its sealed rows) and frees on the
// commit thread. glibc's allocator serves each such free with the owning arena's lock, which
// the event loop that allocates in that arena takes for every allocation: under load the two
// wait on each other (futex wakes from glibc's internal lock were 3 % of the event loops'
// samples with personal fields committed). jemalloc hands a remote free back without that
// lock. Linked by Package.swift into auditd only (`-ljemalloc`, before libc).
//
// jemalloc reads its settings from this symbol as it starts (its manual: "malloc_conf").
// Two arenas for two busy kinds of thread and dirty pages returned after a second keep the
// daemon's peak memory at glibc's (1,000,000 entries through the socket: 172-183 MB against
// 196-212 MB); MALLOC_CONF in the environment still overrides them.
const char *malloc_conf = "narenas:2,dirty_decay_ms:1000";
