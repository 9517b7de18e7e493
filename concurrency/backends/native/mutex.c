/* mutex.c: Mutex and MutexGuard, the hot path of the whole library.

   The lock is one atomic word (MUTEX_LOCKED, MUTEX_PARKED) in the style of
   parking_lot: taking a free lock and releasing a lock nobody waits for are a
   single compare-and-swap each, with no state section.  Contended threads
   queue in `waiters` under the state section, after setting MUTEX_PARKED, so
   a releaser that sees MUTEX_PARKED takes the slow path and wakes one of
   them; a woken thread competes again, and one that gives up after being
   woken passes its wake-up on.  Barging keeps the lock busy, but could starve
   a parked thread, so at most every FAIR_INTERVAL a contended release hands
   the lock straight to the first waiter instead (eventual fairness, as in
   parking_lot); a waiter handed the lock that then gives up releases it.

   Semantics:
   - every lock() returns a guard that nobody else holds (a new one, or an
     idle one: see "the idle guards" below); using it once released raises
     RuntimeError, for ever;
   - an exception leaving a `with` block poisons the mutex (the first poison
     wins); every later acquire releases again and raises PoisonError;
   - a guard dropped while held releases the lock (like Rust's drop), without
     poisoning; a checked guard also warns with a ResourceWarning naming the
     lock and the line that acquired it;
   - checked (`_checked_ = True`, the `threading` backend): the holder is
     recorded, re-locking by it and releases by other threads are refused. */

#include "mutex.h"


/* ------------------------------------------------------------ the raw lock */

#define FAIR_INTERVAL 500000   /* ns between hand-offs to the longest waiter */
#define HANDED_OVER 1          /* cc_waiter.ticket: the releaser gave us the lock */

/* Take the lock if it is free (also while others are parked: they will look
   again).  1 if taken. */
static inline int
try_take(MutexObject *m)
{
    int s = cc_load_int(&m->state);
    while (!(s & MUTEX_LOCKED)) {
        if (cc_cas_int(&m->state, s, s | MUTEX_LOCKED)) {
            return 1;
        }
        s = cc_load_int(&m->state);
    }
    return 0;
}

/* Queue `w` unless the lock is free, in which case take it.  Returns 1 when
   taken, 0 when queued.  State section held. */
static int
take_or_queue(MutexObject *m, cc_waiter *w)
{
    int s = cc_load_int(&m->state);
    for (;;) {
        if (!(s & MUTEX_LOCKED)) {
            if (cc_cas_int(&m->state, s, s | MUTEX_LOCKED)) {
                return 1;
            }
        }
        else if ((s & MUTEX_PARKED) || cc_cas_int(&m->state, s, s | MUTEX_PARKED)) {
            cc_queue_push(&m->waiters, w);
            return 0;
        }
        s = cc_load_int(&m->state);
    }
}

/* A waiter stops waiting (timeout, exception): leave the queue, or, if a
   releaser woke it meanwhile, pass that wake-up on.  State section held. */
static inline void release(MutexObject *m);

static void
settle_abandoned(MutexObject *m, cc_waiter *w)
{
    if (!w->woken) {
        cc_queue_remove(&m->waiters, w);
    }
    else if (!(cc_load_int(&m->state) & MUTEX_LOCKED)) {
        cc_queue_wake_one(&m->waiters);
    }
    if (m->waiters.count == 0) {
        cc_and_int(&m->state, ~MUTEX_PARKED);
    }
}

/* Wait for the lock until `deadline`.  With `pending` NULL a signal handler's
   exception ends the wait (-1); otherwise it is kept there and the wait goes
   on.  Returns 1 when taken, 0 on timeout, -1 with an exception set. */
