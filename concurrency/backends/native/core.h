/* core.h: what every primitive of the native core shares.

   The native core holds the state machines of the real-thread primitives
   (Mutex, RwLock, Condvar, Semaphore, Barrier, OnceLock, the atomics and the
   channels).  Two properties are the reason it is written in C:

   - Atomicity against asynchronous exceptions.  A KeyboardInterrupt (or an
     exception from PyThreadState_SetAsyncExc) is only seen where Python code
     runs or where we call the signal handlers ourselves.  Every state change
     here is plain C, so it either happens whole or not at all; the only place
     an exception gets in is a blocking wait (cc_park), and every caller of
     cc_park undoes its registration cleanly before propagating it.

   - No reliance on the GIL.  Every object's state is read and written inside
     a *state section* (STATE_BEGIN/STATE_END): a per-object critical section
     on free-threaded builds, nothing at all with the GIL (which already
     serialises C code that neither calls Python nor releases the GIL).  Inside
     a state section we never call Python code, never block, never release the
     GIL and never drop a reference that may be the last one (a finalizer could
     run Python code, which may suspend the critical section): drops are
     deferred until after STATE_END.

   Blocking follows one protocol, the same for every primitive:

       STATE_BEGIN(self)  -- try the operation; if it cannot proceed,
                             cc_queue_push(&self->waiters, &w)
       STATE_END()
       r = cc_park(&w, deadline)     -- GIL released; signals run here
       STATE_BEGIN(self)  -- if !w.woken: cc_queue_remove(...); else the
                             waker already removed us.  Retry, or undo.
       STATE_END()

   A wake-up means "the state changed, look again" (no hand-off): a woken
   thread retries, so a thread that is woken and then gives up (timeout,
   exception) passes the wake-up on, and no wake-up is ever lost. */

#ifndef CONCURRENCY_NATIVE_CORE_H
#define CONCURRENCY_NATIVE_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

/* 3.11 has no PyErr_GetRaisedException/PyErr_SetRaisedException (3.12+). */
#if PY_VERSION_HEX < 0x030C0000
static inline PyObject *
PyErr_GetRaisedException(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_DECREF(type);
    Py_XDECREF(tb);
    return value;
}

static inline void
PyErr_SetRaisedException(PyObject *exc)
{
    if (exc == NULL) {
        PyErr_Clear();
        return;
    }
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
}
#endif

#if defined(__GNUC__)
#  define CC_HIDDEN __attribute__((visibility("hidden")))
#else
#  define CC_HIDDEN
#endif


/* ---------------------------------------------------------- state sections */

#ifdef Py_GIL_DISABLED
#  define STATE_BEGIN(op) Py_BEGIN_CRITICAL_SECTION(op);
#  define STATE_END() Py_END_CRITICAL_SECTION()
#else
#  define STATE_BEGIN(op) {
#  define STATE_END() }
#endif


/* ------------------------------------------------------------ atomic words

   Words that fast paths read or change outside a state section.  With the GIL
   these are plain accesses; free-threaded builds use CPython's sequentially
   consistent atomics. */

#ifdef Py_GIL_DISABLED
static inline int cc_load_int(int *p) { return _Py_atomic_load_int(p); }
static inline void cc_store_int(int *p, int v) { _Py_atomic_store_int(p, v); }
static inline int cc_cas_int(int *p, int expected, int desired)
{
    return _Py_atomic_compare_exchange_int(p, &expected, desired);
}
static inline int cc_and_int(int *p, int v)
{
    int old = _Py_atomic_load_int(p);
    while (!_Py_atomic_compare_exchange_int(p, &old, old & v)) {
    }
    return old;
}
static inline unsigned long cc_load_ulong(unsigned long *p)
{
    return (unsigned long)_Py_atomic_load_uintptr_relaxed((uintptr_t *)p);
}
static inline void cc_store_ulong(unsigned long *p, unsigned long v)
{
    _Py_atomic_store_uintptr_relaxed((uintptr_t *)p, (uintptr_t)v);
}
static inline Py_ssize_t cc_load_ssize(Py_ssize_t *p) { return _Py_atomic_load_ssize(p); }
static inline void cc_store_ssize(Py_ssize_t *p, Py_ssize_t v) { _Py_atomic_store_ssize(p, v); }
static inline PyObject *cc_load_ptr(PyObject **p) { return (PyObject *)_Py_atomic_load_ptr(p); }
static inline PyObject *cc_exchange_ptr(PyObject **p, PyObject *v)
{
    return (PyObject *)_Py_atomic_exchange_ptr(p, v);
}
static inline void cc_store_ptr(PyObject **p, PyObject *v) { _Py_atomic_store_ptr(p, v); }
#else
static inline int cc_load_int(int *p) { return *p; }
static inline void cc_store_int(int *p, int v) { *p = v; }
static inline int cc_cas_int(int *p, int expected, int desired)
{
    if (*p != expected) {
        return 0;
    }
    *p = desired;
    return 1;
}
static inline int cc_and_int(int *p, int v) { int old = *p; *p = old & v; return old; }
static inline unsigned long cc_load_ulong(unsigned long *p) { return *p; }
static inline void cc_store_ulong(unsigned long *p, unsigned long v) { *p = v; }
static inline Py_ssize_t cc_load_ssize(Py_ssize_t *p) { return *p; }
static inline void cc_store_ssize(Py_ssize_t *p, Py_ssize_t v) { *p = v; }
static inline PyObject *cc_load_ptr(PyObject **p) { return *p; }
static inline PyObject *cc_exchange_ptr(PyObject **p, PyObject *v)
{
    PyObject *old = *p;
    *p = v;
    return old;
}
static inline void cc_store_ptr(PyObject **p, PyObject *v) { *p = v; }
#endif


