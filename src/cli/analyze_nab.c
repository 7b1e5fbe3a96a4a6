/* analyze_nab.c - placeholder until its helper lands it (session 6). */
#include <stdio.h>

#include "cli/cli.h"

int cli_analyze_nab(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "mote: this command is not built yet\n");
	return 1;
}