static int
acquire_slow(MutexObject *m, cc_time deadline, PyObject **pending)
{
    cc_waiter w;
    if (cc_waiter_init(&w, 0) < 0) {
        return -1;
    }
    int result;
    for (;;) {
        int taken;
        STATE_BEGIN(m)
        taken = take_or_queue(m, &w);
        STATE_END();
        if (taken) {
            result = 1;
            break;
        }
        cc_park_result r = pending != NULL
            ? cc_park_uninterruptible(&w, deadline, pending)
            : cc_park(&w, deadline);
        if (r == CC_PARK_WOKEN) {
            if (w.ticket == HANDED_OVER) {
                result = 1;        /* the releaser gave us the lock */
                break;
            }
            cc_waiter_rearm(&w);   /* the releaser took us out of the queue */
            continue;
        }
        /* Timed out or interrupted: settle in ONE state section, since a releaser
           may wake us, or hand us the lock, until we are out of the queue. */
        int handed = 0;
        STATE_BEGIN(m)
        if (w.woken && w.ticket == HANDED_OVER) {
            handed = 1;
        }
        else if (r == CC_PARK_TIMEOUT && try_take(m)) {
            r = CC_PARK_WOKEN;     /* freed just as time ran out: take it */
            if (!w.woken) {
                cc_queue_remove(&m->waiters, &w);
                if (m->waiters.count == 0) {
                    cc_and_int(&m->state, ~MUTEX_PARKED);
                }
            }
        }
        else {
            settle_abandoned(m, &w);
        }
        STATE_END();
        if (handed) {
            if (r == CC_PARK_TIMEOUT) {
                result = 1;        /* handed over just as time ran out: keep it */
                break;
            }
            release(m);            /* leaving with an exception: pass the lock on */
            result = -1;
            break;
        }
        result = r == CC_PARK_WOKEN ? 1 : (r == CC_PARK_TIMEOUT ? 0 : -1);
        break;
    }
    cc_waiter_fini(&w);
    return result;
}

/* The contended release: wake one parked thread to compete for the lock, or,
   when the first waiter has had to wait long enough, hand it the lock. */
static void
release_slow(MutexObject *m)
{
    cc_time now = cc_now();
    STATE_BEGIN(m)
    cc_waiter *first = m->waiters.head;
    if (first != NULL && now >= m->fair_at) {
        m->fair_at = now + FAIR_INTERVAL;
        cc_queue_remove(&m->waiters, first);
        first->ticket = HANDED_OVER;
        cc_store_int(&m->state, MUTEX_LOCKED | (m->waiters.count > 0 ? MUTEX_PARKED : 0));
        cc_wake(first);
    }
    else {
        cc_queue_wake_one(&m->waiters);
        cc_store_int(&m->state, m->waiters.count > 0 ? MUTEX_PARKED : 0);
    }
    STATE_END();
}

/* Release the lock, waking one parked thread if there is one. */
static inline void
release(MutexObject *m)
{
    if (cc_cas_int(&m->state, MUTEX_LOCKED, 0)) {
        return;
    }
    release_slow(m);
}


/* ------------------------------------------------------------ the checks */

static PyObject *
refuse_relock(MutexObject *m)
{
    return cc_checked_error("_refuse_relock", Py_BuildValue("(O)", (PyObject *)m));
}

static PyObject *
refuse_not_owner(MutexGuardObject *g, MutexObject *m, PyObject *action)
{
    return cc_checked_error("_refuse_not_owner",
                            Py_BuildValue("(OOk)", action, m->name, g->owner));
}

static PyObject *
refuse_foreign(MutexGuardObject *g, MutexObject *m, const char *action)
{
    PyObject *text = PyUnicode_FromString(action);
    if (text == NULL) {
        return NULL;
    }
    refuse_not_owner(g, m, text);
    Py_DECREF(text);
    return NULL;
}

static PyObject *
guard_lent(void)
{
    PyErr_SetString(PyExc_RuntimeError,
                    "this MutexGuard is lent to a Condvar wait in another thread; it cannot "
                    "be released until that wait returns");
    return NULL;
}

static PyObject *
guard_released(void)
{
    PyErr_SetString(PyExc_RuntimeError,
                    "this MutexGuard was already released; it cannot be used any more");
    return NULL;
}


