/*
 * cache_stats.c - the cache's counters and its trace: what reads them
 * first applies every thread's recorded hits (cache_hit.c), so counters
 * are exact when read, and a trace starts after the hits before it.
 */
#include <errno.h>
#include <pthread.h>

#include "cache_priv.h"

/** See cache.h. */
void apbi_cache_stats(apbi_cache *c, apbi_cache_counters *out)
{
	pthread_mutex_lock(&c->lock);
	apbi_cache_drain_all(c);
	*out = c->st;
	out->memory_used = c->used;
	pthread_mutex_unlock(&c->lock);
}

/** See cache.h. */
int apbi_cache_set_trace(apbi_cache *c, apbi_trace *t)
{
	int r = 0;
	pthread_mutex_lock(&c->lock);
	apbi_cache_drain_all(c);   /* earlier hits are not traced */
	if (c->trace) {
		r = -EBUSY;
	} else {
		__atomic_store_n(&c->trace, t, __ATOMIC_RELEASE);
		for (uint32_t m = 0; m < c->nobj; m++) {   /* metadata sizes, for replays */
			OBJ(c, m)->traced = OBJ(c, m)->live;
			if (OBJ(c, m)->live && OBJ(c, m)->meta)
				trace_ev(c, APBI_TR_OBJECT, m, OBJ(c, m)->size, 0);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/** See cache.h. */
apbi_trace *apbi_cache_take_trace(apbi_cache *c)
{
	apbi_trace *t;
	pthread_mutex_lock(&c->lock);
	t = c->trace;
	__atomic_store_n(&c->trace, NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&c->lock);
	return t;
}

/** See cache.h. */
void apbi_cache_model_stats(apbi_cache *c, uint32_t m, apb_model_stats *out)
{
	pthread_mutex_lock(&c->lock);
	apbi_cache_drain_all(c);
	*out = OBJ(c, m)->st;
	pthread_mutex_unlock(&c->lock);
}
