/* _fastmutex: the C accelerator behind the Mutex of the `fast` backend and
   of the checked `threading` backend.

   `with m.lock(): ...` is three calls -- lock(), __enter__ and __exit__.  In
   pure Python each one runs a Python frame; here all three are C functions,
   so the uncontended path costs little more than `with threading.Lock(): ...`.

   The types defined here are *bases*: concurrency/backends/fast.py (and,
   for the checked variants, threading.py) subclasses them together with the
   facade classes (concurrency.sync.Mutex and MutexGuard), so isinstance()
   against the facade holds while every method the hot path calls is still
   the C one defined here.

   Semantics are those of the pure-Python fast.PyMutex / fast.PyMutexGuard:

   - every lock() returns a fresh guard; releasing it twice raises
     RuntimeError, and so does using it (value, unlock) once released;
   - an exception leaving a `with` block poisons the mutex (the first
     poison wins), and every later acquire releases the lock again and
     raises PoisonError through concurrency._errors.raise_poisoned();
   - a guard dropped without being released keeps the lock held, exactly
     like the pure-Python guard (there is no release-on-finalize);
   - a Condvar wait whose re-acquire is interrupted (a signal handler
     raised) leaves the guard released, as it does not hold the lock.

   The lock itself is a PyThread_type_lock, the lock behind threading.Lock.
   Like CPython's Modules/_threadmodule.c, a blocking acquire first tries
   without releasing the GIL, then waits with the GIL released and stays
   interruptible: a signal wakes it, the Python signal handlers run, and an
   exception they raise (KeyboardInterrupt, say) propagates out of lock().

   All the fields below are read and written with the GIL held, which is what
   makes them consistent.  On a free-threaded build this single-phase module
   does not declare Py_mod_gil, so importing it turns the GIL back on.

   CheckedMutex and CheckedMutexGuard, subclasses of the two, are the bases
   of the checked `threading` backend's Mutex and MutexGuard: they also
   record which thread holds the lock, and refuse re-locking by that thread
   and releases by any other (see "checked variants" below).

   Cold paths call back into Python: timeout validation
   (concurrency._errors.check_timeout), the PoisonError
   (concurrency._errors.raise_poisoned), automatic names
   (concurrency.backends._realthread.next_name) and the checked variants'
   errors (concurrency.backends.threading). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <math.h>

/* The monotonic clock, in nanoseconds: public API from 3.13 on, the
   (exported) private one before that. */
#if PY_VERSION_HEX < 0x030D0000
typedef _PyTime_t PyTime_t;

static int
monotonic_ns(PyTime_t *result)
{
    *result = _PyTime_GetMonotonicClock();
    return 0;
}
#else
static int
monotonic_ns(PyTime_t *result)
{
    return PyTime_Monotonic(result);
}
#endif


/* ------------------------------------------------------------------ objects */

typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock;
    char locked;              /* 1 while the lock is held (for is_locked) */
    PyObject *value;          /* the protected value */
    PyObject *poison;         /* the exception that poisoned it, or NULL */
    PyObject *name;           /* label used in errors and repr */
    PyTypeObject *guard_type; /* class of the guards lock() hands out */
} MutexObject;

typedef struct {
    PyObject_HEAD
    MutexObject *mutex;       /* the mutex held, or NULL once released */
} GuardObject;

/* The checked variants (the `threading` backend's Mutex and MutexGuard)
   extend both with the thread that holds the lock: 0 while nobody does
   (PyThread_get_thread_ident() is never 0: it is a pthread_t or a Windows
   thread id). */
typedef struct {
    MutexObject base;
    unsigned long owner;      /* ident of the holding thread, or 0 */
} CheckedMutexObject;

typedef struct {
    GuardObject base;
    unsigned long owner;      /* ident of the thread that acquired it */
} CheckedGuardObject;

static PyTypeObject MutexType;
static PyTypeObject GuardType;
static PyTypeObject CheckedMutexType;
static PyTypeObject CheckedGuardType;


/* --------------------------------------------- helpers written in Python */

/* Return a borrowed reference to module.attr, importing it on first use and
   caching it in *cache for the life of the process. */
static PyObject *
python_helper(PyObject **cache, const char *module, const char *attr)
{
    if (*cache == NULL) {
        PyObject *mod = PyImport_ImportModule(module);
        if (mod == NULL) {
            return NULL;
        }
        *cache = PyObject_GetAttrString(mod, attr);
        Py_DECREF(mod);
    }
    return *cache;
}

static PyObject *check_timeout_func = NULL;
static PyObject *raise_poisoned_func = NULL;
static PyObject *next_name_func = NULL;
static PyObject *no_none_kwargs = NULL;   /* {"allow_none": False} */