/* ------------------------------------------------------- the idle guards

   A guard is a heap-type GC object: allocating one (memory, GC tracking, a
   reference to its class) and freeing it again cost more than the lock
   itself on a free-threaded build.  So the Mutex keeps the guards released
   last in `idle`, and lock() hands one out again when nothing but `idle`
   refers to it: nobody can tell it from a new guard then, and a released
   guard that anybody still holds is never handed out again (it stays stale
   for ever).  Two of them, because in the usual loop

       for ...:
           with m.lock() as g: ...

   `g` still holds the previous guard when lock() runs (`as g` rebinds it
   only afterwards): with one kept guard lock() would never find it free;
   with two, it alternates between them.

   - Only the lock's holder touches `idle`: a releaser stores its guard there
     before it lets go of the lock word, lock() looks at it after taking the
     lock word, so the lock word orders them.  (Relaxed atomics only so that a
     reader without the lock, gc.get_referents, sees whole pointers.)
   - An idle guard has let go of its mutex (`mutex` is NULL): `idle` does not
     keep the Mutex alive and makes no cycle.  A release that finds both
     places taken replaces the second one, dropping that guard after the lock
     word is released, so no deallocation runs while the lock is held.
   - Only guards that carry nothing else are kept: of the Mutex's own guard
     class (not one swapped in by assigning __class__), which has no
     __dict__, no weak references (a weakref would hand a stale guard back),
     no extra slots and no finalizer (`reuse`; __del__ is looked at again on
     release, since it can be added to a class later).
   - "Nothing but `idle` refers to it": with the GIL, a reference count of 1.
     A free-threaded count is split into ob_ref_local, written (non-atomically)
     only by the thread that owns the object, and the atomic ob_ref_shared for
     every other thread.  Read from a thread that does not own the object, the
     two can miss a reference moving between the owner and another thread (an
     underestimate), so we trust them only in the owning thread, where the
     local count is exact: local 1 and shared 0 mean the total was 1 -- the
     cache's reference -- when shared was read, and no one can take a new
     reference without holding one already.  A guard owned by another thread is
     not reused (lock() allocates, as it always did); that only happens when
     the guard itself, or the lock, passes between threads.  The shared count
     is read with acquire ordering, pairing with the last decrement by another
     thread, so whatever that thread did to the guard happens before we reuse
     it. */

#ifdef Py_GIL_DISABLED
static inline PyObject *idle_load(MutexObject *m, int i)
{
    return (PyObject *)_Py_atomic_load_ptr_relaxed(&m->idle[i]);
}
static inline void idle_store(MutexObject *m, int i, PyObject *g)
{
    _Py_atomic_store_ptr_relaxed(&m->idle[i], g);
}
#else
static inline PyObject *idle_load(MutexObject *m, int i) { return m->idle[i]; }
static inline void idle_store(MutexObject *m, int i, PyObject *g) { m->idle[i] = g; }
#endif

/* Whether the idle guard `g` is referenced by `idle` alone (see above). */
static inline int
only_idle_refers_to(PyObject *g)
{
#ifdef Py_GIL_DISABLED
    return _Py_IsOwnedByCurrentThread(g)
        && _Py_atomic_load_uint32_relaxed(&g->ob_ref_local) == 1
        && _Py_atomic_load_ssize_acquire(&g->ob_ref_shared) == 0;
#else
    return Py_REFCNT(g) == 1;
#endif
}

/* lock(): take out an idle guard nothing else refers to (its reference is
   now the caller's), or NULL.  Lock held. */
static inline MutexGuardObject *
take_idle(MutexObject *m)
{
    for (int i = 0; i < MUTEX_IDLE_GUARDS; i++) {
        PyObject *g = idle_load(m, i);
        if (g != NULL && only_idle_refers_to(g)) {
            idle_store(m, i, NULL);
            return (MutexGuardObject *)g;
        }
    }
    return NULL;
}

/* A release: keep `g` (just detached) as an idle guard, in the first free
   place or else the last.  Returns the guard it displaced (a reference to
   drop once the lock word is released), or NULL.  Lock held. */
static inline PyObject *
keep_idle(MutexObject *m, MutexGuardObject *g)
{
    int i = 0;
    while (i < MUTEX_IDLE_GUARDS - 1 && idle_load(m, i) != NULL) {
        i++;
    }
    PyObject *previous = idle_load(m, i);   /* never `g`: lock() takes guards out */
    assert(previous != (PyObject *)g);
    idle_store(m, i, Py_NewRef((PyObject *)g));
    return previous;
}

/* Whether guards of `type` hold nothing beyond MutexGuardObject, so that a
   reused one is indistinguishable from a new one. */
static int
reusable_guard_class(PyTypeObject *type)
{
    return type->tp_basicsize == sizeof(MutexGuardObject)
        && type->tp_itemsize == 0
        && type->tp_dictoffset == 0
        && type->tp_weaklistoffset == 0
        && !PyType_HasFeature(type, Py_TPFLAGS_MANAGED_DICT)
#ifdef Py_TPFLAGS_MANAGED_WEAKREF
        && !PyType_HasFeature(type, Py_TPFLAGS_MANAGED_WEAKREF)
#endif
        && type->tp_finalize == NULL
        && type->tp_del == NULL;
}


