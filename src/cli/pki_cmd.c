/*
 * pki_cmd.c - `mote pki --dir DIR init|issue|sign-csr|revoke|crl|claim|claims`: the
 * command line of the fleet CA in src/pki/ (see docs/pki.md). Exit status:
 * 0 done, 1 the operation failed (the message says why and what to do),
 * 2 usage error.
 */
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "cli/cli.h"
#include "pki/pki.h"

#define MAX_SANS 32

static void usage(FILE *out)
{
	fprintf(out,
		"usage: mote pki --dir DIR COMMAND [OPTIONS]\n"
		"\n"
		"The fleet certificate authority: device identity certificates for mTLS\n"
		"(see docs/pki.md). Every command works on the PKI directory DIR.\n"
		"\n"
		"commands:\n"
		"  init [--san DNS:name|IP:addr]... [--force]\n"
		"                       create the CA and the hub's server certificate\n"
		"  issue DEVICE_ID [--days N] [--force]\n"
		"                       a new key and client certificate for a device\n"
		"  sign-csr FILE [--out FILE] [--days N] [--force]\n"
		"                       certify a device's CSR (the device keeps its key)\n"
		"  revoke DEVICE_ID|claim:NAME|SERIAL\n"
		"                       revoke a device's (or claim's) certificates, rewrite crl.pem\n"
		"  crl [--out FILE] [--days N]\n"
		"                       write the certificate revocation list\n"
		"  claim NAME --prefix P --max N [--days N] [--device-days N] [--force]\n"
		"                       a claim certificate devices provision themselves with\n"
		"  claims               list the claims and how many devices each issued\n"
		"\n"
		"Every command that changes the CA is recorded in the hash-chained audit\n"
		"log DIR/audit.log (--audit-log FILE to use another, e.g. the hub's).\n"
		"\n"
		"mote pki COMMAND --help for a command's details.\n");
}

static const char *const sub_usage[][2] = {
	{ "init",
	  "usage: mote pki --dir DIR init [--san DNS:name|IP:addr]... [--force]\n"
	  "\n"
	  "Creates DIR (0700) with ca.pem/ca.key (ECDSA P-256 fleet CA, 10 years),\n"
	  "hub.pem/hub.key (the hub's TLS server certificate, serverAuth, SANs\n"
	  "DNS:localhost, IP:127.0.0.1 and each --san), index.txt, crl.pem and\n"
	  "devices/. Keys are written 0600.\n"
	  "  --san DNS:name|IP:addr  another name of the hub (repeatable, up to 32)\n"
	  "  --force                 replace an existing CA: every certificate it\n"
	  "                          issued stops verifying\n" },
	{ "issue",
	  "usage: mote pki --dir DIR issue DEVICE_ID [--days N] [--force]\n"
	  "\n"
	  "Writes DIR/devices/DEVICE_ID.key (0600) and DEVICE_ID.pem: an ECDSA P-256\n"
	  "client certificate (clientAuth) with CN=DEVICE_ID and a random serial.\n"
	  "DEVICE_ID: 1-128 of letters, digits and - _ . : ;\n"
	  "  --days N   validity in days (default 365)\n"
	  "  --force    issue even though the device holds an unrevoked certificate\n" },
	{ "sign-csr",
	  "usage: mote pki --dir DIR sign-csr FILE [--out FILE] [--days N] [--force]\n"
	  "\n"
	  "Checks the signature of the PEM CSR in FILE and certifies its key as a\n"
	  "device client certificate; the device id is the CSR's CN. Extensions the\n"
	  "CSR requests are ignored. Writes DIR/devices/ID.pem (or --out FILE) and\n"
	  "prints the path.\n"
	  "  --out FILE  where to write the certificate\n"
	  "  --days N    validity in days (default 365)\n"
	  "  --force     sign even though the device holds an unrevoked certificate\n" },
	{ "revoke",
	  "usage: mote pki --dir DIR revoke DEVICE_ID|claim:NAME|SERIAL\n"
	  "\n"
	  "Marks every unrevoked certificate of DEVICE_ID or of claim NAME (or else\n"
	  "the one with hex SERIAL, as in index.txt or 'openssl x509 -serial') revoked\n"
	  "in index.txt and rewrites DIR/crl.pem. A revoked claim provisions no more\n"
	  "devices; the devices it issued keep their certificates.\n" },
	{ "crl",
	  "usage: mote pki --dir DIR crl [--out FILE] [--days N]\n"
	  "\n"
	  "Writes a v2 CRL signed by the CA listing every revoked serial to\n"
	  "DIR/crl.pem (or --out FILE).\n"
	  "  --out FILE  where to write the CRL\n"
	  "  --days N    nextUpdate this many days ahead (default 7)\n" },
	{ "claim",
	  "usage: mote pki --dir DIR claim NAME --prefix P --max N [--days N]\n"
	  "                                [--device-days N] [--force]\n"
	  "\n"
	  "Provisioning by claim: writes DIR/claims/NAME.key (0600) and NAME.pem, a\n"
	  "client certificate shared by a batch of devices (CN claim:NAME, URI SAN\n"
	  "urn:mote:claim:NAME), and the template DIR/claims/NAME.conf. A device\n"
	  "holding it connects to a hub started with --pki DIR, with its own id as\n"
	  "client id, and publishes a CSR to $provision/ID/csr; the hub answers on\n"
	  "$provision/ID/cert with its own certificate. NAME: 1-64 of letters,\n"
	  "digits and . _ -\n"
	  "  --prefix P        ids the claim may mint begin with P (and go on)\n"
	  "  --max N           at most N devices, revoked ones included\n"
	  "  --days N          the claim expires after N days (default 30)\n"
	  "  --device-days N   validity of each device certificate (default 365)\n"
	  "  --force           replace the claim: its old certificate is revoked\n" },
	{ "claims",
	  "usage: mote pki --dir DIR claims\n"
	  "\n"
	  "Lists every claim: name, prefix, devices issued of the maximum, expiry\n"
	  "and state (active, expired, revoked, used up).\n" },
};

