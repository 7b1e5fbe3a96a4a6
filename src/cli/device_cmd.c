/*
 * device_cmd.c - `mote device add|list|show|rm`: the device registry from
 * the command line.
 *
 * It works on DATA/mote.db directly, also while the hub runs (SQLite WAL;
 * the hub notices the change within a second: a new device is known, a
 * removed one loses its twin, telemetry and rule state in the hub too).
 * `rm` also deletes the twin and telemetry here (for a stopped hub) and
 * revokes the device's certificates when --pki DIR is given.
 * Exit status: 0 done, 1 failed, 2 usage error.
 */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "pki/pki.h"
#include "registry/registry.h"
#include "store/tstore.h"
#include "twin/twin.h"

#define MAX_TAGS 32

struct device_opts {
	const char *data;
	const char *pki;
	const char *name;
	const char *model;
	const char *status;
	const char *tag_filter;
	const char *tags[MAX_TAGS];   /* KEY=VALUE */
	int ntags;
	bool json;
	bool help;
	const char *args[2];
	int nargs;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: mote device COMMAND [OPTIONS]\n\n"
		"The device registry in DATA/mote.db (safe while the hub runs).\n\n"
		"commands:\n"
		"  add ID [--name TEXT] [--model MODEL] [--tag KEY=VALUE]...\n"
		"                       register a device before it first connects\n"
		"  list [--model MODEL] [--tag KEY[:VALUE]] [--status online|offline] [--json]\n"
		"                       the devices, one per line (or JSON)\n"
		"  show ID              everything the registry knows of one device (JSON)\n"
		"  rm ID [--pki DIR]    delete a device: its registry entry, twin and telemetry,\n"
		"                       and with --pki its certificates are revoked (crl.pem)\n\n"
		"options:\n"
		"  --data DIR           the hub's data folder (default ./data)\n"
		"  --help               this help\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "mote device: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; run 'mote device --help'\n");
	return 2;
}

