/*
 * ghost.h - bounded FIFO of remembered identities for the policies that
 * keep ghosts of evicted entries (S3-FIFO, 2Q): O(1) push, lookup and
 * forget, memory fixed at create (ghost.c).
 */
#ifndef APB_GHOST_H
#define APB_GHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct apbi_ghost apbi_ghost;

/** A ghost FIFO of at most cap identities; NULL when out of memory. */
apbi_ghost *apbi_ghost_new(size_t cap);
void apbi_ghost_free(apbi_ghost *g);

/**
 * Remembers id as the newest ghost, forgetting the oldest ones while more
 * than limit (clamped to cap) would be remembered.
 */
void apbi_ghost_push(apbi_ghost *g, uint64_t id, size_t limit);

/** True when id is remembered; forgets it (a ghost hit is used once). */
bool apbi_ghost_take(apbi_ghost *g, uint64_t id);

#endif
