/*
 * analyze_rul.c - `mote analyze rul`: train the remaining-useful-life
 * estimator on C-MAPSS run-to-failure histories and estimate each test
 * engine's RUL at its last cycle; with the truth, RMSE and the PHM08 score.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics/cmapss.h"
#include "analytics/rul.h"
#include "cli/cli.h"

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: mote analyze rul --train FILE --test FILE [--truth FILE] [--predictions OUT]\n"
	    "                        [--threads N] [--cv K] [--save-model FILE] [--model FILE]\n\n"
	    "Trains a remaining-useful-life estimator on NASA C-MAPSS run-to-failure histories\n"
	    "(train_FD00x.txt) and estimates each test engine's RUL at its last cycle.\n\n"
	    "  --train FILE        training histories (every engine runs to failure)\n"
	    "  --test FILE         test histories (each ends some time before failure)\n"
	    "  --truth FILE        true RUL per test engine (RUL_FD00x.txt): prints RMSE and the\n"
	    "                      PHM08 score against the truth capped at 125\n"
	    "  --predictions OUT   writes one estimated RUL per test engine, one per line\n"
	    "  --threads N         XGBoost threads (default 1; the result does not depend on it)\n"
	    "  --cv K              also K-fold cross-validation by engine on the training file\n"
	    "                      (scored at every cycle of the held-out engines)\n"
	    "  --save-model FILE   writes the trained model; --model FILE loads one instead of "
	    "training\n"
	    "  --tune KEY=VALUE    overrides a model setting, for tuning experiments only "
	    "(rounds,\n"
	    "                      depth, eta, subsample, colsample, min_child, lambda, bags, "
	    "seed,\n"
	    "                      cap, cond_tol); the defaults are the chosen ones\n\n"
	    "Prints one line per test engine (estimate and a nominal 80%% interval from the "
	    "bagged\n"
	    "boosters' out-of-bag errors), then 'RMSE x PHM08 y' when the truth is given. Exit 1 "
	    "on\n"
	    "bad input, with the file and line.\n");
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct rul_series *to_series(const struct cmapss *d)
{
	struct rul_series *s = calloc(d->nunits, sizeof *s);
	if (!s)
		return NULL;
	for (size_t u = 0; u < d->nunits; u++) {
		s[u].data = d->rows[d->units[u].first].setting;
		s[u].cycles = d->units[u].cycles;
		s[u].stride = sizeof(struct cmapss_row) / sizeof(double);
		s[u].end_rul =
		    0; /* training engines run to failure; test ones are never trained on */
	}
	return s;
}

