/* mutex.h: the Mutex's layout and the calls Condvar makes on it. */

#ifndef CONCURRENCY_NATIVE_MUTEX_H
#define CONCURRENCY_NATIVE_MUTEX_H

#include "core.h"

#define MUTEX_LOCKED 1   /* some guard holds the lock */
#define MUTEX_PARKED 2   /* threads may be queued in `waiters` */
#define MUTEX_IDLE_GUARDS 2   /* released guards a Mutex keeps for reuse */

typedef struct {
    PyObject_HEAD
    int state;                 /* MUTEX_LOCKED | MUTEX_PARKED (an atomic word) */
    int checked;               /* the `threading` backend's checks are on */
    unsigned long owner;       /* checked: the holding thread, or 0 */
    cc_queue waiters;          /* threads parked in lock() (state section) */
    cc_time fair_at;           /* next contended release that hands the lock over */
    PyObject *value;           /* the protected value */
    PyObject *poison;          /* the exception that poisoned it, or NULL */
    PyObject *name;            /* label for errors and repr */
    PyTypeObject *guard_type;  /* class of the guards lock() hands out */
    PyObject *idle[MUTEX_IDLE_GUARDS];  /* released guards lock() may hand out again
                                  (or NULL): used only by the lock's holder (mutex.c) */
    int reuse;                 /* guard_type's guards may be kept in `idle` */
} MutexObject;

typedef struct {
    PyObject_HEAD
    MutexObject *mutex;        /* the mutex held, or NULL once released */
    unsigned long owner;       /* the thread that acquired it */
    int waiting;               /* lent to a Condvar wait: releasing it is refused */
    cc_location where;         /* checked: where it was acquired */
} MutexGuardObject;

extern PyTypeObject cc_MutexType;
extern PyTypeObject cc_MutexGuardType;

/* For Condvar.wait*: the mutex `guard` holds, after checking that it is a
   held native guard that this thread may wait with (borrowed; NULL with an
   exception set otherwise).  `condvar_name` appears in the errors. */
CC_HIDDEN MutexObject *cc_mutex_for_wait(PyObject *guard, PyObject *condvar_name);

/* Mark `guard` (a native MutexGuard) as lent to a Condvar wait, or not:
   while lent, unlock() and __exit__ from any other thread are refused. */
CC_HIDDEN void cc_mutex_guard_lend(PyObject *guard, int waiting);

/* Let go of the lock while a Condvar waiter sleeps (the guard stays alive). */
CC_HIDDEN void cc_mutex_release_for_wait(MutexObject *m);

/* Take the lock back after a Condvar wait, whatever signal handlers raise
   meanwhile (their exceptions are kept in *pending): the waiter always comes
   back holding the mutex.  `owner` is restored as the holder. */
CC_HIDDEN void cc_mutex_reacquire(MutexObject *m, unsigned long owner, PyObject **pending);

#endif