static const char *usage_of(const char *cmd)
{
	for (size_t i = 0; i < sizeof sub_usage / sizeof sub_usage[0]; i++)
		if (strcmp(sub_usage[i][0], cmd) == 0)
			return sub_usage[i][1];
	return NULL;
}

static int usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mote pki%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; run 'mote pki %s%s--help'\n", cmd ? cmd : "", cmd ? " " : "");
	return 2;
}

static int parse_days(const char *cmd, const char *s, int *days)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == 0 || *end || v < 1 || v > 36500)
		return usage_error(cmd, "--days wants a whole number of days from 1 to 36500, not '%s'",
				   s);
	*days = (int)v;
	return 0;
}

/* Records a CA change in the audit log; a log that cannot be written fails
 * the command (the change itself is already made). */
static int audit_pki(const char *dir, const char *log, const char *event, const char *k1,
		     const char *v1, const char *k2, const char *v2)
{
	char path[PATH_MAX], j1[PATH_MAX * 2], j2[PATH_MAX * 2], fields[PATH_MAX * 5];
	if (!log) {
		snprintf(path, sizeof path, "%s/audit.log", dir);
		log = path;
	}
	audit_json_str(j1, sizeof j1, v1, strlen(v1));
	audit_json_str(j2, sizeof j2, v2, strlen(v2));
	snprintf(fields, sizeof fields, "{\"%s\":%s,\"%s\":%s,\"by\":\"cli\"}", k1, j1, k2, j2);
	struct audit *a;
	enum mote_err e = audit_open(log, &a);
	if (e == MOTE_OK) {
		e = audit_append(a, event, fields);
		if (e == MOTE_OK)
			e = audit_flush(a);
		audit_close(a);
	}
	if (e != MOTE_OK) {
		fprintf(stderr, "mote pki: done, but the audit log %s could not be written: %s\n", log,
			mote_strerror(e));
		return 1;
	}
	return 0;
}

static int parse_count(const char *cmd, const char *opt, const char *s, unsigned long lo,
		       unsigned long hi, unsigned long *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == 0 || *s == '-' || *end || v < lo || v > hi)
		return usage_error(cmd, "%s wants a whole number from %lu to %lu, not '%s'", opt, lo,
				   hi, s);
	*out = v;
	return 0;
}

static int failed(const char *cmd, const char *err)
{
	fprintf(stderr, "mote pki %s: %s\n", cmd, err);
	return 1;
}

