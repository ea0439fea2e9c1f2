/* id.h — random trace and span ids (and the SDK's other random numbers). */
#ifndef BAKERY_OTEL_ID_H
#define BAKERY_OTEL_ID_H

#include <stddef.h>
#include <stdint.h>

/* 64 random bits from a per-thread xoshiro256** seeded by getrandom. */
uint64_t otel_id_rand64(void);

/* Fills n bytes (8 or 16) of id with random bits, never all zero. */
void otel_id_random(uint8_t *id, size_t n);

/* otel_id_random for two ids at once (a new trace's trace and span ids): one load and store of
 * the generator's state. */
void otel_id_random2(uint8_t *id, size_t n, uint8_t *id2, size_t n2);

#endif