/* ---------------------------------------------------------------- guards */

/* The lock was just taken by thread `me`: hand out a guard, or, if the mutex
   is poisoned, release it again and raise PoisonError. */
static PyObject *
new_guard(MutexObject *m, unsigned long me)
{
    if (cc_load_ptr(&m->poison) != NULL) {
        release(m);
        return cc_raise_poisoned((PyObject *)m);
    }
    MutexGuardObject *g = take_idle(m);
    if (g != NULL) {
        assert(g->mutex == NULL && !g->waiting && g->where.code == NULL);
    }
    else {
        PyTypeObject *type = m->guard_type;
        g = (MutexGuardObject *)type->tp_alloc(type, 0);
        if (g == NULL) {
            release(m);
            return NULL;
        }
    }
    g->owner = me;
    if (m->checked) {
        cc_location_here(&g->where);
        cc_store_ulong(&m->owner, me);
    }
    g->mutex = (MutexObject *)Py_NewRef(m);
    return (PyObject *)g;
}

/* Detach the mutex from `g` atomically: of two threads releasing one guard at
   once, exactly one gets the mutex (a new reference it must drop). */
static inline MutexObject *
detach(MutexGuardObject *g)
{
    return (MutexObject *)cc_exchange_ptr((PyObject **)&g->mutex, NULL);
}

/* Release `m`, which `g` held (already detached from it), poisoning it first
   with `exc` if not NULL.  Unless `g` is being deallocated (`dropped`), it
   becomes an idle guard. */
static void
release_held(MutexGuardObject *g, MutexObject *m, PyObject *exc, int dropped)
{
    if (exc != NULL && m->poison == NULL) {
        m->poison = Py_NewRef(exc);
    }
    PyObject *where = (PyObject *)g->where.code;   /* dropped after the release */
    g->where.code = NULL;
    if (m->checked) {
        cc_store_ulong(&m->owner, 0);
    }
    PyObject *previous = NULL;
    if (!dropped && m->reuse && Py_TYPE(g) == m->guard_type && Py_TYPE(g)->tp_finalize == NULL) {
        previous = keep_idle(m, g);
    }
    release(m);
    Py_XDECREF(previous);
    Py_XDECREF(where);
    Py_DECREF(m);
}

/* A checked guard may only be released by the thread that acquired it. */
static inline int
foreign(MutexGuardObject *g, MutexObject *m)
{
    return m->checked && PyThread_get_thread_ident() != g->owner;
}

static PyObject *
Guard_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self);
}

PyDoc_STRVAR(guard_exit_doc,
"__exit__(exc_type, exc, tb)\n\
\n\
Release the lock unless unlock() already did; an exception leaving the\n\
block poisons the mutex first (unless it is already poisoned).");

static PyObject *
Guard_exit(MutexGuardObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "__exit__() takes exactly 3 arguments (%zd given)", nargs);
        return NULL;
    }
    MutexObject *m = self->mutex;
    if (m == NULL) {
        Py_RETURN_NONE;   /* released early with unlock() */
    }
    if (foreign(self, m)) {
        return refuse_foreign(self, m, "releasing");
    }
    if (cc_load_int(&self->waiting)) {
        return guard_lent();
    }
    m = detach(self);
    if (m == NULL) {
        Py_RETURN_NONE;   /* another thread released it just now */
    }
    release_held(self, m, args[0] != Py_None && args[1] != Py_None ? args[1] : NULL, 0);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(guard_unlock_doc,
"unlock()\n\
\n\
Release now; releasing a guard a second time raises RuntimeError.");

static PyObject *
Guard_unlock(MutexGuardObject *self, PyObject *Py_UNUSED(ignored))
{
    MutexObject *m = self->mutex;
    if (m == NULL) {
        return guard_released();
    }
    if (foreign(self, m)) {
        return refuse_foreign(self, m, "releasing");
    }
    if (cc_load_int(&self->waiting)) {
        return guard_lent();
    }
    m = detach(self);
    if (m == NULL) {
        return guard_released();
    }
    release_held(self, m, NULL, 0);
    Py_RETURN_NONE;
}