/* ------------------------------------------------------ raw lock handling */

/* Take the lock if it is free, without blocking and without releasing the
   GIL: the uncontended path of every acquire.  Returns 1 if taken. */
static inline int
try_acquire(MutexObject *m)
{
    if (PyThread_acquire_lock_timed(m->lock, 0, 0) == PY_LOCK_ACQUIRED) {
        m->locked = 1;
        return 1;
    }
    return 0;
}

/* Wait for the lock for at most `microseconds` (-1: forever), with the GIL
   released.  Mirrors acquire_timed() in CPython's Modules/_threadmodule.c:
   when a signal interrupts the wait, run the Python signal handlers, give up
   if one raised, and otherwise wait again for whatever time is left.
   Returns 1 if acquired, 0 on timeout, -1 with an exception set. */
static int
acquire_timed(MutexObject *m, long long microseconds)
{
    PyTime_t deadline = 0;
    PyLockStatus r;

    if (try_acquire(m)) {
        return 1;
    }
    if (microseconds == 0) {
        return 0;
    }
    if (microseconds > 0) {
        PyTime_t now;
        if (monotonic_ns(&now) < 0) {
            return -1;
        }
        /* Saturate rather than overflow on absurdly long timeouts. */
        deadline = (microseconds > (LLONG_MAX - now) / 1000)
                   ? LLONG_MAX : now + microseconds * 1000;
    }

    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        r = PyThread_acquire_lock_timed(m->lock, microseconds, 1);
        Py_END_ALLOW_THREADS

        if (r == PY_LOCK_ACQUIRED) {
            m->locked = 1;
            return 1;
        }
        if (r == PY_LOCK_FAILURE) {
            return 0;
        }

        /* PY_LOCK_INTR: a signal arrived.  Run the handlers; an exception
           they raise (such as KeyboardInterrupt) ends the wait. */
        if (Py_MakePendingCalls() < 0) {
            return -1;
        }
        if (microseconds > 0) {
            /* The handlers took time: recompute what is left. */
            PyTime_t now;
            if (monotonic_ns(&now) < 0) {
                return -1;
            }
            if (now >= deadline) {
                return try_acquire(m);
            }
            microseconds = (deadline - now + 999) / 1000;
        }
    }
}

/* Give the lock back.  Refuses (like threading.Lock.release) when it is not
   held, which only a misuse of the Condvar protocol methods can cause. */
static int
release(MutexObject *m)
{
    if (!m->locked) {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return -1;
    }
    m->locked = 0;
    PyThread_release_lock(m->lock);
    return 0;
}

/* Raise PoisonError for m through concurrency._errors.raise_poisoned(m).
   Always returns NULL with an exception set. */
static PyObject *
raise_poisoned(MutexObject *m)
{
    PyObject *func = python_helper(&raise_poisoned_func,
                                   "concurrency._errors", "raise_poisoned");
    if (func == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_CallOneArg(func, (PyObject *)m);
    if (result != NULL) {
        Py_DECREF(result);
        PyErr_SetString(PyExc_SystemError, "raise_poisoned() returned");
    }
    return NULL;
}

/* The lock was just taken: hand out a fresh guard, or, if the mutex is
   poisoned, release the lock again and raise PoisonError. */
static PyObject *
new_guard(MutexObject *m)
{
    if (m->poison != NULL) {
        m->locked = 0;
        PyThread_release_lock(m->lock);
        return raise_poisoned(m);
    }
    PyTypeObject *type = m->guard_type;
    GuardObject *guard = (GuardObject *)type->tp_alloc(type, 0);
    if (guard == NULL) {
        m->locked = 0;
        PyThread_release_lock(m->lock);
        return NULL;
    }
    guard->mutex = (MutexObject *)Py_NewRef(m);
    return (PyObject *)guard;
}


/* ------------------------------------------------------------ MutexGuard */

static PyObject *
guard_released(void)
{
    PyErr_SetString(PyExc_RuntimeError,
                    "this MutexGuard was already released; "
                    "it cannot be used any more");
    return NULL;
}

PyDoc_STRVAR(guard_enter_doc, "__enter__() -> the guard itself");

static PyObject *
Guard_enter(GuardObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self);
}

/* The end of __exit__ once the guard is known to hold m: detach the guard,
   poison m if an exception is leaving the block (the first poison wins), and
   release the lock. */
