/*
 * cli.h - the subcommands of the `mote` binary. Each takes the arguments after
 * its own name (argv[0] is the subcommand name) and returns the process exit
 * status. Each prints its usage for --help / -h (pub/sub: --help only, since
 * -h is the host as in mosquitto_pub) and exits 2 on a usage error with a line
 * that says what to do.
 */
#ifndef MOTE_CLI_H
#define MOTE_CLI_H

int cli_hub(int argc, char **argv);
int cli_pub(int argc, char **argv);
int cli_sub(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_pki(int argc, char **argv);
int cli_user(int argc, char **argv);
int cli_token(int argc, char **argv);
int cli_audit(int argc, char **argv);
int cli_device(int argc, char **argv);
int cli_sim(int argc, char **argv);
int cli_analyze(int argc, char **argv);
/* `mote analyze nab|rul`: argv[0] is "nab" / "rul". */
int cli_analyze_nab(int argc, char **argv);
int cli_analyze_rul(int argc, char **argv);

#endif
