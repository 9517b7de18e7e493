/* semaphore.c: Semaphore and SemaphoreGuard.

   The count of free permits lives in one atomic word together with a
   SEM_PARKED bit (state = permits * SEM_ONE | SEM_PARKED), in the style of
   the Mutex: taking a free permit and giving one back while nobody waits are
   a single compare-and-swap each, with no state section.  A thread that finds
   no permit sets SEM_PARKED and queues in `waiters` under the state section,
   so a releaser that sees SEM_PARKED takes the slow path and wakes one of
   them.  A woken thread competes again (no hand-off), except that at most
   every SEM_FAIR_INTERVAL a release hands its permit straight to the thread
   at the head of the queue (eventual fairness, as in parking_lot), so a
   parked thread cannot starve behind threads that keep re-taking permits on
   the fast path.  A thread that gives up after being woken (timeout,
   exception) passes its wake-up on while a permit is free; one that was
   handed a permit keeps it on a timeout and gives it back (or on) on an
   exception.  So no permit is ever lost or duplicated, whatever interrupts a
   wait.

   Semantics (those of the pure-Python Semaphore):
   - Semaphore(permits, *, name=None), permits an int >= 0;
   - acquire() blocks for a permit; try_acquire() and try_acquire_for(seconds)
     return None instead of blocking (or after `seconds`);
   - each permit is held by a fresh SemaphoreGuard, given back by unlock(),
     by leaving its `with` block (an exception does not poison: a semaphore is
     not a lock) or when the guard is dropped while held; releasing it a
     second time raises RuntimeError;
   - checked (`_checked_ = True`, the `threading` backend): a guard dropped
     while held also warns with a ResourceWarning naming the semaphore and the
     line that acquired the permit. */

#include "core.h"

#define SEM_PARKED 1   /* threads may be queued in `waiters` */
#define SEM_ONE 2      /* one permit in the state word */
#define SEM_MAX_PERMITS (PY_SSIZE_T_MAX / SEM_ONE)

/* A waiter's `kind`: whether a releaser handed it a permit with the wake-up. */
#define SEM_WAITING 0
#define SEM_GRANTED 1

/* How often (ns) a release serves the longest-queued waiter directly. */
#define SEM_FAIR_INTERVAL 500000

typedef struct {
    PyObject_HEAD
    Py_ssize_t state;          /* permits * SEM_ONE | SEM_PARKED (an atomic word) */
    int checked;               /* the `threading` backend's checks are on */
    cc_queue waiters;          /* threads parked in acquire* (state section) */
    cc_time fair_at;           /* next release that hands its permit over (section) */
    PyObject *name;            /* label for errors and repr */
    PyTypeObject *guard_type;  /* class of the guards acquire() hands out */
} SemaphoreObject;

typedef struct {
    PyObject_HEAD
    SemaphoreObject *semaphore;  /* the semaphore, or NULL once released */
    cc_location where;           /* checked: where the permit was acquired */
} SemaphoreGuardObject;

static PyTypeObject SemaphoreType;
static PyTypeObject SemaphoreGuardType;


/* ------------------------------------------------------------ the raw count */

#ifdef Py_GIL_DISABLED
static inline int
cas_state(Py_ssize_t *p, Py_ssize_t expected, Py_ssize_t desired)
{
    return _Py_atomic_compare_exchange_ssize(p, &expected, desired);
}
#else
static inline int
cas_state(Py_ssize_t *p, Py_ssize_t expected, Py_ssize_t desired)
{
    if (*p != expected) {
        return 0;
    }
    *p = desired;
    return 1;
}
#endif

/* Take a free permit (also while others are parked: they will look again).
   1 if taken. */
static inline int
try_take(SemaphoreObject *s)
{
    Py_ssize_t st = cc_load_ssize(&s->state);
    while (st >= SEM_ONE) {
        if (cas_state(&s->state, st, st - SEM_ONE)) {
            return 1;
        }
        st = cc_load_ssize(&s->state);
    }
    return 0;
}

