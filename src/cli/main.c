/* main.c - placeholder until the subcommands land. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "mote: no subcommands yet\n");
	return 1;
}
