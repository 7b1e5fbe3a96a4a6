/*
 * persist.c - what insight learned survives a restart: the table
 * insight_state(device, part, blob) in mote.db holds per device one blob of
 * fitted models (part "$models") and per metric its detector snapshot and
 * anomaly episode (part = the metric name). Saved every save_every_s and at
 * close, in one transaction; loaded when the device is first seen again.
 *
 * A blob is read back only if its magic and size match this build's
 * structs and its numbers are sane; anything else (an older build, a
 * damaged row) is ignored and the device learns again - never trusted.
 */
#include "insight/insight_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

#define MODELS_MAGIC 0x314d494du  /* "MIM1" */
#define METRIC_MAGIC 0x3145494du  /* "MIE1" */
#define MODELS_PART "$models"

struct episode {
	uint8_t anomalous;
	int32_t severity;
	int64_t since_ms, last_high_ms;
	double peak, smooth;
	uint64_t episodes;
	double ew_mean, ew_dev;
	uint64_t seen;
};

enum mote_err insight_persist_open(struct insight *in, char *err, size_t errcap)
{
	const char *ddl = "CREATE TABLE IF NOT EXISTS insight_state ("
			  " device TEXT NOT NULL, part TEXT NOT NULL, blob BLOB NOT NULL,"
			  " PRIMARY KEY (device, part))";
	if (sqlite3_exec(in->db, ddl, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(in->db,
			       "SELECT blob FROM insight_state WHERE device = ?1 AND part = ?2", -1,
			       &in->load, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(in->db,
			       "INSERT OR REPLACE INTO insight_state (device, part, blob) "
			       "VALUES (?1, ?2, ?3)",
			       -1, &in->save, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(in->db, "DELETE FROM insight_state WHERE device = ?1", -1,
			       &in->drop, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(in->db,
			       "SELECT part FROM insight_state WHERE device = ?1 AND part <> '"
			       MODELS_PART "' ORDER BY rowid",
			       -1, &in->parts, NULL) != SQLITE_OK) {
		snprintf(err, errcap, "analytics table in mote.db: %s", sqlite3_errmsg(in->db));
		insight_persist_close(in);
		return MOTE_EIO;
	}
	return MOTE_OK;
}

void insight_persist_close(struct insight *in)
{
	sqlite3_finalize(in->load);
	sqlite3_finalize(in->save);
	sqlite3_finalize(in->drop);
	sqlite3_finalize(in->parts);
	in->load = in->save = in->drop = in->parts = NULL;
}

/* Copies the stored blob of (device, part) into buf; its length, or 0. */
static size_t load_blob(struct insight *in, const char *id, const char *part, void *buf,
			size_t cap)
{
	size_t n = 0;
	sqlite3_bind_text(in->load, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(in->load, 2, part, -1, SQLITE_STATIC);
	if (sqlite3_step(in->load) == SQLITE_ROW) {
		int len = sqlite3_column_bytes(in->load, 0);
		const void *b = sqlite3_column_blob(in->load, 0);
		if (b && len > 0 && (size_t)len <= cap) {
			memcpy(buf, b, (size_t)len);
			n = (size_t)len;
		}
	}
	sqlite3_reset(in->load);
	sqlite3_clear_bindings(in->load);
	return n;
}

static bool rls_sane(const struct fc_rls *r, unsigned n)
{
	if (r->n != n || !(r->lambda > 0 && r->lambda <= 1) || !isfinite(r->var) || r->var < 0)
		return false;
	for (unsigned i = 0; i < n; i++) {
		if (!isfinite(r->theta[i]))
			return false;
		for (unsigned j = 0; j < n; j++)
			if (!isfinite(r->P[i][j]))
				return false;
	}
	return true;
}

static bool models_sane(const struct imodels *m)
{
	return m->init && isfinite(m->dt_s) && m->dt_s > 0 && isfinite(m->last_t) &&
	       m->thermal.block_s > 0 && isfinite(m->thermal.block_s) && m->wear.block_s > 0 &&
	       isfinite(m->wear.block_s) && rls_sane(&m->thermal.rls, 5) &&
	       rls_sane(&m->power.rls, 2) && rls_sane(&m->wear.rls, 2);
}

void insight_persist_restore(struct insight *in, struct idev *d)
{
	if (d->restored)
		return;
	d->restored = true;
	/* the metrics it had, in the order they first came */
	char names[64][TELEMETRY_METRIC_MAX + 1];
	size_t nn = 0;
	sqlite3_bind_text(in->parts, 1, d->id, -1, SQLITE_STATIC);
	while (nn < 64 && sqlite3_step(in->parts) == SQLITE_ROW) {
		const char *part = (const char *)sqlite3_column_text(in->parts, 0);
		if (part && strlen(part) <= TELEMETRY_METRIC_MAX)
			snprintf(names[nn++], sizeof names[0], "%s", part);
	}
	sqlite3_reset(in->parts);
	sqlite3_clear_bindings(in->parts);
	for (size_t i = 0; i < nn; i++)
		insight_metric(in, d, names[i]);
	unsigned char buf[8 + sizeof(struct imodels)];
	size_t n = load_blob(in, d->id, MODELS_PART, buf, sizeof buf);
	uint32_t magic, size;
	if (n != sizeof buf)
		return;
	memcpy(&magic, buf, 4);
	memcpy(&size, buf + 4, 4);
	struct imodels m;
	memcpy(&m, buf + 8, sizeof m);
	if (magic != MODELS_MAGIC || size != sizeof m || !models_sane(&m)) {
		MOTE_INFO("insight", "event=state_ignored device=%s part=models", d->id);
		return;
	}
	d->mod = m;
}

void insight_persist_restore_metric(struct insight *in, struct idev *d, struct imetric *m)
{
	unsigned char buf[8 + sizeof(struct episode) + MOTE_ANOMALY_SNAPSHOT_SIZE];
	size_t n = load_blob(in, d->id, m->name, buf, sizeof buf);
	if (n < 8 + sizeof(struct episode))
		return;
	uint32_t magic, size;
	memcpy(&magic, buf, 4);
	memcpy(&size, buf + 4, 4);
	struct episode ep;
	memcpy(&ep, buf + 8, sizeof ep);
	struct mote_anomaly det;
	if (magic != METRIC_MAGIC || size != sizeof ep || !isfinite(ep.peak) ||
	    !isfinite(ep.smooth) || ep.severity < 0 || ep.severity > 4 || !isfinite(ep.ew_mean) ||
	    !isfinite(ep.ew_dev) || ep.ew_dev < 0 ||
	    mote_anomaly_restore(&det, buf + 8 + sizeof ep, n - 8 - sizeof ep) != MOTE_OK) {
		MOTE_INFO("insight", "event=state_ignored device=%s part=%s", d->id, m->name);
		return;
	}
	m->det = det;
	m->anomalous = ep.anomalous != 0;
	m->severity = ep.severity;
	m->since_ms = ep.since_ms;
	m->last_high_ms = ep.last_high_ms;
	m->peak = ep.peak;
	m->smooth = ep.smooth;
	m->episodes = ep.episodes;
	m->ew_mean = ep.ew_mean;
	m->ew_dev = ep.ew_dev;
	m->seen = ep.seen;
}

static bool save_blob(struct insight *in, const char *id, const char *part, const void *b,
		      size_t len)
{
	sqlite3_bind_text(in->save, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(in->save, 2, part, -1, SQLITE_STATIC);
	sqlite3_bind_blob(in->save, 3, b, (int)len, SQLITE_STATIC);
	bool ok = sqlite3_step(in->save) == SQLITE_DONE;
	sqlite3_reset(in->save);
	sqlite3_clear_bindings(in->save);
	return ok;
}

static bool save_device(struct insight *in, struct idev *d)
{
	bool ok = true;
	if (d->models_dirty && d->mod.init) {
		unsigned char buf[8 + sizeof(struct imodels)];
		uint32_t magic = MODELS_MAGIC, size = sizeof(struct imodels);
		memcpy(buf, &magic, 4);
		memcpy(buf + 4, &size, 4);
		memcpy(buf + 8, &d->mod, sizeof d->mod);
		ok = save_blob(in, d->id, MODELS_PART, buf, sizeof buf) && ok;
	}
	for (size_t i = 0; i < d->nm; i++) {
		struct imetric *m = &d->m[i];
		if (!m->dirty)
			continue;
		unsigned char buf[8 + sizeof(struct episode) + MOTE_ANOMALY_SNAPSHOT_SIZE];
		struct episode ep;
		memset(&ep, 0, sizeof ep); /* the padding too: the bytes are stored */
		ep.anomalous = m->anomalous;
		ep.severity = m->severity;
		ep.since_ms = m->since_ms;
		ep.last_high_ms = m->last_high_ms;
		ep.peak = m->peak;
		ep.smooth = m->smooth;
		ep.episodes = m->episodes;
		ep.ew_mean = m->ew_mean;
		ep.ew_dev = m->ew_dev;
		ep.seen = m->seen;
		uint32_t magic = METRIC_MAGIC, size = sizeof ep;
		memcpy(buf, &magic, 4);
		memcpy(buf + 4, &size, 4);
		memcpy(buf + 8, &ep, sizeof ep);
		size_t len = 0;
		if (mote_anomaly_save(&m->det, buf + 8 + sizeof ep,
				      sizeof buf - 8 - sizeof ep, &len) != MOTE_OK ||
		    !save_blob(in, d->id, m->name, buf, 8 + sizeof ep + len)) {
			ok = false;
			continue;
		}
		m->dirty = false;
	}
	if (ok)
		d->models_dirty = false;
	return ok;
}

void insight_persist_save(struct insight *in)
{
	if (!in->save)
		return;
	size_t failed = 0;
	sqlite3_exec(in->db, "BEGIN", NULL, NULL, NULL);
	for (size_t i = 0; i < in->nbuckets; i++)
		for (struct idev *d = in->table[i]; d; d = d->next)
			failed += !save_device(in, d);
	if (sqlite3_exec(in->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		MOTE_WARN("insight", "event=save_failed why=\"%s\"", sqlite3_errmsg(in->db));
		sqlite3_exec(in->db, "ROLLBACK", NULL, NULL, NULL);
		return;
	}
	if (failed)
		MOTE_WARN("insight", "event=save_failed devices=%zu why=\"%s\"", failed,
			  sqlite3_errmsg(in->db));
}

void insight_persist_drop(struct insight *in, const char *id)
{
	if (!in->drop)
		return;
	sqlite3_bind_text(in->drop, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(in->drop) != SQLITE_DONE)
		MOTE_WARN("insight", "event=drop_failed device=%s", id);
	sqlite3_reset(in->drop);
	sqlite3_clear_bindings(in->drop);
}