/* Take a permit if one is free, else mark SEM_PARKED and queue `w`.  Returns
   1 when taken, 0 when queued.  State section held. */
static int
take_or_queue(SemaphoreObject *s, cc_waiter *w)
{
    Py_ssize_t st = cc_load_ssize(&s->state);
    for (;;) {
        if (st >= SEM_ONE) {
            if (cas_state(&s->state, st, st - SEM_ONE)) {
                return 1;
            }
        }
        else if ((st & SEM_PARKED) || cas_state(&s->state, st, st | SEM_PARKED)) {
            cc_queue_push(&s->waiters, w);
            return 0;
        }
        st = cc_load_ssize(&s->state);
    }
}

/* Clear SEM_PARKED once nobody is queued.  State section held (queueing
   happens only there, so the bit cannot be wanted again meanwhile). */
static void
clear_parked_if_idle(SemaphoreObject *s)
{
    if (s->waiters.count != 0) {
        return;
    }
    Py_ssize_t st = cc_load_ssize(&s->state);
    while ((st & SEM_PARKED) && !cas_state(&s->state, st, st & ~(Py_ssize_t)SEM_PARKED)) {
        st = cc_load_ssize(&s->state);
    }
}

/* Give one permit back.  State section held.  Normally the permit goes
   back into the count and one parked thread is woken to compete for it (a
   running thread may take it first: no convoy).  But at most every
   SEM_FAIR_INTERVAL, if threads are parked, the permit is handed to the one
   at the head of the queue instead, so no parked thread starves behind
   threads that keep taking permits on the fast path. */
static void
release_locked(SemaphoreObject *s)
{
    cc_waiter *head = s->waiters.head;
    if (head != NULL) {
        cc_time now = cc_now();
        if (now >= s->fair_at) {
            s->fair_at = now + SEM_FAIR_INTERVAL;
            cc_queue_remove(&s->waiters, head);
            head->kind = SEM_GRANTED;   /* before the wake: it reads this first */
            cc_wake(head);
            clear_parked_if_idle(s);
            return;
        }
    }
    Py_ssize_t st = cc_load_ssize(&s->state);
    while (!cas_state(&s->state, st, st + SEM_ONE)) {
        st = cc_load_ssize(&s->state);
    }
    cc_queue_wake_one(&s->waiters);
    clear_parked_if_idle(s);
}

/* Give one permit back, waking (or serving) one parked thread if there is one. */
static void
release(SemaphoreObject *s)
{
    Py_ssize_t st = cc_load_ssize(&s->state);
    while (!(st & SEM_PARKED)) {
        if (cas_state(&s->state, st, st + SEM_ONE)) {
            return;
        }
        st = cc_load_ssize(&s->state);
    }
    STATE_BEGIN(s)
    release_locked(s);
    STATE_END();
}

/* A parked waiter stops waiting: `r` is CC_PARK_TIMEOUT or CC_PARK_ERROR.
   Settle it in the state section: leave the queue if still queued; a permit
   handed to it is kept on a timeout (it came in time) and given back on an
   exception; a plain wake-up it got is passed on while a permit is free.
   Returns 1 if the waiter holds a permit now, else 0.  State section held. */
static int
settle_abandoned(SemaphoreObject *s, cc_waiter *w, cc_park_result r)
{
    int granted = w->woken && w->kind == SEM_GRANTED;
    if (!w->woken) {
        cc_queue_remove(&s->waiters, w);
    }
    int got = granted || (r == CC_PARK_TIMEOUT && try_take(s));
    if (r == CC_PARK_ERROR && granted) {
        release_locked(s);   /* the permit handed to us goes back (or on) */
        got = 0;
    }
    else if (!got && w->woken && cc_load_ssize(&s->state) >= SEM_ONE) {
        cc_queue_wake_one(&s->waiters);   /* pass the wake-up on */
    }
    clear_parked_if_idle(s);
    return got;
}

/* Wait for a permit until `deadline`.  Returns 1 when taken, 0 on timeout,
   -1 with an exception set (a signal handler raised; nothing was taken). */
