/*
 * counter.c - string -> count hash table used while training.
 *
 * Invariants: open addressing with linear probing, load factor <= 1/2, so
 * every probe sequence ends at an empty slot (key_len == UINT32_MAX); key
 * bytes live in one growing arena and entries refer to them by offset, so
 * growing the arena never invalidates an entry.  Memory is proportional to
 * the distinct keys (training is allowed that; suggest never uses this).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shell.h"

#define EMPTY UINT32_MAX

/** Makes an empty counter. */
void sh_counter_init(sh_counter *c)
{
	memset(c, 0, sizeof *c);
}

static int grow_slots(sh_counter *c)
{
	size_t cap = c->cap ? c->cap * 2 : 1024;
	sh_entry *s = malloc(cap * sizeof *s);

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		s[i].key_len = EMPTY;
	for (size_t i = 0; i < c->cap; i++) {
		size_t j;
		if (c->slots[i].key_len == EMPTY)
			continue;
		j = c->slots[i].hash & (cap - 1);
		while (s[j].key_len != EMPTY)
			j = (j + 1) & (cap - 1);
		s[j] = c->slots[i];
	}
	free(c->slots);
	c->slots = s;
	c->cap = cap;
	return 0;
}

static int arena_put(sh_counter *c, const char *key, size_t len, uint64_t *off)
{
	if (c->arena_len + len > c->arena_cap) {
		size_t cap = c->arena_cap ? c->arena_cap * 2 : 65536;
		char *a;
		while (cap < c->arena_len + len)
			cap *= 2;
		if (!(a = realloc(c->arena, cap)))
			return -ENOMEM;
		c->arena = a;
		c->arena_cap = cap;
	}
	memcpy(c->arena + c->arena_len, key, len);
	*off = c->arena_len;
	c->arena_len += len;
	return 0;
}

/** Adds n to the count of key, inserting it with aux 0 when new. */
int sh_counter_add(sh_counter *c, const char *key, size_t len, uint64_t n)
{
	uint64_t h = sh_hash(key, len);
	size_t j;

	if ((c->len + 1) * 2 > c->cap && grow_slots(c) < 0)
		return sh_err(-ENOMEM, "out of memory while training");
	j = h & (c->cap - 1);
	while (c->slots[j].key_len != EMPTY) {
		sh_entry *e = &c->slots[j];
		if (e->hash == h && e->key_len == len &&
		    memcmp(c->arena + e->key_off, key, len) == 0) {
			e->count += n;
			return 0;
		}
		j = (j + 1) & (c->cap - 1);
	}
	if (arena_put(c, key, len, &c->slots[j].key_off) < 0)
		return sh_err(-ENOMEM, "out of memory while training");
	c->slots[j].hash = h;
	c->slots[j].count = n;
	c->slots[j].key_len = (uint32_t)len;
	c->slots[j].aux = 0;
	c->len++;
	return 0;
}

/** Key bytes of an entry. */
const char *sh_counter_key(const sh_counter *c, const sh_entry *e)
{
	return c->arena + e->key_off;
}

/** Packs entries to the front; the table is no longer a hash table. */
sh_entry *sh_counter_pack(sh_counter *c)
{
	size_t o = 0;

	for (size_t i = 0; i < c->cap; i++)
		if (c->slots[i].key_len != EMPTY)
			c->slots[o++] = c->slots[i];
	return c->slots;
}

/** Frees the counter's memory. */
void sh_counter_free(sh_counter *c)
{
	free(c->slots);
	free(c->arena);
	memset(c, 0, sizeof *c);
}
