// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * proc_vhost_workers() (tools/proc.c), which `ls` and `plan` use to show
 * who owns a vhost-net device: the kernel shows an owner only as worker
 * threads named "vhost-<owner pid>" (kernel threads up to 6.3, threads of
 * the owner since 6.4).  Real vhost devices need /dev/vhost-net (the
 * nested QEMU test has them); here threads of this process named like
 * 6.4+ workers stand in, and a thread with another pid's name must not
 * count.
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "harness.h"
#include "../tools/cli.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int named, done;

static void *worker(void *arg)
{
	char name[16];

	snprintf(name, sizeof(name), "vhost-%d", (int)(long)arg);
	prctl(PR_SET_NAME, name);
	pthread_mutex_lock(&lock);
	named++;
	pthread_cond_broadcast(&cond);
	while (!done)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return NULL;
}

TEST(vhost_workers_are_counted_by_owner_pid)
{
	pthread_t t[3];
	long self = getpid();
	long owners[3] = { self, self, self + 1 };

	ASSERT_EQ(proc_vhost_workers(getpid()), 0, "no worker yet");
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, worker, (void *)owners[i]), 0);
	pthread_mutex_lock(&lock);
	while (named < 3)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	EXPECT_EQ(proc_vhost_workers(getpid()), 2,
		  "two threads named vhost-<our pid>; vhost-<another pid> is not ours");
	pthread_mutex_lock(&lock);
	done = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	EXPECT_EQ(proc_vhost_workers(getpid()), 0, "workers gone");
	EXPECT_LT(proc_vhost_workers(0x7ffffff0), 0, "no such pid: -errno");
}

TEST_HARNESS_MAIN
