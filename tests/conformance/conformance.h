/*
 * conformance.h: the backend conformance suite. It drives vs_index on one device against a plain
 * float64 reference written in the test itself, on fresh random data of awkward sizes, and is run
 * on the CPU backend in CI (tests/unit/test_index.c) and on the CUDA backend where a GPU exists
 * (tests/gpu/).
 */
#ifndef VS_CONFORMANCE_H
#define VS_CONFORMANCE_H

#include <stdint.h>

#include "index.h"

/* Runs every case on dev; returns the number of failed checks (0 = conforming). seed picks the
 * data; quick trims the sizes for slow setups (sanitizers). */
int vs_conformance_run(vs_device dev, uint64_t seed, int quick);

#endif
