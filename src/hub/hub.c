/*
 * hub.c - runs the hub: data folder, event loop, broker, listeners, signals.
 *
 * Signals arrive through a signalfd watched by the loop, so handlers never
 * run asynchronously: SIGINT/SIGTERM begin a clean shutdown (a second one
 * stops at once), SIGPIPE is ignored (a write to a closed socket is an
 * error return, not a death).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub/hub.h"
#include "provision/provision.h"

struct hub {
	struct loop *loop;
	struct broker *broker;
	struct provision *prov; /* NULL without --pki */
	struct loop_io sig_io;
	int sigfd;
	unsigned signals_seen;
};

static void on_signal(struct loop *loop, struct loop_io *io, uint32_t events)
{
	(void)events;
	struct hub *h = io->data;
	struct signalfd_siginfo si;
	while (read(h->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo != SIGINT && si.ssi_signo != SIGTERM)
			continue;
		if (h->signals_seen++ == 0) {
			MOTE_INFO("hub", "event=signal signal=%s action=shutdown",
				  si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
			broker_shutdown(h->broker);
		} else {
			MOTE_WARN("hub", "event=signal action=stop_now");
			loop_stop(loop);
		}
	}
}

static void hook_tap(void *ctx, const struct broker_client *c, const struct broker_msg_view *m)
{
	struct hub *h = ctx;

	if (h->prov)
		provision_tap(h->prov, c, m);
}

/* --pki DIR: the CA must be there before devices are told to use it. */
static enum mote_err start_provision(struct hub *h, const char *dir)
{
	struct provision_config pc = { .pki_dir = dir };
	char path[4096];
	enum mote_err err;

	if (snprintf(path, sizeof path, "%s/ca.key", dir) >= (int)sizeof path ||
	    access(path, R_OK) != 0) {
		MOTE_ERROR("hub", "event=start_failed why=\"--pki %s: cannot read %s: %s\" "
				  "hint=\"run mote pki --dir %s init\"",
			   dir, path, strerror(errno), dir);
		return MOTE_EINVAL;
	}
	err = provision_new(&pc, &h->prov);
	if (err != MOTE_OK)
		MOTE_ERROR("hub", "event=start_failed why=\"provisioning: %s\"", mote_strerror(err));
	return err;
}

static enum mote_err make_dir(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return MOTE_EINVAL;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return MOTE_EIO;
		*p = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return MOTE_EIO;
	return access(buf, W_OK) == 0 ? MOTE_OK : MOTE_EIO;
}

enum mote_err hub_run(const struct hub_config *cfg)
{
	struct hub h = { .sigfd = -1 };
	enum mote_err err;
	char msg[256];
	sigset_t mask;

	mote_log_setup(cfg->log_level, NULL);
	if (make_dir(cfg->data_dir) != MOTE_OK) {
		MOTE_ERROR("hub", "event=start_failed why=\"cannot create or write data folder %s: %s\"",
			   cfg->data_dir, strerror(errno));
		return MOTE_EIO;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	h.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (h.sigfd < 0)
		return MOTE_EIO;

	err = loop_new(&h.loop);
	if (err != MOTE_OK)
		goto out;
	struct broker_config bcfg = cfg->broker;
	char journal_dir[4096];
	if (cfg->persistence) {
		if (snprintf(journal_dir, sizeof journal_dir, "%s/journal", cfg->data_dir) >=
		    (int)sizeof journal_dir) {
			err = MOTE_EINVAL;
			goto out;
		}
		bcfg.persist_dir = journal_dir;
	}
	if (cfg->pki_dir && (err = start_provision(&h, cfg->pki_dir)) != MOTE_OK)
		goto out;
	struct broker_hooks hooks = { .ctx = &h, .tap = h.prov ? hook_tap : NULL };
	err = broker_new(&bcfg, &hooks, h.loop, &h.broker);
	if (err != MOTE_OK) {
		MOTE_ERROR("hub", "event=start_failed why=\"broker: %s\" hint=\"see the lines above; "
				  "--persistence off starts without the journal\"",
			   mote_strerror(err));
		goto out;
	}
	if (h.prov && (err = provision_start(h.prov, h.loop, h.broker)) != MOTE_OK) {
		MOTE_ERROR("hub", "event=start_failed why=\"provisioning: %s\"", mote_strerror(err));
		goto out;
	}
	for (unsigned i = 0; i < cfg->mqtt_count; i++) {
		err = broker_listen_tcp(h.broker, cfg->mqtt[i], msg, sizeof msg);
		if (err != MOTE_OK) {
			MOTE_ERROR("hub", "event=start_failed why=\"%s\"", msg);
			goto out;
		}
	}
	err = loop_io_start(h.loop, &h.sig_io, h.sigfd, LOOP_READ, on_signal, &h);
	if (err != MOTE_OK)
		goto out;
	MOTE_INFO("hub", "event=ready version=%s data=%s anonymous=%s provisioning=%s", MOTE_VERSION,
		  cfg->data_dir, cfg->broker.allow_anonymous ? "allowed" : "refused",
		  h.prov ? "on" : "off");
	err = loop_run(h.loop);
	MOTE_INFO("hub", "event=stopped");
out:
	if (h.loop && h.sig_io.active)
		loop_io_stop(h.loop, &h.sig_io);
	/* The worker stops before the broker it publishes through; the
	 * service is freed after the broker, whose loop threads tap into it. */
	provision_stop(h.prov);
	broker_free(h.broker);
	provision_free(h.prov);
	loop_free(h.loop);
	if (h.sigfd >= 0)
		close(h.sigfd);
	return err;
}
