/*
 * rules_int.h - what the files of src/rules share: the rules object, the
 * compiled rules, per-device evaluation state, and the internal calls
 * between rule evaluation (rules.c), rule JSON (rule_json.c), alerts
 * (alerts.c) and webhooks (webhook.c). Private to src/rules/.
 *
 * Threading: everything but struct whq is touched only by the pipeline
 * thread; struct whq is shared with the webhook thread under its mutex.
 */
#ifndef MOTE_RULES_INT_H
#define MOTE_RULES_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "rules/expr.h"
#include "rules/rules.h"

#define RULE_NAME_MAX 64
#define RULE_ID_MAX 128      /* device ids and model names */
#define RATE_SAMPLES_MAX 4096
#define RULES_BODY_MAX 65536

enum rule_kind { RK_THRESHOLD, RK_RATE, RK_NODATA, RK_EXPR };
enum rule_cmp { CMP_GT, CMP_GE, CMP_LT, CMP_LE, CMP_EQ, CMP_NE };
/* Ordered: a larger number is more severe. */
enum severity { SEV_NONE = 0, SEV_WARNING, SEV_MINOR, SEV_MAJOR, SEV_CRITICAL };

struct rule {
	int64_t id;
	char name[RULE_NAME_MAX + 1];
	char type[RULE_NAME_MAX + 1];   /* alert type */
	char device[RULE_ID_MAX + 1];   /* scope: one of device, model */
	char model[RULE_ID_MAX + 1];
	enum rule_kind kind;
	enum rule_cmp op;
	char metric[RULE_NAME_MAX + 1];
	double value, hysteresis;
	int64_t for_ms, window_ms, timeout_ms;
	struct rexpr *expr;
	enum severity severity;
	bool enabled;
	int64_t created_ms, updated_ms;
	char *expr_src;                 /* expression rules: the source text */
	struct rule *next;
};

struct sample {
	int64_t ts;
	double v;
};

/* Evaluation state of one rule for one device. */
struct rstate {
	int64_t rule_id;
	bool active;        /* this rule holds the device's alert open */
	bool holding;       /* the condition is true now... */
	int64_t since_ms;   /* ...since then */
	bool armed;         /* no-data: a tick watched a never-seen device... */
	int64_t armed_ms;   /* ...first at this time */
	double last;        /* value of the latest evaluation */
	bool has_last;
	bool fresh;         /* raised in the current batch */
	bool repeat;        /* still true in the current batch: update the alert */
	struct sample *samp; /* rate: ring of recent samples */
	uint32_t head, n, cap;
};

struct latest {
	char name[RULE_NAME_MAX + 1];
	double v;
	bool has;
};

struct rdev {
	char *id;
	char model[RULE_ID_MAX + 1];
	bool seen;           /* telemetry since the rules knew it */
	int64_t last_ms;     /* latest telemetry (arrival time) */
	bool dirty;          /* last_ms not yet written to rules_devices */
	int64_t persisted_ms; /* when it last was (written at most once a minute) */
	struct rstate *st;
	size_t nst, capst;
	struct latest *lat;  /* latest values of the metrics expressions read */
	size_t nlat;
	struct rdev *hnext;
};

/* A delivery waiting in the webhook thread's hands. */
struct whjob {
	int64_t delivery;
	char *url, *secret, *body;
	char event[24];
	uint32_t attempts;
	uint64_t due_mono;   /* next attempt, CLOCK_MONOTONIC ms */
	struct whjob *next;
};

/* A delivery's new state, handed from the webhook thread to the pipeline. */
struct whres {
	int64_t delivery;
	uint32_t attempts;
	int http_code;
	char status[12];     /* pending, delivered, failed */
	char error[160];
	int64_t at_ms;
	struct whres *next;
};

struct whq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct whjob *jobs;     /* waiting or being retried */
	size_t njobs;
	struct whres *res, **res_tail;
	atomic_bool stop;
	uint64_t delivered, failed;
};

struct rules {
	sqlite3 *db;
	struct rules_config cfg;
	struct mote_sink sink;
	struct rule *rules;
	size_t nrules;
	size_t n_nodata, n_expr;     /* enabled rules of these kinds */
	char (*watched)[RULE_NAME_MAX + 1]; /* metrics some enabled expression reads */
	size_t nwatched;
	struct rdev **tab;
	size_t tabcap, ndev;
	/* rules_get_stats reads these from any thread */
	atomic_uint_fast64_t st_rules, st_active, st_raised;
	int64_t last_retention_ms;
	uint64_t dropped;
	uint64_t last_drop_log_ms;
	struct whq q;
	pthread_t thread;
	bool thread_started;
	bool q_ready;        /* q's mutex and condition exist */
};

/* rules.c */
struct rdev *rules_dev(struct rules *r, const char *id, bool create);
void rules_recompute(struct rules *r);
void rules_forget_rule(struct rules *r, int64_t rule_id, bool keep_active);
const char *severity_name(enum severity s);
enum severity severity_parse(const char *s);
int64_t rules_parse_id(const char *s);
bool rules_exec(struct rules *r, const char *sql);

/* rule_json.c: validates a rule object; on error a sentence in err. */
bool rule_from_json(const cJSON *j, struct rule *out, char *err, size_t errcap);
char *rule_to_json(const struct rule *ru);
void rule_free(struct rule *ru);

/* alerts.c */
bool alerts_schema(struct rules *r);
/* Opens or updates the open alert of (device, type); returns its id or 0. */
int64_t alert_raise(struct rules *r, const char *device, const char *type, enum severity sev,
		    int64_t rule_id, const double *value, const char *details, bool update_only,
		    int64_t now_ms);
/* Clears the open alert of (device, type) if any; true if one was cleared. */
bool alert_resolve(struct rules *r, const char *device, const char *type, const char *who,
		   int64_t now_ms);
bool alert_is_open(struct rules *r, const char *device, const char *type);
/* Is the open alert of (device, type) one that rule_id opened? */
bool alert_open_by_rule(struct rules *r, const char *device, const char *type, int64_t rule_id);
/* Clears every open alert rule_id opened (the rule is being deleted). */
void alerts_clear_rule(struct rules *r, int64_t rule_id, int64_t now_ms);
void alerts_retention(struct rules *r, int64_t now_ms);
/* Counts the active alerts again into st_active. */
void alerts_recount(struct rules *r);

/* webhook.c */
bool webhook_schema(struct rules *r);
enum mote_err webhook_start(struct rules *r);
void webhook_stop(struct rules *r);
/* Queues a delivery of body to every webhook that wants event. */
void webhook_notify(struct rules *r, const char *event, int64_t alert_id, const char *body,
		    int64_t now_ms);
/* Writes the webhook thread's results into the delivery log. */
void webhook_drain(struct rules *r);
void webhook_retention(struct rules *r, int64_t now_ms);
/* hex HMAC-SHA256 of body with key (out: 65 bytes). */
void webhook_sign(const char *key, const char *body, size_t len, char out[65]);

/* Answers 200 {"<name>":[row(st) of every row]} and finalizes st. */
void rules_reply_rows(struct mote_reply *out, sqlite3_stmt *st, const char *name,
		      cJSON *(*row)(sqlite3_stmt *st));

#endif
