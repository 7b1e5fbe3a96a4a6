/* test_hub_config.c - hub options from flags and from a config file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/hub.h"

static void defaults_are_safe(void **state)
{
	(void)state;
	struct hub_config cfg;
	bool help;
	char err[256];
	char *argv[] = { "hub", NULL };
	hub_config_defaults(&cfg);
	assert_int_equal(hub_config_parse(&cfg, 1, argv, &help, err, sizeof err), MOTE_OK);
	assert_false(help);
	assert_false(cfg.broker.allow_anonymous);
	assert_int_equal(cfg.mqtt_count, 1);
	assert_string_equal(cfg.mqtt[0], "127.0.0.1:1883"); /* loopback only */
	assert_int_equal(cfg.broker.max_packet_size, 1048576);
	hub_config_free(&cfg);
}

static void flags_set_values(void **state)
{
	(void)state;
	struct hub_config cfg;
	bool help;
	char err[256];
	char *argv[] = { "hub", "--mqtt", "127.0.0.1:1999", "--allow-anonymous", "--receive-max=7",
			 "--connect-timeout", "3", "--log-level", "debug", "--data", "/tmp/x", NULL };
	hub_config_defaults(&cfg);
	assert_int_equal(hub_config_parse(&cfg, 11, argv, &help, err, sizeof err), MOTE_OK);
	assert_true(cfg.broker.allow_anonymous);
	assert_string_equal(cfg.mqtt[0], "127.0.0.1:1999");
	assert_int_equal(cfg.broker.receive_max, 7);
	assert_int_equal(cfg.broker.connect_timeout_ms, 3000);
	assert_int_equal(cfg.log_level, MOTE_LOG_DEBUG);
	assert_string_equal(cfg.data_dir, "/tmp/x");
	hub_config_free(&cfg);
}

/* --pki DIR: the TLS files default to DIR's; given ones win. */
static void pki_defaults_tls_files(void **state)
{
	(void)state;
	struct hub_config cfg;
	bool help;
	char err[256];
	char *argv[] = { "hub", "--mqtts", "127.0.0.1:8883", "--pki", "/srv/pki", "--tls-key",
			 "/other/hub.key", NULL };
	char *bad[] = { "hub", "--pki", "", NULL };
	hub_config_defaults(&cfg);
	assert_int_equal(hub_config_parse(&cfg, 7, argv, &help, err, sizeof err), MOTE_OK);
	assert_string_equal(cfg.pki_dir, "/srv/pki");
	assert_string_equal(cfg.tls_ca, "/srv/pki/ca.pem");
	assert_string_equal(cfg.tls_cert, "/srv/pki/hub.pem");
	assert_string_equal(cfg.tls_key, "/other/hub.key");
	assert_string_equal(cfg.tls_crl, "/srv/pki/crl.pem");
	hub_config_free(&cfg);
	hub_config_defaults(&cfg);
	assert_int_equal(hub_config_parse(&cfg, 3, bad, &help, err, sizeof err), MOTE_EINVAL);
	assert_non_null(strstr(err, "--pki"));
	hub_config_free(&cfg);
}

static void durability_flags(void **state)
{
	(void)state;
	struct hub_config cfg;
	bool help;
	char err[256];
	hub_config_defaults(&cfg);
	assert_true(cfg.persistence);
	assert_int_equal(cfg.broker.fsync, BROKER_FSYNC_ALWAYS);
	assert_int_equal(cfg.broker.queue_full, BROKER_QUEUE_REFUSE_NEWEST);
	char *argv[] = { "hub", "--persistence", "off", "--fsync", "batch", "--fsync-batch-ms",
			 "25", "--queue-full", "drop-oldest", "--max-queued-bytes", "4096",
			 "--allow-anonymous", NULL };
	assert_int_equal(hub_config_parse(&cfg, 12, argv, &help, err, sizeof err), MOTE_OK);
	assert_false(cfg.persistence);
	assert_int_equal(cfg.broker.fsync, BROKER_FSYNC_BATCH);
	assert_int_equal(cfg.broker.fsync_batch_ms, 25);
	assert_int_equal(cfg.broker.queue_full, BROKER_QUEUE_DROP_OLDEST);
	assert_int_equal(cfg.broker.max_queued_bytes, 4096);
	assert_true(cfg.broker.allow_anonymous); /* a bare bool flag still works after */
	char *argv2[] = { "hub", "--persistence=on", "--fsync", "none", NULL };
	assert_int_equal(hub_config_parse(&cfg, 4, argv2, &help, err, sizeof err), MOTE_OK);
	assert_true(cfg.persistence);
	assert_int_equal(cfg.broker.fsync, BROKER_FSYNC_NONE);
	hub_config_free(&cfg);
}

