/*
 * fleet.c - the fleet: ids, certificates, TLS contexts, registration, the
 * worker threads and their loops, statistics, a clean stop.
 *
 * Invariants:
 *   - Everything that can fail slowly (issuing certificates, loading keys,
 *     the REST registration) happens in sim_fleet_new(), before any thread
 *     exists, so a bad configuration ends the command with one clear
 *     message instead of a fleet of failing devices.
 *   - Device i lives on worker i % nworkers; workers never share devices.
 *   - A stop runs on each worker's own thread (loop_wake), which sends every
 *     device's DISCONNECT and leaves loop_run; then the threads are joined.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "audit/audit.h"
#include "base/log.h"
#include "pki/pki.h"
#include "sim/sim_int.h"

static unsigned id_width(unsigned n)
{
	unsigned w = 1;

	for (unsigned v = n; v >= 10; v /= 10)
		w++;
	return w < 3 ? 3 : w;
}

enum sim_model sim_device_model(const struct sim_config *cfg, unsigned i)
{
	if (cfg->nmodels == 0)
		return (enum sim_model)(i % SIM_MODEL_COUNT);
	return cfg->models[i % cfg->nmodels];
}

size_t sim_device_id(const struct sim_config *cfg, unsigned i, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s%s-%0*u", cfg->prefix ? cfg->prefix : "",
			 sim_model_name(sim_device_model(cfg, i)), (int)id_width(cfg->devices),
			 i + 1);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	return (size_t)n;
}

static bool cancelled(const struct sim_fleet *f)
{
	return f->cfg.cancelled && f->cfg.cancelled(f->cfg.cancel_ctx);
}

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * Every certificate issued goes into DIR/audit.log, as `mote pki issue`
 * records it (by "sim"). The log is opened at the first one; a log that
 * cannot be written is said once and does not stop the fleet.
 */
static void audit_issued(struct sim_fleet *f, struct audit **a, bool *failed, const char *id,
			 const char *cert)
{
	char path[PATH_MAX], jid[2 * SIM_ID_MAX + 8], jcert[2 * PATH_MAX + 8];
	char fields[sizeof jid + sizeof jcert + 64];

	if (*failed)
		return;
	if (!*a) {
		snprintf(path, sizeof path, "%s/audit.log", f->cfg.pki_dir);
		if (audit_open(path, a) != MOTE_OK) {
			MOTE_WARN("sim", "event=audit_failed path=%s why=\"cannot open it: the "
				  "certificates are issued but not in the audit log\"", path);
			*failed = true;
			return;
		}
	}
	audit_json_str(jid, sizeof jid, id, strlen(id));
	audit_json_str(jcert, sizeof jcert, cert, strlen(cert));
	snprintf(fields, sizeof fields, "{\"device\":%s,\"cert\":%s,\"by\":\"sim\"}", jid,
		 jcert);
	/* The queue is bounded: on a full one, let the writer catch up once. */
	if (audit_append(*a, "pki_issued", fields) == MOTE_EFULL &&
	    (audit_flush(*a) != MOTE_OK || audit_append(*a, "pki_issued", fields) != MOTE_OK))
		MOTE_WARN("sim", "event=audit_failed device=%s why=\"audit queue full\"", id);
}

