/*
 * rawbundle.h - built bundles read back raw for the builder suites
 * (check_builder, check_builder_atomic): header, manifest (parsed with
 * json-c, padding checked) and model bytes, checksums and block tables
 * (hashed with libxxhash), independently of the library's own reader.
 */
#ifndef APB_TEST_RAWBUNDLE_H
#define APB_TEST_RAWBUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* A built bundle read back raw. */
typedef struct {
	uint8_t *file;
	size_t len;
	uint32_t mlen;
	uint64_t data_start;
	json_object *man;
} raw_bundle;

/** Little-endian unsigned integer of n bytes at p. */
uint64_t rd_le(const uint8_t *p, int n);
/** Member key of object o; fails the test when it is missing. */
json_object *jget(json_object *o, const char *key);
/** Member key of object o as an integer; fails the test when it is missing. */
int64_t jint(json_object *o, const char *key);
/** Reads path (only its header and manifest when head_only), checks and parses it. */
void raw_open_ex(raw_bundle *rb, const char *path, bool head_only);
/** raw_open_ex of the whole file. */
void raw_open(raw_bundle *rb, const char *path);
/** Frees what raw_open gave. */
void raw_close(raw_bundle *rb);
/** Asserts that o's keys are exactly the NULL-terminated list, in order. */
void assert_keys(json_object *o, const char *const *keys);
/** Model i of the manifest's "models" array (NULL past the end). */
json_object *model_at(raw_bundle *rb, size_t i);
/** Checks model i of rb against name/data: placement, bytes, checksum, blocks. */
void check_model(raw_bundle *rb, size_t i, const char *name, const void *data,
                 uint64_t size, uint32_t align, uint32_t bs);

#endif