/* --------------------------------------------------------------- spinning */

#ifdef Py_GIL_DISABLED
#  ifndef _WIN32
#    include <sched.h>
#  endif
#  ifdef _MSC_VER
#    include <intrin.h>
#  endif

/* parking_lot's SpinWait, free-threaded builds only.  A thread about to park
   for something that a running thread ends within a microsecond or so (a
   short critical section) retries instead of paying a futex sleep and
   wake-up: call cc_spin_wait(round) with round = 0, 1, 2, ... between two
   attempts.  Rounds 0-2 pause the CPU 2, 4, 8 times, the later ones yield
   it (pause 16 times on Windows), a few microseconds in all; after
   CC_SPIN_ROUNDS rounds it returns 0 at once: park then.  Never inside a
   state section (leave it, spin, enter it again), and never with the GIL,
   which the spinner would keep from the thread it waits for.  The thread
   stays attached, so spins must stay this short (stop-the-world waits for
   them); no Python code runs, so no exception can arrive. */
#define CC_SPIN_ROUNDS 10

static inline int
cc_spin_wait(int round)
{
    if (round >= CC_SPIN_ROUNDS) {
        return 0;
    }
#  ifndef _WIN32
    if (round >= 3) {
        sched_yield();
        return 1;
    }
#  endif
    for (int i = 2 << (round < 3 ? round : 3); i > 0; i--) {
#  if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
        __builtin_ia32_pause();
#  elif defined(__GNUC__) && defined(__aarch64__)
        __asm__ __volatile__("yield");
#  elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
        _mm_pause();
#  elif defined(_MSC_VER) && defined(_M_ARM64)
        __yield();
#  endif
    }
    return 1;
}
#endif


/* ------------------------------------------------------------------- time */

/* Nanoseconds on the monotonic clock. */
typedef long long cc_time;

#define CC_FOREVER ((cc_time)-1)   /* a deadline that never comes */

/* The monotonic clock now, in nanoseconds. */
CC_HIDDEN cc_time cc_now(void);

/* Validate a timeout argument with concurrency._errors.check_timeout (which
   names `what` in its errors and caps huge values) and turn it into an
   absolute deadline: CC_FOREVER for None (when allowed).  Returns -1 with an
   exception set on bad input, else 0. */
CC_HIDDEN int cc_deadline_from(PyObject *seconds, const char *what,
                               int allow_none, cc_time *deadline);


/* ---------------------------------------------------------------- waiters */

/* One parked thread, living on its own C stack for the duration of the wait. */
typedef struct cc_waiter {
    struct cc_waiter *prev, *next;
    PyThread_type_lock parker;  /* held while parked; released to wake */
    int woken;                  /* set by the waker (in a state section) */
    int kind;                   /* what it waits for: the primitive's own code */
    unsigned long ident;        /* the parked thread */
    Py_ssize_t ticket;          /* primitive-specific (e.g. a barrier generation) */
} cc_waiter;

/* A FIFO of parked threads, changed only inside its owner's state section. */
typedef struct {
    cc_waiter *head, *tail;
    Py_ssize_t count;
} cc_queue;

/* Prepare `w` (kind, current thread, a locked parker).  -1 with MemoryError set. */
CC_HIDDEN int cc_waiter_init(cc_waiter *w, int kind);
/* Make a woken waiter ready to park again (before it is queued again). */
CC_HIDDEN void cc_waiter_rearm(cc_waiter *w);
/* Free the parker (after the waiter left every queue). */
CC_HIDDEN void cc_waiter_fini(cc_waiter *w);

CC_HIDDEN void cc_queue_push(cc_queue *q, cc_waiter *w);
CC_HIDDEN void cc_queue_remove(cc_queue *q, cc_waiter *w);
/* Remove the first waiter, mark it woken and unpark it.  Returns 1 if there
   was one.  Never blocks and never calls Python: safe in a state section. */
