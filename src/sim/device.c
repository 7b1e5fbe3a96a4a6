/*
 * device.c - one simulated device on its worker's event loop: connecting
 * (non-blocking TCP, then TLS), the MQTT session through the device SDK,
 * telemetry, the twin, faults, reconnecting with backoff.
 *
 * The SDK (src/sdk/) is written for one device per thread: its connect and
 * subscribe wait for the answer. Here a few threads run thousands of
 * devices, so everything that can wait without the SDK does: the TCP
 * connect and the TLS handshake are driven by readiness events; only
 * CONNECT/CONNACK and SUBSCRIBE/SUBACK (two round trips on an established,
 * handshaken connection) run inside the SDK's blocking calls, bounded by
 * SETUP_TIMEOUT_MS. Once up, the device is event-driven: the loop calls
 * mote_client_process(c, 0) when the socket is readable and publishes with
 * mote_client_publish_start(), which never waits.
 *
 * The transport handed to the SDK writes into `out` (a per-device buffer)
 * and the loop flushes it after each event, so a PUBLISH head and its
 * payload leave in one write (one TCP segment, one TLS record).
 *
 * Invariants:
 *   - A device is touched only by its worker's thread.
 *   - state == D_UP exactly while the SDK session is CONNECTED and counted
 *     in counters.connected.
 *   - close_stream() is the one place a connection ends: it closes the SDK
 *     session first (so the next mote_client_connect() is legal), then the
 *     stream, and stops the fd watcher.
 *   - Settings change only through sim_desired_apply() or a random fault;
 *     each change is pushed into the asset at once and reported when it
 *     differs from what was last reported.
 */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "sdk/port/posix/transport_tcp.h"
#include "sim/sim_int.h"

#define SETUP_TIMEOUT_MS 5000u   /* TCP + TLS, and each of CONNACK, SUBACK */
#define TWIN_WAIT_MS 3000u       /* report anyway if get/accepted does not come */
#define TICK_MAX_MS 5000u        /* keep-alive and physics at least this often */
#define KEEPALIVE_S 60u
#define BACKOFF_MIN_MS 500u
#define BACKOFF_MAX_MS 30000u
#define STOP_FLUSH_MS 200
#define LOG_EVERY_MS 10000u      /* connection failures, fleet-wide */

/* ---- the SDK transport over a net_stream --------------------------------- */

static bool out_blocked(const struct sim_dev *d)
{
	return d->out_len > 0 || d->s.want_write;
}