static int
acquire_slow(SemaphoreObject *s, cc_time deadline)
{
    cc_waiter w;
    if (cc_waiter_init(&w, SEM_WAITING) < 0) {
        return -1;
    }
    int result;
    for (;;) {
        int taken;
        STATE_BEGIN(s)
        taken = take_or_queue(s, &w);
        STATE_END();
        if (taken) {
            result = 1;
            break;
        }
        cc_park_result r = cc_park(&w, deadline);
        if (r == CC_PARK_WOKEN) {
            if (w.kind == SEM_GRANTED) {
                result = 1;            /* a releaser handed its permit to us */
                break;
            }
            cc_waiter_rearm(&w);       /* the releaser took us out of the queue */
            continue;
        }
        int got;
        STATE_BEGIN(s)
        got = settle_abandoned(s, &w, r);
        STATE_END();
        result = got ? 1 : (r == CC_PARK_TIMEOUT ? 0 : -1);   /* ERROR: never got */
        break;
    }
    cc_waiter_fini(&w);
    return result;
}

/* ---------------------------------------------------------------- guards */

/* A permit was just taken: hand out its guard (or give the permit back). */
static PyObject *
new_guard(SemaphoreObject *s)
{
    PyTypeObject *type = s->guard_type;
    SemaphoreGuardObject *g = (SemaphoreGuardObject *)type->tp_alloc(type, 0);
    if (g == NULL) {
        release(s);
        return NULL;
    }
    if (s->checked) {
        cc_location_here(&g->where);
    }
    g->semaphore = (SemaphoreObject *)Py_NewRef((PyObject *)s);
    return (PyObject *)g;
}

/* Detach the semaphore from `g` atomically: of two threads releasing one
   guard at once, exactly one gets it (a new reference it must drop). */
static inline SemaphoreObject *
detach(SemaphoreGuardObject *g)
{
    return (SemaphoreObject *)cc_exchange_ptr((PyObject **)&g->semaphore, NULL);
}

static PyObject *
guard_released(void)
{
    PyErr_SetString(PyExc_RuntimeError, "this Semaphore permit was already released");
    return NULL;
}

static PyObject *
Guard_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self);
}

PyDoc_STRVAR(guard_exit_doc,
"__exit__(exc_type, exc, tb)\n\
\n\
Give the permit back unless unlock() already did (an exception does not\n\
poison a semaphore).");

static PyObject *
Guard_exit(SemaphoreGuardObject *self, PyObject *const *Py_UNUSED(args), Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "__exit__() takes exactly 3 arguments (%zd given)", nargs);
        return NULL;
    }
    SemaphoreObject *s = detach(self);
    if (s != NULL) {
        release(s);
        Py_DECREF(s);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(guard_unlock_doc,
"unlock()\n\
\n\
Give the permit back now; releasing a guard a second time raises RuntimeError.");

static PyObject *
Guard_unlock(SemaphoreGuardObject *self, PyObject *Py_UNUSED(ignored))
{
    SemaphoreObject *s = detach(self);
    if (s == NULL) {
        return guard_released();
    }
    release(s);
    Py_DECREF(s);
    Py_RETURN_NONE;
}

/* `_semaphore`: the semaphore whose permit is held, or None once released. */
static PyObject *
Guard_get_semaphore(SemaphoreGuardObject *self, void *Py_UNUSED(closure))
{
    PyObject *s = cc_load_ptr((PyObject **)&self->semaphore);
    return Py_NewRef(s != NULL ? s : Py_None);
}

static int
Guard_traverse(SemaphoreGuardObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->semaphore);
    return 0;
}

/* A guard dropped while held gives its permit back: it must not be lost
   because a `with` never took the guard. */
