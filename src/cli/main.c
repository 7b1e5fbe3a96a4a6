/* main.c - `mote SUBCOMMAND ...`: dispatch to the subcommands in cli.h. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *what;
} commands[] = {
	{ "hub", cli_hub, "run the hub: MQTT broker, registry, twins, telemetry, rules, API" },
	{ "pub", cli_pub, "publish a message (flags like mosquitto_pub)" },
	{ "sub", cli_sub, "subscribe and print messages (flags like mosquitto_sub)" },
	{ "bench", cli_bench, "load-test an MQTT broker: throughput, latency, connections" },
	{ "pki", cli_pki, "the fleet CA: device certificates, revocation, CRL" },
	{ "device", cli_device, "the device registry: add, list, show, rm" },
	{ "user", cli_user, "users of the hub: add, del, list (argon2id passwords)" },
	{ "token", cli_token, "API tokens: create, list, revoke" },
	{ "audit", cli_audit, "check the hash chain of an audit log" },
	{ "sim", cli_sim, "simulate a fleet of devices (pumps, motors, HVAC) against a hub" },
	{ "analyze", cli_analyze, "offline analytics: anomaly detection (NAB), remaining useful life" },
};

static void usage(FILE *out)
{
	fprintf(out, "mote %s - a self-hosted IoT platform\n\n"
		     "usage: mote COMMAND [OPTIONS]   (mote COMMAND --help for its options)\n\n"
		     "commands:\n",
		MOTE_VERSION);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-7s %s\n", commands[i].name, commands[i].what);
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("mote %s\n", MOTE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "mote: unknown command '%s'; run 'mote --help' for the list\n", argv[1]);
	return 2;
}