/* Writes what `out` holds as far as the socket takes it. -1: broken. */
static int flush_out(struct sim_dev *d)
{
	if (!d->s.ops)
		return -1;
	if (d->s.want_write && d->s.ops->flush && d->s.ops->flush(&d->s) < 0 && errno != EAGAIN &&
	    errno != EWOULDBLOCK)
		return -1;
	while (d->out_len > 0) {
		struct iovec iov = { .iov_base = d->out, .iov_len = d->out_len };
		ssize_t r = d->s.ops->writev(&d->s, &iov, 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		d->out_len -= (size_t)r;
		if (d->out_len)
			memmove(d->out, d->out + r, d->out_len);
	}
	return 0;
}

/* poll() on the device's fd: 1 ready, 0 timeout, -1 interrupted or failed. */
static int wait_fd(struct sim_dev *d, short events, uint32_t ms)
{
	struct pollfd p = { .fd = d->s.fd, .events = events, .revents = 0 };
	int n = poll(&p, 1, ms > 60000u ? 60000 : (int)ms);

	if (n > 0 && (p.revents & POLLOUT) && flush_out(d) < 0)
		return -1;
	return n;
}

static enum mote_err tr_send(void *ctx, const uint8_t *buf, size_t len, uint32_t timeout_ms,
			     size_t *sent)
{
	struct sim_dev *d = ctx;
	uint64_t start = mote_mono_ms();

	*sent = 0;
	if (d->broken || !d->s.ops)
		return MOTE_ECLOSED;
	for (;;) {
		size_t room = SIM_OUT_CAP - d->out_len;
		if (room > 0) {
			size_t n = len < room ? len : room;
			memcpy(d->out + d->out_len, buf, n);
			d->out_len += n;
			*sent = n;
			return MOTE_OK;
		}
		if (flush_out(d) < 0) {
			d->broken = true;
			return MOTE_EIO;
		}
		if (d->out_len < SIM_OUT_CAP)
			continue;
		uint64_t el = mote_mono_ms() - start;
		if (el >= timeout_ms)
			return MOTE_ETIMEDOUT;
		if (wait_fd(d, POLLOUT, (uint32_t)(timeout_ms - el)) < 0) {
			if (errno == EINTR)
				return MOTE_EAGAIN;
			d->broken = true;
			return MOTE_EIO;
		}
	}
}

static enum mote_err tr_recv(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms,
			     size_t *got)
{
	struct sim_dev *d = ctx;
	uint64_t start = mote_mono_ms();

	*got = 0;
	if (d->broken || !d->s.ops)
		return MOTE_ECLOSED;
	/* What the SDK queued (CONNECT, SUBSCRIBE) must leave before we wait
	 * for its answer. */
	if (out_blocked(d) && flush_out(d) < 0) {
		d->broken = true;
		return MOTE_EIO;
	}
	for (;;) {
		ssize_t r = d->s.ops->read(&d->s, buf, cap);
		if (r > 0) {
			*got = (size_t)r;
			return MOTE_OK;
		}
		if (r == 0)
			return MOTE_ECLOSED;
		if (errno == EINTR)
			return MOTE_EAGAIN;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			d->broken = true;
			return MOTE_EIO;
		}
		uint64_t el = mote_mono_ms() - start;
		if (timeout_ms == 0 || el >= timeout_ms)
			return MOTE_ETIMEDOUT;
		if (wait_fd(d, (short)(POLLIN | (out_blocked(d) ? POLLOUT : 0)),
			    (uint32_t)(timeout_ms - el)) < 0) {
			if (errno == EINTR)
				return MOTE_EAGAIN;
			d->broken = true;
			return MOTE_EIO;
		}
	}
}

enum mote_err dev_client_init(struct sim_dev *d, uint32_t send_timeout_ms,
			      const struct mote_client_cb *cb, void *user)
{
	struct mote_client_cfg cc = {
		.transport = { .ctx = d, .send = tr_send, .recv = tr_recv },
		.clock = mote_posix_clock(),
		.tx_buf = d->tx, .tx_cap = sizeof d->tx,
		.rx_buf = d->rx, .rx_cap = sizeof d->rx,
		.inflight = d->inflight, .inflight_len = SIM_INFLIGHT,
		.send_timeout_ms = send_timeout_ms,
		.cb = *cb,
		.user = user,
	};
	return mote_client_init(&d->mc, &cc);
}

/* ---- helpers --------------------------------------------------------------- */

static struct sim_fleet *fleet_of(const struct sim_dev *d)
{
	return d->w->f;
}

static uint64_t now_ms(const struct sim_dev *d)
{
	return loop_now(d->w->loop);
}

