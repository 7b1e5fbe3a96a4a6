/* sim_cmd.c - placeholder until its helper lands it (session 6). */
#include <stdio.h>

#include "cli/cli.h"

int cli_sim(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "mote: this command is not built yet\n");
	return 1;
}
