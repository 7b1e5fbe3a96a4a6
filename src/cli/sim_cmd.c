/*
 * sim_cmd.c - `mote sim`: a simulated fleet of pumps, motors and HVAC units
 * against a hub (src/sim/, docs/sim.md). Parses the options into a struct
 * sim_config, prepares the fleet, runs it until Ctrl-C, SIGTERM or
 * --duration, printing a progress line every 10 s.
 *
 * Signals: SIGINT and SIGTERM are blocked before any thread starts and
 * taken with sigtimedwait() here, so no handler runs inside a worker and a
 * stop always goes through sim_fleet_stop() (every device sends its
 * DISCONNECT). SIGPIPE is ignored: a hub that goes away mid-write is a lost
 * connection to retry, not a reason to die.
 * Exit status: 0 stopped as asked, 1 the fleet could not be prepared, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "base/clock.h"
#include "base/log.h"
#include "cli/cli.h"
#include "sim/sim.h"

#define PROGRESS_S 10
#define DEVICES_MAX 100000u

static void usage(FILE *out)
{
	fprintf(out,
		"usage: mote sim (--mqtt HOST:PORT | --mqtts HOST:PORT) [OPTIONS]\n"
		"\n"
		"Runs a fleet of simulated devices (pumps, motors, HVAC units) against a hub:\n"
		"each one its own MQTT connection (the device SDK), publishing telemetry on\n"
		"dev/ID/telemetry, reporting its twin and obeying desired on, setpoint,\n"
		"interval_ms and fault. Ids are {prefix}{model}-NNN (pump-001, motor-002, ...).\n"
		"Ctrl-C or SIGTERM disconnects every device and exits 0. See docs/sim.md.\n"
		"\n"
		"options:\n"
		"  --mqtt HOST:PORT      the hub's plaintext MQTT listener (tests, demos)\n"
		"  --mqtts HOST:PORT     the hub's mutual-TLS listener: one certificate per\n"
		"                        device (--pki or --certs), the hub checked against the CA\n"
		"  --devices N           fleet size, 1..%u (default 20)\n"
		"  --models LIST         comma-separated models, used round robin\n"
		"                        (default pump,motor,hvac)\n"
		"  --prefix P            put P before every id (letters, digits, . _ -)\n"
		"  --pki DIR             a `mote pki` directory: CA DIR/ca.pem, device\n"
		"                        certificates DIR/devices/ID.pem + .key, issued from the\n"
		"                        fleet CA when missing\n"
		"  --certs DIR           device certificates DIR/ID.pem and DIR/ID.key (made\n"
		"                        elsewhere, or by claim); needs --ca\n"
		"  --claim-cert FILE     provisioning by claim: a device with no certificate in\n"
		"  --claim-key FILE      --certs DIR first connects with this claim certificate\n"
		"                        (`mote pki claim`), sends a CSR for a key it makes and\n"
		"                        keeps the certificate the hub answers with there\n"
		"  --ca FILE             the CA that signed the hub's certificate (default\n"
		"                        DIR/ca.pem with --pki)\n"
		"  --api URL             register every device first through the hub's REST API\n"
		"                        (POST /api/v1/devices: name, model, tags site and line);\n"
		"                        already registered is fine\n"
		"  --token TOKEN         API token of scope write, for --api\n"
		"                        (also read from MOTE_TOKEN)\n"
		"  --api-wait S          wait up to S seconds for an API that is not up yet\n"
		"                        (default 30: the hub may be starting)\n"
		"  --interval-ms MS      telemetry period per device, 100..3600000 (default 1000);\n"
		"                        desired interval_ms changes it per device\n"
		"  --seed N              random seed: the same seed gives the same fleet\n"
		"                        (default 1)\n"
		"  --fault-rate R        random faults per hour across the whole fleet\n"
		"                        (overheat, bearing, stuck, dropout; default 0); a fault\n"
		"                        stays until desired fault is set to null\n"
		"  --speed X             simulated seconds per real second for the physics\n"
		"                        (default 1; timestamps stay real time)\n"
		"  --duration S          stop after S seconds (default: run until stopped)\n"
		"  --threads N           worker threads (event loops), default min(4, CPUs)\n"
		"  --connect-rate R      new connections per second across the fleet\n"
		"                        (default 200); reconnects back off 0.5 s to 30 s\n"
		"  --quiet               no progress line (warnings and errors still print)\n"
		"  --verbose             log every connection failure and loss\n"
		"  -h, --help            this text\n",
		DEVICES_MAX);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("mote sim: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see mote sim --help)\n", stderr);
	return 2;
}

/* "HOST:PORT" or "[v6]:PORT" into host (malloc'd) and port. */
static bool split_addr(const char *s, char **host, uint16_t *port)
{
	const char *colon, *h = s, *he;
	char *end;
	long p;

	if (*s == '[') {
		he = strchr(s, ']');
		if (!he || he[1] != ':')
			return false;
		h = s + 1;
		colon = he + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return false;
		he = colon;
	}
	if (he == h)
		return false;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p < 1 || p > 65535)
		return false;
	*host = strndup(h, (size_t)(he - h));
	*port = (uint16_t)p;
	return *host != NULL;
}