static int parse(int argc, char **argv, struct device_opts *o)
{
	enum { O_DATA = 256, O_PKI, O_NAME, O_MODEL, O_TAG, O_STATUS, O_JSON, O_HELP };
	static const struct option opts[] = {
		{ "data", required_argument, NULL, O_DATA },
		{ "pki", required_argument, NULL, O_PKI },
		{ "name", required_argument, NULL, O_NAME },
		{ "model", required_argument, NULL, O_MODEL },
		{ "tag", required_argument, NULL, O_TAG },
		{ "status", required_argument, NULL, O_STATUS },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	memset(o, 0, sizeof *o);
	o->data = "data";
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "-h", opts, NULL)) != -1) {
		switch (c) {
		case 1:
			if (o->nargs >= 2)
				return usage_error("unexpected argument '%s'", optarg);
			o->args[o->nargs++] = optarg;
			break;
		case O_DATA: o->data = optarg; break;
		case O_PKI: o->pki = optarg; break;
		case O_NAME: o->name = optarg; break;
		case O_MODEL: o->model = optarg; break;
		case O_STATUS: o->status = optarg; break;
		case O_JSON: o->json = true; break;
		case O_TAG:
			if (o->ntags >= MAX_TAGS)
				return usage_error("at most %d --tag options", MAX_TAGS);
			o->tags[o->ntags++] = optarg;
			break;
		case 'h':
		case O_HELP: o->help = true; break;
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	return 0;
}

static sqlite3 *open_db(const char *data, bool create)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/mote.db", data);
	struct stat st;
	if (!create && stat(path, &st) != 0) {
		fprintf(stderr, "mote device: no registry at %s; start the hub once with --data %s, "
				"or add a device first\n",
			path, data);
		return NULL;
	}
	if (create)
		mkdir(data, 0700);
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0),
			    NULL) != SQLITE_OK) {
		fprintf(stderr, "mote device: cannot open %s: %s\n", path,
			db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
	chmod(path, 0600);
	return db;
}

/* --tag KEY=VALUE... as a JSON object (malloc'd), or NULL with a message. */
static char *tags_json(const struct device_opts *o)
{
	cJSON *t = cJSON_CreateObject();
	for (int i = 0; t && i < o->ntags; i++) {
		const char *eq = strchr(o->tags[i], '=');
		if (!eq || eq == o->tags[i]) {
			usage_error("--tag wants KEY=VALUE, not '%s'", o->tags[i]);
			cJSON_Delete(t);
			return NULL;
		}
		char key[80];
		snprintf(key, sizeof key, "%.*s", (int)(eq - o->tags[i]), o->tags[i]);
		cJSON_DeleteItemFromObjectCaseSensitive(t, key);
		cJSON_AddStringToObject(t, key, eq + 1);
	}
	char *s = t ? cJSON_PrintUnformatted(t) : NULL;
	cJSON_Delete(t);
	return s;
}

static int cmd_add(const struct device_opts *o, struct registry *r)
{
	char *tags = tags_json(o);
	if (!tags)
		return 2;
	char err[256];
	enum mote_err e = registry_add(r, o->args[1], o->name, o->model, tags,
				       (int64_t)mote_wall_ms(), err, sizeof err);
	free(tags);
	if (e != MOTE_OK) {
		fprintf(stderr, "mote device add: %s\n", err);
		return e == MOTE_EINVAL ? 2 : 1;
	}
	printf("added device '%s'\n", o->args[1]);
	return 0;
}

static void print_time(int64_t ms, char *buf, size_t cap)
{
	if (ms <= 0) {
		snprintf(buf, cap, "never");
		return;
	}
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cmd_list(const struct device_opts *o, struct registry *r)
{
	struct registry_filter f = { .model = o->model, .tag = o->tag_filter, .status = o->status,
				     .limit = 1000 };
	struct mote_reply rep = { 0 };
	registry_list_json(r, &f, &rep);
	if (rep.status != 200) {
		fprintf(stderr, "mote device list: %s\n", rep.body ? rep.body : "failed");
		mote_reply_clear(&rep);
		return 1;
	}
	if (o->json) {
		printf("%s\n", rep.body);
		mote_reply_clear(&rep);
		return 0;
	}
	cJSON *doc = cJSON_Parse(rep.body);
	mote_reply_clear(&rep);
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "devices"), *d;
	printf("%-32s %-12s %-8s %-20s %s\n", "ID", "MODEL", "STATUS", "LAST SEEN", "NAME");
	cJSON_ArrayForEach(d, arr)
	{
		char seen[32];
		const cJSON *ls = cJSON_GetObjectItemCaseSensitive(d, "last_seen");
		print_time(cJSON_IsNumber(ls) ? (int64_t)ls->valuedouble : 0, seen, sizeof seen);
		printf("%-32s %-12s %-8s %-20s %s\n",
		       cJSON_GetObjectItemCaseSensitive(d, "id")->valuestring,
		       cJSON_GetObjectItemCaseSensitive(d, "model")->valuestring,
		       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "online")) ? "online"
										    : "offline",
		       seen, cJSON_GetObjectItemCaseSensitive(d, "name")->valuestring);
	}
	cJSON_Delete(doc);
	return 0;
}

static int cmd_show(const struct device_opts *o, struct registry *r)
{
	struct mote_reply rep = { 0 };
	registry_get_json(r, o->args[1], &rep);
	int rc = rep.status == 200 ? 0 : 1;
	if (rc == 0) {
		cJSON *doc = cJSON_Parse(rep.body);
		char *pretty = doc ? cJSON_Print(doc) : NULL;
		printf("%s\n", pretty ? pretty : rep.body);
		free(pretty);
		cJSON_Delete(doc);
	} else {
		fprintf(stderr, "mote device show: no device '%s' in %s/mote.db\n", o->args[1],
			o->data);
	}
	mote_reply_clear(&rep);
	return rc;
}

