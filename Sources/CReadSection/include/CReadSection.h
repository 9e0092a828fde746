#ifndef REVOKE_CREADSECTION_H
#define REVOKE_CREADSECTION_H

/*
 * Read sections that cost readers no atomic read-modify-write and no fence.
 *
 * Each thread that reads owns one slot. Entering, it stores the current period in its slot (a
 * plain store); leaving, it stores 0 (a release store). A writer that replaced an object tags it
 * with a new period (revoke_read_retire), and may release it once no reader is inside with an
 * older period (revoke_read_oldest_active).
 *
 * A reader's store to its slot and its next load of the object could pass each other in the
 * CPU; the writer closes that window with membarrier(2) (MEMBARRIER_CMD_PRIVATE_EXPEDITED): once
 * it returns, every thread of the process has passed a full barrier. A reader whose slot store
 * came before that barrier is seen by the writer; one whose store came after it loads the object
 * after the writer's replacement, so it holds the new one. Where membarrier is unavailable (not
 * Linux, too old a kernel, a seccomp filter), readers issue the full fence themselves.
 */

#include <pthread.h>

typedef struct revoke_reader {
    /* The period this thread entered in; 0 outside any read section. Written by its thread only. */
    long active;
    /* 1 while a thread owns the slot; slots are never freed, only handed to the next thread. */
    int owned;
    struct revoke_reader *next;
} __attribute__((aligned(64))) revoke_reader;

/* This thread's slot, NULL until its first read section. */
extern __thread revoke_reader *revoke_reader_self __attribute__((tls_model("initial-exec")));
/* Advanced by every retirement; starts at 1, so that 0 means "outside". */
extern long revoke_read_period;
/* 1 while readers must fence themselves (membarrier is not, or not yet, set up). */
extern int revoke_read_fences;

revoke_reader *revoke_reader_register(void);

/* Enters a read section: returns the slot to hand to revoke_read_leave, or NULL when this thread
 * is already inside one (the outer section covers the inner). */
static inline revoke_reader *revoke_read_enter(void) {
    revoke_reader *reader = revoke_reader_self;
    if (__builtin_expect(reader == 0, 0)) reader = revoke_reader_register();
    if (__atomic_load_n(&reader->active, __ATOMIC_RELAXED) != 0) return 0;
    /* Acquire: the object is loaded after the period, so a reader that saw a retirement's period
     * sees the replacement made before it. */
    __atomic_store_n(&reader->active, __atomic_load_n(&revoke_read_period, __ATOMIC_ACQUIRE), __ATOMIC_RELAXED);
    if (__builtin_expect(__atomic_load_n(&revoke_read_fences, __ATOMIC_RELAXED), 0)) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    } else {
        /* The compiler keeps the order; the writer's membarrier makes the CPU keep it. */
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    }
    return reader;
}

/* Leaves the read section `entered` (from revoke_read_enter; NULL for an inner one). */
static inline void revoke_read_leave(revoke_reader *entered) {
    if (entered) __atomic_store_n(&entered->active, 0, __ATOMIC_RELEASE);
}

/* Call after replacing an object: the period it is tagged with. A reader inside with a period at
 * least this one entered after the replacement, and cannot hold the replaced object. */
long revoke_read_retire(void);

/* The oldest period a reader is inside now (LONG_MAX when none is): objects tagged with periods
 * up to it can be released. Issues the process-wide barrier; never waits for a reader. */
long revoke_read_oldest_active(void);

#endif
