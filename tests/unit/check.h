/* check.h — a tiny unit-test harness: CHECK assertions, TEST functions, one summary line. */
#ifndef BAKERY_CHECK_H
#define BAKERY_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_passed;
static int check_failed;

/* CHECK(cond): records a failure with its location when cond is false; the test goes on. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

/* CHECK_STR(a, b): both strings non-NULL and equal. */
#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *check_a_ = (a), *check_b_ = (b);                                       \
		if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                   \
			fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,         \
			        check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");   \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

/* RUN(fn): runs one test function and counts it as passed or failed. */
#define RUN(fn)                                                                                    \
	do {                                                                                       \
		int check_before_ = check_failures;                                                \
		fn();                                                                              \
		if (check_failures == check_before_) {                                             \
			check_passed++;                                                            \
		} else {                                                                           \
			check_failed++;                                                            \
			fprintf(stderr, "FAIL %s\n", #fn);                                         \
		}                                                                                  \
	} while (0)

/* CHECK_DONE(): prints "<file>: N passed, N failed" and returns the exit status. */
#define CHECK_DONE()                                                                               \
	(printf("%s: %d passed, %d failed\n", __FILE__, check_passed, check_failed),               \
	 check_failed ? 1 : 0)

#endif