static PyObject *
Guard_get_value(MutexGuardObject *self, void *Py_UNUSED(closure))
{
    MutexObject *m = self->mutex;
    if (m == NULL) {
        return guard_released();
    }
    return Py_NewRef(m->value);
}

static int
Guard_set_value(MutexGuardObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "a MutexGuard's value cannot be deleted");
        return -1;
    }
    MutexObject *m = self->mutex;
    if (m == NULL) {
        guard_released();
        return -1;
    }
    Py_SETREF(m->value, Py_NewRef(value));
    return 0;
}

/* `_mutex`: the mutex held, or None once released. */
static PyObject *
Guard_get_mutex(MutexGuardObject *self, void *Py_UNUSED(closure))
{
    MutexObject *m = self->mutex;
    return m == NULL ? Py_NewRef(Py_None) : Py_NewRef((PyObject *)m);
}

/* `_owner`: the ident of the thread that acquired this guard. */
static PyObject *
Guard_get_owner(MutexGuardObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(self->owner);
}

static int
Guard_traverse(MutexGuardObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->mutex);
    return 0;
}

/* A guard dropped while held releases its lock (no poisoning): the mutex
   must not stay locked for ever because a `with` never took the guard.  (No
   other thread holds a reference any more, so no atomic detach is needed.) */
static void
Guard_dealloc(MutexGuardObject *self)
{
    PyObject_GC_UnTrack(self);
    MutexObject *m = self->mutex;
    self->mutex = NULL;
    if (m != NULL) {
        if (m->checked) {
            PyObject *where = cc_location_text(&self->where);
            cc_warn_dropped((PyObject *)m,
                            "a guard of %S acquired at %S was dropped while held; "
                            "it was released now (use `with m.lock():` to release it "
                            "where you mean to)", m->name, where != NULL ? where : Py_None);
            Py_XDECREF(where);
        }
        release_held(self, m, NULL, 1);
    }
    cc_location_clear(&self->where);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Guard_methods[] = {
    {"__enter__", Guard_enter, METH_NOARGS, "__enter__() -> the guard itself"},
    {"__exit__", (PyCFunction)(void (*)(void))Guard_exit, METH_FASTCALL, guard_exit_doc},
    {"unlock", (PyCFunction)Guard_unlock, METH_NOARGS, guard_unlock_doc},
    {NULL, NULL}
};

static PyGetSetDef Guard_getset[] = {
    {"value", (getter)Guard_get_value, (setter)Guard_set_value,
     "The protected value; assigning replaces it.", NULL},
    {"_mutex", (getter)Guard_get_mutex, NULL, NULL, NULL},
    {"_owner", (getter)Guard_get_owner, NULL, NULL, NULL},
    {NULL}
};

PyTypeObject cc_MutexGuardType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.MutexGuard",
    .tp_doc = PyDoc_STR("Exclusive access to a Mutex's value; released on exit or drop."),
    .tp_basicsize = sizeof(MutexGuardObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)Guard_dealloc,
    .tp_traverse = (traverseproc)Guard_traverse,
    .tp_methods = Guard_methods,
    .tp_getset = Guard_getset,
};


/* ----------------------------------------------------------------- Mutex */

PyDoc_STRVAR(mutex_lock_doc,
"lock() -> MutexGuard\n\
\n\
Block until the lock is free and return its guard.");

static PyObject *
Mutex_lock(MutexObject *self, PyObject *Py_UNUSED(ignored))
{
    unsigned long me = PyThread_get_thread_ident();
    if (cc_cas_int(&self->state, 0, MUTEX_LOCKED)) {
        return new_guard(self, me);
    }
    if (self->checked && cc_load_ulong(&self->owner) == me) {
        return refuse_relock(self);
    }
    if (!try_take(self) && acquire_slow(self, CC_FOREVER, NULL) < 0) {
        return NULL;
    }
    return new_guard(self, me);
}

PyDoc_STRVAR(mutex_try_lock_doc,
"try_lock() -> MutexGuard | None\n\
\n\
The guard if the lock is free right now, else None.");

static PyObject *
Mutex_try_lock(MutexObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!try_take(self)) {
        Py_RETURN_NONE;
    }
    return new_guard(self, PyThread_get_thread_ident());
}

PyDoc_STRVAR(mutex_try_lock_for_doc,
"try_lock_for(seconds) -> MutexGuard | None\n\
\n\
The guard if the lock frees up within `seconds`, else None.");

