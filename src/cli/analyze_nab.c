/*
 * analyze_nab.c - `mote analyze nab --data DIR --out DIR`: the streaming
 * anomaly detector (src/analytics/anomaly.h) over NAB-format CSV files.
 *
 * DIR holds CATEGORY/NAME.csv files (NAB's data/ layout; *.csv directly in
 * DIR are taken too). For each one, OUT/CATEGORY/NAME.csv gets
 * `timestamp,value,anomaly_score`, one row per data row in the same order:
 * the layout ../shared/tools/nab_score.py --results reads. Every file starts
 * a fresh detector with the same global settings.
 *
 * Bad input (policy in src/analytics/nab_csv.h): a file that cannot be used
 * is reported as FILE:LINE: what is wrong, gets no output, and makes the exit
 * status 1 (the other files are still scored); duplicate or out-of-order
 * timestamps are warnings (FILE:LINE) and score 0.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "analytics/anomaly.h"
#include "analytics/nab_csv.h"
#include "base/file.h"
#include "cli/cli.h"

#define MAX_FILE_BYTES (1024u << 20)

static void usage(FILE *out)
{
	fprintf(out,
		"usage: mote analyze nab --data DIR --out DIR [--quiet]\n\n"
		"Streaming anomaly scores for NAB-format CSV files (columns timestamp,value).\n"
		"  --data DIR   input: DIR/CATEGORY/NAME.csv (and DIR/NAME.csv)\n"
		"  --out DIR    output: DIR/CATEGORY/NAME.csv with timestamp,value,anomaly_score\n"
		"               (score them with ../shared/tools/nab_score.py --results DIR)\n"
		"  --quiet      no per-file lines, only warnings, errors and the summary\n"
		"  --repeat N   run the detector N times over each file (timing only; the\n"
		"               output is the same): a steadier points/s in the summary\n\n"
		"A file that cannot be read (bad header, row, timestamp or value) is reported as\n"
		"FILE:LINE: problem and skipped; the exit status is then 1. Duplicate or\n"
		"out-of-order timestamps are warnings; such points score 0.\n");
}

static int usage_error(const char *msg)
{
	fprintf(stderr, "mote analyze nab: %s; run 'mote analyze nab --help'\n", msg);
	return 2;
}

static int ends_with_csv(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && strcmp(name + n - 4, ".csv") == 0 && name[0] != '.';
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of entries in dir that are directories (want_dir) or *.csv files. */
static char **list_dir(const char *dir, bool want_dir, size_t *count)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	*count = 0;
	if (!d)
		return NULL;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		struct stat st;
		if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
		    stat(path, &st) != 0)
			continue;
		if (want_dir ? !S_ISDIR(st.st_mode)
			     : !(S_ISREG(st.st_mode) && ends_with_csv(e->d_name)))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **nn = realloc(names, nc * sizeof *nn);
			if (!nn)
				break;
			names = nn;
			cap = nc;
		}
		if (!(names[n] = strdup(e->d_name)))
			break;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	*count = n;
	return names;
}

static void free_list(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct totals {
	size_t files, bad_files, points, steps;
	uint64_t detector_ns;
};

/* Scores one file; 0 when its output was written, 1 when it could not be used. */
static int score_file(const char *in, const char *outdir, const char *name, bool quiet,
		      unsigned repeat, struct totals *t)
{
	int rc = 1;
	char *text = NULL;
	size_t len = 0;
	struct nab_series s = {0};
	struct nab_csv_error perr;
	double *scores = NULL;
	FILE *f = NULL;
	char out[4200], tmp[4300];
	enum mote_err e = mote_read_file(in, MAX_FILE_BYTES, &text, &len);

	if (e == MOTE_ETOOBIG) {
		fprintf(stderr, "%s: larger than %u MiB\n", in, MAX_FILE_BYTES >> 20);
		goto out;
	}
	if (e != MOTE_OK) {
		fprintf(stderr, "%s: cannot read: %s\n", in,
			e == MOTE_EIO ? strerror(errno) : mote_strerror(e));
		goto out;
	}
	if (nab_csv_parse(text, len, &s, &perr) != MOTE_OK) {
		if (perr.line)
			fprintf(stderr, "%s:%u: %s\n", in, perr.line, perr.msg);
		else
			fprintf(stderr, "%s: %s\n", in, perr.msg);
		goto out;
	}
	if (s.duplicates || s.out_of_order)
		fprintf(stderr,
			"%s:%u: warning: %zu duplicate and %zu out-of-order timestamps (first "
			"here); they score 0\n",
			in, s.first_warning_line, s.duplicates, s.out_of_order);
	scores = malloc(s.count * sizeof *scores);
	if (!scores) {
		fprintf(stderr, "%s: out of memory\n", in);
		goto out;
	}
	/* Only the detector is timed, in CPU time of this thread: points per
	 * second of one core, not disturbed by other processes sharing it. */
	static struct mote_anomaly det;
	for (unsigned r = 0; r < repeat; r++) {
		mote_anomaly_init(&det, NULL);
		uint64_t t0 = thread_cpu_ns();
		for (size_t i = 0; i < s.count; i++)
			scores[i] = mote_anomaly_step(&det, s.rows[i].ts_ms, s.rows[i].value);
		t->detector_ns += thread_cpu_ns() - t0;
		t->steps += s.count;
	}

	snprintf(out, sizeof out, "%s/%s", outdir, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", out);
	f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "%s: cannot write %s: %s\n", in, tmp, strerror(errno));
		goto out;
	}
	fputs("timestamp,value,anomaly_score\n", f);
	for (size_t i = 0; i < s.count; i++)
		fprintf(f, "%.*s,%.15g,%.6f\n", (int)s.rows[i].ts_len, s.rows[i].ts_text,
			s.rows[i].value, scores[i]);
	if (fclose(f) != 0 || rename(tmp, out) != 0) {
		f = NULL;
		fprintf(stderr, "%s: cannot write %s: %s\n", in, out, strerror(errno));
		unlink(tmp);
		goto out;
	}
	f = NULL;
	if (!quiet)
		printf("%s: %zu points, %zu gaps -> %s\n", in, s.count, s.gaps, out);
	t->points += s.count;
	rc = 0;
out:
	if (f) {
		fclose(f);
		unlink(tmp);
	}
	free(scores);
	nab_series_free(&s);
	free(text);
	t->files++;
	t->bad_files += (size_t)rc;
	return rc;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	fprintf(stderr, "mote analyze nab: cannot create %s: %s\n", path, strerror(errno));
	return -1;
}