static void bad_flags_say_what_to_do(void **state)
{
	(void)state;
	struct {
		char *argv[4];
		int argc;
		const char *want;
	} cases[] = {
		{ { "hub", "--receive-max", "70000" }, 3, "from 0 to 65535" },
		{ { "hub", "--receive-max", "-1" }, 3, "whole number" },
		{ { "hub", "--nope" }, 2, "unknown option '--nope'" },
		{ { "hub", "--mqtt" }, 2, "needs a value" },
		{ { "hub", "--allow-anonymous=maybe" }, 2, "not true or false" },
		{ { "hub", "--log-level", "loud" }, 3, "not debug, info" },
		{ { "hub", "stray" }, 2, "unexpected argument" },
		{ { "hub", "--fsync", "sometimes" }, 3, "not always, batch or none" },
		{ { "hub", "--queue-full", "drop-newest" }, 3, "not refuse-newest or drop-oldest" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct hub_config cfg;
		bool help;
		char err[256] = "";
		hub_config_defaults(&cfg);
		assert_int_equal(hub_config_parse(&cfg, cases[i].argc, cases[i].argv, &help, err,
						  sizeof err),
				 MOTE_EINVAL);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
		hub_config_free(&cfg);
	}
}

static void websocket_listeners(void **state)
{
	(void)state;
	struct hub_config cfg;
	bool help;
	char err[256] = "";
	char *argv[] = { "hub", "--mqtt", "off", "--ws", "127.0.0.1:8080", "--ws", ":8081",
			 "--wss", "0.0.0.0:8443", "--wss-client-cert", "optional", "--tls-ca", "ca.pem",
			 "--tls-cert", "hub.pem", "--tls-key", "hub.key", NULL };
	hub_config_defaults(&cfg);
	assert_false(cfg.wss_client_cert_optional); /* certificates required by default */
	assert_int_equal(hub_config_parse(&cfg, 17, argv, &help, err, sizeof err), MOTE_OK);
	assert_int_equal(cfg.mqtt_count, 0);
	assert_int_equal(cfg.ws_count, 2);
	assert_string_equal(cfg.ws[1], ":8081");
	assert_int_equal(cfg.wss_count, 1);
	assert_string_equal(cfg.wss[0], "0.0.0.0:8443");
	assert_true(cfg.wss_client_cert_optional);
	hub_config_free(&cfg);

	/* --ws alone is a listener; --wss needs the TLS files; a bad policy */
	char *only_ws[] = { "hub", "--mqtt", "off", "--ws", "127.0.0.1:8080", NULL };
	hub_config_defaults(&cfg);
	assert_int_equal(hub_config_parse(&cfg, 5, only_ws, &help, err, sizeof err), MOTE_OK);
	hub_config_free(&cfg);
	char *no_files[] = { "hub", "--wss", "127.0.0.1:8443", NULL };
	hub_config_defaults(&cfg);
	assert_int_equal(hub_config_parse(&cfg, 3, no_files, &help, err, sizeof err), MOTE_EINVAL);
	assert_non_null(strstr(err, "--wss needs --tls-ca, --tls-cert and --tls-key"));
	hub_config_free(&cfg);
	char *origins[] = { "hub", "--ws", ":8080", "--ws-origin", "https://a.example",
			    "--ws-origin", "http://localhost:3000", NULL };
	hub_config_defaults(&cfg);
	assert_int_equal(hub_config_parse(&cfg, 7, origins, &help, err, sizeof err), MOTE_OK);
	assert_int_equal(cfg.ws_origin_count, 2);
	assert_string_equal(cfg.ws_origins[1], "http://localhost:3000");
	hub_config_free(&cfg);
	char *bad_origin[] = { "hub", "--ws-origin", "dash.example.com", NULL };
	hub_config_defaults(&cfg);
	assert_int_equal(hub_config_parse(&cfg, 3, bad_origin, &help, err, sizeof err),
			 MOTE_EINVAL);
	assert_non_null(strstr(err, "not an origin"));
	hub_config_free(&cfg);
	char *bad[] = { "hub", "--wss-client-cert", "maybe", NULL };
	hub_config_defaults(&cfg);
	assert_int_equal(hub_config_parse(&cfg, 3, bad, &help, err, sizeof err), MOTE_EINVAL);
	assert_non_null(strstr(err, "not required or optional"));
	hub_config_free(&cfg);
}

static void file_then_flags_override(void **state)
{
	(void)state;
	char path[] = "/tmp/mote-config-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "# a comment\n"
			   "mqtt = 127.0.0.1:2001\n"
			   "\n"
			   "allow-anonymous = yes   # trailing comment\n"
			   "receive-max 9\n"
			   "max-queued = 5\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);

	struct hub_config cfg;
	bool help;
	char err[256];
	char *argv[] = { "hub", "--config", path, "--receive-max", "11", NULL };
	hub_config_defaults(&cfg);
	assert_int_equal(hub_config_parse(&cfg, 5, argv, &help, err, sizeof err), MOTE_OK);
	assert_string_equal(cfg.mqtt[0], "127.0.0.1:2001");
	assert_true(cfg.broker.allow_anonymous);
	assert_int_equal(cfg.broker.receive_max, 11); /* flag beats file */
	assert_int_equal(cfg.broker.max_queued, 5);
	hub_config_free(&cfg);
	unlink(path);
}

static void file_errors_name_the_line(void **state)
{
	(void)state;
	const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{ "mqtt = 127.0.0.1:1\nbogus = 1\n", "line 2: unknown option 'bogus'" },
		{ "\n\nreceive-max = lots\n", "line 3: --receive-max" },
		{ "data =\n", "line 1: option 'data' needs a value" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct hub_config cfg;
		char err[256] = "";
		char *copy = strdup(cases[i].text);
		hub_config_defaults(&cfg);
		assert_int_equal(hub_config_parse_text(&cfg, copy, err, sizeof err), MOTE_EINVAL);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
		free(copy);
	}
	struct hub_config cfg;
	bool help;
	char err[256];
	char *argv[] = { "hub", "--config", "/nonexistent/mote.conf", NULL };
	hub_config_defaults(&cfg);
	assert_int_equal(hub_config_parse(&cfg, 3, argv, &help, err, sizeof err), MOTE_EIO);
	assert_non_null(strstr(err, "No such file"));
	hub_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_are_safe),
		cmocka_unit_test(flags_set_values),
		cmocka_unit_test(durability_flags),
		cmocka_unit_test(pki_defaults_tls_files),
		cmocka_unit_test(bad_flags_say_what_to_do),
		cmocka_unit_test(websocket_listeners),
		cmocka_unit_test(file_then_flags_override),
		cmocka_unit_test(file_errors_name_the_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
