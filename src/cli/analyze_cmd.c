/* analyze_cmd.c - `mote analyze nab|rul ...`: offline analytics on files. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: mote analyze COMMAND [OPTIONS]   (mote analyze COMMAND --help)\n\n"
		     "commands:\n"
		     "  nab   streaming anomaly scores for NAB-format CSV files (timestamp,value)\n"
		     "  rul   remaining useful life from run-to-failure histories (NASA C-MAPSS)\n");
}

int cli_analyze(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "nab") == 0)
		return cli_analyze_nab(argc - 1, argv + 1);
	if (strcmp(argv[1], "rul") == 0)
		return cli_analyze_rul(argc - 1, argv + 1);
	fprintf(stderr, "mote analyze: unknown command '%s'; run 'mote analyze --help'\n", argv[1]);
	return 2;
}
