/*
 * anomaly.h - a streaming anomaly detector for one numeric series.
 *
 * One point (timestamp in ms, value) in, one anomaly score in [0, 1] out.
 * The state is a fixed-size struct: nothing is allocated, nothing grows, and
 * no future point is looked at. The hub keeps one per metric per device;
 * `mote analyze nab` runs one per CSV file. docs/analytics.md says how it
 * works and how its settings were chosen.
 *
 * Bad input keeps the state sane (tests/unit/test_analytics_anomaly.c):
 *   - a NaN or infinite value is ignored: score 0, state untouched except
 *     the `ignored` counter;
 *   - a timestamp equal to or older than the last accepted one (a duplicate or
 *     a reordered point) is ignored the same way;
 *   - a gap (more than `gap_factor` typical intervals since the last point)
 *     breaks the sequence context, so the first point after the gap is not
 *     compared with the point before it; the learned statistics stay.
 *
 * Settings are global (mote_anomaly_params_default): they were tuned once on
 * the NAB corpus and are never chosen per series. A score >= 0.51 is the
 * alarm level of the published NAB results (docs/analytics.md).
 *
 * Threading: a state belongs to one thread at a time; the functions keep no
 * global state, so different states may be stepped from different threads.
 * Memory: the caller owns the state (embed it, or allocate
 * sizeof(struct mote_anomaly)); nothing here allocates.
 */
#ifndef MOTE_ANALYTICS_ANOMALY_H
#define MOTE_ANALYTICS_ANOMALY_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define MOTE_ANOMALY_CTX_SLOTS 1024 /* context table: power of two */
#define MOTE_ANOMALY_SHORT 16	    /* max length of the short window of the likelihood */
#define MOTE_ANOMALY_VALUE_MAX 1e30
#define MOTE_ANOMALY_ORDER 8
#define MOTE_ANOMALY_SEASON 168

struct mote_anomaly_params {
	uint32_t warmup;       /* points learned before any score is emitted */
	double alpha_level;    /* EW weight of the baseline (prediction) */
	double alpha_scale;    /* EW weight of the residual scale */
	double z_cap;	       /* residual z that maps to a raw score of 1 */
	uint32_t bins;	       /* value quantization levels for the context */
	uint32_t order;	       /* context length in points (<= MOTE_ANOMALY_ORDER) */
	double range_decay;    /* per-point pull of the learned min/max towards the baseline */
	uint32_t ctx_forget;   /* points between halvings of the context counts */
	double w_novel;	       /* weight of context novelty in the raw score (rest: residuals) */
	uint32_t season_slots; /* seasonal profile: slots of season_ms (0 = none; <=
				  MOTE_ANOMALY_SEASON) */
	double season_ms;      /* width of a slot: 3600000 and 168 slots = hour of the week */
	double alpha_season;   /* EW weight of a slot's mean at each visit */
	double w_season;       /* share of the seasonal residual among the residuals */
	double peak_decay;     /* per-point decay of the remembered peak of the short mean */
	double peak_exp;       /* below that peak, the score is scaled by (mean / peak)^peak_exp */
	uint32_t short_len;    /* points averaged for the likelihood (<= MOTE_ANOMALY_SHORT) */
	double alpha_long;     /* EW weight of the raw score's long-run mean and variance */
	double sd_min;	       /* floor of that standard deviation: a near-deterministic
				* series must not turn noise-level wiggles into alarms */
	double novel_exp;      /* novelty of a context seen c times: 1 / (1 + c)^novel_exp */
	double score_floor;    /* output below this is reported as 0 */
	double spike_z; /* a residual of this many scales scores at least 0.5 (0 = off) ... */
	uint32_t spike_warmup; /* ... once this many points were seen */
	double suppress_level; /* an output >= this starts a quiet period ... */
	uint32_t suppress_len; /* ... of this many points, scaled by suppress_gain */
	double suppress_gain;
	double gap_factor;  /* a gap is more than this many typical intervals */
	double alarm_decay; /* per-point decay of the count of recent alarms ... */
	double alarm_gain;  /* ... which divides the score by (1 + alarm_gain * count) */
};

/* The state; its layout is private to anomaly.c (read only the counters). */
struct mote_anomaly {
	struct mote_anomaly_params p;
	uint64_t n;	  /* points accepted */
	uint64_t ignored; /* points ignored: non-finite value or timestamp not after the last */
	uint64_t gaps;	  /* gaps seen */
	int64_t last_ts;
	double dt; /* EW typical interval, ms */
	double level, scale, lo, hi;
	double lmean, lvar; /* long-run mean and variance of the raw score */
	double short_buf[MOTE_ANOMALY_SHORT];
	double short_sum;
	uint32_t short_pos;
	uint32_t prev_bin[MOTE_ANOMALY_ORDER]; /* [0] = the latest */
	uint32_t ctx_valid; /* how many of prev_bin are meaningful (reset by gaps) */
	uint64_t last_alarm;
	double peak;
	double alarms; /* decayed count of recent alarms */
	double sscale; /* EW mean absolute seasonal residual */
	float sprof[MOTE_ANOMALY_SEASON];
	uint16_t sseen[MOTE_ANOMALY_SEASON];
	uint8_t ctx[MOTE_ANOMALY_CTX_SLOTS];
};

/* The tuned global settings. */
void mote_anomaly_params_default(struct mote_anomaly_params *p);

/* Starts a series; params NULL = the defaults. MOTE_EINVAL: a setting out of range. */
enum mote_err mote_anomaly_init(struct mote_anomaly *a, const struct mote_anomaly_params *params);

/* Forgets everything learned, keeping the settings. */
void mote_anomaly_reset(struct mote_anomaly *a);

/* Feeds one point; returns its anomaly score in [0, 1] (0 for an ignored point). */
double mote_anomaly_step(struct mote_anomaly *a, int64_t ts_ms, double value);

/*
 * Saving the state so a restarted hub does not learn again: the state is
 * plain data without pointers, so its bytes are the snapshot (settings
 * included: a restored series keeps the settings it learned with). The
 * snapshot is for the same build and machine; anomaly.c's SNAP_VERSION must
 * change with the struct's layout. The blob starts
 * with a magic, a version and the size; restore refuses anything else
 * (MOTE_EMALFORMED) and a state whose settings are out of range (MOTE_EINVAL).
 */
#define MOTE_ANOMALY_SNAPSHOT_SIZE (16 + sizeof(struct mote_anomaly))
enum mote_err mote_anomaly_save(const struct mote_anomaly *a, void *buf, size_t cap, size_t *len);
enum mote_err mote_anomaly_restore(struct mote_anomaly *a, const void *buf, size_t len);

#endif
