/*
 * insight_int.h - what the files of src/insight/ share: per-device state,
 * the device-model profiles, and the calls between insight.c (state,
 * anomalies, alerts), section.c (the twin's analytics section), simulate.c
 * (what-if) and persist.c (saving what was learned). Private to the module.
 *
 * Threading: the platform pipeline thread only.
 */
#ifndef MOTE_INSIGHT_INT_H
#define MOTE_INSIGHT_INT_H

#include "analytics/anomaly.h"
#include "analytics/forecast.h"
#include "insight/insight.h"

#define INSIGHT_MODEL_MAX 64

/* What the hub knows of a device model's physics (insight.c has the table). */
struct profile {
	const char *model;
	const char *out_metric;    /* follows the input through a first-order lag */
	const char *in_metric;     /* the input: a telemetry metric, or NULL: ... */
	bool in_is_setpoint;       /* ... the reported setpoint */
	bool power_by_setpoint;    /* learn log in_metric = g * log setpoint + h */
	const char *wear_metric;   /* grows with wear (NULL: none) */
	double wear_limit;         /* its alert level when no rule names one */
};

struct imetric {
	char name[TELEMETRY_METRIC_MAX + 1];
	struct mote_anomaly det;
	double score;              /* the latest */
	double smooth;             /* EWMA of the scores (health) */
	double value;              /* the latest value */
	bool anomalous;
	int64_t since_ms;          /* the episode began (anomalous) */
	int64_t last_high_ms;      /* the latest score at or above the threshold */
	double peak;               /* the episode's highest score */
	int severity;              /* the severity raised for the episode (0: none) */
	uint64_t episodes;
	/* the extreme-deviation guard (insight.c): EW mean and mean absolute
	 * deviation of the values, and how many it has seen */
	double ew_mean, ew_dev;
	uint64_t seen;
	bool dirty;                /* changed since saved */
};

/* The fitted models of one device: plain data, saved as one blob. */
struct imodels {
	bool init;                 /* the models exist (blocks chosen) */
	double dt_s;               /* EWMA of the sampling interval */
	double last_t;
	uint64_t samples;
	struct fc_first_order thermal;
	/* log in_metric against log setpoint: a scenario's new input is the
	 * current one times (new / current setpoint)^g, so the process demand
	 * of the moment (the pump's flow) carries over, whatever it was on
	 * average in the history */
	struct fc_linear power;
	struct fc_trend wear;
};

struct idev {
	char *id;
	uint32_t hash;
	struct idev *next;         /* hash chain */
	char model[INSIGHT_MODEL_MAX + 1];
	const struct profile *prof;
	struct imetric *m;         /* owned; nm used of cap */
	size_t nm, cap;
	struct imodels mod;
	bool models_dirty;
	bool have_setpoint;
	double setpoint;
	double setpoint_t;         /* when it last changed (sample time, s) */
	int64_t updated_ms;
	bool restored;             /* insight_persist_restore ran for it */
};

struct insight {
	sqlite3 *db;
	sqlite3_stmt *load, *save, *drop, *parts;
	struct insight_config cfg;
	struct rules *rules;
	struct idev **table;
	size_t nbuckets, count;
	int64_t saved_ms;
	struct insight_stats st;
};

/* insight.c */
struct idev *insight_dev(struct insight *in, const char *id, bool create);
/* The device's state of metric name, created (and restored) if new; NULL
 * beyond max_metrics or without memory. */
struct imetric *insight_metric(struct insight *in, struct idev *d, const char *name);
const struct profile *insight_profile(const char *model);
/* Notes the device's model (from the registry); its profile follows. */
void insight_set_model(struct idev *d, const char *model);
/* The alert level of the wear metric: a rule's threshold, else the profile's. */
double insight_wear_limit(struct insight *in, const struct idev *d);

/* persist.c */
enum mote_err insight_persist_open(struct insight *in, char *err, size_t errcap);
void insight_persist_close(struct insight *in);
/* Loads what was saved of d: its models, and every metric it had (their
 * detectors and episodes, through insight_metric). */
void insight_persist_restore(struct insight *in, struct idev *d);
void insight_persist_restore_metric(struct insight *in, struct idev *d, struct imetric *m);
/* Writes every dirty device in one transaction. */
void insight_persist_save(struct insight *in);
void insight_persist_drop(struct insight *in, const char *id);

#endif