/* TLS context of one device, issuing its certificate when --pki has none. */
static enum mote_err device_tls(struct sim_fleet *f, struct sim_dev *d, const char *ca,
				struct tls_client *claim, unsigned *issued, struct audit **log,
				bool *log_failed, char *err, size_t errcap)
{
	const struct sim_config *cfg = &f->cfg;
	char cert[PATH_MAX], key[PATH_MAX], e[512];
	enum mote_err rc;

	if (cfg->pki_dir) {
		snprintf(cert, sizeof cert, "%s/devices/%s.pem", cfg->pki_dir, d->id);
		snprintf(key, sizeof key, "%s/devices/%s.key", cfg->pki_dir, d->id);
		if (!file_exists(cert) || !file_exists(key)) {
			/* force: the device's files are gone, so a certificate the
			 * index still lists for it is of no use to anyone. */
			rc = mote_pki_issue(cfg->pki_dir, d->id, 0, 1, cert, key, e, sizeof e);
			if (rc != MOTE_OK) {
				snprintf(err, errcap, "issuing a certificate for %s: %s", d->id, e);
				return rc;
			}
			(*issued)++;
			audit_issued(f, log, log_failed, d->id, cert);
		}
	} else {
		snprintf(cert, sizeof cert, "%s/%s.pem", cfg->certs_dir, d->id);
		snprintf(key, sizeof key, "%s/%s.key", cfg->certs_dir, d->id);
		if (claim && (!file_exists(cert) || !file_exists(key))) {
			rc = sim_claim_device(f, claim, d->id, cert, key, e, sizeof e);
			if (rc != MOTE_OK) {
				snprintf(err, errcap, "provisioning %s by claim: %s", d->id, e);
				return rc;
			}
			(*issued)++;
		}
	}
	rc = tls_client_new(ca, cert, key, &d->tls, e, sizeof e);
	if (rc != MOTE_OK) {
		snprintf(err, errcap, "device %s: %s", d->id, e);
		return rc;
	}
	d->own_tls = true;
	return MOTE_OK;
}

static enum mote_err setup_tls(struct sim_fleet *f, char *err, size_t errcap)
{
	const struct sim_config *cfg = &f->cfg;
	char ca[PATH_MAX];
	unsigned issued = 0;
	uint64_t last = mote_mono_ms();
	struct audit *log = NULL;
	struct tls_client *claim = NULL; /* owned: the batch's claim certificate */
	bool log_failed = false;
	enum mote_err rc = MOTE_OK;
	char e[512];

	if (cfg->ca_file)
		snprintf(ca, sizeof ca, "%s", cfg->ca_file);
	else if (cfg->pki_dir)
		snprintf(ca, sizeof ca, "%s/ca.pem", cfg->pki_dir);
	else {
		snprintf(err, errcap, "--mqtts needs the CA that signed the hub: --pki DIR or --ca FILE");
		return MOTE_EINVAL;
	}
	if (!cfg->pki_dir && !cfg->certs_dir) {
		snprintf(err, errcap, "--mqtts needs device certificates: --pki DIR (issued when "
			 "missing) or --certs DIR (DIR/ID.pem and DIR/ID.key)");
		return MOTE_EINVAL;
	}
	if (cfg->claim_cert) {
		if (!cfg->certs_dir || !cfg->claim_key) {
			snprintf(err, errcap, "--claim-cert needs --claim-key and --certs DIR (where "
				 "the certificates it gets are kept)");
			return MOTE_EINVAL;
		}
		if (mkdir(cfg->certs_dir, 0700) != 0 && errno != EEXIST) {
			snprintf(err, errcap, "%s: %s", cfg->certs_dir, strerror(errno));
			return MOTE_EIO;
		}
		rc = tls_client_new(ca, cfg->claim_cert, cfg->claim_key, &claim, e, sizeof e);
		if (rc != MOTE_OK) {
			snprintf(err, errcap, "the claim certificate: %s", e);
			return rc;
		}
	}
	for (unsigned i = 0; i < cfg->devices; i++) {
		if (cancelled(f)) {
			snprintf(err, errcap, "stopped while preparing certificates");
			rc = MOTE_EAGAIN;
			goto out;
		}
		rc = device_tls(f, &f->devs[i], ca, claim, &issued, &log, &log_failed, err,
				errcap);
		if (rc != MOTE_OK)
			goto out;
		if (issued && mote_mono_ms() - last > 5000) {
			MOTE_INFO("sim", "event=certificates_progress done=%u of=%u %s=%u", i + 1,
				  cfg->devices, claim ? "provisioned" : "issued", issued);
			last = mote_mono_ms();
		}
	}
out:
	if (log && audit_flush(log) != MOTE_OK)
		MOTE_WARN("sim", "event=audit_failed dir=%s why=\"write failed\"", cfg->pki_dir);
	audit_close(log);
	tls_client_free(claim);
	if (issued && claim)
		MOTE_INFO("sim", "event=certificates_provisioned count=%u dir=%s how=claim", issued,
			  cfg->certs_dir);
	else if (issued)
		MOTE_INFO("sim", "event=certificates_issued count=%u dir=%s", issued, cfg->pki_dir);
	return rc;
}