int cli_analyze_rul(int argc, char **argv)
{
	const char *train = NULL, *test = NULL, *truth = NULL, *pred = NULL, *save = NULL,
		   *load = NULL;
	int cv = 0, status = 1;
	struct rul_params p;
	char err[512];
	rul_params_default(&p);

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			fprintf(stderr,
				"mote analyze rul: %s: unknown option or missing value; run 'mote "
				"analyze rul --help'\n",
				a);
			return 2;
		}
		const char *v = argv[++i];
		char *end;
		if (strcmp(a, "--train") == 0)
			train = v;
		else if (strcmp(a, "--test") == 0)
			test = v;
		else if (strcmp(a, "--truth") == 0)
			truth = v;
		else if (strcmp(a, "--predictions") == 0)
			pred = v;
		else if (strcmp(a, "--save-model") == 0)
			save = v;
		else if (strcmp(a, "--model") == 0)
			load = v;
		else if (strcmp(a, "--threads") == 0) {
			long n = strtol(v, &end, 10);
			if (*end || end == v || n < 1 || n > 1024) {
				fprintf(stderr,
					"mote analyze rul: --threads: '%s' is not a number between "
					"1 and 1024\n",
					v);
				return 2;
			}
			p.threads = (int)n;
		} else if (strcmp(a, "--cv") == 0) {
			long n = strtol(v, &end, 10);
			if (*end || end == v || n < 2 || n > 100) {
				fprintf(stderr,
					"mote analyze rul: --cv: '%s' is not a number between 2 "
					"and 100\n",
					v);
				return 2;
			}
			cv = (int)n;
		} else if (strcmp(a, "--tune") == 0) {
			if (rul_params_set(&p, v) != MOTE_OK) {
				fprintf(stderr,
					"mote analyze rul: --tune: '%s' is not KEY=VALUE with a "
					"known key\n",
					v);
				return 2;
			}
		} else {
			fprintf(
			    stderr,
			    "mote analyze rul: unknown option %s; run 'mote analyze rul --help'\n",
			    a);
			return 2;
		}
	}
	if ((!train && !load) || (!test && !cv) || (cv && !train)) {
		fprintf(stderr, "mote analyze rul: needs --train FILE (or --model FILE) and --test "
				"FILE (or --cv K); "
				"run 'mote analyze rul --help'\n");
		return 2;
	}

	struct cmapss tr = {0}, te = {0};
	struct rul_series *trs = NULL, *tes = NULL;
	struct rul_estimate *est = NULL;
	struct rul_model *m = NULL;
	double *tv = NULL;
	size_t ntv = 0;
	FILE *pf = NULL;

	if (train && cmapss_load(train, &tr, err, sizeof err) != MOTE_OK)
		goto fail;
	if (test && cmapss_load(test, &te, err, sizeof err) != MOTE_OK)
		goto fail;
	if (truth && test) {
		if (cmapss_load_truth(truth, &tv, &ntv, err, sizeof err) != MOTE_OK)
			goto fail;
		if (ntv != te.nunits) {
			snprintf(err, sizeof err, "%s: %zu values for %zu test engines in %s",
				 truth, ntv, te.nunits, test);
			goto fail;
		}
	}
	if ((train && !(trs = to_series(&tr))) || (test && !(tes = to_series(&te)))) {
		snprintf(err, sizeof err, "out of memory");
		goto fail;
	}
	if (cv) {
		struct rul_cv_result r;
		double t0 = now();
		if (rul_cv(&p, trs, tr.nunits, cv, &r, err, sizeof err) != MOTE_OK)
			goto fail;
		printf("cv: %d-fold by engine on %s: RMSE %.2f, mean PHM08 %.3f per estimate (%zu "
		       "estimates, every "
		       "cycle of the held-out engines), interval coverage %.1f%%, %.1f s\n",
		       cv, train, r.rmse, r.score_mean, r.points, 100 * r.coverage, now() - t0);
		fflush(stdout);
	}
	if (!test) {
		status = 0;
		goto out;
	}
	double t0 = now();
	if (load) {
		if (rul_load(load, &m, err, sizeof err) != MOTE_OK)
			goto fail;
		printf("rul: loaded %s\n", load);
	} else {
		if (rul_train(&p, trs, tr.nunits, &m, err, sizeof err) != MOTE_OK)
			goto fail;
		printf("rul: trained on %s: %zu engines, %zu cycles, %d operating condition%s, %d "
		       "features, %d booster%s x "
		       "%d rounds (depth %d), %.2f s\n",
		       train, tr.nunits, tr.nrows, rul_model_conditions(m),
		       rul_model_conditions(m) == 1 ? "" : "s", rul_model_features(m), p.bags,
		       p.bags == 1 ? "" : "s", p.rounds, p.depth, now() - t0);
	}
	if (save && rul_save(m, save, err, sizeof err) != MOTE_OK)
		goto fail;
	if (!(est = calloc(te.nunits, sizeof *est))) {
		snprintf(err, sizeof err, "out of memory");
		goto fail;
	}
	t0 = now();
	if (rul_predict(m, tes, te.nunits, est, err, sizeof err) != MOTE_OK)
		goto fail;
	double dt = now() - t0;
	double cap = rul_model_params(m)->cap;
	printf("rul: estimated %zu test engines of %s in %.4f s (%.0f estimates/s)\n", te.nunits,
	       test, dt, dt > 0 ? (double)te.nunits / dt : 0.0);
	double se = 0, score = 0;
	for (size_t u = 0; u < te.nunits; u++) {
		printf("engine %d: cycles %zu RUL %.1f [%.1f, %.1f]", te.units[u].id,
		       te.units[u].cycles, est[u].rul, est[u].lo, est[u].hi);
		if (tv) {
			double t = fmin(tv[u], cap);
			se += (est[u].rul - t) * (est[u].rul - t);
			score += rul_phm08(est[u].rul, t);
			printf(" truth %.0f", t);
		}
		printf("\n");
	}
	if (pred) {
		if (!(pf = fopen(pred, "w"))) {
			snprintf(err, sizeof err, "%s: cannot write: %s", pred, strerror(errno));
			goto fail;
		}
		for (size_t u = 0; u < te.nunits; u++)
			fprintf(pf, "%.2f\n", est[u].rul);
		int bad = ferror(pf);
		if (fclose(pf) != 0 || bad) {
			pf = NULL;
			snprintf(err, sizeof err, "%s: write failed", pred);
			goto fail;
		}
		pf = NULL;
	}
	if (tv)
		printf("RMSE %.2f PHM08 %.1f (%zu engines, truth capped at %.0f)\n",
		       sqrt(se / (double)te.nunits), score, te.nunits, cap);
	else
		printf("no --truth: RMSE and PHM08 not computed (the estimates above are all there "
		       "is)\n");
	status = 0;
	goto out;
fail:
	fprintf(stderr, "mote analyze rul: %s\n", err);
out:
	if (pf)
		fclose(pf);
	rul_free(m);
	free(est);
	free(tv);
	free(trs);
	free(tes);
	cmapss_free(&tr);
	cmapss_free(&te);
	return status;
}