static PyObject *
exit_held(GuardObject *self, MutexObject *m, PyObject *const *args)
{
    self->mutex = NULL;
    if (args[0] != Py_None && m->poison == NULL && args[1] != Py_None) {
        m->poison = Py_NewRef(args[1]);
    }
    int err = release(m);
    Py_DECREF(m);
    if (err < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(guard_exit_doc,
"__exit__(exc_type, exc, tb)\n\
\n\
Release the lock unless unlock() already did; an exception leaving the\n\
block poisons the mutex first (unless it is already poisoned).");

static PyObject *
Guard_exit(GuardObject *self, PyObject *const *args, Py_ssize_t nargs)
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
    return exit_held(self, m, args);
}

PyDoc_STRVAR(guard_unlock_doc,
"unlock()\n\
\n\
Release now; releasing a guard a second time raises RuntimeError.");

static PyObject *
Guard_unlock(GuardObject *self, PyObject *Py_UNUSED(ignored))
{
    MutexObject *m = self->mutex;
    if (m == NULL) {
        return guard_released();
    }
    self->mutex = NULL;
    int err = release(m);
    Py_DECREF(m);
    if (err < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The Condvar protocol (see Condvar._wait in _realthread.py): the condvar
   asks which mutex the guard holds, then parks (releases the lock while the
   guard stays logically held) and unparks (takes it back). */

static PyObject *
Guard_mutex_for_wait(GuardObject *self, PyObject *Py_UNUSED(condvar))
{
    if (self->mutex == NULL) {
        return guard_released();
    }
    return Py_NewRef(self->mutex);
}

static PyObject *
Guard_park(GuardObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->mutex == NULL) {
        return guard_released();
    }
    if (release(self->mutex) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Block until the guard's lock is taken back after a wait.  If the wait is
   interrupted (a signal handler raised), the lock was not taken: the guard
   lets go of the mutex, so that the caller's `with` block neither releases
   a lock it does not hold nor another thread's hold.  Returns 0 once taken,
   -1 with an exception set. */
static int
retake(GuardObject *self, MutexObject *m)
{
    if (acquire_timed(m, -1) < 0) {
        self->mutex = NULL;
        Py_DECREF(m);
        return -1;
    }
    return 0;
}

/* Take the lock back after a wait.  A poisoned mutex raises PoisonError
   with the guard still held, so the caller's `with` block releases it. */
static PyObject *
Guard_unpark(GuardObject *self, PyObject *Py_UNUSED(ignored))
{
    MutexObject *m = self->mutex;
    if (m == NULL) {
        return guard_released();
    }
    if (retake(self, m) < 0) {
        return NULL;
    }
    if (m->poison != NULL) {
        return raise_poisoned(m);
    }
    Py_RETURN_NONE;
}

static PyObject *
Guard_get_value(GuardObject *self, void *Py_UNUSED(closure))
{
    if (self->mutex == NULL) {
        return guard_released();
    }
    return Py_NewRef(self->mutex->value);
}

static int
Guard_set_value(GuardObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError,
                        "a MutexGuard's value cannot be deleted");
        return -1;
    }
    if (self->mutex == NULL) {
        guard_released();
        return -1;
    }
    Py_SETREF(self->mutex->value, Py_NewRef(value));
    return 0;
}

static PyObject *
Guard_get_mutex(GuardObject *self, void *Py_UNUSED(closure))
{
    if (self->mutex == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(self->mutex);
}

static int
Guard_traverse(GuardObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->mutex);
    return 0;
}

static int
Guard_clear(GuardObject *self)
{
    Py_CLEAR(self->mutex);
    return 0;
}

static void
Guard_dealloc(GuardObject *self)
{
    /* Like the pure-Python guard: dropping an unreleased guard does not
       release the lock. */
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->mutex);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Guard_methods[] = {
    {"__enter__", (PyCFunction)Guard_enter, METH_NOARGS, guard_enter_doc},
    {"__exit__", (PyCFunction)(void (*)(void))Guard_exit, METH_FASTCALL,
     guard_exit_doc},
    {"unlock", (PyCFunction)Guard_unlock, METH_NOARGS, guard_unlock_doc},
    {"_mutex_for_wait", (PyCFunction)Guard_mutex_for_wait, METH_O, NULL},
    {"_park", (PyCFunction)Guard_park, METH_NOARGS, NULL},
    {"_unpark", (PyCFunction)Guard_unpark, METH_NOARGS, NULL},
    {NULL, NULL}
};

static PyGetSetDef Guard_getset[] = {
    {"value", (getter)Guard_get_value, (setter)Guard_set_value,
     "The protected value; assigning replaces it.", NULL},
    {"_mutex", (getter)Guard_get_mutex, NULL,
     "The mutex this guard holds, or None once released.", NULL},
    {NULL}
};

PyDoc_STRVAR(guard_doc,
"Exclusive access to a Mutex's value; lock() returns a new one each time.");

static PyTypeObject GuardType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends._fastmutex.MutexGuard",
    .tp_basicsize = sizeof(GuardObject),
    .tp_dealloc = (destructor)Guard_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = guard_doc,
    .tp_traverse = (traverseproc)Guard_traverse,
    .tp_clear = (inquiry)Guard_clear,
    .tp_methods = Guard_methods,
    .tp_getset = Guard_getset,
    /* No tp_new: only Mutex hands out guards. */
};


/* ----------------------------------------------------------------- Mutex */

PyDoc_STRVAR(mutex_lock_doc,
"lock() -> MutexGuard\n\
\n\
Block until the lock is free and return its guard.");

static PyObject *
Mutex_lock(MutexObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!try_acquire(self) && acquire_timed(self, -1) < 0) {
        return NULL;
    }
    return new_guard(self);
}

