/*
 * admin_cmd.c - `mote user ...`, `mote token ...` and `mote audit verify`:
 * the user store and the audit log from the command line (docs/security.md).
 *
 * Edits go through store_edit_begin/end (an flock on DATA/users.lock and
 * an atomic rename), so they are safe while the hub runs; the hub sees the
 * new file on its next password or token login. Every change is appended to
 * the audit log (DATA/audit.log or --audit-log FILE) before the command
 * returns. Exit status: 0 done, 1 failed, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "audit/audit.h"
#include "auth/acl.h"
#include "auth/store.h"
#include "base/file.h"
#include "cli/cli.h"

#define PASSWORD_GEN_LEN 24
#define PASSWORD_MAX 1024

struct admin_opts {
	const char *data;
	const char *audit_log;
	const char *acl;
	const char *role;
	const char *scope;
	const char *name;
	bool password_stdin;
	bool force;
	bool help;
	const char *args[2];
	int nargs;
};

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "mote %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; run 'mote %s --help'\n", cmd);
	return 2;
}

static int parse_opts(const char *cmd, int argc, char **argv, struct admin_opts *o)
{
	enum { O_DATA = 256, O_AUDIT, O_ACL, O_ROLE, O_SCOPE, O_NAME, O_PWSTDIN, O_FORCE, O_HELP };
	static const struct option opts[] = {
		{ "data", required_argument, NULL, O_DATA },
		{ "audit-log", required_argument, NULL, O_AUDIT },
		{ "acl", required_argument, NULL, O_ACL },
		{ "role", required_argument, NULL, O_ROLE },
		{ "scope", required_argument, NULL, O_SCOPE },
		{ "name", required_argument, NULL, O_NAME },
		{ "password-stdin", no_argument, NULL, O_PWSTDIN },
		{ "force", no_argument, NULL, O_FORCE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	memset(o, 0, sizeof *o);
	o->data = "data";
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "-h", opts, NULL)) != -1) {
		switch (c) {
		case 1:
			if (o->nargs == 2)
				return usage_error(cmd, "unexpected argument '%s'", optarg);
			o->args[o->nargs++] = optarg;
			break;
		case O_DATA: o->data = optarg; break;
		case O_AUDIT: o->audit_log = optarg; break;
		case O_ACL: o->acl = optarg; break;
		case O_ROLE: o->role = optarg; break;
		case O_SCOPE: o->scope = optarg; break;
		case O_NAME: o->name = optarg; break;
		case O_PWSTDIN: o->password_stdin = true; break;
		case O_FORCE: o->force = true; break;
		case 'h':
		case O_HELP: o->help = true; break;
		default:
			return usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (!*o->data)
		return usage_error(cmd, "--data wants the hub's data folder");
	return 0;
}

/* Appends one audit record and waits until it is on disk. */
static int audit_admin(const struct admin_opts *o, const char *event, const char *fields)
{
	char path[4200];
	const char *p = o->audit_log;
	if (!p) {
		snprintf(path, sizeof path, "%s/audit.log", o->data);
		p = path;
	}
	struct audit *a;
	if (audit_open(p, &a) != MOTE_OK) {
		fprintf(stderr, "mote: cannot open the audit log %s\n", p);
		return 1;
	}
	enum mote_err e = audit_append(a, event, fields);
	if (e == MOTE_OK)
		e = audit_flush(a);
	audit_close(a);
	if (e != MOTE_OK) {
		fprintf(stderr, "mote: cannot write the audit log %s: %s\n", p, mote_strerror(e));
		return 1;
	}
	return 0;
}

static void who_field(char *buf, size_t cap)
{
	snprintf(buf, cap, "\"by\":\"cli\",\"uid\":%u", (unsigned)getuid());
}