static void count(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void schedule_retry(struct sim_dev *d);
static void after_io(struct sim_dev *d);

/* Ends the connection (any state but D_WAIT/D_STOPPED). */
static void close_stream(struct sim_dev *d)
{
	struct sim_fleet *f = fleet_of(d);

	if (d->state == D_UP)
		atomic_fetch_sub_explicit(&f->c.connected, 1, memory_order_relaxed);
	enum mote_client_state st = mote_client_state(&d->mc);
	if (st == MOTE_CLIENT_CONNECTED || st == MOTE_CLIENT_CONNECTING) {
		d->broken = true; /* nothing more goes out on a dead connection */
		(void)mote_client_disconnect(&d->mc, MQTT_RC_SUCCESS, NULL);
	}
	loop_io_stop(d->w->loop, &d->io);
	if (d->s.ops)
		d->s.ops->close(&d->s);
	memset(&d->s, 0, sizeof d->s);
	d->s.fd = -1;
	d->out_len = 0;
	d->broken = false;
}

/* A connection attempt failed before the session was up. */
static void attempt_failed(struct sim_dev *d, const char *why)
{
	struct sim_fleet *f = fleet_of(d);
	char q[300];

	count(&f->c.connect_failures, 1);
	if (f->cfg.verbose) {
		MOTE_WARN("sim", "event=connect_failed device=%s why=%s (retrying with backoff)",
			  d->id, mote_log_quote(q, sizeof q, why, strlen(why)));
	} else {
		/* A hub outage fails the whole fleet at once: one line per
		 * LOG_EVERY_MS for all of it, with how many were not shown. */
		uint64_t now = mote_mono_ms();
		uint_fast64_t last = atomic_load_explicit(&f->c.warned_ms, memory_order_relaxed);
		atomic_fetch_add_explicit(&f->c.unlogged, 1, memory_order_relaxed);
		if ((last == 0 || now - last >= LOG_EVERY_MS) &&
		    atomic_compare_exchange_strong(&f->c.warned_ms, &last, now)) {
			uint_fast64_t n = atomic_exchange(&f->c.unlogged, 0);
			MOTE_WARN("sim", "event=connect_failed device=%s why=%s failures=%llu "
				  "(retrying with backoff; --verbose shows every one)",
				  d->id, mote_log_quote(q, sizeof q, why, strlen(why)),
				  (unsigned long long)n);
		}
	}
	d->warned = true;
	close_stream(d);
	d->state = D_WAIT;
	schedule_retry(d);
}

/* An open session ended. */
static void session_lost(struct sim_dev *d, const char *why)
{
	struct sim_fleet *f = fleet_of(d);
	char q[200];

	count(&f->c.reconnects, 1);
	if (f->cfg.verbose)
		MOTE_INFO("sim", "event=disconnected device=%s why=%s", d->id,
			  mote_log_quote(q, sizeof q, why, strlen(why)));
	close_stream(d);
	d->state = D_WAIT;
	schedule_retry(d);
}

static void schedule_retry(struct sim_dev *d)
{
	unsigned n = d->backoff_n < 6 ? d->backoff_n : 6;
	uint64_t base = (uint64_t)BACKOFF_MIN_MS << n;

	if (base > BACKOFF_MAX_MS)
		base = BACKOFF_MAX_MS;
	/* "Equal jitter": between half and all of the step, so a fleet cut
	 * off at once does not come back at once. */
	uint64_t delay = base / 2 + (uint64_t)(sim_rng_uniform(&d->frng) * (double)(base / 2));
	d->backoff_n++;
	loop_timer_start(d->w->loop, &d->conn_timer, delay);
}

static void update_interest(struct sim_dev *d)
{
	uint32_t ev = LOOP_READ;

	if (d->state == D_TCP) {
		ev = LOOP_WRITE;
	} else if (d->state == D_TLS) {
		ev = d->s.want_write ? LOOP_WRITE : LOOP_READ;
	} else if (out_blocked(d)) {
		ev |= LOOP_WRITE;
	}
	if (d->io.active && d->io.events != ev &&
	    loop_io_modify(d->w->loop, &d->io, ev) != MOTE_OK)
		d->broken = true;
}

/* ---- the machine ----------------------------------------------------------- */

/* Runs the physics up to now (real elapsed time times --speed) and draws
 * random faults for that stretch. */
static void advance(struct sim_dev *d, uint64_t now)
{
	struct sim_fleet *f = fleet_of(d);
	double dt;

	if (now <= d->last_step_ms)
		return;
	dt = (double)(now - d->last_step_ms) / 1000.0 * f->cfg.speed;
	d->last_step_ms = now;
	sim_asset_step(&d->asset, dt);
	if (f->cfg.fault_rate > 0 && d->set.fault == SIM_FAULT_NONE) {
		double per_s = f->cfg.fault_rate / 3600.0 / (double)f->cfg.devices;
		if (sim_rng_uniform(&d->frng) < -expm1(-per_s * dt)) {
			enum sim_fault flt = (enum sim_fault)(1 + sim_rng_next(&d->frng) %
							     (SIM_FAULT_COUNT - 1));
			d->set.fault = flt;
			sim_asset_set_fault(&d->asset, flt);
			d->report_pending = true;
			MOTE_INFO("sim", "event=fault device=%s fault=%s cause=random", d->id,
				  sim_fault_name(flt));
		}
	}
}

static bool settings_equal(const struct sim_settings *a, const struct sim_settings *b)
{
	return a->on == b->on && a->setpoint == b->setpoint && a->interval_ms == b->interval_ms &&
	       a->fault == b->fault;
}

static void reschedule_tick(struct sim_dev *d)
{
	uint64_t now = now_ms(d), delay = TICK_MAX_MS;

	if (d->next_tel_ms > now && d->next_tel_ms - now < delay)
		delay = d->next_tel_ms - now;
	else if (d->next_tel_ms <= now)
		delay = 0;
	loop_timer_start(d->w->loop, &d->tick_timer, delay);
}

/* The twin told us something (called from the SDK's on_publish). */
static void on_twin(struct sim_dev *d, enum sim_twin_msg kind, const void *payload, size_t len)
{
	struct sim_fleet *f = fleet_of(d);
	struct sim_settings before = d->set;
	struct sim_desired_result r;
	enum mote_err err;

	advance(d, now_ms(d));
	err = sim_desired_apply(d->model, kind, payload, len, &d->set, &r);
	if (kind == SIM_TWIN_GET) {
		d->got_twin = true;
		/* the twin learns who we are, once per connection (unless the
		 * no-answer timer already reported) */
		if (!d->rep_valid)
			d->report_pending = true;
	}
	if (err != MOTE_OK) {
		MOTE_DEBUG("sim", "event=twin_ignored device=%s why=\"%s\"", d->id,
			   mote_strerror(err));
		return;
	}
	if (r.touched)
		count(&f->c.desired, 1);
	if (before.on != d->set.on)
		sim_asset_set_on(&d->asset, d->set.on);
	if (before.setpoint != d->set.setpoint)
		sim_asset_set_setpoint(&d->asset, d->set.setpoint);
	if (before.fault != d->set.fault) {
		sim_asset_set_fault(&d->asset, d->set.fault);
		MOTE_INFO("sim", "event=fault device=%s fault=%s cause=desired", d->id,
			  d->set.fault ? sim_fault_name(d->set.fault) : "none");
	}
	if (before.interval_ms != d->set.interval_ms) {
		uint64_t now = now_ms(d);
		d->next_tel_ms = now + d->set.interval_ms;
		reschedule_tick(d);
	}
	/* A delta or a full document says everything still to do, so it
	 * clears an old error; an operator's partial write only adds one. */
	if (r.error[0])
		snprintf(d->last_error, sizeof d->last_error, "%s", r.error);
	else if (kind != SIM_TWIN_ACCEPTED && r.touched)
		d->last_error[0] = '\0';
	if (!d->rep_valid || !settings_equal(&d->set, &d->rep) ||
	    strcmp(d->last_error, d->rep_error) != 0)
		d->report_pending = true;
}

static void on_publish(struct mote_client *c, const struct mqtt_publish *pub, void *user)
{
	struct sim_dev *d = user;
	(void)c;

	if (sim_topic_is(pub, d->t_delta))
		on_twin(d, SIM_TWIN_DELTA, pub->payload.p, pub->payload.len);
	else if (sim_topic_is(pub, d->t_get_acc))
		on_twin(d, SIM_TWIN_GET, pub->payload.p, pub->payload.len);
	else if (sim_topic_is(pub, d->t_upd_acc))
		on_twin(d, SIM_TWIN_ACCEPTED, pub->payload.p, pub->payload.len);
}

/* ---- publishing ------------------------------------------------------------ */

static enum mote_err publish(struct sim_dev *d, const char *topic, const void *payload,
			     size_t len, uint8_t qos)
{
	struct mote_publish p = { .topic = topic, .payload = payload, .payload_len = len,
				  .qos = qos };
	return mote_client_publish_start(&d->mc, &p, NULL);
}

static void try_report(struct sim_dev *d)
{
	char buf[SIM_ERROR_MAX + 256];
	size_t n = sim_reported_json(d->model, &d->set, d->last_error, buf, sizeof buf);
	enum mote_err err;

	if (n == 0)
		return;
	err = publish(d, d->t_update, buf, n, 1);
	if (err == MOTE_EFULL)
		return; /* acks pending: the next event tries again */
	if (err != MOTE_OK) {
		if (mote_client_state(&d->mc) != MOTE_CLIENT_CONNECTED)
			d->broken = true;
		return;
	}
	d->report_pending = false;
	d->rep = d->set;
	memcpy(d->rep_error, d->last_error, sizeof d->rep_error);
	d->rep_valid = true;
	count(&fleet_of(d)->c.reports, 1);
}

static void send_telemetry(struct sim_dev *d)
{
	struct sim_sample s;
	char buf[512];
	int n;
	size_t at;

	sim_asset_sample(&d->asset, &s);
	n = snprintf(buf, sizeof buf, "{\"ts\":%llu", (unsigned long long)mote_wall_ms());
	at = n > 0 ? (size_t)n : 0;
	for (size_t i = 0; i < s.n && at < sizeof buf; i++) {
		n = snprintf(buf + at, sizeof buf - at, ",\"%s\":%.2f", s.name[i], s.value[i]);
		if (n < 0)
			return;
		at += (size_t)n;
	}
	if (at + 2 > sizeof buf)
		return;
	buf[at++] = '}';
	if (publish(d, d->t_tel, buf, at, 0) == MOTE_OK)
		count(&fleet_of(d)->c.telemetry, 1);
	else if (mote_client_state(&d->mc) != MOTE_CLIENT_CONNECTED)
		d->broken = true;
}

/* After anything the device did while up: report, flush, watch the fd. */
static void after_io(struct sim_dev *d)
{
	if (d->state != D_UP)
		return;
	if (d->report_pending && d->got_twin)
		try_report(d);
	if (!d->broken && flush_out(d) < 0)
		d->broken = true;
	if (!d->broken)
		update_interest(d);
	if (d->broken || mote_client_state(&d->mc) != MOTE_CLIENT_CONNECTED)
		session_lost(d, mote_client_error(&d->mc) != MOTE_OK
					? mote_strerror(mote_client_error(&d->mc))
					: "connection lost");
}

/* ---- connecting ---------------------------------------------------------- */

static void mqtt_open(struct sim_dev *d)
{
	struct sim_fleet *f = fleet_of(d);
	struct mote_connect_opts o = { .version = MQTT_V5, .client_id = d->id,
				       .clean_start = true, .keep_alive_s = KEEPALIVE_S };
	struct mote_connack_info info;
	struct mqtt_sub_entry subs[3];
	uint8_t reasons[3];
	const char *filters[3] = { d->t_delta, d->t_get_acc, d->t_upd_acc };
	char why[160];
	enum mote_err err;

	err = mote_client_connect(&d->mc, &o, &info, SETUP_TIMEOUT_MS);
	if (err == MOTE_EDENIED) {
		snprintf(why, sizeof why, "the hub refused CONNECT (reason 0x%02x)", info.reason);
		attempt_failed(d, why);
		return;
	}
	if (err != MOTE_OK) {
		snprintf(why, sizeof why, "CONNECT: %s%s%s", mote_strerror(err),
			 d->s.fault ? ": " : "", d->s.fault ? d->s.fault : "");
		attempt_failed(d, why);
		return;
	}
	memset(subs, 0, sizeof subs);
	for (int i = 0; i < 3; i++) {
		subs[i].filter.p = (const uint8_t *)filters[i];
		subs[i].filter.len = (uint16_t)strlen(filters[i]);
		subs[i].opts.qos = 1;
	}
	err = mote_client_subscribe(&d->mc, subs, 3, NULL, reasons, SETUP_TIMEOUT_MS);
	if (err != MOTE_OK) {
		snprintf(why, sizeof why, "SUBSCRIBE: %s", mote_strerror(err));
		attempt_failed(d, why);
		return;
	}
	for (int i = 0; i < 3; i++)
		if (reasons[i] >= 0x80 && !d->warned) {
			MOTE_WARN("sim", "event=subscribe_refused device=%s topic=%s reason=0x%02x",
				  d->id, filters[i], reasons[i]);
			d->warned = true;
		}
	d->state = D_UP;
	d->backoff_n = 0;
	d->warned = false;
	d->got_twin = false;
	d->rep_valid = false;
	atomic_fetch_add_explicit(&f->c.connected, 1, memory_order_relaxed);
	if (publish(d, d->t_get, "", 0, 0) != MOTE_OK)
		d->broken = true;
	/* No twin service (another broker)? Report after a while anyway. */
	loop_timer_start(d->w->loop, &d->conn_timer, TWIN_WAIT_MS);
	after_io(d);
}

static void tls_step(struct sim_dev *d)
{
	for (int round = 0; tls_stream_handshaking(&d->s); round++) {
		if (round == 8) { /* no progress without the peer: wait for it */
			update_interest(d);
			return;
		}
		if (d->s.ops->flush(&d->s) < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				update_interest(d);
				return;
			}
			char why[200];
			snprintf(why, sizeof why, "TLS handshake: %s",
				 d->s.fault ? d->s.fault : strerror(errno));
			attempt_failed(d, why);
			return;
		}
	}
	mqtt_open(d);
}