PyDoc_STRVAR(mutex_try_lock_doc,
"try_lock() -> MutexGuard | None\n\
\n\
The guard if the lock is free right now, else None.");

static PyObject *
Mutex_try_lock(MutexObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!try_acquire(self)) {
        Py_RETURN_NONE;
    }
    return new_guard(self);
}

/* Validate `seconds` with concurrency._errors.check_timeout and convert it
   to whole microseconds (rounded up, as threading.Lock.acquire does).
   Returns -1 with an exception set on bad input. */
static long long
timeout_microseconds(PyObject *seconds)
{
    PyObject *func = python_helper(&check_timeout_func,
                                   "concurrency._errors", "check_timeout");
    if (func == NULL) {
        return -1;
    }
    if (no_none_kwargs == NULL) {
        no_none_kwargs = Py_BuildValue("{sO}", "allow_none", Py_False);
        if (no_none_kwargs == NULL) {
            return -1;
        }
    }
    PyObject *args = Py_BuildValue("(Os)", seconds, "Mutex.try_lock_for");
    if (args == NULL) {
        return -1;
    }
    PyObject *checked = PyObject_Call(func, args, no_none_kwargs);
    Py_DECREF(args);
    if (checked == NULL) {
        return -1;
    }
    double secs = PyFloat_AsDouble(checked);
    Py_DECREF(checked);
    if (secs == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    double us = ceil(secs * 1e6);
    if (us > (double)PY_TIMEOUT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
        return -1;
    }
    long long result = (long long)us;
    return result > PY_TIMEOUT_MAX ? PY_TIMEOUT_MAX : result;
}

PyDoc_STRVAR(mutex_try_lock_for_doc,
"try_lock_for(seconds) -> MutexGuard | None\n\
\n\
The guard if the lock frees up within `seconds`, else None.");

static PyObject *
Mutex_try_lock_for(MutexObject *self, PyObject *seconds)
{
    long long microseconds = timeout_microseconds(seconds);
    if (microseconds < 0) {
        return NULL;
    }
    int acquired = acquire_timed(self, microseconds);
    if (acquired < 0) {
        return NULL;
    }
    if (!acquired) {
        Py_RETURN_NONE;
    }
    return new_guard(self);
}

PyDoc_STRVAR(mutex_is_locked_doc,
"is_locked() -> bool\n\
\n\
Whether some guard holds the lock (a snapshot, for diagnostics).");

static PyObject *
Mutex_is_locked(MutexObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->locked);
}

PyDoc_STRVAR(mutex_is_poisoned_doc,
"is_poisoned() -> bool\n\
\n\
Whether an exception escaped a guard of this lock.");

static PyObject *
Mutex_is_poisoned(MutexObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->poison != NULL);
}

PyDoc_STRVAR(mutex_clear_poison_doc,
"clear_poison()\n\
\n\
Declare the value consistent again so the lock can be acquired.");

static PyObject *
Mutex_clear_poison(MutexObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_CLEAR(self->poison);
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

/* `_poison` is None while not poisoned, as on the pure-Python Mutex;
   raise_poisoned() reads it. */
static PyObject *
Mutex_get_poison(MutexObject *self, void *Py_UNUSED(closure))
{
    if (self->poison == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(self->poison);
}

static int
Mutex_set_poison(MutexObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL || value == Py_None) {
        Py_CLEAR(self->poison);
    }
    else {
        Py_XSETREF(self->poison, Py_NewRef(value));
    }
    return 0;
}

static PyObject *
Mutex_get_value(MutexObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->value);
}

static PyObject *
Mutex_repr(MutexObject *self)
{
    return PyUnicode_FromFormat("<Mutex %S %s%s>", self->name,
                                self->locked ? "locked" : "unlocked",
                                self->poison != NULL ? ", poisoned" : "");
}

/* A Mutex hands out guards of its class attribute `_guard_class`: a subclass
   of MutexGuard, and for a checked Mutex of CheckedMutexGuard.  A plain
   Mutex must not hand out checked guards either, as their methods treat the
   mutex as a checked one.  Returns -1 with TypeError set on a mismatch. */