/* "host:port" with brackets for an IPv6 address, parsed by the net module. */
static enum mote_err resolve(struct sim_fleet *f, char *err, size_t errcap)
{
	char text[300], e[200];
	bool v6 = strchr(f->cfg.host, ':') != NULL;

	snprintf(text, sizeof text, "%s%s%s:%u", v6 ? "[" : "", f->cfg.host, v6 ? "]" : "",
		 (unsigned)f->cfg.port);
	if (net_addr_parse(text, &f->addr, &f->addr_len, e, sizeof e) != MOTE_OK) {
		snprintf(err, errcap, "%s: %s", text, e);
		return MOTE_EINVAL;
	}
	return MOTE_OK;
}

static void on_wake(struct loop *loop, void *data)
{
	struct sim_worker *w = data;

	for (size_t i = 0; i < w->ndevs; i++)
		dev_stop(w->devs[i]);
	loop_stop(loop);
}

enum mote_err sim_fleet_new(const struct sim_config *cfg, struct sim_fleet **out, char *err,
			    size_t errcap)
{
	struct sim_fleet *f;
	enum mote_err rc = MOTE_ENOMEM;
	uint64_t wall = mote_wall_ms();

	*out = NULL;
	err[0] = '\0';
	if (cfg->devices == 0 || !cfg->host || cfg->interval_ms < SIM_INTERVAL_MIN ||
	    cfg->interval_ms > SIM_INTERVAL_MAX || !(cfg->speed > 0)) {
		snprintf(err, errcap, "invalid fleet configuration");
		return MOTE_EINVAL;
	}
	f = calloc(1, sizeof *f);
	if (!f)
		goto oom;
	f->cfg = *cfg;
	f->host = strdup(cfg->host);
	f->prefix = strdup(cfg->prefix ? cfg->prefix : "");
	if (!f->host || !f->prefix)
		goto oom;
	f->cfg.host = f->host;
	f->cfg.prefix = f->prefix;
	if (!f->cfg.connect_rate)
		f->cfg.connect_rate = 200;
	if ((rc = resolve(f, err, errcap)) != MOTE_OK)
		goto fail;
	f->devs = calloc(cfg->devices, sizeof *f->devs);
	if (!f->devs) {
		rc = MOTE_ENOMEM;
		goto oom;
	}
	for (unsigned i = 0; i < cfg->devices; i++) {
		dev_setup(f, &f->devs[i], i, wall);
		if (!f->devs[i].id[0]) {
			snprintf(err, errcap, "device ids would be longer than %d bytes: use a "
				 "shorter --prefix", SIM_ID_MAX - 1);
			rc = MOTE_EINVAL;
			goto fail;
		}
	}
	if (cfg->tls && (rc = setup_tls(f, err, errcap)) != MOTE_OK)
		goto fail;
	if (cfg->api_url && (rc = sim_register(f, err, errcap)) != MOTE_OK)
		goto fail;

	unsigned nw = cfg->threads;
	if (!nw) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		nw = cpus > 4 ? 4 : cpus < 1 ? 1 : (unsigned)cpus;
	}
	if (nw > cfg->devices)
		nw = cfg->devices;
	f->workers = calloc(nw, sizeof *f->workers);
	if (!f->workers) {
		rc = MOTE_ENOMEM;
		goto oom;
	}
	f->nworkers = nw;
	for (unsigned k = 0; k < nw; k++) {
		struct sim_worker *w = &f->workers[k];
		w->f = f;
		w->id = k;
		w->rate = (double)f->cfg.connect_rate / nw;
		if (w->rate < 0.1)
			w->rate = 0.1;
		w->tokens = 1.0;
		w->ndevs = (cfg->devices - k + nw - 1) / nw;
		w->devs = calloc(w->ndevs ? w->ndevs : 1, sizeof *w->devs);
		if (!w->devs) {
			rc = MOTE_ENOMEM;
			goto oom;
		}
		if ((rc = loop_new(&w->loop)) != MOTE_OK) {
			snprintf(err, errcap, "cannot create an event loop: %s", mote_strerror(rc));
			goto fail;
		}
		loop_set_wake_fn(w->loop, on_wake, w);
	}
	for (unsigned i = 0; i < cfg->devices; i++) {
		struct sim_worker *w = &f->workers[i % nw];
		f->devs[i].w = w;
		w->devs[i / nw] = &f->devs[i];
	}
	f->start_wall_ms = wall;
	*out = f;
	return MOTE_OK;
