/*
 * Persistent thread pool.
 *
 * n-1 worker threads plus the calling thread (worker 0). A job is published
 * by bumping a generation counter; idle workers spin on it for a short while
 * (PMPD_SPIN_NS) and then block in futex_wait (Linux) or on a condition
 * variable elsewhere, so an idle pool costs no CPU. Completion is tracked with
 * a finished-chunks counter the caller spins/blocks on the same way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#include "internal.h"

#define PMPD_MAX_THREADS 1024
#define PMPD_SPIN_NS 100000L /* spin ~100 us before blocking */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* ---- wait/wake on a 32-bit word ---------------------------------------- */

#if defined(__linux__)
static void word_wait(atomic_int *addr, int expected) {
    syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}
static void word_wake(atomic_int *addr, int count) {
    syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}
#else
static pthread_mutex_t g_wait_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wait_cv = PTHREAD_COND_INITIALIZER;
static void word_wait(atomic_int *addr, int expected) {
    pthread_mutex_lock(&g_wait_mu);
    while (atomic_load(addr) == expected) pthread_cond_wait(&g_wait_cv, &g_wait_mu);
    pthread_mutex_unlock(&g_wait_mu);
}
static void word_wake(atomic_int *addr, int count) {
    (void)addr;
    (void)count;
    pthread_mutex_lock(&g_wait_mu);
    pthread_cond_broadcast(&g_wait_cv);
    pthread_mutex_unlock(&g_wait_mu);
}
#endif

/* Spin until *addr != value (returns the new value) or the spin budget runs out (returns value). */
static int spin_while_equal(atomic_int *addr, int value) {
    long start = 0;
    for (int i = 0;; i++) {
        int v = atomic_load_explicit(addr, memory_order_acquire);
        if (v != value) return v;
        if ((i & 255) == 255) {
            long t = now_ns();
            if (start == 0) start = t;
            else if (t - start > PMPD_SPIN_NS) return value;
        }
        cpu_relax();
    }
}

/* ---- pool state -------------------------------------------------------- */

/*
 * A job is split into nchunks chunks. Chunks are claimed through one 64-bit
 * word  state = job_id:24 | nchunks:20 | next:20  with compare-and-swap, so a
 * worker that wakes up late can never claim a chunk of a job other than the
 * one it read, and the job data (fn, ctx, total, grain) is only read after a
 * successful claim, while the job is guaranteed to be live. The caller claims
 * chunks too and returns once `done` reaches nchunks, so it never waits for a
 * worker that was not scheduled in time, only for chunks actually in progress.
 */
#define CHUNK_BITS 20
#define CHUNK_MASK ((1u << CHUNK_BITS) - 1u)
#define MAX_CHUNKS CHUNK_MASK

typedef struct {
    _Alignas(64) atomic_int gen;              /* bumped once per job (futex word workers sleep on) */
    _Alignas(64) _Atomic(uint64_t) state;     /* job_id | nchunks | next */
    _Alignas(64) atomic_int done;             /* finished chunks of the current job (futex word) */
    _Alignas(64) atomic_int sleepers;         /* workers blocked in word_wait(gen) */
    atomic_int main_waiting;                  /* caller blocked in word_wait(done) */
    atomic_int quit;
    /* current job (written before state/gen are published) */
    pmpd_range_fn fn;
    void *ctx;
    long total, grain;
    uint32_t job_id;
    int nthreads; /* including the caller */
    int started;
    pthread_t threads[PMPD_MAX_THREADS];
} pool_t;

static pool_t P;
static pthread_mutex_t g_run_mu = PTHREAD_MUTEX_INITIALIZER; /* serialises callers */
static int g_requested = 0; /* desired thread count, 0 = not yet decided */

/* Claims and runs chunks of whatever job is current; returns when none is left. */
static void run_chunks(int tid) {
    for (;;) {
        uint64_t s = atomic_load_explicit(&P.state, memory_order_acquire);
        const uint32_t nch = (uint32_t)(s >> CHUNK_BITS) & CHUNK_MASK;
        const uint32_t idx = (uint32_t)s & CHUNK_MASK;
        if (idx >= nch) return;
        if (!atomic_compare_exchange_weak_explicit(&P.state, &s, s + 1, memory_order_acq_rel, memory_order_relaxed))
            continue;
        /* chunk idx is ours and the job cannot finish before we report it */
        const long start = (long)idx * P.grain;
        const long end = start + P.grain < P.total ? start + P.grain : P.total;
        P.fn(P.ctx, start, end, tid);
        if (atomic_fetch_add(&P.done, 1) + 1 == (int)nch && atomic_load(&P.main_waiting)) word_wake(&P.done, 1);
    }
}

typedef struct {
    int tid;
    int gen0;
} worker_arg;
static worker_arg g_args[PMPD_MAX_THREADS];

static void *worker_main(void *argp) {
    const worker_arg *arg = (const worker_arg *)argp;
    const int tid = arg->tid;
    int seen = arg->gen0;
    for (;;) {
        int g = spin_while_equal(&P.gen, seen);
        while (g == seen) {
            atomic_fetch_add(&P.sleepers, 1);
            word_wait(&P.gen, seen);
            atomic_fetch_sub(&P.sleepers, 1);
            g = atomic_load(&P.gen);
        }
        seen = g;
        if (atomic_load(&P.quit)) break;
        run_chunks(tid);
    }
    return NULL;
}