static int
check_guard_class(PyTypeObject *type, PyObject *guard_type)
{
    int checked = PyType_IsSubtype(type, &CheckedMutexType);
    PyTypeObject *required = checked ? &CheckedGuardType : &GuardType;
    if (!PyType_Check(guard_type)
        || !PyType_IsSubtype((PyTypeObject *)guard_type, required)) {
        PyErr_Format(PyExc_TypeError,
                     "%s._guard_class must be a subclass of %s, not %R",
                     type->tp_name, required->tp_name, guard_type);
        return -1;
    }
    if (!checked
        && PyType_IsSubtype((PyTypeObject *)guard_type, &CheckedGuardType)) {
        PyErr_Format(PyExc_TypeError,
                     "%s._guard_class must not be a %s (%R): only a %s "
                     "hands out checked guards",
                     type->tp_name, CheckedGuardType.tp_name, guard_type,
                     CheckedMutexType.tp_name);
        return -1;
    }
    return 0;
}

/* Mutex(value=None, *, name=None).  The lock and the guard class are set up
   in __new__, so an object is usable even if a subclass skips __init__. */
static PyObject *
Mutex_new(PyTypeObject *type, PyObject *Py_UNUSED(args),
          PyObject *Py_UNUSED(kwds))
{
    PyObject *guard_type = PyObject_GetAttrString((PyObject *)type,
                                                  "_guard_class");
    if (guard_type == NULL) {
        return NULL;
    }
    if (check_guard_class(type, guard_type) < 0) {
        Py_DECREF(guard_type);
        return NULL;
    }

    MutexObject *self = (MutexObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(guard_type);
        return NULL;
    }
    self->guard_type = (PyTypeObject *)guard_type;
    self->value = Py_NewRef(Py_None);
    self->name = Py_NewRef(Py_None);
    self->lock = PyThread_allocate_lock();
    if (self->lock == NULL) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_MemoryError, "cannot allocate lock");
        return NULL;
    }
    return (PyObject *)self;
}

static int
Mutex_init(MutexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"value", "name", NULL};
    PyObject *value = Py_None;
    PyObject *name = Py_None;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$O:Mutex", kwlist,
                                     &value, &name)) {
        return -1;
    }
    /* `name or next_name("Mutex")`, as in the pure-Python Mutex. */
    int has_name = PyObject_IsTrue(name);
    if (has_name < 0) {
        return -1;
    }
    if (has_name) {
        Py_INCREF(name);
    }
    else {
        PyObject *func = python_helper(&next_name_func,
                                       "concurrency.backends._realthread",
                                       "next_name");
        if (func == NULL) {
            return -1;
        }
        name = PyObject_CallFunction(func, "s", "Mutex");
        if (name == NULL) {
            return -1;
        }
    }
    Py_SETREF(self->name, name);
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
    return 0;
}

/* Break reference cycles.  value and name become None rather than NULL so
   that the object stays safe to use if anything still reaches it; and
   guard_type is kept (lock() needs it, and a class is collected without
   this object's help). */
static int
Mutex_clear(MutexObject *self)
{
    Py_SETREF(self->value, Py_NewRef(Py_None));
    Py_SETREF(self->name, Py_NewRef(Py_None));
    Py_CLEAR(self->poison);
    return 0;
}

static void
Mutex_dealloc(MutexObject *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->value);
    Py_CLEAR(self->name);
    Py_CLEAR(self->poison);
    Py_CLEAR(self->guard_type);
    if (self->lock != NULL) {
        /* Only a collected cycle or a dropped, unreleased guard can leave
           it held; PyThread locks must not be freed while locked. */
        if (self->locked) {
            PyThread_release_lock(self->lock);
        }
        PyThread_free_lock(self->lock);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Mutex_methods[] = {
    {"lock", (PyCFunction)Mutex_lock, METH_NOARGS, mutex_lock_doc},
    {"try_lock", (PyCFunction)Mutex_try_lock, METH_NOARGS, mutex_try_lock_doc},
    {"try_lock_for", (PyCFunction)Mutex_try_lock_for, METH_O,
     mutex_try_lock_for_doc},
    {"is_locked", (PyCFunction)Mutex_is_locked, METH_NOARGS,
     mutex_is_locked_doc},
    {"is_poisoned", (PyCFunction)Mutex_is_poisoned, METH_NOARGS,
     mutex_is_poisoned_doc},
    {"clear_poison", (PyCFunction)Mutex_clear_poison, METH_NOARGS,
     mutex_clear_poison_doc},
    {NULL, NULL}
};

static PyGetSetDef Mutex_getset[] = {
    {"name", (getter)Mutex_get_name, (setter)Mutex_set_name,
     "Label used in errors and traces.", NULL},
    {"_poison", (getter)Mutex_get_poison, (setter)Mutex_set_poison,
     "The exception that poisoned the lock, or None.", NULL},
    {"_value", (getter)Mutex_get_value, NULL,
     "The protected value (read-only here; go through a guard).", NULL},
    {NULL}
};

PyDoc_STRVAR(mutex_doc,
"Mutex(value=None, *, name=None)\n\
\n\
A mutual-exclusion lock that owns `value`; reach the value through a guard.");

static PyTypeObject MutexType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends._fastmutex.Mutex",
    .tp_basicsize = sizeof(MutexObject),
    .tp_dealloc = (destructor)Mutex_dealloc,
    .tp_repr = (reprfunc)Mutex_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = mutex_doc,
    .tp_traverse = (traverseproc)Mutex_traverse,
    .tp_clear = (inquiry)Mutex_clear,
    .tp_methods = Mutex_methods,
    .tp_getset = Mutex_getset,
    .tp_init = (initproc)Mutex_init,
    .tp_new = Mutex_new,
};


