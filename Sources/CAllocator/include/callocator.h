#ifndef CALLOCATOR_H
#define CALLOCATOR_H

// auditd's allocator settings (allocator.c). Nothing to call: linking this target into an
// executable makes jemalloc its allocator, configured as allocator.c says.

#endif
