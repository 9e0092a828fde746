#include "CReadSection.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

__thread revoke_reader *revoke_reader_self __attribute__((tls_model("initial-exec"))) = 0;
long revoke_read_period = 1;
int revoke_read_fences = 1;

/* Every slot ever made, newest first; only ever prepended to (under `registering`). */
static revoke_reader *readers = 0;
static pthread_mutex_t registering = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_exit;
/* 1 once membarrier's expedited command is registered for this process. */
static int expedited = 0;

static void release_slot(void *slot) {
    revoke_reader *reader = slot;
    __atomic_store_n(&reader->active, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&reader->owned, 0, __ATOMIC_RELEASE);
    revoke_reader_self = 0;
}

static void setup(void) {
    pthread_key_create(&thread_exit, release_slot);
#ifdef __linux__
    long supported = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (supported > 0 && (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED)
        && syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0) {
        __atomic_store_n(&expedited, 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&revoke_read_fences, 0, __ATOMIC_SEQ_CST);
    }
#endif
}

revoke_reader *revoke_reader_register(void) {
    pthread_once(&setup_once, setup);
    revoke_reader *reader = 0;
    pthread_mutex_lock(&registering);
    for (revoke_reader *slot = readers; slot; slot = slot->next) {
        if (!__atomic_load_n(&slot->owned, __ATOMIC_ACQUIRE)) {
            reader = slot;
            break;
        }
    }
    if (!reader) {
        if (posix_memalign((void **)&reader, 64, sizeof(revoke_reader)) != 0) abort();
        memset(reader, 0, sizeof(revoke_reader));
        reader->next = readers;
        __atomic_store_n(&readers, reader, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&reader->owned, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&registering);
    pthread_setspecific(thread_exit, reader);
    revoke_reader_self = reader;
    return reader;
}

long revoke_read_retire(void) {
    return __atomic_add_fetch(&revoke_read_period, 1, __ATOMIC_SEQ_CST);
}

long revoke_read_oldest_active(void) {
    pthread_once(&setup_once, setup);
#ifdef __linux__
    /* Registered, it cannot fail; if it ever did, no reader is known to have left. */
    if (__atomic_load_n(&expedited, __ATOMIC_SEQ_CST)
        && syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) return 0;
#endif
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    long oldest = LONG_MAX;
    for (revoke_reader *slot = __atomic_load_n(&readers, __ATOMIC_ACQUIRE); slot; slot = slot->next) {
        long active = __atomic_load_n(&slot->active, __ATOMIC_ACQUIRE);
        if (active != 0 && active < oldest) oldest = active;
    }
    return oldest;
}
