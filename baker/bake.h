/* bake.h — the baking simulation: FNV-1a time per pastry and the occasional mistake. */
#ifndef BAKERY_BAKE_H
#define BAKERY_BAKE_H

#include <stdatomic.h>
#include <stdint.h>

#define BAKE_ROUNDS_MAX 10 /* mistakes stop being repeated after this many rounds */

/* The 32-bit FNV-1a hash of the NUL-terminated string s. */
uint32_t bake_fnv1a32(const char *s);

/* Milliseconds one round of baking pastry takes at scale 1: fnv1a32(pastry) % 100. */
unsigned bake_round_ms(const char *pastry);

/* Bakes pastry: sleeps bake_round_ms(pastry) * scale per round and, with a 10% chance per
 * round, makes a mistake and bakes again; each mistake is an event "baker made mistake,
 * redoing" and baker.mistake=true on the calling thread's current span (if any). Once *cancel
 * is true (NULL: never) it stops within about CLOCK_WAIT_SLICE_MS (clock_wait). Returns the number
 * of rounds
 * (>= 1), or -ECANCELED when cancelled before the bake was done. */
int bake(const char *pastry, double scale, const atomic_bool *cancel);

#endif