static void pool_stop(void) {
    if (!P.started) return;
    atomic_store(&P.quit, 1);
    atomic_fetch_add(&P.gen, 1);
    word_wake(&P.gen, INT_MAX);
    for (int i = 1; i < P.nthreads; i++) pthread_join(P.threads[i], NULL);
    atomic_store(&P.quit, 0);
    P.started = 0;
}

/* Returns the number of threads actually running (may be fewer if creation failed). */
static int pool_start(int n) {
    P.nthreads = 1;
    int g0 = atomic_load(&P.gen);
    for (int i = 1; i < n; i++) {
        g_args[i].tid = i;
        g_args[i].gen0 = g0;
        if (pthread_create(&P.threads[i], NULL, worker_main, &g_args[i]) != 0) break;
        P.nthreads = i + 1;
    }
    P.started = 1;
    return P.nthreads;
}

/* Stop the workers before the library is unloaded (dlclose at process exit or
 * by the FFI layer): they must not be running its code when it is unmapped. */
__attribute__((destructor)) static void pool_fini(void) {
    pthread_mutex_lock(&g_run_mu);
    pool_stop();
    pthread_mutex_unlock(&g_run_mu);
}

static int default_threads(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c >= 1) return c;
    }
#endif
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c >= 1 ? (int)c : 1;
}

static char g_thread_err[160];

PMPD_HIDDEN const char *pmpd_pool_env_error(void);
PMPD_HIDDEN const char *pmpd_pool_env_error(void) { return g_thread_err[0] ? g_thread_err : NULL; }

/* Called from the library constructor. */
PMPD_HIDDEN void pmpd_pool_init_from_env(void);
PMPD_HIDDEN void pmpd_pool_init_from_env(void) {
    int n = default_threads();
    const char *env = getenv("PMPD_THREADS");
    if (env && *env) {
        char *end = NULL;
        errno = 0;
        long v = strtol(env, &end, 10);
        if (errno == 0 && end && *end == '\0' && v >= 1 && v <= PMPD_MAX_THREADS) {
            n = (int)v;
        } else {
            /* keep the default and report */
            snprintf(g_thread_err, sizeof g_thread_err,
                     "PMPD_THREADS=%.40s is not an integer between 1 and %d", env, PMPD_MAX_THREADS);
        }
    }
    if (n > PMPD_MAX_THREADS) n = PMPD_MAX_THREADS;
    g_requested = n;
}

PMPD_HIDDEN int pmpd_pool_threads(void) {
    pthread_mutex_lock(&g_run_mu);
    int n = P.started ? P.nthreads : g_requested;
    pthread_mutex_unlock(&g_run_mu);
    return n < 1 ? 1 : n;
}

PMPD_HIDDEN int pmpd_pool_resize(int n) {
    if (n < 1 || n > PMPD_MAX_THREADS) return -1;
    pthread_mutex_lock(&g_run_mu);
    int rc = 0;
    if (!P.started || P.nthreads != n) {
        pool_stop();
        g_requested = n;
        if (pool_start(n) != n) rc = -1;
    }
    pthread_mutex_unlock(&g_run_mu);
    return rc;
}

static void run_job(pmpd_range_fn fn, void *ctx, long total, long grain) {
    pthread_mutex_lock(&g_run_mu);
    if (!P.started) pool_start(g_requested > 0 ? g_requested : default_threads());
    const int nth = P.nthreads;
    long nch = (total + grain - 1) / grain;
    if (nch > MAX_CHUNKS) {
        grain = (total + MAX_CHUNKS - 1) / MAX_CHUNKS;
        nch = (total + grain - 1) / grain;
    }
    if (nth == 1 || nch <= 1) {
        fn(ctx, 0, total, 0);
        pthread_mutex_unlock(&g_run_mu);
        return;
    }
    P.fn = fn;
    P.ctx = ctx;
    P.total = total;
    P.grain = grain;
    P.job_id = (P.job_id + 1) & 0xFFFFFFu;
    atomic_store(&P.done, 0);
    atomic_store(&P.state, ((uint64_t)P.job_id << (2 * CHUNK_BITS)) | ((uint64_t)nch << CHUNK_BITS));
    atomic_fetch_add(&P.gen, 1); /* seq_cst: wakes spinning workers */
    if (atomic_load(&P.sleepers) > 0) word_wake(&P.gen, INT_MAX);

    run_chunks(0);

    for (;;) {
        int d = atomic_load(&P.done);
        if (d == (int)nch) break;
        int e = spin_while_equal(&P.done, d);
        if (e != d) continue; /* progress: spin again */
        atomic_store(&P.main_waiting, 1);
        d = atomic_load(&P.done);
        if (d != (int)nch) word_wait(&P.done, d);
        atomic_store(&P.main_waiting, 0);
    }
    atomic_thread_fence(memory_order_acquire);
    pthread_mutex_unlock(&g_run_mu);
}

PMPD_HIDDEN void pmpd_parallel_for(long total, long grain, pmpd_range_fn fn, void *ctx) {
    if (total <= 0) return;
    if (grain < 1) grain = 1;
    run_job(fn, ctx, total, grain);
}
