/* test_mq_keepalive.c — publishers created and freed from several threads at once never hang
 * on their reader threads (no broker needed: mq_publisher_new does not connect). */
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "mq_publisher.h"

#define THREADS 3
#define SECONDS 1 /* of churn */

static struct mq_config cfg = {.hosts = {{"127.0.0.1", 1}}, .nhosts = 1, .queue = "q"};

static void *churn(void *arg)
{
	time_t end = time(NULL) + SECONDS;

	(void)arg;
	while (time(NULL) < end) {
		struct mq_publisher *m = mq_publisher_new(&cfg);

		if (!m)
			return (void *)1;
		mq_publisher_free(m);
	}
	return NULL;
}

/* A hang (a free waiting for a reader thread that never stops) ends in SIGALRM. */
static void test_concurrent_new_free(void)
{
	pthread_t t[THREADS];
	void *ret;

	alarm(20);
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, churn, NULL) == 0);
	for (int i = 0; i < THREADS; i++) {
		CHECK(pthread_join(t[i], &ret) == 0);
		CHECK(ret == NULL);
	}
	alarm(0);
}

int main(void)
{
	RUN(test_concurrent_new_free);
	return CHECK_DONE();
}