/* Scores the *.csv files of in/ into out/ (created when there are some). */
static int score_dir(const char *in, const char *out, bool quiet, unsigned repeat, struct totals *t)
{
	size_t n;
	int rc = 0;
	char **files = list_dir(in, false, &n);
	if (n && make_dir(out) != 0) {
		free_list(files, n);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		char path[4200];
		snprintf(path, sizeof path, "%s/%s", in, files[i]);
		rc |= score_file(path, out, files[i], quiet, repeat, t);
	}
	free_list(files, n);
	return rc;
}

int cli_analyze_nab(int argc, char **argv)
{
	enum { O_DATA = 256, O_OUT, O_QUIET, O_REPEAT, O_HELP };
	static const struct option opts[] = {
	    {"data", required_argument, NULL, O_DATA},
	    {"out", required_argument, NULL, O_OUT},
	    {"quiet", no_argument, NULL, O_QUIET},
	    {"repeat", required_argument, NULL, O_REPEAT},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	const char *data = NULL, *outdir = NULL;
	bool quiet = false;
	unsigned repeat = 1;
	int c;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "-h", opts, NULL)) != -1) {
		switch (c) {
		case O_DATA:
			data = optarg;
			break;
		case O_OUT:
			outdir = optarg;
			break;
		case O_QUIET:
			quiet = true;
			break;
		case O_REPEAT: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end || v < 1 || v > 100000)
				return usage_error("--repeat wants a number from 1 to 100000");
			repeat = (unsigned)v;
			break;
		}
		case 'h':
		case O_HELP:
			usage(stdout);
			return 0;
		case 1: {
			char msg[300];
			snprintf(msg, sizeof msg, "unexpected argument '%.200s'", optarg);
			return usage_error(msg);
		}
		default: {
			char msg[300];
			snprintf(msg, sizeof msg, "unknown option or missing value '%.200s'",
				 argv[optind - 1]);
			return usage_error(msg);
		}
		}
	}
	if (!data || !outdir)
		return usage_error("--data DIR and --out DIR are required");
	struct stat st;
	if (stat(data, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mote analyze nab: %s: not a directory\n", data);
		return 1;
	}
	if (make_dir(outdir) != 0)
		return 1;

	struct totals t = {0};
	int rc = score_dir(data, outdir, quiet, repeat, &t);
	size_t n;
	char **cats = list_dir(data, true, &n);
	for (size_t i = 0; i < n; i++) {
		char in[4200], out[4200];
		snprintf(in, sizeof in, "%s/%s", data, cats[i]);
		snprintf(out, sizeof out, "%s/%s", outdir, cats[i]);
		rc |= score_dir(in, out, quiet, repeat, &t);
	}
	free_list(cats, n);
	if (t.files == 0) {
		fprintf(stderr, "mote analyze nab: no *.csv files in %s or its subdirectories\n",
			data);
		return 1;
	}
	double secs = (double)t.detector_ns / 1e9;
	printf("%zu files (%zu unusable), %zu points; detector %.0f points/s on one thread (CPU "
	       "time; %zu B state per "
	       "series)\n",
	       t.files, t.bad_files, t.points, secs > 0 ? (double)t.steps / secs : 0.0,
	       sizeof(struct mote_anomaly));
	return rc ? 1 : 0;
}
