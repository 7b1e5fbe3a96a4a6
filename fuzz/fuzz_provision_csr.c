/*
 * fuzz_provision_csr.c - the provisioning request handler with arbitrary
 * bytes. The input's first byte is a topic length L: the next L bytes are the
 * topic a claim holder (client id fz-1, claim f) published to, the rest the
 * payload. The tap must accept or ignore any topic, and the handler must
 * answer every payload on $provision/fz-1/rejected with {"error":"..."}: no
 * fuzzed CSR can carry a valid signature over CN=fz-1 by a key the fuzzer
 * does not have, so an issued certificate would be a bug too.
 *
 * A PKI directory (a CA and claim f) is made once under /tmp and removed at
 * exit.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "pki/pki.h"
#include "provision/provision.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libFuzzer's entry points take no context: the fixture lives here. */
static char dir[64] = "/tmp/mote-fuzz-prov-XXXXXX";
static struct provision *prov;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	provision_free(prov);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct mote_pki_init_opts io = { 0 };
	struct mote_pki_claim_opts co = { .prefix = "fz-", .max = 5 };
	struct provision_config pc = { .queue_max = 4 };
	char err[512];

	(void)argc;
	(void)argv;
	mote_log_setup(MOTE_LOG_OFF, NULL);
	if (!mkdtemp(dir) || mote_pki_init(dir, &io, err, sizeof err) ||
	    mote_pki_claim(dir, "f", &co, NULL, NULL, err, sizeof err)) {
		fprintf(stderr, "fuzz_provision_csr: cannot make the PKI: %s\n", err);
		abort();
	}
	pc.pki_dir = dir;
	if (provision_new(&pc, &prov))
		abort();
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char want_topic[] = "$provision/fz-1/rejected";
	static const char want_start[] = "{\"error\":\"";
	struct broker_client c = { .client_id = (const uint8_t *)"fz-1", .client_id_len = 4,
				   .peer = "fuzz", .cert_cn = "claim:f",
				   .cert_uri = "urn:mote:claim:f" };
	struct broker_msg_view m = { 0 };
	const uint8_t *answer;
	size_t tlen, alen, l;
	char *topic;

	if (size == 0)
		return 0;
	l = data[0] < size - 1 ? data[0] : size - 1;
	m.topic = data + 1;
	m.topic_len = (uint16_t)l;
	m.payload = data + 1 + l;
	m.payload_len = (uint32_t)(size - 1 - l);
	m.qos = 1;
	/* Not started: the tap's queue fills, then it answers busy or rate
	 * limited into a bounded list; all of it is freed at exit. */
	provision_tap(prov, &c, &m);

	if (provision_handle(prov, "f", "fz-1", "fuzz", m.payload, m.payload_len, &topic, &tlen,
			     &answer, &alen) != MOTE_OK)
		return 0; /* out of memory */
	if (tlen != sizeof want_topic - 1 || memcmp(topic, want_topic, tlen) != 0 ||
	    alen < sizeof want_start + 1 || memcmp(answer, want_start, sizeof want_start - 1) != 0 ||
	    answer[alen - 1] != '}')
		__builtin_trap();
	free(topic);
	return 0;
}