static void on_io(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct sim_dev *d = io->data;
	(void)loop;

	switch (d->state) {
	case D_TCP: {
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		if (getsockopt(d->s.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
			soerr = errno;
		if (soerr == EINPROGRESS || soerr == EALREADY)
			return;
		if (soerr != 0) {
			char why[120];
			snprintf(why, sizeof why, "connect: %s", strerror(soerr));
			attempt_failed(d, why);
			return;
		}
		if (fleet_of(d)->cfg.tls) {
			d->state = D_TLS;
			tls_step(d);
		} else {
			mqtt_open(d);
		}
		return;
	}
	case D_TLS:
		tls_step(d);
		return;
	case D_UP:
		break;
	default:
		return;
	}
	if ((events & LOOP_WRITE) && flush_out(d) < 0)
		d->broken = true;
	if (!d->broken && (events & (LOOP_READ | LOOP_ERROR))) {
		/* TLS may hold decrypted bytes no readiness event announces. */
		for (int i = 0; i < 16; i++) {
			if (mote_client_process(&d->mc, 0) != MOTE_OK)
				break;
			if (!d->s.ops->pending || d->s.ops->pending(&d->s) == 0)
				break;
		}
	}
	after_io(d);
}

static void attempt(struct sim_dev *d)
{
	struct sim_fleet *f = fleet_of(d);
	struct sim_worker *w = d->w;
	uint64_t now = now_ms(d);
	int fd, one = 1;

	/* Pacing: a token bucket per worker. */
	w->tokens += (double)(now - w->tokens_ms) * w->rate / 1000.0;
	w->tokens_ms = now;
	if (w->tokens > w->rate / 4 + 1)
		w->tokens = w->rate / 4 + 1;
	if (w->tokens < 1.0) {
		uint64_t wait = (uint64_t)((1.0 - w->tokens) * 1000.0 / w->rate) + 1;
		wait += (uint64_t)(sim_rng_uniform(&d->frng) * 50.0);
		loop_timer_start(w->loop, &d->conn_timer, wait);
		return;
	}
	w->tokens -= 1.0;
	fd = socket(f->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		attempt_failed(d, strerror(errno));
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (f->cfg.tls) {
		if (tls_stream_client(d->tls, &d->s, fd, f->host) != MOTE_OK) {
			close(fd);
			attempt_failed(d, "out of memory for TLS");
			return;
		}
	} else {
		net_stream_tcp(&d->s, fd);
	}
	d->state = D_TCP;
	d->out_len = 0;
	d->broken = false;
	if (loop_io_start(w->loop, &d->io, fd, LOOP_WRITE, on_io, d) != MOTE_OK) {
		attempt_failed(d, "cannot watch the socket");
		return;
	}
	if (connect(fd, (const struct sockaddr *)&f->addr, f->addr_len) != 0 &&
	    errno != EINPROGRESS) {
		char why[120];
		snprintf(why, sizeof why, "connect: %s", strerror(errno));
		attempt_failed(d, why);
		return;
	}
	loop_timer_start(w->loop, &d->conn_timer, SETUP_TIMEOUT_MS);
}

static void on_conn_timer(struct loop *loop, struct loop_timer *t)
{
	struct sim_dev *d = t->data;
	(void)loop;

	switch (d->state) {
	case D_WAIT:
		attempt(d);
		break;
	case D_TCP:
	case D_TLS:
		attempt_failed(d, "timed out");
		break;
	case D_UP:
		if (!d->got_twin) {
			d->got_twin = true; /* no answer: go on without one */
			d->report_pending = true;
			after_io(d);
		}
		break;
	default:
		break;
	}
}

static void on_tick(struct loop *loop, struct loop_timer *t)
{
	struct sim_dev *d = t->data;
	uint64_t now = loop_now(loop);

	advance(d, now);
	if (now >= d->next_tel_ms) {
		if (d->state == D_UP)
			send_telemetry(d);
		d->next_tel_ms += d->set.interval_ms;
		if (d->next_tel_ms <= now) /* fell behind (stopped process, slow loop) */
			d->next_tel_ms = now + d->set.interval_ms;
	}
	if (d->state == D_UP && !d->broken) {
		/* keep-alive (PINGREQ when due) and anything already readable */
		if (mote_client_process(&d->mc, 0) != MOTE_OK)
			d->broken = true;
	}
	after_io(d);
	reschedule_tick(d);
}

/* ---- life ------------------------------------------------------------------- */

void dev_setup(struct sim_fleet *f, struct sim_dev *d, unsigned index, uint64_t wall_ms)
{
	const struct sim_config *cfg = &f->cfg;
	uint64_t seed = cfg->seed * 0x9E3779B97F4A7C15ull + index + 1;

	d->index = index;
	d->model = sim_device_model(cfg, index);
	sim_device_id(cfg, index, d->id, sizeof d->id);
	snprintf(d->t_tel, sizeof d->t_tel, "dev/%s/telemetry", d->id);
	snprintf(d->t_get, sizeof d->t_get, "$twin/%s/get", d->id);
	snprintf(d->t_update, sizeof d->t_update, "$twin/%s/update", d->id);
	snprintf(d->t_delta, sizeof d->t_delta, "$twin/%s/update/delta", d->id);
	snprintf(d->t_get_acc, sizeof d->t_get_acc, "$twin/%s/get/accepted", d->id);
	snprintf(d->t_upd_acc, sizeof d->t_upd_acc, "$twin/%s/update/accepted", d->id);
	sim_asset_init(&d->asset, d->model, seed, (double)wall_ms / 1000.0);
	sim_rng_seed(&d->frng, seed ^ 0xD1B54A32D192ED03ull);
	sim_settings_default(d->model, cfg->interval_ms, &d->set);
	d->state = D_WAIT;
	d->s.fd = -1;

	const struct mote_client_cb cb = { .on_publish = on_publish };
	(void)dev_client_init(d, SETUP_TIMEOUT_MS, &cb, d);
}

enum mote_err dev_start(struct sim_dev *d, uint64_t delay_ms)
{
	struct loop *l = d->w->loop;
	uint64_t now = loop_now(l);
	enum mote_err err;

	loop_timer_init(&d->conn_timer, on_conn_timer, d);
	loop_timer_init(&d->tick_timer, on_tick, d);
	d->last_step_ms = now;
	/* Spread the fleet's telemetry over the interval. */
	d->next_tel_ms = now + (uint64_t)(sim_rng_uniform(&d->frng) * d->set.interval_ms);
	if ((err = loop_timer_start(l, &d->conn_timer, delay_ms)) != MOTE_OK)
		return err;
	if ((err = loop_timer_start(l, &d->tick_timer, d->next_tel_ms - now)) != MOTE_OK)
		return err;
	return MOTE_OK;
}

void dev_stop(struct sim_dev *d)
{
	struct loop *l = d->w->loop;

	loop_timer_stop(l, &d->conn_timer);
	loop_timer_stop(l, &d->tick_timer);
	if (d->state == D_UP && !d->broken) {
		(void)mote_client_disconnect(&d->mc, MQTT_RC_SUCCESS, NULL);
		/* Give the DISCONNECT a moment to leave. */
		uint64_t end = mote_mono_ms() + STOP_FLUSH_MS;
		while (out_blocked(d) && flush_out(d) == 0 && out_blocked(d)) {
			uint64_t now = mote_mono_ms();
			if (now >= end || wait_fd(d, POLLOUT, (uint32_t)(end - now)) <= 0)
				break;
		}
	}
	if (d->state != D_WAIT && d->state != D_STOPPED)
		close_stream(d);
	d->state = D_STOPPED;
}
