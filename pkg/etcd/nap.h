/* An interruptible sleep for the watch and keeper threads. */
#ifndef LB_ETCD_NAP_H
#define LB_ETCD_NAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct etcd_nap {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stop;
} etcd_nap;

void etcd_nap_init(etcd_nap *n);
void etcd_nap_destroy(etcd_nap *n);
/* Sleeps up to ms; returns false (at once) when stopped. */
bool etcd_nap_sleep(etcd_nap *n, int64_t ms);
/* Wakes every sleeper for good. */
void etcd_nap_stop(etcd_nap *n);
static inline bool etcd_nap_stopped(etcd_nap *n)
{
    return atomic_load(&n->stop);
}

#endif
