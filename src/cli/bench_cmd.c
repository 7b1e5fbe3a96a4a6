/*
 * bench_cmd.c - `mote bench MODE [OPTIONS]`: parses the options of the load
 * generator into a struct bench_cfg, runs it (src/bench/) and prints the
 * report. Exit status: 0 the run completed, 1 errors stopped it, 2 usage.
 *
 * SIGINT ends the run early (the report still prints); SIGPIPE is ignored
 * because a broker closing a socket under a write is an error to count,
 * not a reason to die.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "bench/bench.h"
#include "cli/cli.h"
#include "mqtt/mqtt.h"
#include "net/tcp.h"
#include "tls/tls.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: mote bench conn|pub|sub|pubsub [OPTIONS]\n"
		"\n"
		"A load generator for any MQTT broker (see docs/bench.md).\n"
		"  conn     open -c connections at --conn-rate/s and hold them for -d seconds\n"
		"  pub      -c publishers, each at --rate msgs/s (0 = as fast as acked)\n"
		"  sub      -c subscribers on -t FILTER; counts messages and latency\n"
		"  pubsub   --pubs N publishers and --subs M subscribers: end-to-end latency\n"
		"\n"
		"options:\n"
		"  -h HOST            broker host (default 127.0.0.1)\n"
		"  -p PORT            broker port (default 1883)\n"
		"  -c N               clients for conn/pub/sub (default 1)\n"
		"  --pubs N --subs M  pubsub: publishers and subscribers (default 1 and 1)\n"
		"  --fan-out          pubsub: every subscriber on publisher 0's topic,\n"
		"                     all publishers publish to it\n"
		"  --fan-in           pubsub: publisher i on topic i, subscribers on a wildcard\n"
		"                     (each %%i/%%t level of -t becomes '+')\n"
		"  -q QOS             0, 1 or 2 (default 0)\n"
		"  -V 311|5           MQTT version (default 311)\n"
		"  -d SECONDS         run this long (default 10 when -n is not given)\n"
		"  -n COUNT           messages per publisher (sub: per subscriber), instead of -d\n"
		"  --rate R           msgs/s per publisher (default 0: as fast as possible)\n"
		"  --inflight N       unacked QoS 1/2 messages per publisher (default 64,\n"
		"                     lowered to the broker's Receive Maximum)\n"
		"  --conn-rate R      new connections per second (default 0: all at once)\n"
		"  --conn-parallel K  at most K connections in setup (TCP, TLS handshake,\n"
		"                     CONNECT/CONNACK) at once; the next opens as one ends\n"
		"                     (default 0: no cap)\n"
		"  --session-expiry S keep every client's session S seconds after it\n"
		"                     disconnects ('never' = 4294967295): 3.1.1 clean\n"
		"                     session 0, 5.0 Session Expiry Interval S; a broker\n"
		"                     with persistence then stores QoS 1/2 messages to\n"
		"                     the subscribers (default 0: clean sessions)\n"
		"  -s BYTES           payload size, at least 16 (default 16)\n"
		"  --senml N          publish SenML packs of N points (1..1000) instead: 5\n"
		"                     metrics, 1 Hz device time starting 6 days ago (use\n"
		"                     -t dev/%%i/telemetry for a mote hub's telemetry)\n"
		"  -t PATTERN         topic; %%i client index, %%t thread index (default bench/%%i)\n"
		"  --threads N        event loops (default 1); clients spread round robin\n"
		"  --source-ip A,B,.. bind new connections to these local addresses in turn\n"
		"  -u USER -P PASS    username and password\n"
		"  --id-prefix P      client ids P-<thread>-<n> (default mb<pid>)\n"
		"  --json             final report as one JSON object on stdout\n"
		"  --quiet            no progress line on stderr\n"
		"  --help             this text\n"
		"\n"
		"TLS: every connection runs a full handshake (no resumption)\n"
		"  --tls              connect with TLS 1.2+ (1.3 preferred), verifying the\n"
		"                     broker's certificate for -h against --cafile\n"
		"  --cafile FILE      CA certificate(s) of the broker, PEM (implies --tls)\n"
		"  --cert F --key F   client certificate and key, PEM (mutual TLS)\n"
		"exit status: 0 run completed, 1 errors stopped it, 2 usage error\n");
}

__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "mote bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(run 'mote bench --help' for the options)\n");
	return 2;
}

static int num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || v != v || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_sources(struct bench_cfg *cfg, const char *list)
{
	char buf[4096];
	if (strlen(list) >= sizeof buf)
		return -1;
	strcpy(buf, list);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (cfg->nsources == BENCH_MAX_SOURCES)
			return -1;
		struct sockaddr_storage *ss = &cfg->sources[cfg->nsources];
		memset(ss, 0, sizeof *ss);
		struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET, tok, &in4->sin_addr) == 1)
			in4->sin_family = AF_INET;
		else if (inet_pton(AF_INET6, tok, &in6->sin6_addr) == 1)
			in6->sin6_family = AF_INET6;
		else
			return -1;
		cfg->nsources++;
	}
	return cfg->nsources ? 0 : -1;
}

enum {
	O_RATE = 256, O_INFLIGHT, O_CONN_RATE, O_THREADS, O_SOURCE, O_ID_PREFIX, O_JSON, O_QUIET,
	O_HELP, O_PUBS, O_SUBS, O_FAN_OUT, O_FAN_IN, O_SESSION_EXPIRY, O_CONN_PARALLEL, O_TLS,
	O_CAFILE, O_CERT, O_KEY, O_SENML,
};

static const struct option long_opts[] = {
	{ "rate", required_argument, NULL, O_RATE },
	{ "inflight", required_argument, NULL, O_INFLIGHT },
	{ "conn-rate", required_argument, NULL, O_CONN_RATE },
	{ "threads", required_argument, NULL, O_THREADS },
	{ "source-ip", required_argument, NULL, O_SOURCE },
	{ "id-prefix", required_argument, NULL, O_ID_PREFIX },
	{ "json", no_argument, NULL, O_JSON },
	{ "quiet", no_argument, NULL, O_QUIET },
	{ "help", no_argument, NULL, O_HELP },
	{ "pubs", required_argument, NULL, O_PUBS },
	{ "subs", required_argument, NULL, O_SUBS },
	{ "fan-out", no_argument, NULL, O_FAN_OUT },
	{ "fan-in", no_argument, NULL, O_FAN_IN },
	{ "session-expiry", required_argument, NULL, O_SESSION_EXPIRY },
	{ "conn-parallel", required_argument, NULL, O_CONN_PARALLEL },
	{ "tls", no_argument, NULL, O_TLS },
	{ "cafile", required_argument, NULL, O_CAFILE },
	{ "cert", required_argument, NULL, O_CERT },
	{ "key", required_argument, NULL, O_KEY },
	{ "senml", required_argument, NULL, O_SENML },
	{ NULL, 0, NULL, 0 },
};

int cli_bench(int argc, char **argv)
{
	static struct bench_cfg cfg;      /* large (source addresses): not on the stack */
	static struct bench_report report;
	const char *host = "127.0.0.1", *port = "1883";
	const char *cafile = NULL, *certfile = NULL, *keyfile = NULL;
	bool tls = false;
	char prefix[32], addr[300], errbuf[256];
	bool json = false, have_d = false, have_n = false, have_c = false;
	double v;
	int rc = 2;
	struct sigaction sa, old_int, old_pipe;

	memset(&cfg, 0, sizeof cfg);
	cfg.pubs = cfg.subs = cfg.conns = 1;
	cfg.threads = 1;
	cfg.version = MQTT_V311;
	cfg.payload = BENCH_MIN_PAYLOAD;
	cfg.inflight = 64;
	cfg.topic = "bench/%i";
	snprintf(prefix, sizeof prefix, "mb%ld", (long)getpid());
	cfg.id_prefix = prefix;

	if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (argc < 2 || argv[1][0] == '-')
		return bad("give a mode first: conn, pub, sub or pubsub");
	if (strcmp(argv[1], "conn") == 0)
		cfg.mode = BENCH_CONN;
	else if (strcmp(argv[1], "pub") == 0)
		cfg.mode = BENCH_PUB;
	else if (strcmp(argv[1], "sub") == 0)
		cfg.mode = BENCH_SUB;
	else if (strcmp(argv[1], "pubsub") == 0)
		cfg.mode = BENCH_PUBSUB;
	else
		return bad("unknown mode '%s': use conn, pub, sub or pubsub", argv[1]);

	optind = 1;
	opterr = 0;
	int o;
	while ((o = getopt_long(argc - 1, argv + 1, ":h:p:c:q:V:d:n:s:t:u:P:", long_opts, NULL)) != -1) {
		switch (o) {
		case 'h': host = optarg; break;
		case 'p':
			if (num(optarg, 1, 65535, &v))
				return bad("-p '%s': give a port from 1 to 65535", optarg);
			port = optarg;
			break;
		case 'c':
			if (num(optarg, 1, 1000000, &v))
				return bad("-c '%s': give a client count from 1 to 1000000", optarg);
			cfg.pubs = cfg.subs = cfg.conns = (uint32_t)v;
			have_c = true;
			break;
		case O_PUBS:
			if (num(optarg, 0, 1000000, &v))
				return bad("--pubs '%s': give a count from 0 to 1000000", optarg);
			cfg.pubs = (uint32_t)v;
			break;
		case O_SUBS:
			if (num(optarg, 0, 1000000, &v))
				return bad("--subs '%s': give a count from 0 to 1000000", optarg);
			cfg.subs = (uint32_t)v;
			break;
		case 'q':
			if (num(optarg, 0, 2, &v) || v != (int)v)
				return bad("-q '%s': QoS is 0, 1 or 2", optarg);
			cfg.qos = (uint8_t)v;
			break;
		case 'V':
			if (strcmp(optarg, "311") == 0 || strcmp(optarg, "3.1.1") == 0)
				cfg.version = MQTT_V311;
			else if (strcmp(optarg, "5") == 0 || strcmp(optarg, "50") == 0)
				cfg.version = MQTT_V5;
			else
				return bad("-V '%s': use 311 or 5", optarg);
			break;
		case 'd':
			if (num(optarg, 1, 86400 * 365, &v))
				return bad("-d '%s': give whole seconds, at least 1", optarg);
			cfg.duration_s = (uint32_t)v;
			have_d = true;
			break;
		case 'n':
			if (num(optarg, 1, 1e15, &v))
				return bad("-n '%s': give a message count, at least 1", optarg);
			cfg.count = (uint64_t)v;
			have_n = true;
			break;
		case 's':
			if (num(optarg, BENCH_MIN_PAYLOAD, 64 * 1024 * 1024, &v))
				return bad("-s '%s': payload is 16 bytes (timestamp + sequence) to 64 MB",
					   optarg);
			cfg.payload = (uint32_t)v;
			break;
		case 't':
			if (strlen(optarg) == 0 || strlen(optarg) > 200)
				return bad("-t '%s': give a topic pattern of 1 to 200 bytes", optarg);
			cfg.topic = optarg;
			break;
		case 'u': cfg.username = optarg; break;
		case 'P': cfg.password = optarg; break;
		case O_RATE:
			if (num(optarg, 0, 1e9, &v))
				return bad("--rate '%s': give messages per second (0 = unlimited)", optarg);
			cfg.rate = v;
			break;
		case O_INFLIGHT:
			if (num(optarg, 1, 65535, &v))
				return bad("--inflight '%s': give 1 to 65535", optarg);
			cfg.inflight = (uint32_t)v;
			break;
		case O_CONN_RATE:
			if (num(optarg, 0, 1e9, &v))
				return bad("--conn-rate '%s': give connections per second (0 = all at once)",
					   optarg);
			cfg.conn_rate = v;
			break;
		case O_SENML:
			if (num(optarg, 1, BENCH_SENML_MAX, &v) || v != (double)(uint32_t)v)
				return bad("--senml '%s': give 1 to %d points per pack", optarg,
					   BENCH_SENML_MAX);
			cfg.senml = (uint32_t)v;
			cfg.senml_base_s = (int64_t)(mote_wall_ms() / 1000) - 6 * 86400;
			break;
		case O_SESSION_EXPIRY:
			if (strcmp(optarg, "never") == 0)
				v = 4294967295.0;
			else if (num(optarg, 0, 4294967295.0, &v) || v != (double)(uint32_t)v)
				return bad("--session-expiry '%s': give whole seconds from 0 to "
					   "4294967295, or never", optarg);
			cfg.session_expiry = (uint32_t)v;
			break;
		case O_THREADS:
			if (num(optarg, 1, 256, &v))
				return bad("--threads '%s': give 1 to 256", optarg);
			cfg.threads = (uint32_t)v;
			break;
		case O_SOURCE:
			if (parse_sources(&cfg, optarg))
				return bad("--source-ip '%s': give up to 64 comma-separated IP addresses",
					   optarg);
			break;
		case O_ID_PREFIX:
			if (strlen(optarg) == 0 || strlen(optarg) > 64)
				return bad("--id-prefix '%s': give 1 to 64 characters", optarg);
			cfg.id_prefix = optarg;
			break;
		case O_CONN_PARALLEL:
			if (num(optarg, 0, 1000000, &v))
				return bad("--conn-parallel '%s': give 0 to 1000000", optarg);
			cfg.conn_parallel = (uint32_t)v;
			break;
		case O_TLS: tls = true; break;
		case O_CAFILE: cafile = optarg; tls = true; break;
		case O_CERT: certfile = optarg; tls = true; break;
		case O_KEY: keyfile = optarg; tls = true; break;
		case O_JSON: json = true; break;
		case O_QUIET: cfg.quiet = true; break;
		case O_HELP: usage(stdout); return 0;
		case O_FAN_OUT: cfg.shape = SHAPE_FAN_OUT; break;
		case O_FAN_IN: cfg.shape = SHAPE_FAN_IN; break;
		case ':':
			return bad("%s needs a value", argv[optind]);
		default:
			return bad("unknown option '%s'", argv[optind]);
		}
	}
	if (optind < argc - 1)
		return bad("unexpected argument '%s'", argv[optind + 1]);
	if (have_d && have_n)
		return bad("give -d (seconds) or -n (messages), not both");
	if (!have_d && (!have_n || cfg.mode == BENCH_CONN))
		cfg.duration_s = 10;
	if (cfg.mode != BENCH_PUBSUB && cfg.shape != SHAPE_ONE_TO_ONE)
		return bad("--fan-out and --fan-in belong to pubsub");
	if (cfg.mode == BENCH_PUBSUB && have_c)
		return bad("pubsub takes --pubs and --subs, not -c");
	if (cfg.mode == BENCH_PUBSUB && cfg.pubs == 0)
		return bad("pubsub needs --pubs 1 or more");
	uint32_t nclients = cfg.mode == BENCH_PUBSUB ? cfg.pubs + cfg.subs
			    : cfg.mode == BENCH_CONN ? cfg.conns
			    : cfg.mode == BENCH_SUB	 ? cfg.subs
							 : cfg.pubs;
	if (cfg.threads > nclients)
		cfg.threads = nclients; /* an idle loop measures nothing */
	snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
	if (net_addr_parse(addr, &cfg.addr, &cfg.addr_len, errbuf, sizeof errbuf) != MOTE_OK)
		return bad("%s: check -h and -p", errbuf);

	struct tls_client *tc = NULL;
	if (tls) {
		char why[512];
		if (tls_client_new(cafile, certfile, keyfile, &tc, why, sizeof why) != MOTE_OK)
			return bad("%s", why);
		cfg.tls = tc;
		cfg.tls_host = host;
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_pipe);
	interrupted = 0;
	cfg.interrupted = &interrupted;

	enum mote_err err = bench_run(&cfg, &report);
	if (err != MOTE_OK) {
		fprintf(stderr, "mote bench: %s\n", mote_strerror(err));
		rc = 1;
	} else {
		bench_print(stdout, &cfg, &report, json);
		rc = report.stopped_by_error ? 1 : 0;
		if (report.stopped_by_error)
			fprintf(stderr, "mote bench: %s\n", report.why);
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	tls_client_free(tc);
	return rc;
}