static bool parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return !errno && !*end && *out <= max;
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;

	if (!s || !*s)
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return !errno && !*end && *out >= lo && *out <= hi;
}

static bool prefix_ok(const char *p)
{
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

static bool parse_models(const char *s, struct sim_config *c)
{
	c->nmodels = 0;
	while (*s) {
		const char *e = strchr(s, ',');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		enum sim_model m = sim_model_parse(s, n);
		if (m == SIM_MODEL_COUNT || c->nmodels == sizeof c->models / sizeof c->models[0])
			return false;
		c->models[c->nmodels++] = m;
		s += n;
		if (*s == ',')
			s++;
		else
			break;
	}
	return c->nmodels > 0 && s[-1] != ',';
}

static sigset_t stop_set;

static bool stop_pending(void *ctx)
{
	sigset_t pend;
	(void)ctx;

	if (sigpending(&pend) != 0)
		return false;
	return sigismember(&pend, SIGINT) || sigismember(&pend, SIGTERM);
}

static void progress(struct sim_fleet *f, struct sim_stats *prev, double secs)
{
	struct sim_stats s;

	sim_fleet_stats(f, &s);
	double rate = secs > 0 ? (double)(s.telemetry - prev->telemetry) / secs : 0;
	fprintf(stderr,
		"mote sim: %u/%u connected, %.1f msgs/s, %llu reconnects, %llu twin reports\n",
		s.connected, s.devices, rate, (unsigned long long)s.reconnects,
		(unsigned long long)s.reports);
	*prev = s;
}

enum {
	O_MQTT = 256, O_MQTTS, O_DEVICES, O_MODELS, O_PREFIX, O_PKI, O_CERTS, O_CA, O_API,
	O_TOKEN, O_INTERVAL, O_SEED, O_FAULT_RATE, O_SPEED, O_DURATION, O_THREADS,
	O_CONNECT_RATE, O_QUIET, O_VERBOSE, O_API_WAIT, O_CLAIM_CERT, O_CLAIM_KEY,
};

int cli_sim(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mqtt", required_argument, NULL, O_MQTT },
		{ "mqtts", required_argument, NULL, O_MQTTS },
		{ "devices", required_argument, NULL, O_DEVICES },
		{ "models", required_argument, NULL, O_MODELS },
		{ "prefix", required_argument, NULL, O_PREFIX },
		{ "pki", required_argument, NULL, O_PKI },
		{ "certs", required_argument, NULL, O_CERTS },
		{ "ca", required_argument, NULL, O_CA },
		{ "claim-cert", required_argument, NULL, O_CLAIM_CERT },
		{ "claim-key", required_argument, NULL, O_CLAIM_KEY },
		{ "api", required_argument, NULL, O_API },
		{ "token", required_argument, NULL, O_TOKEN },
		{ "api-wait", required_argument, NULL, O_API_WAIT },
		{ "interval-ms", required_argument, NULL, O_INTERVAL },
		{ "seed", required_argument, NULL, O_SEED },
		{ "fault-rate", required_argument, NULL, O_FAULT_RATE },
		{ "speed", required_argument, NULL, O_SPEED },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "connect-rate", required_argument, NULL, O_CONNECT_RATE },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "verbose", no_argument, NULL, O_VERBOSE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sim_config cfg = { .devices = 20, .interval_ms = 1000, .seed = 1, .speed = 1.0,
				  .connect_rate = 200, .api_wait_ms = 30000 };
	const char *mqtt = NULL, *mqtts = NULL;
	char *host = NULL;
	double duration = 0;
	bool quiet = false;
	unsigned long long v;
	int o, rc = 2;

	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case O_MQTT: mqtt = optarg; break;
		case O_MQTTS: mqtts = optarg; break;
		case O_DEVICES:
			if (!parse_uint(optarg, DEVICES_MAX, &v) || v == 0)
				return usage_error("--devices wants a number from 1 to %u, not '%s'",
						   DEVICES_MAX, optarg);
			cfg.devices = (unsigned)v;
			break;
		case O_MODELS:
			if (!parse_models(optarg, &cfg))
				return usage_error("--models wants a comma-separated list of pump, "
						   "motor, hvac, not '%s'", optarg);
			break;
		case O_PREFIX:
			if (!prefix_ok(optarg) || strlen(optarg) > 48)
				return usage_error("--prefix may hold up to 48 letters, digits and "
						   ". _ -, not '%s'", optarg);
			cfg.prefix = optarg;
			break;
		case O_PKI: cfg.pki_dir = optarg; break;
		case O_CERTS: cfg.certs_dir = optarg; break;
		case O_CA: cfg.ca_file = optarg; break;
		case O_CLAIM_CERT: cfg.claim_cert = optarg; break;
		case O_CLAIM_KEY: cfg.claim_key = optarg; break;
		case O_API: cfg.api_url = optarg; break;
		case O_TOKEN: cfg.token = optarg; break;
		case O_API_WAIT: {
			double w;
			if (!parse_double(optarg, 0, 3600, &w))
				return usage_error("--api-wait wants seconds from 0 to 3600, not '%s'",
						   optarg);
			cfg.api_wait_ms = (uint32_t)(w * 1000);
			break;
		}
		case O_INTERVAL:
			if (!parse_uint(optarg, 3600000, &v) || v < 100)
				return usage_error("--interval-ms wants milliseconds from 100 to "
						   "3600000, not '%s'", optarg);
			cfg.interval_ms = (uint32_t)v;
			break;
		case O_SEED:
			if (!parse_uint(optarg, UINT64_MAX, &v))
				return usage_error("--seed wants a non-negative integer, not '%s'",
						   optarg);
			cfg.seed = v;
			break;
		case O_FAULT_RATE:
			if (!parse_double(optarg, 0, 1e6, &cfg.fault_rate))
				return usage_error("--fault-rate wants faults per hour (0 or more), "
						   "not '%s'", optarg);
			break;
		case O_SPEED:
			if (!parse_double(optarg, 0.001, 1e6, &cfg.speed))
				return usage_error("--speed wants a factor from 0.001 to 1000000, "
						   "not '%s'", optarg);
			break;
		case O_DURATION:
			if (!parse_double(optarg, 0.001, 1e9, &duration))
				return usage_error("--duration wants seconds (more than 0), not '%s'",
						   optarg);
			break;
		case O_THREADS:
			if (!parse_uint(optarg, 256, &v) || v == 0)
				return usage_error("--threads wants a number from 1 to 256, not '%s'",
						   optarg);
			cfg.threads = (unsigned)v;
			break;
		case O_CONNECT_RATE:
			if (!parse_uint(optarg, 1000000, &v) || v == 0)
				return usage_error("--connect-rate wants connections per second "
						   "(1 or more), not '%s'", optarg);
			cfg.connect_rate = (unsigned)v;
			break;
		case O_QUIET: quiet = true; break;
		case O_VERBOSE: cfg.verbose = true; break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!mqtt == !mqtts)
		return usage_error("give the hub's address with --mqtt HOST:PORT (plaintext) or "
				   "--mqtts HOST:PORT (mutual TLS), one of the two");
	if (!split_addr(mqtt ? mqtt : mqtts, &host, &cfg.port))
		return usage_error("%s wants HOST:PORT (e.g. 127.0.0.1:1883), not '%s'",
				   mqtt ? "--mqtt" : "--mqtts", mqtt ? mqtt : mqtts);
	cfg.host = host;
	cfg.tls = mqtts != NULL;
	if (cfg.tls && !cfg.pki_dir && !cfg.certs_dir) {
		rc = usage_error("--mqtts needs device certificates: --pki DIR (issued from the "
				 "fleet CA when missing) or --certs DIR with --ca FILE");
		goto out;
	}
	if (cfg.pki_dir && cfg.certs_dir) {
		rc = usage_error("--pki and --certs are alternatives: give one");
		goto out;
	}
	if (cfg.certs_dir && !cfg.ca_file) {
		rc = usage_error("--certs needs --ca FILE (the CA that signed the hub)");
		goto out;
	}
	if (!cfg.tls && (cfg.pki_dir || cfg.certs_dir || cfg.ca_file || cfg.claim_cert)) {
		rc = usage_error("--pki, --certs, --ca and --claim-cert are for --mqtts");
		goto out;
	}
	if (!cfg.claim_cert != !cfg.claim_key) {
		rc = usage_error("--claim-cert and --claim-key go together");
		goto out;
	}
	if (cfg.claim_cert && !cfg.certs_dir) {
		rc = usage_error("--claim-cert needs --certs DIR: where the certificates the "
				 "devices get by claim are kept");
		goto out;
	}
	if (cfg.token && !cfg.api_url) {
		rc = usage_error("--token is for --api URL");
		goto out;
	}
	if (cfg.api_url && !cfg.token)
		cfg.token = getenv("MOTE_TOKEN");
	if (cfg.api_url && (!cfg.token || !*cfg.token)) {
		rc = usage_error("--api needs --token TOKEN (scope write; mote token create "
				 "--scope write)");
		goto out;
	}
	{
		char id[SIM_ID_MAX];
		if (sim_device_id(&cfg, cfg.devices - 1, id, sizeof id) == 0 || strlen(id) > 64) {
			rc = usage_error("device ids must stay within 64 characters: use a shorter "
					 "--prefix");
			goto out;
		}
	}

	/* Before any thread exists: workers inherit the mask. */
	struct sigaction ign = { .sa_handler = SIG_IGN };
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, NULL);
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGINT);
	sigaddset(&stop_set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
	mote_log_setup(MOTE_LOG_INFO, stderr);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cfg.cancelled = stop_pending;

	struct sim_fleet *f = NULL;
	char err[1024];
	enum mote_err e = sim_fleet_new(&cfg, &f, err, sizeof err);
	if (e == MOTE_EAGAIN) {
		rc = 0; /* stopped while preparing: as asked */
		goto out_curl;
	}
	if (e != MOTE_OK) {
		fprintf(stderr, "mote sim: %s\n", err);
		rc = 1;
		goto out_curl;
	}
	if (sim_fleet_start(f, err, sizeof err) != MOTE_OK) {
		fprintf(stderr, "mote sim: %s\n", err);
		sim_fleet_free(f);
		rc = 1;
		goto out_curl;
	}
	if (!quiet)
		fprintf(stderr, "mote sim: %u devices (%s) against %s%s, Ctrl-C to stop\n",
			cfg.devices, cfg.tls ? "mutual TLS" : "plaintext", mqtt ? mqtt : mqtts,
			cfg.api_url ? ", registered" : "");
	uint64_t start = mote_mono_ms(), last = start;
	struct sim_stats prev;
	sim_fleet_stats(f, &prev);
	for (;;) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 250000000L };
		int sig = sigtimedwait(&stop_set, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		uint64_t now = mote_mono_ms();
		if (duration > 0 && (double)(now - start) >= duration * 1000.0)
			break;
		if (!quiet && now - last >= PROGRESS_S * 1000u) {
			progress(f, &prev, (double)(now - last) / 1000.0);
			last = now;
		}
	}
	sim_fleet_stop(f);
	if (!quiet) {
		struct sim_stats s;
		sim_fleet_stats(f, &s);
		fprintf(stderr, "mote sim: stopped: %llu telemetry messages, %llu twin reports, "
			"%llu reconnects\n", (unsigned long long)s.telemetry,
			(unsigned long long)s.reports, (unsigned long long)s.reconnects);
	}
	sim_fleet_free(f);
	rc = 0;
out_curl:
	curl_global_cleanup();
out:
	free(host);
	return rc;
}