/* ------------------------------------------------------ checked variants */

/* CheckedMutex and CheckedMutexGuard are the bases of the `threading`
   backend's Mutex and MutexGuard (concurrency/backends/threading.py).  They
   add the checks that backend makes, at the cost of one thread-ident read
   and compare per call:

   - lock() and try_lock_for() by the thread that already holds the mutex
     raise RuntimeError instead of deadlocking; try_lock() returns None;
   - unlock(), __exit__ and a Condvar wait on a guard by a thread other
     than the one that acquired it raise RuntimeError, and the lock stays
     held;
   - the mutex records its holder, cleared while a Condvar waiter has it
     parked and restored when the waiter takes it back.

   The error messages are written in Python, in the checked backend
   (_refuse_relock and _refuse_not_owner in concurrency.backends.threading);
   only these cold paths call them. */

static PyObject *refuse_relock_func = NULL;
static PyObject *refuse_not_owner_func = NULL;

#define CHECKED_MODULE "concurrency.backends.threading"

/* Raise the re-locking error through _refuse_relock(mutex).  Always returns
   NULL with an exception set. */
static PyObject *
refuse_relock(CheckedMutexObject *m)
{
    PyObject *func = python_helper(&refuse_relock_func, CHECKED_MODULE,
                                   "_refuse_relock");
    if (func == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_CallOneArg(func, (PyObject *)m);
    if (result != NULL) {
        Py_DECREF(result);
        PyErr_SetString(PyExc_SystemError, "_refuse_relock() returned");
    }
    return NULL;
}

/* Raise the foreign-thread error through
   _refuse_not_owner(action, lock_name, owner), where `action` says what was
   attempted ("releasing", "waiting on <condvar> with").  Always returns NULL
   with an exception set. */
static PyObject *
refuse_not_owner(CheckedGuardObject *g, PyObject *action)
{
    PyObject *func = python_helper(&refuse_not_owner_func, CHECKED_MODULE,
                                   "_refuse_not_owner");
    if (func == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_CallFunction(func, "OOk", action,
                                             g->base.mutex->name, g->owner);
    if (result != NULL) {
        Py_DECREF(result);
        PyErr_SetString(PyExc_SystemError, "_refuse_not_owner() returned");
    }
    return NULL;
}

/* The same for a release ("releasing a guard of ..."). */
static PyObject *
refuse_foreign_release(CheckedGuardObject *g)
{
    PyObject *action = PyUnicode_FromString("releasing");
    if (action == NULL) {
        return NULL;
    }
    refuse_not_owner(g, action);
    Py_DECREF(action);
    return NULL;
}

static inline CheckedMutexObject *
checked_mutex(GuardObject *g)
{
    return (CheckedMutexObject *)g->mutex;
}

/* The lock was just taken by thread `me`: hand out a guard recording it as
   the owner (or, if poisoned, release and raise, as new_guard does). */
static PyObject *
new_checked_guard(CheckedMutexObject *m, unsigned long me)
{
    PyObject *guard = new_guard(&m->base);
    if (guard == NULL) {
        return NULL;
    }
    m->owner = me;
    ((CheckedGuardObject *)guard)->owner = me;
    return guard;
}

PyDoc_STRVAR(checked_lock_doc,
"lock() -> MutexGuard\n\
\n\
Block until the lock is free and return its guard; RuntimeError if this\n\
thread already holds it (waiting would deadlock).");

static PyObject *
CheckedMutex_lock(CheckedMutexObject *self, PyObject *Py_UNUSED(ignored))
{
    unsigned long me = PyThread_get_thread_ident();
    if (self->owner == me) {
        return refuse_relock(self);
    }
    if (!try_acquire(&self->base) && acquire_timed(&self->base, -1) < 0) {
        return NULL;
    }
    return new_checked_guard(self, me);
}

PyDoc_STRVAR(checked_try_lock_doc,
"try_lock() -> MutexGuard | None\n\
\n\
The guard if the lock is free right now, else None (also when this thread\n\
holds it: a try cannot deadlock).");

static PyObject *
CheckedMutex_try_lock(CheckedMutexObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!try_acquire(&self->base)) {
        Py_RETURN_NONE;
    }
    return new_checked_guard(self, PyThread_get_thread_ident());
}

PyDoc_STRVAR(checked_try_lock_for_doc,
"try_lock_for(seconds) -> MutexGuard | None\n\
\n\
The guard if the lock frees up within `seconds`, else None; RuntimeError\n\
if this thread already holds it.");

static PyObject *
CheckedMutex_try_lock_for(CheckedMutexObject *self, PyObject *seconds)
{
    unsigned long me = PyThread_get_thread_ident();
    if (self->owner == me) {
        return refuse_relock(self);
    }
    long long microseconds = timeout_microseconds(seconds);
    if (microseconds < 0) {
        return NULL;
    }
    int acquired = acquire_timed(&self->base, microseconds);
    if (acquired < 0) {
        return NULL;
    }
    if (!acquired) {
        Py_RETURN_NONE;
    }
    return new_checked_guard(self, me);
}

/* `_owner`: the holding thread's ident, or None (for diagnostics). */
static PyObject *
CheckedMutex_get_owner(CheckedMutexObject *self, void *Py_UNUSED(closure))
{
    if (self->owner == 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLong(self->owner);
}

static PyObject *
CheckedGuard_exit(CheckedGuardObject *self, PyObject *const *args,
                  Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "__exit__() takes exactly 3 arguments (%zd given)", nargs);
        return NULL;
    }
    MutexObject *m = self->base.mutex;
    if (m == NULL) {
        Py_RETURN_NONE;   /* released early with unlock() */
    }
    if (PyThread_get_thread_ident() != self->owner) {
        return refuse_foreign_release(self);
    }
    ((CheckedMutexObject *)m)->owner = 0;
    return exit_held(&self->base, m, args);
}

