/*
 * sketch.h - frequency estimates for W-TinyLFU (sketch.c): a count-min
 * sketch of 4 rows of saturating 4-bit counts (one byte each here) in
 * front of a doorkeeper Bloom filter, halved ("reset") every 10 * width
 * recorded accesses so that old popularity fades.  Memory fixed at create:
 * 4 bytes per counter column plus 1 byte of doorkeeper bits per column.
 */
#ifndef APB_SKETCH_H
#define APB_SKETCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct apbi_sketch apbi_sketch;

/** A sketch with at least capacity columns; NULL when out of memory. */
apbi_sketch *apbi_sketch_new(size_t capacity);
void apbi_sketch_free(apbi_sketch *s);
/** Records one access of id (amortized O(1): a reset is O(width) every 10*width). */
void apbi_sketch_add(apbi_sketch *s, uint64_t id);
/** Estimated recent accesses of id (0..16). */
unsigned apbi_sketch_freq(const apbi_sketch *s, uint64_t id);

#endif