/* The roles users may hold: built-ins plus --acl FILE or DATA/acl.conf. */
static int role_exists(const struct admin_opts *o, const char *role)
{
	char path[4200], err[300] = "";
	const char *file = o->acl;
	if (!file) {
		snprintf(path, sizeof path, "%s/acl.conf", o->data);
		if (access(path, F_OK) == 0)
			file = path;
	}
	char *text = NULL;
	size_t len = 0;
	if (file) {
		enum mote_err re = mote_read_file(file, 16u << 20, &text, &len);
		if (re != MOTE_OK) {
			fprintf(stderr, "mote user: cannot read %s: %s\n", file,
				re == MOTE_ETOOBIG ? "larger than 16 MiB" : strerror(errno));
			return -1;
		}
	}
	struct acl *acl;
	enum mote_err e = acl_parse(text, len, &acl, err, sizeof err);
	free(text);
	if (e != MOTE_OK) {
		fprintf(stderr, "mote user: %s: %s\n", file ? file : "roles", err);
		return -1;
	}
	int found = acl_role_find(acl, role, strlen(role)) >= 0;
	acl_free(acl);
	return found;
}

static int read_password(char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	int ch;
	while ((ch = getchar()) != EOF && ch != '\n') {
		if (n + 1 >= cap)
			return -1;
		buf[n++] = (char)ch;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len = n;
	return 0;
}

static const char user_usage[] =
	"usage: mote user add NAME [--role ROLE] [--password-stdin] [--force] [--data DIR]\n"
	"       mote user del NAME [--data DIR]\n"
	"       mote user list [--data DIR]\n"
	"\n"
	"Users and applications that log in to the hub with a username and password.\n"
	"DATA/users keeps only argon2id hashes (m=19 MiB, t=2, p=1); the hub picks up\n"
	"changes while it runs. Every change goes to the audit log.\n"
	"\n"
	"  add NAME           NAME: 1-64 of A-Z a-z 0-9 . _ - @ ('token' is reserved)\n"
	"    --role ROLE      admin, write, read (default), device, claim or a role of the\n"
	"                     ACL file (--acl FILE, default DATA/acl.conf)\n"
	"    --password-stdin read the password from the first line of standard input;\n"
	"                     without it a random password is made and printed on stdout\n"
	"    --force          replace an existing user's password and role\n"
	"  del NAME           remove the user (connected clients stay until they reconnect)\n"
	"  list               names and roles\n"
	"\n"
	"  --data DIR         the hub's data folder (default ./data)\n"
	"  --audit-log FILE   the audit log (default DATA/audit.log)\n"
	"  --acl FILE         the ACL file whose roles --role may name\n";

static int user_add(const struct admin_opts *o, const char *name)
{
	const char *role = o->role ? o->role : "read";
	char err[512] = "", pw[PASSWORD_MAX + 1];
	size_t pwlen = 0;
	int rc = 1, lockfd = -1;
	bool existed, generated = !o->password_stdin;
	struct store *s = NULL;
	char *hash = NULL;

	if (!store_name_valid(name, strlen(name)) || strcmp(name, STORE_TOKEN_USERNAME) == 0)
		return usage_error("user", "'%s' is not a user name (1-64 of A-Z a-z 0-9 . _ - @, "
					   "not 'token')", name);
	if (!acl_name_valid(role, strlen(role)))
		return usage_error("user", "'%s' is not a role name", role);
	int known = role_exists(o, role);
	if (known < 0)
		return 1;
	if (!known) {
		fprintf(stderr, "mote user: no role '%s': use admin, write, read, device, claim or "
				"one defined in the ACL file\n", role);
		return 1;
	}
	if (o->password_stdin) {
		if (read_password(pw, sizeof pw, &pwlen) != 0 || pwlen == 0) {
			fprintf(stderr, "mote user: --password-stdin wants one line of 1-%d bytes\n",
				PASSWORD_MAX);
			goto out;
		}
	} else if (store_random_secret(pw, PASSWORD_GEN_LEN) != MOTE_OK) {
		fprintf(stderr, "mote user: no randomness\n");
		goto out;
	} else {
		pwlen = PASSWORD_GEN_LEN;
	}
	if (store_hash_password(pw, pwlen, &hash) != MOTE_OK) {
		fprintf(stderr, "mote user: hashing failed\n");
		goto out;
	}
	if (store_edit_begin(o->data, &lockfd, &s, &existed, err, sizeof err) != MOTE_OK) {
		fprintf(stderr, "mote user: %s\n", err);
		goto out;
	}
	bool had = store_find_user(s, name, strlen(name)) != NULL;
	if (had && !o->force) {
		fprintf(stderr, "mote user: user '%s' exists; --force replaces it\n", name);
		store_edit_end(o->data, lockfd, s, false, err, sizeof err);
		goto out;
	}
	store_del_user(s, name);
	if (store_add_user(s, name, role, hash) != MOTE_OK ||
	    store_edit_end(o->data, lockfd, s, true, err, sizeof err) != MOTE_OK) {
		fprintf(stderr, "mote user: %s\n", err[0] ? err : "out of memory");
		goto out;
	}
	char fields[300], by[64];
	who_field(by, sizeof by);
	snprintf(fields, sizeof fields, "{\"name\":\"%s\",\"role\":\"%s\",\"replaced\":%s,%s}", name,
		 role, had ? "true" : "false", by);
	rc = audit_admin(o, had ? "user_replaced" : "user_added", fields);
	if (generated)
		printf("%s\n", pw);
	fprintf(stderr, "mote user: %s '%s' with role %s%s\n", had ? "replaced" : "added", name, role,
		generated ? "; its password is on stdout, shown only now" : "");
out:
	OPENSSL_cleanse(pw, sizeof pw);
	free(hash);
	store_free(s);
	return rc;
}

int cli_user(int argc, char **argv)
{
	struct admin_opts o;
	int r = parse_opts("user", argc, argv, &o);
	if (r)
		return r;
	if (o.help) {
		fputs(user_usage, stdout);
		return 0;
	}
	if (o.nargs == 0) {
		fputs(user_usage, stderr);
		return 2;
	}
	const char *cmd = o.args[0];
	if (o.scope)
		return usage_error("user", "--scope belongs to 'mote token create'");
	if (strcmp(cmd, "add") == 0) {
		if (o.nargs != 2)
			return usage_error("user", "add wants a NAME");
		return user_add(&o, o.args[1]);
	}
	if (o.role || o.password_stdin || o.force)
		return usage_error("user", "--role, --password-stdin and --force belong to add");
	char err[512] = "";
	int lockfd, rc = 1;
	bool existed;
	struct store *s = NULL;
	if (strcmp(cmd, "del") == 0) {
		if (o.nargs != 2)
			return usage_error("user", "del wants a NAME");
		if (store_edit_begin(o.data, &lockfd, &s, &existed, err, sizeof err) != MOTE_OK) {
			fprintf(stderr, "mote user: %s\n", err);
			return 1;
		}
		bool gone = store_del_user(s, o.args[1]);
		if (store_edit_end(o.data, lockfd, s, gone, err, sizeof err) != MOTE_OK) {
			fprintf(stderr, "mote user: %s\n", err);
		} else if (!gone) {
			fprintf(stderr, "mote user: no user '%s'\n", o.args[1]);
		} else {
			char fields[300], by[64], jn[160];
			who_field(by, sizeof by);
			audit_json_str(jn, sizeof jn, o.args[1], strlen(o.args[1]));
			snprintf(fields, sizeof fields, "{\"name\":%s,%s}", jn, by);
			rc = audit_admin(&o, "user_deleted", fields);
			if (rc == 0)
				fprintf(stderr, "mote user: deleted '%s'\n", o.args[1]);
		}
		store_free(s);
		return rc;
	}
	if (strcmp(cmd, "list") == 0) {
		if (o.nargs != 1)
			return usage_error("user", "list takes no argument");
		char path[4200];
		store_path(o.data, path, sizeof path);
		enum mote_err e = store_load(path, &s, err, sizeof err);
		if (e == MOTE_ENOTFOUND) {
			fprintf(stderr, "mote user: no user store in %s (the hub makes one on its first "
					"start)\n", o.data);
			return 1;
		}
		if (e != MOTE_OK) {
			fprintf(stderr, "mote user: %s\n", err);
			return 1;
		}
		for (unsigned i = 0; i < s->nusers; i++)
			printf("%s %s\n", s->users[i].name, s->users[i].role);
		store_free(s);
		return 0;
	}
	return usage_error("user", "unknown command '%s' (add, del, list)", cmd);
}

static const char token_usage[] =
	"usage: mote token create --scope admin|write|read [--name NAME] [--data DIR]\n"
	"       mote token list [--data DIR]\n"
	"       mote token revoke ID|NAME [--data DIR]\n"
	"\n"
	"API tokens for applications: 256 random bits, printed once by create and\n"
	"stored only as a SHA-256 hash in DATA/users. Over MQTT a token logs in with\n"
	"username 'token' and the token as password; its scope is its role (admin,\n"
	"write: publish and subscribe anywhere but $SYS and $provision; read: subscribe\n"
	"only). Works while the hub runs: a revoked token is refused from its next login.\n"
	"\n"
	"  create             --scope is required; --name NAME labels it (1-64 of\n"
	"                     A-Z a-z 0-9 . _ - @)\n"
	"  list               ID, scope, creation time (UTC), name\n"
	"  revoke ID|NAME     remove the token(s) with this id or name\n"
	"\n"
	"  --data DIR         the hub's data folder (default ./data)\n"
	"  --audit-log FILE   the audit log (default DATA/audit.log)\n";

int cli_token(int argc, char **argv)
{
	struct admin_opts o;
	int r = parse_opts("token", argc, argv, &o);
	if (r)
		return r;
	if (o.help) {
		fputs(token_usage, stdout);
		return 0;
	}
	if (o.nargs == 0) {
		fputs(token_usage, stderr);
		return 2;
	}
	if (o.role || o.password_stdin || o.force || o.acl)
		return usage_error("token", "--role, --password-stdin, --force and --acl belong to "
					    "'mote user'");
	const char *cmd = o.args[0];
	char err[512] = "", by[64], fields[400];
	int lockfd, rc = 1;
	bool existed;
	struct store *s = NULL;
	who_field(by, sizeof by);
	if (strcmp(cmd, "create") == 0) {
		if (o.nargs != 1)
			return usage_error("token", "create takes no argument (--name NAME labels it)");
		int scope = o.scope ? store_scope_parse(o.scope) : -1;
		if (scope < 0)
			return usage_error("token", "create wants --scope admin, write or read");
		if (o.name && !store_name_valid(o.name, strlen(o.name)))
			return usage_error("token", "--name '%s' is not 1-64 of A-Z a-z 0-9 . _ - @",
					   o.name);
		char text[STORE_TOKEN_LEN + 1];
		struct store_token t;
		if (store_token_new(text, &t) != MOTE_OK) {
			fprintf(stderr, "mote token: no randomness\n");
			return 1;
		}
		t.scope = (uint8_t)scope;
		if (o.name)
			snprintf(t.name, sizeof t.name, "%s", o.name);
		if (store_edit_begin(o.data, &lockfd, &s, &existed, err, sizeof err) != MOTE_OK) {
			fprintf(stderr, "mote token: %s\n", err);
			OPENSSL_cleanse(text, sizeof text);
			return 1;
		}
		if (store_add_token(s, &t) != MOTE_OK ||
		    store_edit_end(o.data, lockfd, s, true, err, sizeof err) != MOTE_OK) {
			fprintf(stderr, "mote token: %s\n", err[0] ? err : "store full");
		} else {
			snprintf(fields, sizeof fields,
				 "{\"id\":\"%s\",\"scope\":\"%s\",\"name\":\"%s\",%s}", t.id,
				 store_scope_name(t.scope), t.name, by);
			rc = audit_admin(&o, "token_created", fields);
			if (rc == 0) {
				printf("%s\n", text);
				fprintf(stderr, "mote token: created %s (scope %s); the token is on stdout, "
						"shown only now\n", t.id, store_scope_name(t.scope));
			}
		}
		OPENSSL_cleanse(text, sizeof text);
		store_free(s);
		return rc;
	}
	if (o.scope || o.name)
		return usage_error("token", "--scope and --name belong to create");
	if (strcmp(cmd, "revoke") == 0) {
		if (o.nargs != 2)
			return usage_error("token", "revoke wants an ID or NAME");
		if (store_edit_begin(o.data, &lockfd, &s, &existed, err, sizeof err) != MOTE_OK) {
			fprintf(stderr, "mote token: %s\n", err);
			return 1;
		}
		unsigned n = store_revoke_tokens(s, o.args[1]);
		if (store_edit_end(o.data, lockfd, s, n > 0, err, sizeof err) != MOTE_OK) {
			fprintf(stderr, "mote token: %s\n", err);
		} else if (n == 0) {
			fprintf(stderr, "mote token: no token with id or name '%s'\n", o.args[1]);
		} else {
			char jw[160];
			audit_json_str(jw, sizeof jw, o.args[1], strlen(o.args[1]));
			snprintf(fields, sizeof fields, "{\"what\":%s,\"count\":%u,%s}", jw, n, by);
			rc = audit_admin(&o, "token_revoked", fields);
			if (rc == 0)
				printf("revoked %u token%s\n", n, n == 1 ? "" : "s");
		}
		store_free(s);
		return rc;
	}
	if (strcmp(cmd, "list") == 0) {
		if (o.nargs != 1)
			return usage_error("token", "list takes no argument");
		char path[4200];
		store_path(o.data, path, sizeof path);
		enum mote_err e = store_load(path, &s, err, sizeof err);
		if (e == MOTE_ENOTFOUND)
			return 0;
		if (e != MOTE_OK) {
			fprintf(stderr, "mote token: %s\n", err);
			return 1;
		}
		for (unsigned i = 0; i < s->ntokens; i++) {
			time_t when = (time_t)s->tokens[i].created;
			struct tm tm;
			char ts[32];
			gmtime_r(&when, &tm);
			strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
			printf("%s %s %s %s\n", s->tokens[i].id, store_scope_name(s->tokens[i].scope), ts,
			       s->tokens[i].name);
		}
		store_free(s);
		return 0;
	}
	return usage_error("token", "unknown command '%s' (create, list, revoke)", cmd);
}

static const char audit_usage[] =
	"usage: mote audit verify FILE\n"
	"\n"
	"Checks the hash chain of an audit log (the hub's DATA/audit.log, or its\n"
	"--audit-log). Each record holds the SHA-256 of the one before it, so an\n"
	"edited, removed or reordered record breaks the chain there.\n"
	"Prints 'OK: N records, last hash H' and exits 0, or names the first bad\n"
	"line and exits 1. Keep H somewhere else: records cut from the end leave a\n"
	"valid but shorter chain, which only a remembered hash reveals.\n";

int cli_audit(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(audit_usage, stdout);
		return 0;
	}
	if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
		fputs(audit_usage, stdout);
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "verify") != 0) {
		fputs(audit_usage, stderr);
		return 2;
	}
	struct audit_verify_result r;
	enum mote_err e = audit_verify(argv[2], &r);
	if (e == MOTE_EIO) {
		fprintf(stderr, "mote audit: cannot read %s\n", argv[2]);
		return 1;
	}
	if (e != MOTE_OK) {
		printf("%s:%" PRIu64 ": %s\nFAILED: %" PRIu64 " records verified before line %" PRIu64
		       "\n",
		       argv[2], r.bad_line, r.why, r.records, r.bad_line);
		return 1;
	}
	printf("OK: %" PRIu64 " records, last hash %s\n", r.records, r.last_hash);
	return 0;
}