static void
Guard_dealloc(SemaphoreGuardObject *self)
{
    PyObject_GC_UnTrack(self);
    SemaphoreObject *s = detach(self);
    if (s != NULL) {
        if (s->checked) {
            PyObject *where = cc_location_text(&self->where);
            cc_warn_dropped((PyObject *)s,
                            "a permit of %S acquired at %S was dropped while held; "
                            "it was given back now (use `with s.acquire():` to give it "
                            "back where you mean to)", s->name, where != NULL ? where : Py_None);
            Py_XDECREF(where);
        }
        release(s);
        Py_DECREF(s);
    }
    cc_location_clear(&self->where);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Guard_methods[] = {
    {"__enter__", Guard_enter, METH_NOARGS, "__enter__() -> the guard itself"},
    {"__exit__", (PyCFunction)(void (*)(void))Guard_exit, METH_FASTCALL, guard_exit_doc},
    {"unlock", (PyCFunction)Guard_unlock, METH_NOARGS, guard_unlock_doc},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef Guard_getset[] = {
    {"_semaphore", (getter)Guard_get_semaphore, NULL, NULL, NULL},
    {NULL}
};

static PyTypeObject SemaphoreGuardType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.SemaphoreGuard",
    .tp_doc = PyDoc_STR("One permit of a Semaphore; given back on exit, unlock() or drop."),
    .tp_basicsize = sizeof(SemaphoreGuardObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)Guard_dealloc,
    .tp_traverse = (traverseproc)Guard_traverse,
    .tp_methods = Guard_methods,
    .tp_getset = Guard_getset,
};


/* ------------------------------------------------------------- Semaphore */

PyDoc_STRVAR(acquire_doc,
"acquire() -> SemaphoreGuard\n\
\n\
Block until a permit is free and return the guard holding it.");

static PyObject *
Semaphore_acquire(SemaphoreObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!try_take(self) && acquire_slow(self, CC_FOREVER) < 0) {
        return NULL;
    }
    return new_guard(self);
}

PyDoc_STRVAR(try_acquire_doc,
"try_acquire() -> SemaphoreGuard | None\n\
\n\
The guard of a permit if one is free right now, else None.");

static PyObject *
Semaphore_try_acquire(SemaphoreObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!try_take(self)) {
        Py_RETURN_NONE;
    }
    return new_guard(self);
}

PyDoc_STRVAR(try_acquire_for_doc,
"try_acquire_for(seconds) -> SemaphoreGuard | None\n\
\n\
The guard of a permit if one frees up within `seconds`, else None.");

static PyObject *
Semaphore_try_acquire_for(SemaphoreObject *self, PyObject *seconds)
{
    cc_time deadline;
    if (cc_deadline_from(seconds, "Semaphore.try_acquire_for", 0, &deadline) < 0) {
        return NULL;
    }
    if (!try_take(self)) {
        int taken = acquire_slow(self, deadline);
        if (taken < 0) {
            return NULL;
        }
        if (!taken) {
            Py_RETURN_NONE;
        }
    }
    return new_guard(self);
}

static PyObject *
Semaphore_available(SemaphoreObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(cc_load_ssize(&self->state) / SEM_ONE);
}

static PyObject *
Semaphore_get_name(SemaphoreObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->name);
}

static int
Semaphore_set_name(SemaphoreObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "a Semaphore's name cannot be deleted");
        return -1;
    }
    Py_SETREF(self->name, Py_NewRef(value));
    return 0;
}

/* `_permits`: the free permits (a snapshot, as available()). */
static PyObject *
Semaphore_get_permits(SemaphoreObject *self, void *Py_UNUSED(closure))
{
    return Semaphore_available(self, NULL);
}

/* `_waiting`: how many threads are parked in acquire* (a snapshot). */
static PyObject *
Semaphore_get_waiting(SemaphoreObject *self, void *Py_UNUSED(closure))
{
    Py_ssize_t n;
    STATE_BEGIN(self)
    n = self->waiters.count;
    STATE_END();
    return PyLong_FromSsize_t(n);
}

static PyObject *
Semaphore_repr(SemaphoreObject *self)
{
    return PyUnicode_FromFormat("<Semaphore %S available=%zd>", self->name,
                                cc_load_ssize(&self->state) / SEM_ONE);
}

