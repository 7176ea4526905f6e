/* Interruptible sleep on a monotonic condition variable. */
#include "etcd/nap.h"

#include <time.h>

void etcd_nap_init(etcd_nap *n)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, &a);
    pthread_condattr_destroy(&a);
    atomic_init(&n->stop, false);
}

void etcd_nap_destroy(etcd_nap *n)
{
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
}

bool etcd_nap_sleep(etcd_nap *n, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&n->mu);
    int e = 0;
    while (!atomic_load(&n->stop) && e == 0)
        e = pthread_cond_timedwait(&n->cv, &n->mu, &until);
    pthread_mutex_unlock(&n->mu);
    return !atomic_load(&n->stop);
}

void etcd_nap_stop(etcd_nap *n)
{
    pthread_mutex_lock(&n->mu);
    atomic_store(&n->stop, true);
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}