static PyObject *
Mutex_try_lock_for(MutexObject *self, PyObject *seconds)
{
    unsigned long me = PyThread_get_thread_ident();
    if (self->checked && cc_load_ulong(&self->owner) == me) {
        return refuse_relock(self);
    }
    cc_time deadline;
    if (cc_deadline_from(seconds, "Mutex.try_lock_for", 0, &deadline) < 0) {
        return NULL;
    }
    if (!try_take(self)) {
        int taken = acquire_slow(self, deadline, NULL);
        if (taken < 0) {
            return NULL;
        }
        if (!taken) {
            Py_RETURN_NONE;
        }
    }
    return new_guard(self, me);
}

static PyObject *
Mutex_is_locked(MutexObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(cc_load_int(&self->state) & MUTEX_LOCKED);
}

static PyObject *
Mutex_is_poisoned(MutexObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(cc_load_ptr(&self->poison) != NULL);
}

static PyObject *
Mutex_clear_poison(MutexObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *old = cc_exchange_ptr(&self->poison, NULL);
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

static PyObject *
Mutex_get_name(MutexObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->name);
}

static int
Mutex_set_name(MutexObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "a Mutex's name cannot be deleted");
        return -1;
    }
    Py_SETREF(self->name, Py_NewRef(value));
    return 0;
}

/* `_poison`: None while not poisoned; raise_poisoned() reads it. */
static PyObject *
Mutex_get_poison(MutexObject *self, void *Py_UNUSED(closure))
{
    PyObject *poison = self->poison;
    return Py_NewRef(poison != NULL ? poison : Py_None);
}

/* `_value`: the protected value (for diagnostics and the model's mirrors). */
static PyObject *
Mutex_get_value(MutexObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->value);
}

/* `_owner`: the holding thread's ident under the checked backend, or None. */
static PyObject *
Mutex_get_owner(MutexObject *self, void *Py_UNUSED(closure))
{
    unsigned long owner = cc_load_ulong(&self->owner);
    if (owner == 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLong(owner);
}

static PyObject *
Mutex_repr(MutexObject *self)
{
    return PyUnicode_FromFormat("<Mutex %S %s%s>", self->name,
                                (cc_load_int(&self->state) & MUTEX_LOCKED) ? "locked" : "unlocked",
                                self->poison != NULL ? ", poisoned" : "");
}

/* Mutex(value=None, *, name=None).  The guard class and the checked flag are
   read from the class (`_guard_class`, `_checked_`) in __new__, so an object
   is usable even if a subclass skips __init__. */
static PyObject *
Mutex_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    PyTypeObject *guard_type = cc_guard_class(type, "_guard_class", &cc_MutexGuardType);
    if (guard_type == NULL) {
        return NULL;
    }
    MutexObject *self = (MutexObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(guard_type);
        return NULL;
    }
    self->guard_type = guard_type;
    self->reuse = reusable_guard_class(guard_type);
    self->checked = cc_is_checked_class(type);
    self->value = Py_NewRef(Py_None);
    self->name = Py_NewRef(Py_None);
    return (PyObject *)self;
}

static int
Mutex_init(MutexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"value", "name", NULL};
    PyObject *value = Py_None, *name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$O:Mutex", kwlist, &value, &name)) {
        return -1;
    }
    PyObject *label = cc_name_or_auto(name, "Mutex");
    if (label == NULL) {
        return -1;
    }
    Py_SETREF(self->name, label);
    Py_SETREF(self->value, Py_NewRef(value));
    return 0;
}

static int
Mutex_traverse(MutexObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->value);
    Py_VISIT(self->poison);
    Py_VISIT(self->name);
    Py_VISIT(self->guard_type);
    for (int i = 0; i < MUTEX_IDLE_GUARDS; i++) {
        PyObject *idle = idle_load(self, i);
        Py_VISIT(idle);
    }
    return 0;
}

/* guard_type is kept: lock() needs it, and it is only a class.  `idle` needs
   no lock here: only the collector and Mutex_dealloc call this, on a Mutex
   nobody can reach any more, so no thread can be in lock() or releasing a
   guard of it (a guard being deallocated does not touch `idle`). */
static int
Mutex_clear(MutexObject *self)
{
    for (int i = 0; i < MUTEX_IDLE_GUARDS; i++) {
        PyObject *idle = idle_load(self, i);
        idle_store(self, i, NULL);
        Py_XDECREF(idle);
    }
    Py_CLEAR(self->value);
    Py_CLEAR(self->poison);
    return 0;
}

