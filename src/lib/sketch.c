/*
 * sketch.c - count-min sketch with a doorkeeper (see sketch.h).
 *
 * The first access of an identity since the last reset only sets its
 * doorkeeper bits (one-hit wonders never reach the counters); later ones
 * raise its four counters (saturating at 15).  freq = the smallest of its
 * counters + 1 if the doorkeeper has it.  Invariants: width is a power of
 * two; counters <= 15; adds < 10 * width between resets.
 */
#include <stdlib.h>
#include <string.h>

#include "sketch.h"

#define ROWS 4

struct apbi_sketch {
	uint8_t *cnt;      /* ROWS * width counters */
	uint64_t *door;    /* 8 * width bits */
	size_t width, adds;
};

apbi_sketch *apbi_sketch_new(size_t capacity)
{
	apbi_sketch *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->width = 64;
	while (s->width < capacity)
		s->width <<= 1;
	s->cnt = calloc(ROWS, s->width);
	s->door = calloc(s->width / 8, sizeof *s->door);
	if (!s->cnt || !s->door) {
		apbi_sketch_free(s);
		return NULL;
	}
	return s;
}

void apbi_sketch_free(apbi_sketch *s)
{
	if (!s)
		return;
	free(s->cnt);
	free(s->door);
	free(s);
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/* Doorkeeper bit positions of hash h: two of 8 * width. */
static size_t door_bit(const apbi_sketch *s, uint64_t h, int k)
{
	return (size_t)(k ? h >> 40 : h >> 8) & (8 * s->width - 1);
}

static size_t col(const apbi_sketch *s, uint64_t h, int row)
{
	uint64_t h2 = (h >> 32) | 1;
	return (size_t)(h + (uint64_t)row * h2) & (s->width - 1);
}

static void reset(apbi_sketch *s)
{
	for (size_t i = 0; i < ROWS * s->width; i++)
		s->cnt[i] >>= 1;
	memset(s->door, 0, s->width / 8 * sizeof *s->door);
	s->adds /= 2;
}

void apbi_sketch_add(apbi_sketch *s, uint64_t id)
{
	uint64_t h = mix(id);
	size_t b0 = door_bit(s, h, 0), b1 = door_bit(s, h, 1);
	uint64_t m0 = 1ull << (b0 & 63), m1 = 1ull << (b1 & 63);
	if ((s->door[b0 / 64] & m0) && (s->door[b1 / 64] & m1)) {
		for (int r = 0; r < ROWS; r++) {
			uint8_t *c = &s->cnt[(size_t)r * s->width + col(s, h, r)];
			if (*c < 15)
				(*c)++;
		}
	} else {
		s->door[b0 / 64] |= m0;
		s->door[b1 / 64] |= m1;
	}
	if (++s->adds >= 10 * s->width)
		reset(s);
}

unsigned apbi_sketch_freq(const apbi_sketch *s, uint64_t id)
{
	uint64_t h = mix(id);
	size_t b0 = door_bit(s, h, 0), b1 = door_bit(s, h, 1);
	unsigned m = 15;
	for (int r = 0; r < ROWS; r++) {
		unsigned c = s->cnt[(size_t)r * s->width + col(s, h, r)];
		if (c < m)
			m = c;
	}
	return m + ((s->door[b0 / 64] >> (b0 & 63)) & (s->door[b1 / 64] >> (b1 & 63)) & 1);
}