PyDoc_STRVAR(checked_unlock_doc,
"unlock()\n\
\n\
Release now; only the thread that acquired the guard may, and only once.");

static PyObject *
CheckedGuard_unlock(CheckedGuardObject *self, PyObject *Py_UNUSED(ignored))
{
    MutexObject *m = self->base.mutex;
    if (m == NULL) {
        return guard_released();
    }
    if (PyThread_get_thread_ident() != self->owner) {
        return refuse_foreign_release(self);
    }
    ((CheckedMutexObject *)m)->owner = 0;
    self->base.mutex = NULL;
    int err = release(m);
    Py_DECREF(m);
    if (err < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Only the thread that acquired the guard may wait with it. */
static PyObject *
CheckedGuard_mutex_for_wait(CheckedGuardObject *self, PyObject *condvar)
{
    if (self->base.mutex == NULL) {
        return guard_released();
    }
    if (PyThread_get_thread_ident() != self->owner) {
        PyObject *name = PyObject_GetAttrString(condvar, "name");
        if (name == NULL) {
            return NULL;
        }
        PyObject *action = PyUnicode_FromFormat("waiting on %S with", name);
        Py_DECREF(name);
        if (action == NULL) {
            return NULL;
        }
        refuse_not_owner(self, action);
        Py_DECREF(action);
        return NULL;
    }
    return Py_NewRef(self->base.mutex);
}

/* While parked the lock is free, so nobody holds the mutex. */
static PyObject *
CheckedGuard_park(CheckedGuardObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->base.mutex == NULL) {
        return guard_released();
    }
    if (release(self->base.mutex) < 0) {
        return NULL;
    }
    checked_mutex(&self->base)->owner = 0;
    Py_RETURN_NONE;
}

/* Take the lock back after a wait, the guard's thread holding it again. */
static PyObject *
CheckedGuard_unpark(CheckedGuardObject *self, PyObject *Py_UNUSED(ignored))
{
    MutexObject *m = self->base.mutex;
    if (m == NULL) {
        return guard_released();
    }
    if (retake(&self->base, m) < 0) {
        return NULL;
    }
    ((CheckedMutexObject *)m)->owner = self->owner;
    if (m->poison != NULL) {
        return raise_poisoned(m);
    }
    Py_RETURN_NONE;
}

/* `_owner`: the ident of the thread that acquired this guard. */
static PyObject *
CheckedGuard_get_owner(CheckedGuardObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(self->owner);
}

static PyMethodDef CheckedGuard_methods[] = {
    {"__exit__", (PyCFunction)(void (*)(void))CheckedGuard_exit,
     METH_FASTCALL, guard_exit_doc},
    {"unlock", (PyCFunction)CheckedGuard_unlock, METH_NOARGS,
     checked_unlock_doc},
    {"_mutex_for_wait", (PyCFunction)CheckedGuard_mutex_for_wait, METH_O,
     NULL},
    {"_park", (PyCFunction)CheckedGuard_park, METH_NOARGS, NULL},
    {"_unpark", (PyCFunction)CheckedGuard_unpark, METH_NOARGS, NULL},
    {NULL, NULL}
};

static PyGetSetDef CheckedGuard_getset[] = {
    {"_owner", (getter)CheckedGuard_get_owner, NULL,
     "Ident of the thread that acquired this guard.", NULL},
    {NULL}
};

PyDoc_STRVAR(checked_guard_doc,
"A MutexGuard that only the thread which acquired it may release.");

static PyTypeObject CheckedGuardType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends._fastmutex.CheckedMutexGuard",
    .tp_basicsize = sizeof(CheckedGuardObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = checked_guard_doc,
    .tp_traverse = (traverseproc)Guard_traverse,
    .tp_clear = (inquiry)Guard_clear,
    .tp_methods = CheckedGuard_methods,
    .tp_getset = CheckedGuard_getset,
    .tp_base = &GuardType,
};

static PyMethodDef CheckedMutex_methods[] = {
    {"lock", (PyCFunction)CheckedMutex_lock, METH_NOARGS, checked_lock_doc},
    {"try_lock", (PyCFunction)CheckedMutex_try_lock, METH_NOARGS,
     checked_try_lock_doc},
    {"try_lock_for", (PyCFunction)CheckedMutex_try_lock_for, METH_O,
     checked_try_lock_for_doc},
    {NULL, NULL}
};

static PyGetSetDef CheckedMutex_getset[] = {
    {"_owner", (getter)CheckedMutex_get_owner, NULL,
     "Ident of the thread holding the lock, or None.", NULL},
    {NULL}
};

PyDoc_STRVAR(checked_mutex_doc,
"CheckedMutex(value=None, *, name=None)\n\
\n\
A Mutex that refuses re-locking by its holder and foreign releases.");

static PyTypeObject CheckedMutexType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends._fastmutex.CheckedMutex",
    .tp_basicsize = sizeof(CheckedMutexObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = checked_mutex_doc,
    .tp_traverse = (traverseproc)Mutex_traverse,
    .tp_clear = (inquiry)Mutex_clear,
    .tp_methods = CheckedMutex_methods,
    .tp_getset = CheckedMutex_getset,
    .tp_base = &MutexType,
};


/* ---------------------------------------------------------------- module */

PyDoc_STRVAR(module_doc,
"C base types for the Mutex and MutexGuard of the `fast` backend (Mutex,\n\
MutexGuard) and of the checked `threading` backend (CheckedMutex,\n\
CheckedMutexGuard).\n\
\n\
Not used directly: the backends subclass them together with the facade\n\
classes.  A Mutex subclass names its guard class in the class attribute\n\
`_guard_class` (a subclass of this module's MutexGuard; of\n\
CheckedMutexGuard for a CheckedMutex).");

static struct PyModuleDef fastmutex_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "concurrency.backends._fastmutex",
    .m_doc = module_doc,
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__fastmutex(void)
{
    if (PyType_Ready(&GuardType) < 0 || PyType_Ready(&MutexType) < 0
        || PyType_Ready(&CheckedGuardType) < 0
        || PyType_Ready(&CheckedMutexType) < 0) {
        return NULL;
    }
    /* The C Mutexes, used on their own, hand out C guards. */
    if (PyDict_SetItemString(MutexType.tp_dict, "_guard_class",
                             (PyObject *)&GuardType) < 0
        || PyDict_SetItemString(CheckedMutexType.tp_dict, "_guard_class",
                                (PyObject *)&CheckedGuardType) < 0) {
        return NULL;
    }
    PyType_Modified(&MutexType);
    PyType_Modified(&CheckedMutexType);

    PyObject *module = PyModule_Create(&fastmutex_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Mutex", (PyObject *)&MutexType) < 0
        || PyModule_AddObjectRef(module, "MutexGuard",
                                 (PyObject *)&GuardType) < 0
        || PyModule_AddObjectRef(module, "CheckedMutex",
                                 (PyObject *)&CheckedMutexType) < 0
        || PyModule_AddObjectRef(module, "CheckedMutexGuard",
                                 (PyObject *)&CheckedGuardType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