oom:
	snprintf(err, errcap, "out of memory preparing %u devices", cfg->devices);
	rc = MOTE_ENOMEM;
fail:
	sim_fleet_free(f);
	return rc;
}

static void *worker_main(void *arg)
{
	struct sim_worker *w = arg;

	loop_update_now(w->loop);
	w->tokens_ms = loop_now(w->loop);
	for (size_t i = 0; i < w->ndevs; i++) {
		/* First connections paced at the worker's share of the rate. */
		uint64_t delay = (uint64_t)((double)i * 1000.0 / w->rate);
		if (dev_start(w->devs[i], delay) != MOTE_OK)
			MOTE_ERROR("sim", "event=start_failed device=%s why=\"out of memory\"",
				   w->devs[i]->id);
	}
	if (loop_run(w->loop) != MOTE_OK)
		MOTE_ERROR("sim", "event=loop_failed worker=%u", w->id);
	return NULL;
}

enum mote_err sim_fleet_start(struct sim_fleet *f, char *err, size_t errcap)
{
	for (unsigned k = 0; k < f->nworkers; k++) {
		struct sim_worker *w = &f->workers[k];
		int e = pthread_create(&w->thread, NULL, worker_main, w);
		if (e != 0) {
			snprintf(err, errcap, "cannot start worker thread %u: %s", k, strerror(e));
			sim_fleet_stop(f);
			return MOTE_EIO;
		}
		w->started = true;
	}
	f->running = true;
	return MOTE_OK;
}

void sim_fleet_stats(struct sim_fleet *f, struct sim_stats *out)
{
	out->devices = f->cfg.devices;
	out->connected = atomic_load_explicit(&f->c.connected, memory_order_relaxed);
	out->telemetry = atomic_load_explicit(&f->c.telemetry, memory_order_relaxed);
	out->reconnects = atomic_load_explicit(&f->c.reconnects, memory_order_relaxed);
	out->connect_failures = atomic_load_explicit(&f->c.connect_failures, memory_order_relaxed);
	out->reports = atomic_load_explicit(&f->c.reports, memory_order_relaxed);
	out->desired = atomic_load_explicit(&f->c.desired, memory_order_relaxed);
}

void sim_fleet_stop(struct sim_fleet *f)
{
	if (!f)
		return;
	for (unsigned k = 0; k < f->nworkers; k++)
		if (f->workers[k].started)
			loop_wake(f->workers[k].loop);
	for (unsigned k = 0; k < f->nworkers; k++) {
		if (f->workers[k].started)
			pthread_join(f->workers[k].thread, NULL);
		f->workers[k].started = false;
	}
	f->running = false;
}

void sim_fleet_free(struct sim_fleet *f)
{
	if (!f)
		return;
	sim_fleet_stop(f);
	for (unsigned k = 0; f->workers && k < f->nworkers; k++) {
		loop_free(f->workers[k].loop);
		free(f->workers[k].devs);
	}
	free(f->workers);
	for (unsigned i = 0; f->devs && i < f->cfg.devices; i++)
		if (f->devs[i].own_tls)
			tls_client_free(f->devs[i].tls);
	free(f->devs);
	tls_client_free(f->shared_tls);
	free(f->host);
	free(f->prefix);
	free(f);
}