static void
Mutex_dealloc(MutexObject *self)
{
    PyObject_GC_UnTrack(self);
    Mutex_clear(self);
    Py_CLEAR(self->name);
    Py_CLEAR(self->guard_type);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Mutex_methods[] = {
    {"lock", (PyCFunction)Mutex_lock, METH_NOARGS, mutex_lock_doc},
    {"try_lock", (PyCFunction)Mutex_try_lock, METH_NOARGS, mutex_try_lock_doc},
    {"try_lock_for", (PyCFunction)Mutex_try_lock_for, METH_O, mutex_try_lock_for_doc},
    {"is_locked", (PyCFunction)Mutex_is_locked, METH_NOARGS,
     "is_locked() -> bool\n\nWhether some guard holds the lock (a snapshot, for diagnostics)."},
    {"is_poisoned", (PyCFunction)Mutex_is_poisoned, METH_NOARGS,
     "is_poisoned() -> bool\n\nWhether an exception escaped a guard of this lock."},
    {"clear_poison", (PyCFunction)Mutex_clear_poison, METH_NOARGS,
     "clear_poison()\n\nDeclare the value consistent again so the lock can be acquired."},
    {NULL, NULL}
};

static PyGetSetDef Mutex_getset[] = {
    {"name", (getter)Mutex_get_name, (setter)Mutex_set_name, "Label used in errors.", NULL},
    {"_poison", (getter)Mutex_get_poison, NULL, NULL, NULL},
    {"_value", (getter)Mutex_get_value, NULL, NULL, NULL},
    {"_owner", (getter)Mutex_get_owner, NULL, NULL, NULL},
    {NULL}
};

PyTypeObject cc_MutexType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.Mutex",
    .tp_doc = PyDoc_STR("A mutual-exclusion lock that owns its value (native core)."),
    .tp_basicsize = sizeof(MutexObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Mutex_new,
    .tp_init = (initproc)Mutex_init,
    .tp_dealloc = (destructor)Mutex_dealloc,
    .tp_traverse = (traverseproc)Mutex_traverse,
    .tp_clear = (inquiry)Mutex_clear,
    .tp_repr = (reprfunc)Mutex_repr,
    .tp_methods = Mutex_methods,
    .tp_getset = Mutex_getset,
};


/* ------------------------------------------------------- Condvar support */

MutexObject *
cc_mutex_for_wait(PyObject *guard, PyObject *condvar_name)
{
    if (!PyObject_TypeCheck(guard, &cc_MutexGuardType)) {
        PyErr_Format(PyExc_TypeError, "%S.wait needs a MutexGuard, got %s",
                     condvar_name, Py_TYPE(guard)->tp_name);
        return NULL;
    }
    MutexGuardObject *g = (MutexGuardObject *)guard;
    MutexObject *m = g->mutex;
    if (m == NULL) {
        return (MutexObject *)guard_released();
    }
    if (foreign(g, m)) {
        PyObject *action = PyUnicode_FromFormat("waiting on %S with", condvar_name);
        if (action != NULL) {
            refuse_not_owner(g, m, action);
            Py_DECREF(action);
        }
        return NULL;
    }
    return m;
}

void
cc_mutex_guard_lend(PyObject *guard, int waiting)
{
    cc_store_int(&((MutexGuardObject *)guard)->waiting, waiting);
}

void
cc_mutex_release_for_wait(MutexObject *m)
{
    if (m->checked) {
        cc_store_ulong(&m->owner, 0);
    }
    release(m);
}

void
cc_mutex_reacquire(MutexObject *m, unsigned long owner, PyObject **pending)
{
    while (!try_take(m)) {
        int taken = acquire_slow(m, CC_FOREVER, pending);
        if (taken > 0) {
            break;
        }
        /* Only a failure to allocate the parker gets here: keep it and retry. */
        cc_pending_add(pending, PyErr_GetRaisedException());
    }
    if (m->checked) {
        cc_store_ulong(&m->owner, owner);
    }
}

int
cc_add_mutex_types(PyObject *module)
{
    if (cc_add_type(module, &cc_MutexGuardType) < 0) {
        return -1;
    }
    return cc_add_type(module, &cc_MutexType);
}