/* Semaphore(permits, *, name=None).  The guard class and the checked flag are
   read from the class (`_guard_class`, `_checked_`) in __new__. */
static PyObject *
Semaphore_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    PyTypeObject *guard_type = cc_guard_class(type, "_guard_class", &SemaphoreGuardType);
    if (guard_type == NULL) {
        return NULL;
    }
    SemaphoreObject *self = (SemaphoreObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(guard_type);
        return NULL;
    }
    self->guard_type = guard_type;
    self->checked = cc_is_checked_class(type);
    self->name = Py_NewRef(Py_None);
    return (PyObject *)self;
}

static int
Semaphore_init(SemaphoreObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"permits", "name", NULL};
    PyObject *permits, *name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:Semaphore", kwlist, &permits, &name)) {
        return -1;
    }
    /* As the pure-Python Semaphore: anything but an int >= 0 is a ValueError. */
    Py_ssize_t n = -1;
    if (PyLong_Check(permits) && !PyBool_Check(permits)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(permits, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (overflow > 0 || v > (long long)SEM_MAX_PERMITS) {
            PyErr_Format(PyExc_ValueError,
                         "Semaphore: permits must be an int >= 0 and <= %zd, got %R",
                         (Py_ssize_t)SEM_MAX_PERMITS, permits);
            return -1;
        }
        if (overflow == 0 && v >= 0) {
            n = (Py_ssize_t)v;
        }
    }
    if (n < 0) {
        PyErr_Format(PyExc_ValueError, "Semaphore: permits must be an int >= 0, got %R",
                     permits);
        return -1;
    }
    PyObject *label = cc_name_or_auto(name, "Semaphore");
    if (label == NULL) {
        return -1;
    }
    Py_SETREF(self->name, label);
    /* Keep SEM_PARKED: a (misguided) second __init__ must not strand waiters. */
    Py_ssize_t st = cc_load_ssize(&self->state);
    while (!cas_state(&self->state, st, n * SEM_ONE | (st & SEM_PARKED))) {
        st = cc_load_ssize(&self->state);
    }
    return 0;
}

static int
Semaphore_traverse(SemaphoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->name);
    Py_VISIT(self->guard_type);
    return 0;
}

static void
Semaphore_dealloc(SemaphoreObject *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->name);
    Py_CLEAR(self->guard_type);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Semaphore_methods[] = {
    {"acquire", (PyCFunction)Semaphore_acquire, METH_NOARGS, acquire_doc},
    {"try_acquire", (PyCFunction)Semaphore_try_acquire, METH_NOARGS, try_acquire_doc},
    {"try_acquire_for", (PyCFunction)Semaphore_try_acquire_for, METH_O, try_acquire_for_doc},
    {"available", (PyCFunction)Semaphore_available, METH_NOARGS,
     "available() -> int\n\nPermits free right now (a snapshot)."},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef Semaphore_getset[] = {
    {"name", (getter)Semaphore_get_name, (setter)Semaphore_set_name,
     "Label used in errors.", NULL},
    {"_permits", (getter)Semaphore_get_permits, NULL, NULL, NULL},
    {"_waiting", (getter)Semaphore_get_waiting, NULL, NULL, NULL},
    {NULL}
};

static PyTypeObject SemaphoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.Semaphore",
    .tp_doc = PyDoc_STR("A pool of permits; each guard holds one until it is released "
                        "(native core)."),
    .tp_basicsize = sizeof(SemaphoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Semaphore_new,
    .tp_init = (initproc)Semaphore_init,
    .tp_dealloc = (destructor)Semaphore_dealloc,
    .tp_traverse = (traverseproc)Semaphore_traverse,
    .tp_repr = (reprfunc)Semaphore_repr,
    .tp_methods = Semaphore_methods,
    .tp_getset = Semaphore_getset,
};

int
cc_add_semaphore_types(PyObject *module)
{
    if (cc_add_type(module, &SemaphoreGuardType) < 0) {
        return -1;
    }
    return cc_add_type(module, &SemaphoreType);
}
