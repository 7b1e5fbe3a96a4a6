/* fuzz_audit_verify.c - `mote audit verify` reads any file: it either
 * verifies every line or names the first bad one with a reason, and never
 * reports more verified records than the file has lines. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "audit/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	int fd = memfd_create("audit", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	struct audit_verify_result r;
	enum mote_err e = audit_verify(path, &r);
	size_t lines = 0;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (e == MOTE_OK && (r.bad_line != 0 || r.records > lines))
		__builtin_trap();
	if (e == MOTE_EMALFORMED && (r.bad_line == 0 || r.why[0] == '\0' || r.records >= r.bad_line))
		__builtin_trap();
	close(fd);
	return 0;
}