/* The twin and the telemetry of a removed device, for a hub that is not
 * running (a running hub does the same when it sees the device vanish). */
static void remove_data(const struct device_opts *o, sqlite3 *db, const char *id)
{
	char err[256];
	struct twin_limits tl;
	twin_limits_defaults(&tl);
	struct twin_service *ts = NULL;
	if (twin_service_open(db, &tl, NULL, &ts, err, sizeof err) == MOTE_OK) {
		twin_service_delete(ts, id);
		twin_service_close(ts);
	}
	char path[4200];
	snprintf(path, sizeof path, "%s/telemetry.db", o->data);
	struct stat st;
	if (stat(path, &st) != 0)
		return;
	struct tstore_config sc;
	tstore_config_defaults(&sc);
	sc.path = path;
	struct tstore *s = NULL;
	if (tstore_open(&sc, &s, err, sizeof err) == MOTE_OK) {
		tstore_delete_device(s, id);
		tstore_close(s);
	} else {
		fprintf(stderr, "mote device rm: telemetry left in %s: %s\n", path, err);
	}
}

static int cmd_rm(const struct device_opts *o, struct registry *r, sqlite3 *db)
{
	const char *id = o->args[1];
	enum mote_err e = registry_remove(r, id);
	if (e == MOTE_ENOTFOUND) {
		fprintf(stderr, "mote device rm: no device '%s' in %s/mote.db\n", id, o->data);
		return 1;
	}
	if (e != MOTE_OK) {
		fprintf(stderr, "mote device rm: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	remove_data(o, db, id);
	printf("removed device '%s' (registry, twin, telemetry)\n", id);
	if (o->pki) {
		char err[256];
		int n = 0;
		e = mote_pki_revoke(o->pki, id, &n, err, sizeof err);
		if (e != MOTE_OK && e != MOTE_ENOTFOUND) {
			fprintf(stderr, "mote device rm: revoking its certificates: %s\n", err);
			return 1;
		}
		printf("revoked %d certificate%s; %s/crl.pem rewritten\n", n, n == 1 ? "" : "s",
		       o->pki);
	}
	return 0;
}

int cli_device(int argc, char **argv)
{
	struct device_opts o;
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc;
	if (o.help) {
		usage(stdout);
		return 0;
	}
	if (o.nargs == 0)
		return usage_error("which command? add, list, show or rm");
	const char *cmd = o.args[0];
	bool needs_id = strcmp(cmd, "list") != 0;
	if (strcmp(cmd, "add") && strcmp(cmd, "list") && strcmp(cmd, "show") && strcmp(cmd, "rm"))
		return usage_error("unknown command '%s' (add, list, show, rm)", cmd);
	if (needs_id && o.nargs < 2)
		return usage_error("%s needs a device id", cmd);
	if (!needs_id && o.nargs > 1)
		return usage_error("list takes no id");
	if (strcmp(cmd, "list") == 0 && o.ntags) {
		/* list filters by one tag, written KEY or KEY:VALUE */
		o.tag_filter = o.tags[0];
	}
	sqlite3 *db = open_db(o.data, strcmp(cmd, "add") == 0);
	if (!db)
		return 1;
	struct registry *r = NULL;
	char err[256];
	if (registry_open(db, &r, err, sizeof err) != MOTE_OK) {
		fprintf(stderr, "mote device: %s\n", err);
		sqlite3_close(db);
		return 1;
	}
	if (strcmp(cmd, "add") == 0)
		rc = cmd_add(&o, r);
	else if (strcmp(cmd, "list") == 0)
		rc = cmd_list(&o, r);
	else if (strcmp(cmd, "show") == 0)
		rc = cmd_show(&o, r);
	else
		rc = cmd_rm(&o, r, db);
	registry_close(r);
	sqlite3_close(db);
	return rc;
}
