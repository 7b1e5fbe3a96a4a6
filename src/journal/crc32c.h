/*
 * crc32c.h - CRC32C (Castagnoli), the checksum of journal records.
 *
 * Chosen over CRC32 (zlib) because it detects more error patterns at the
 * sizes we write and has hardware support: SSE4.2 on x86-64 is used when
 * the CPU has it, slicing-by-8 over constant tables otherwise.
 *
 * Threading: stateless, safe from any thread.
 */
#ifndef MOTE_JOURNAL_CRC32C_H
#define MOTE_JOURNAL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

extern const uint32_t crc32c_table[8][256];

/*
 * Continues a CRC: pass 0 to start, then the previous result to chain
 * buffers. crc32c_update(0, "123456789", 9) == 0xe3069283.
 */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);
/* The table version, whatever the CPU (tests compare the two). */
uint32_t crc32c_update_sw(uint32_t crc, const void *buf, size_t len);

#endif