static int list_claims(const char *dir)
{
	struct mote_pki_claim_info *v;
	char err[512] = "";
	size_t n;
	long long t = (long long)time(NULL);

	if (mote_pki_claims(dir, &v, &n, err, sizeof err))
		return failed("claims", err);
	printf("%-24s %-16s %15s  %-20s %s\n", "NAME", "PREFIX", "ISSUED/MAX", "EXPIRES (UTC)",
	       "STATE");
	for (size_t i = 0; i < n; i++) {
		char used[32], when[32];
		time_t exp = (time_t)v[i].expires;
		struct tm tm;

		snprintf(used, sizeof used, "%u/%u", v[i].issued, v[i].max);
		if (!gmtime_r(&exp, &tm) || !strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm))
			snprintf(when, sizeof when, "%lld", v[i].expires);
		printf("%-24s %-16s %15s  %-20s %s\n", v[i].name, v[i].prefix, used, when,
		       v[i].revoked ? "revoked" : t >= v[i].expires ? "expired"
			       : v[i].issued >= v[i].max ? "used-up" : "active");
	}
	free(v);
	return 0;
}

int cli_pki(int argc, char **argv)
{
	enum { O_DIR = 256, O_SAN, O_FORCE, O_DAYS, O_OUT, O_HELP, O_PREFIX, O_MAX, O_DDAYS,
	       O_AUDIT };
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, O_DIR },
		{ "san", required_argument, NULL, O_SAN },
		{ "force", no_argument, NULL, O_FORCE },
		{ "days", required_argument, NULL, O_DAYS },
		{ "out", required_argument, NULL, O_OUT },
		{ "help", no_argument, NULL, O_HELP },
		{ "prefix", required_argument, NULL, O_PREFIX },
		{ "max", required_argument, NULL, O_MAX },
		{ "device-days", required_argument, NULL, O_DDAYS },
		{ "audit-log", required_argument, NULL, O_AUDIT },
		{ NULL, 0, NULL, 0 },
	};
	const char *sans[MAX_SANS];
	const char *dir = NULL, *out = NULL, *cmd = NULL, *arg = NULL, *prefix = NULL,
		   *audit_log = NULL;
	unsigned long max = 0, ddays = 0;
	char err[512] = "", cert[PATH_MAX], key[PATH_MAX];
	int nsans = 0, force = 0, days = 0, help = 0, c, nargs = 0;
	enum mote_err rc;

	/* Options may come before or after the command name: the leading '-'
	 * makes getopt hand back the non-options in order, as code 1. */
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "-h", opts, NULL)) != -1) {
		switch (c) {
		case 1:
			if (!cmd)
				cmd = optarg;
			else if (nargs++ == 0)
				arg = optarg;
			break;
		case O_DIR: dir = optarg; break;
		case O_FORCE: force = 1; break;
		case O_OUT: out = optarg; break;
		case O_AUDIT: audit_log = optarg; break;
		case O_DAYS:
			if (parse_days(cmd, optarg, &days))
				return 2;
			break;
		case O_PREFIX: prefix = optarg; break;
		case O_MAX:
			if (parse_count(cmd, "--max", optarg, 1, 1000000, &max))
				return 2;
			break;
		case O_DDAYS:
			if (parse_count(cmd, "--device-days", optarg, 1, 36500, &ddays))
				return 2;
			break;
		case O_SAN:
			if (nsans == MAX_SANS)
				return usage_error(cmd, "at most %d --san options", MAX_SANS);
			sans[nsans++] = optarg;
			break;
		case 'h':
		case O_HELP: help = 1; break;
		default:
			return usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (cmd && !usage_of(cmd))
		return usage_error(NULL, "unknown command '%s'", cmd);
	if (help) {
		fputs(cmd ? usage_of(cmd) : "", stdout);
		if (!cmd)
			usage(stdout);
		return 0;
	}
	if (!cmd) {
		usage(stderr);
		return 2;
	}
	if (!dir || !*dir)
		return usage_error(cmd, "--dir DIR is required (the PKI directory)");
	if (nsans && strcmp(cmd, "init") != 0)
		return usage_error(cmd, "--san belongs to init");
	if (out && strcmp(cmd, "sign-csr") != 0 && strcmp(cmd, "crl") != 0)
		return usage_error(cmd, "--out belongs to sign-csr and crl");
	if (days && strcmp(cmd, "init") == 0)
		return usage_error(cmd, "--days does not apply to init");
	if (force && (strcmp(cmd, "revoke") == 0 || strcmp(cmd, "crl") == 0 ||
		      strcmp(cmd, "claims") == 0))
		return usage_error(cmd, "--force does not apply here");
	if (days && strcmp(cmd, "claims") == 0)
		return usage_error(cmd, "--days does not apply to claims");
	if ((prefix || max || ddays) && strcmp(cmd, "claim") != 0)
		return usage_error(cmd, "--prefix, --max and --device-days belong to claim");
	if (strcmp(cmd, "claim") == 0 && (!prefix || !max))
		return usage_error(cmd, "claim needs --prefix P and --max N");

	if (strcmp(cmd, "init") == 0 || strcmp(cmd, "crl") == 0 || strcmp(cmd, "claims") == 0) {
		if (nargs)
			return usage_error(cmd, "unexpected argument '%s'", arg);
	} else if (nargs != 1) {
		return usage_error(cmd, nargs ? "wants exactly one argument, got %d" :
					   "missing argument (%d given)", nargs);
	}

	if (strcmp(cmd, "init") == 0) {
		struct mote_pki_init_opts o = { .sans = sans, .nsans = (size_t)nsans,
						.force = force };

		rc = mote_pki_init(dir, &o, err, sizeof err);
		if (rc)
			return failed(cmd, err);
		printf("%s/ca.pem\n%s/hub.pem\n", dir, dir);
		return audit_pki(dir, audit_log, "pki_init", "dir", dir, "force", force ? "yes" : "no");
	} else if (strcmp(cmd, "issue") == 0) {
		if (mote_pki_check_id(arg, err, sizeof err)) {
			fprintf(stderr, "mote pki issue: %s\n", err);
			return 2;
		}
		rc = mote_pki_issue(dir, arg, days, force, cert, key, err, sizeof err);
		if (rc)
			return failed(cmd, err);
		printf("%s\n%s\n", cert, key);
		return audit_pki(dir, audit_log, "pki_issued", "device", arg, "cert", cert);
	} else if (strcmp(cmd, "sign-csr") == 0) {
		rc = mote_pki_sign_csr(dir, arg, out, days, force, cert, err, sizeof err);
		if (rc)
			return failed(cmd, err);
		printf("%s\n", cert);
		return audit_pki(dir, audit_log, "pki_signed", "csr", arg, "cert", cert);
	} else if (strcmp(cmd, "revoke") == 0) {
		int n;

		rc = mote_pki_revoke(dir, arg, &n, err, sizeof err);
		if (rc)
			return failed(cmd, err);
		printf("revoked %d certificate%s; %s/crl.pem rewritten\n", n, n == 1 ? "" : "s",
		       dir);
		char count[16];
		snprintf(count, sizeof count, "%d", n);
		return audit_pki(dir, audit_log, "pki_revoked", "what", arg, "count", count);
	} else if (strcmp(cmd, "claim") == 0) {
		struct mote_pki_claim_opts o = { .prefix = prefix, .max = (unsigned)max,
						 .days = days, .device_days = (int)ddays,
						 .force = force };

		if (mote_pki_check_claim_name(arg, err, sizeof err) ||
		    mote_pki_check_claim_name(prefix, NULL, 0) || strlen(prefix) > MOTE_PKI_PREFIX_MAX) {
			if (!*err)
				snprintf(err, sizeof err, "--prefix: 1 to %d of letters, digits and . _ -",
					 MOTE_PKI_PREFIX_MAX);
			fprintf(stderr, "mote pki claim: %s\n", err);
			return 2;
		}
		rc = mote_pki_claim(dir, arg, &o, cert, key, err, sizeof err);
		if (rc)
			return failed(cmd, err);
		printf("%s\n%s\n", cert, key);
		return audit_pki(dir, audit_log, "pki_claim", "claim", arg, "prefix", prefix);
	} else if (strcmp(cmd, "claims") == 0) {
		return list_claims(dir);
	} else {
		rc = mote_pki_crl(dir, out, days, err, sizeof err);
		if (rc)
			return failed(cmd, err);
		char crl[PATH_MAX];
		snprintf(crl, sizeof crl, "%s/crl.pem", dir);
		printf("%s\n", out ? out : crl);
		return audit_pki(dir, audit_log, "pki_crl", "out", out ? out : crl, "dir", dir);
	}
	return 0;
}
