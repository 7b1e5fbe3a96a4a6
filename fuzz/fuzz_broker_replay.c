/*
 * fuzz_broker_replay.c - libFuzzer target for start-up recovery: a journal
 * whose records are all intact (checksums right) but whose contents are
 * whatever the fuzzer makes of them.
 *
 * Input: records as [type u8][length u16 little-endian][payload], cut short
 * wherever the input ends. They are written to a fresh journal with the
 * journal's own writer (so the CRCs are valid and the decoder, not the
 * scanner, is what sees the garbage), then a one-loop broker is started on
 * it: replay, the start-up snapshot, then a clean free. Records that name
 * unknown sessions or messages, give duplicate packet ids, reorder session
 * lifetimes and so on must be skipped, never crash, never leak (ASan and
 * LeakSanitizer watch). The seed corpus holds real journals converted to
 * this format.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "broker/broker.h"
#include "journal/journal.h"
#include "net/loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void remove_tree(const char *root, const char *jdir)
{
	DIR *d = opendir(jdir);
	if (d) {
		struct dirent *e;
		char path[512];
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s", jdir, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(jdir);
	rmdir(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char root[] = "/tmp/mote-fuzz-replay-XXXXXX";
	char jdir[sizeof root + 16];
	mote_log_setup(MOTE_LOG_OFF, NULL);
	if (!mkdtemp(root))
		return 0;
	snprintf(jdir, sizeof jdir, "%s/journal", root);

	struct journal_opts jo = { .dir = jdir, .sync = JOURNAL_SYNC_NONE };
	struct journal *j = NULL;
	if (journal_open(&jo, NULL, NULL, &j, NULL) != MOTE_OK) {
		remove_tree(root, jdir);
		return 0;
	}
	size_t off = 0;
	while (off + 3 <= size) {
		uint8_t type = data[off];
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		off += 3;
		if (len > size - off)
			len = size - off;
		uint64_t lsn;
		if (type != 0)
			journal_append(j, type, data + off, len, &lsn);
		off += len;
	}
	journal_commit(j);
	journal_close(j);

	struct loop *loop = NULL;
	struct broker *b = NULL;
	if (loop_new(&loop) == MOTE_OK) {
		struct broker_config cfg;
		broker_config_defaults(&cfg);
		cfg.threads = 1;
		cfg.sys_interval_s = 0;
		cfg.persist_dir = jdir;
		cfg.fsync = BROKER_FSYNC_NONE;
		if (broker_new(&cfg, NULL, loop, &b) == MOTE_OK)
			broker_free(b);
		loop_free(loop);
	}
	remove_tree(root, jdir);
	return 0;
}
