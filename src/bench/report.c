/*
 * report.c - the final report of mote bench, as text for people or as one
 * JSON object (keys stable: scripts and tests read them). Rates divide by
 * the phase they describe: sent by the publishing phase, received by the
 * time from publishing start to the last message received.
 */
#include <stdio.h>

#include "bench/bench.h"

static const char *mode_name(enum bench_mode m)
{
	switch (m) {
	case BENCH_CONN: return "conn";
	case BENCH_PUB: return "pub";
	case BENCH_SUB: return "sub";
	case BENCH_PUBSUB: return "pubsub";
	}
	return "?";
}

static const char *shape_name(enum bench_shape s)
{
	switch (s) {
	case SHAPE_ONE_TO_ONE: return "1:1";
	case SHAPE_FAN_OUT: return "fan-out";
	case SHAPE_FAN_IN: return "fan-in";
	}
	return "?";
}

static double per_s(uint64_t n, double s)
{
	return s > 0 ? (double)n / s : 0.0;
}

void bench_print(FILE *out, const struct bench_cfg *cfg, const struct bench_report *r, bool json)
{
	const struct hist *h = &r->latency;
	double conn_rate = per_s(r->connected, r->connect_s);
	unsigned long long p50 = hist_percentile(h, 50), p90 = hist_percentile(h, 90),
			   p99 = hist_percentile(h, 99), p999 = hist_percentile(h, 99.9),
			   mx = h->count ? h->max : 0, mn = h->count ? h->min : 0;
	if (json) {
		fprintf(out,
			"{\"mode\":\"%s\",\"shape\":\"%s\",\"qos\":%u,\"version\":\"%s\","
			"\"tls\":%s,\"conn_parallel\":%u,\"threads\":%u,\"payload_bytes\":%u,\"session_expiry\":%lu,"
			"\"connections\":{\"attempted\":%llu,\"connected\":%llu,\"held\":%llu,"
			"\"seconds\":%.3f,\"rate_per_s\":%.1f},"
			"\"sent\":%llu,\"acked\":%llu,\"received\":%llu,"
			"\"send_seconds\":%.3f,\"recv_seconds\":%.3f,"
			"\"sent_per_s\":%.1f,\"received_per_s\":%.1f,"
			"\"sent_mb_per_s\":%.3f,\"received_mb_per_s\":%.3f,"
			"\"latency_us\":{\"count\":%llu,\"min\":%llu,\"mean\":%.1f,\"p50\":%llu,"
			"\"p90\":%llu,\"p99\":%llu,\"p99_9\":%llu,\"max\":%llu},"
			"\"errors\":{\"connect_refused\":%llu,\"connect_failed\":%llu,"
			"\"disconnects\":%llu,\"protocol\":%llu,\"ack_failures\":%llu},"
			"\"completed\":%s}\n",
			mode_name(cfg->mode), shape_name(cfg->shape), cfg->qos,
			cfg->version == 5 ? "5" : "3.1.1", cfg->tls ? "true" : "false",
			cfg->conn_parallel, cfg->threads, cfg->payload,
			(unsigned long)cfg->session_expiry, (unsigned long long)r->attempted,
			(unsigned long long)r->connected,
			(unsigned long long)r->held, r->connect_s, conn_rate,
			(unsigned long long)r->sent, (unsigned long long)r->acked,
			(unsigned long long)r->received, r->send_s, r->recv_s,
			per_s(r->sent, r->send_s), per_s(r->received, r->recv_s),
			per_s(r->bytes_sent, r->send_s) / 1e6,
			per_s(r->bytes_received, r->recv_s) / 1e6,
			(unsigned long long)h->count, mn, hist_mean(h), p50, p90, p99, p999, mx,
			(unsigned long long)r->err.connect_refused,
			(unsigned long long)r->err.connect_failed,
			(unsigned long long)r->err.disconnects, (unsigned long long)r->err.protocol,
			(unsigned long long)r->err.ack_failures,
			r->stopped_by_error ? "false" : "true");
		return;
	}
	fprintf(out, "mote bench %s (%s), QoS %u, MQTT %s, %u thread(s), payload %u B",
		mode_name(cfg->mode), shape_name(cfg->shape), cfg->qos,
		cfg->version == 5 ? "5" : "3.1.1", cfg->threads, cfg->payload);
	if (cfg->session_expiry)
		fprintf(out, ", sessions kept %lu s", (unsigned long)cfg->session_expiry);
	if (cfg->tls)
		fprintf(out, ", TLS");
	fputc('\n', out);
	fprintf(out, "connections: %llu attempted, %llu connected in %.3f s (%.1f/s), %llu held at end\n",
		(unsigned long long)r->attempted, (unsigned long long)r->connected, r->connect_s,
		conn_rate, (unsigned long long)r->held);
	if (cfg->mode == BENCH_PUB || cfg->mode == BENCH_PUBSUB)
		fprintf(out, "sent:     %llu msgs in %.3f s = %.1f msgs/s, %.3f MB/s (%llu acked)\n",
			(unsigned long long)r->sent, r->send_s, per_s(r->sent, r->send_s),
			per_s(r->bytes_sent, r->send_s) / 1e6, (unsigned long long)r->acked);
	if (cfg->mode == BENCH_SUB || cfg->mode == BENCH_PUBSUB)
		fprintf(out, "received: %llu msgs in %.3f s = %.1f msgs/s, %.3f MB/s\n",
			(unsigned long long)r->received, r->recv_s, per_s(r->received, r->recv_s),
			per_s(r->bytes_received, r->recv_s) / 1e6);
	if (h->count)
		fprintf(out, "latency us (%llu samples): min %llu p50 %llu p90 %llu p99 %llu "
			     "p99.9 %llu max %llu mean %.1f\n",
			(unsigned long long)h->count, mn, p50, p90, p99, p999, mx, hist_mean(h));
	fprintf(out, "errors: connect refused %llu, connect failed %llu, disconnects %llu, "
		     "protocol %llu, ack failures %llu\n",
		(unsigned long long)r->err.connect_refused,
		(unsigned long long)r->err.connect_failed, (unsigned long long)r->err.disconnects,
		(unsigned long long)r->err.protocol, (unsigned long long)r->err.ack_failures);
	if (r->stopped_by_error)
		fprintf(out, "stopped: %s\n", r->why);
}
