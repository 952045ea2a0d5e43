#ifndef AUDITLOG_CCRC32C_H
#define AUDITLOG_CCRC32C_H
#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has the SSE 4.2 CRC32 instruction (CRC-32C in hardware), else 0.
int auditlog_crc32c_hw_available(void);

/// CRC-32C of `n` bytes at `p`, continuing from `crc` (0 to start), with the CRC32
/// instruction. Call only when auditlog_crc32c_hw_available() returned 1.
uint32_t auditlog_crc32c_hw(uint32_t crc, const void *p, size_t n);

#endif