CC_HIDDEN int cc_queue_wake_one(cc_queue *q);
/* Wake every waiter; returns how many. */
CC_HIDDEN Py_ssize_t cc_queue_wake_all(cc_queue *q);
/* Wake `w` (already removed from its queue). */
CC_HIDDEN void cc_wake(cc_waiter *w);

typedef enum {
    CC_PARK_WOKEN = 0,    /* a waker released us */
    CC_PARK_TIMEOUT = 1,  /* the deadline passed (look at w->woken anyway) */
    CC_PARK_ERROR = -1,   /* a signal handler raised: exception set */
} cc_park_result;

/* Park the calling thread (GIL released) until woken or `deadline`.  When a
   signal arrives the Python handlers run; if one raises, returns
   CC_PARK_ERROR with the exception set.  The caller then settles the waiter
   in its state section: the waiter may have been woken meanwhile. */
CC_HIDDEN cc_park_result cc_park(cc_waiter *w, cc_time deadline);

/* Like cc_park, but an exception raised by a signal handler does not end the
   wait: it is kept in *pending (chained onto an earlier one) and the thread
   parks again.  For waits that must finish, such as a Condvar re-acquiring its
   mutex.  Returns CC_PARK_WOKEN or CC_PARK_TIMEOUT. */
CC_HIDDEN cc_park_result cc_park_uninterruptible(cc_waiter *w, cc_time deadline,
                                                 PyObject **pending);

/* Keep `exc` (a new reference, or NULL) as the pending exception of an
   uninterruptible operation: the newest wins, with older ones as context. */
CC_HIDDEN void cc_pending_add(PyObject **pending, PyObject *exc);
/* Raise the pending exception, if any (returns -1 then), else 0. */
CC_HIDDEN int cc_pending_raise(PyObject **pending);


/* ----------------------------------------------------- shared Python bits */

/* A process-unique label such as "Mutex#7" for objects created without a name
   (new reference). */
CC_HIDDEN PyObject *cc_auto_name(const char *kind);
/* `name` if it is a true value (new reference), else cc_auto_name(kind). */
CC_HIDDEN PyObject *cc_name_or_auto(PyObject *name, const char *kind);

/* Raise PoisonError for `lock` through concurrency._errors.raise_poisoned
   (which reads lock.name and lock._poison).  Always returns NULL. */
CC_HIDDEN PyObject *cc_raise_poisoned(PyObject *lock);

/* Call a function of concurrency.backends.threading (the checked backend's
   error messages) with `args` (a tuple, stolen).  Always returns NULL with
   the exception it raised. */
CC_HIDDEN PyObject *cc_checked_error(const char *func, PyObject *args);

/* Where the calling Python code is, cheaply: its code object (new reference,
   or NULL outside Python code) and instruction offset.  cc_location_text
   turns it into "file:line" only when a message needs it. */
typedef struct {
    PyCodeObject *code;
    int lasti;
} cc_location;

CC_HIDDEN void cc_location_here(cc_location *where);
CC_HIDDEN void cc_location_clear(cc_location *where);
/* "file:line" (new reference), or "an unknown place". */
CC_HIDDEN PyObject *cc_location_text(const cc_location *where);

/* Emit a ResourceWarning from a finalizer, keeping any exception in flight. */
CC_HIDDEN void cc_warn_dropped(PyObject *source, const char *fmt, ...);

/* The class a primitive hands its guards out as: `type.<attr>` must be a
   subclass of `base`.  New reference, or NULL with TypeError set. */
CC_HIDDEN PyTypeObject *cc_guard_class(PyTypeObject *type, const char *attr,
                                       PyTypeObject *base);

/* Whether the class asks for the checked behaviour (`_checked_ = True`). */
CC_HIDDEN int cc_is_checked_class(PyTypeObject *type);

/* 1 if a METH_FASTCALL method got exactly `expected` positional arguments,
   else 0 with TypeError set. */
CC_HIDDEN int cc_check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t expected);

/* Module setup: import what the cold paths call into.  -1 on error. */
CC_HIDDEN int cc_core_init(void);


/* ------------------------------------------------------- primitive families */

CC_HIDDEN int cc_add_mutex_types(PyObject *module);
CC_HIDDEN int cc_add_condvar_types(PyObject *module);
CC_HIDDEN int cc_add_rwlock_types(PyObject *module);
CC_HIDDEN int cc_add_semaphore_types(PyObject *module);
CC_HIDDEN int cc_add_barrier_types(PyObject *module);
CC_HIDDEN int cc_add_oncelock_types(PyObject *module);
CC_HIDDEN int cc_add_atomic_types(PyObject *module);
CC_HIDDEN int cc_add_channel_types(PyObject *module);

/* Add a static type to the module under its short name. */
CC_HIDDEN int cc_add_type(PyObject *module, PyTypeObject *type);

#endif
