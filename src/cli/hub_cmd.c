/* hub_cmd.c - `mote hub`: parse options, run the hub. */
#include <stdio.h>

#include "cli/cli.h"
#include "hub/hub.h"

int cli_hub(int argc, char **argv)
{
	struct hub_config cfg;
	char err[512];
	bool help;
	int status = 0;

	hub_config_defaults(&cfg);
	if (hub_config_parse(&cfg, argc, argv, &help, err, sizeof err) != MOTE_OK) {
		fprintf(stderr, "mote hub: %s\n", err);
		status = 2;
		goto out;
	}
	if (help) {
		hub_config_usage(stdout);
		goto out;
	}
	status = hub_run(&cfg) == MOTE_OK ? 0 : 1;
out:
	hub_config_free(&cfg);
	return status;
}
