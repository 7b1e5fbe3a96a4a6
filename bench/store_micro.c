/*
 * store_micro.c - the telemetry store alone, without MQTT: how fast one thread
 * appends, how soon the points are durable, bytes per point on disk, and how
 * long a query of one day of one metric at 1 Hz takes (raw and 1-minute avg).
 *
 *   cmake --build build --target store_micro
 *   build/src/store/store_micro [DIR [SERIES [POINTS]]]   (default /var/tmp 5000 10000000)
 *
 * Values have two decimals (as sensors send them); times are 1 Hz per series.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "store/tstore.h"

static const char *const metrics[5] = { "temp", "hum", "pres", "volt", "rpm" };

static uint64_t fsize(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static struct tstore *open_at(const char *path)
{
	struct tstore_config cfg;
	char err[256];
	struct tstore *s = NULL;
	tstore_config_defaults(&cfg);
	cfg.path = path;
	if (tstore_open(&cfg, &s, err, sizeof err) != MOTE_OK) {
		fprintf(stderr, "store_micro: %s\n", err);
		exit(1);
	}
	return s;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/var/tmp";
	long nser = argc > 2 ? atol(argv[2]) : 5000;
	long total = argc > 3 ? atol(argv[3]) : 10000000;
	if (nser < 5 || total < nser) {
		fprintf(stderr, "usage: store_micro [DIR [SERIES>=5 [POINTS]]]\n");
		return 2;
	}
	char path[512], wal[600];
	snprintf(path, sizeof path, "%s/store_micro-%d.db", dir, (int)getpid());
	snprintf(wal, sizeof wal, "%s-wal", path);
	struct tstore *s = open_at(path);
	int64_t t0 = (int64_t)mote_wall_ms() - 3 * 86400000LL;
	long ndev = nser / 5;
	char (*devs)[24] = malloc((size_t)ndev * sizeof *devs);
	for (long i = 0; i < ndev; i++)
		snprintf(devs[i], sizeof devs[i], "dev%ld", i);
	/* batches of 50 points of one device: 10 seconds of its 5 metrics, like a SenML pack */
	struct telemetry_point pts[50];
	uint64_t start = mote_mono_ns();
	long n = 0;
	for (int64_t k = 0; n < total; k++) {
		long d = (long)(k % ndev);
		int64_t tick = k / ndev;
		for (int i = 0; i < 50; i++) {
			int64_t sec = tick * 10 + i / 5;
			pts[i].metric = metrics[i % 5];
			pts[i].ts_ms = t0 + sec * 1000;
			pts[i].value = (double)(2000 + (sec * (i % 5 + 1) * 7) % 1000) / 100.0;
		}
		tstore_append(s, devs[d], pts, 50);
		n += 50;
	}
	uint64_t appended = mote_mono_ns();
	struct tstore_stats st;
	for (;;) {
		tstore_get_stats(s, &st);
		if (st.points_flushed >= (uint64_t)n)
			break;
		usleep(2000);
	}
	uint64_t durable = mote_mono_ns();
	printf("%ld points, %ld series: append %.0f points/s; all durable after %.2f s = %.0f points/s\n",
	       n, nser, n / ((appended - start) / 1e9), (durable - start) / 1e9,
	       n / ((durable - start) / 1e9));
	printf("on disk while running (db + WAL): %.2f bytes/point\n",
	       (double)st.bytes_on_disk / (double)n);
	tstore_close(s);
	printf("on disk after close (checkpointed): %.2f bytes/point\n",
	       (double)(fsize(path) + fsize(wal)) / (double)n);
	unlink(path);
	unlink(wal);

	/* one day of one metric at 1 Hz */
	s = open_at(path);
	for (int i = 0; i < 86400; i++) {
		struct telemetry_point p = { "temp", t0 + i * 1000LL, (2000 + i % 500) / 100.0 };
		tstore_append(s, "d", &p, 1);
	}
	tstore_flush(s);
	for (int rep = 0; rep < 5; rep++) {
		struct tstore_query q = { "d", "temp", t0, t0 + 86400000, TSTORE_AGG_NONE, 0, 0 };
		struct tstore_result r, r2;
		char err[256];
		uint64_t a = mote_mono_ns();
		tstore_query(s, &q, &r, err, sizeof err);
		uint64_t b = mote_mono_ns();
		q.agg = TSTORE_AGG_AVG;
		q.interval_ms = 60000;
		tstore_query(s, &q, &r2, err, sizeof err);
		uint64_t c = mote_mono_ns();
		printf("one day at 1 Hz: raw %zu rows in %.2f ms, 1-minute avg %zu rows in %.2f ms\n",
		       r.n, (b - a) / 1e6, r2.n, (c - b) / 1e6);
		tstore_result_free(&r);
		tstore_result_free(&r2);
	}
	tstore_close(s);
	printf("that day on disk after close: %.2f bytes/point\n",
	       (double)(fsize(path) + fsize(wal)) / 86400.0);
	unlink(path);
	unlink(wal);
	free(devs);
	return 0;
}
