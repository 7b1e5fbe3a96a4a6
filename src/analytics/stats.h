/*
 * stats.h - order statistics over doubles: what the forecast's Monte Carlo
 * bands and the RUL intervals share. Internal to src/analytics.
 */
#ifndef MOTE_ANALYTICS_STATS_H
#define MOTE_ANALYTICS_STATS_H

#include <stddef.h>

/* Sorts v[0..n) ascending (INFINITY last). */
void stats_sort(double *v, size_t n);
/* The q-quantile (q in [0, 1]) of sorted v[0..n), n > 0, linear between ranks. */
double stats_quantile(const double *v, size_t n, double q);

#endif
