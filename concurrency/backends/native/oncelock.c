/* oncelock.c: OnceLock, a cell written at most once.

   `value` is NULL while the cell is empty.  It is written once, in the state
   section, with an atomic store made after the object is complete, so get()
   reads it with a single atomic load and never blocks (safe publication on
   free-threaded builds).  `initializer` names the thread running a
   get_or_init() initializer (0 when none), and `waiters` holds the threads
   waiting for it: get_or_init() callers and set() callers alike.

   Semantics (those of the pure-Python OnceLock):
   - get(): the value, or None while empty;
   - set(value) -> bool: store `value` if the cell is empty (waiting for a
     running initializer first); True when this call stored it;
   - get_or_init(fn): the value, running `fn` to create it if empty.  Exactly
     one fn runs at a time, called outside any state section.  If it raises
     (any BaseException, KeyboardInterrupt included) the cell stays empty,
     the exception propagates and one waiting caller takes its turn;
   - calling get_or_init() or set() from inside the running initializer, on
     its own thread, raises RuntimeError (it would deadlock).

   Asynchronous exceptions: a waiter interrupted while parked leaves the
   queue (or, if it was woken meanwhile, passes the wake-up on while nobody
   initializes), so it leaves no trace; an initializer that is interrupted
   raises out of fn, which is the failure path above. */

#include "core.h"

typedef struct {
    PyObject_HEAD
    PyObject *value;           /* NULL while empty; an atomic word, written once */
    unsigned long initializer; /* the thread running an initializer, or 0 (section) */
    cc_queue waiters;          /* get_or_init() and set() callers (section) */
    PyObject *name;            /* label for errors and repr */
} OnceLockObject;

/* The outcome of one look at the cell, in its state section. */
enum { LOOK_SET, LOOK_EMPTY_CLAIMED, LOOK_REENTRANT, LOOK_QUEUED, LOOK_NEED_WAITER };

static PyObject *
refuse_reentrant(OnceLockObject *self, const char *what)
{
    PyErr_Format(PyExc_RuntimeError,
                 "%S.%s() called from inside its own initializer: it would deadlock",
                 self->name, what);
    return NULL;
}

/* A waiter leaves after an exception: out of the queue, or, if it was woken
   meanwhile and nobody holds the turn to initialize, pass the wake-up on.
   State section held. */
static void
settle_abandoned(OnceLockObject *self, cc_waiter *w)
{
    if (!w->woken) {
        cc_queue_remove(&self->waiters, w);
    }
    else if (self->value == NULL && self->initializer == 0) {
        cc_queue_wake_one(&self->waiters);
    }
}

/* Park `w` (queued by the caller's look) until woken.  0 when woken (and
   ready to look again), -1 with the exception of a signal handler after
   leaving the queue cleanly. */
static int
park(OnceLockObject *self, cc_waiter *w)
{
    if (cc_park(w, CC_FOREVER) == CC_PARK_WOKEN) {
        cc_waiter_rearm(w);   /* the waker took us out of the queue */
        return 0;
    }
    STATE_BEGIN(self)
    settle_abandoned(self, w);
    STATE_END();
    return -1;
}

static PyObject *
OnceLock_get(OnceLockObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *value = cc_load_ptr(&self->value);
    return Py_NewRef(value != NULL ? value : Py_None);
}

PyDoc_STRVAR(set_doc,
"set(value) -> bool\n\
\n\
Store `value` if the cell is empty; True when this call stored it.  Waits\n\
for a running initializer first.");

static PyObject *
OnceLock_set(OnceLockObject *self, PyObject *value)
{
    if (cc_load_ptr(&self->value) != NULL) {
        Py_RETURN_FALSE;
    }
    unsigned long me = PyThread_get_thread_ident();
    cc_waiter w;
    int have_waiter = 0;
    int look;
    for (;;) {
        STATE_BEGIN(self)
        if (self->value != NULL) {
            look = LOOK_SET;
        }
        else if (self->initializer == 0) {
            Py_INCREF(value);
            cc_store_ptr(&self->value, value);   /* publish: complete before the store */
            cc_queue_wake_all(&self->waiters);
            look = LOOK_EMPTY_CLAIMED;
        }
        else if (self->initializer == me) {
            look = LOOK_REENTRANT;
        }
        else if (have_waiter) {
            cc_queue_push(&self->waiters, &w);
            look = LOOK_QUEUED;
        }
        else {
            look = LOOK_NEED_WAITER;
        }
        STATE_END();
        if (look == LOOK_NEED_WAITER) {
            if (cc_waiter_init(&w, 0) < 0) {
                return NULL;
            }
            have_waiter = 1;
            continue;
        }
        if (look != LOOK_QUEUED) {
            break;
        }
        if (park(self, &w) < 0) {
            cc_waiter_fini(&w);
            return NULL;
        }
    }
    if (have_waiter) {
        cc_waiter_fini(&w);
    }
    if (look == LOOK_REENTRANT) {
        return refuse_reentrant(self, "set");
    }
    return PyBool_FromLong(look == LOOK_EMPTY_CLAIMED);
}

PyDoc_STRVAR(get_or_init_doc,
"get_or_init(fn) -> value\n\
\n\
The value, running `fn()` to create it if the cell is empty.  Exactly one fn\n\
runs at a time; concurrent callers wait for it.  If it raises, the cell stays\n\
empty, the exception propagates and a waiting caller takes its turn.");

static PyObject *
OnceLock_get_or_init(OnceLockObject *self, PyObject *fn)
{
    PyObject *value = cc_load_ptr(&self->value);
    if (value != NULL) {
        return Py_NewRef(value);
    }
    unsigned long me = PyThread_get_thread_ident();
    cc_waiter w;
    int have_waiter = 0;
    int look;
    for (;;) {
        STATE_BEGIN(self)
        value = self->value;
        if (value != NULL) {
            Py_INCREF(value);
            look = LOOK_SET;
        }
        else if (self->initializer == 0) {
            self->initializer = me;   /* our turn: nobody else initializes now */
            look = LOOK_EMPTY_CLAIMED;
        }
        else if (self->initializer == me) {
            look = LOOK_REENTRANT;
        }
        else if (have_waiter) {
            cc_queue_push(&self->waiters, &w);
            look = LOOK_QUEUED;
        }
        else {
            look = LOOK_NEED_WAITER;
        }
        STATE_END();
        if (look == LOOK_NEED_WAITER) {
            if (cc_waiter_init(&w, 0) < 0) {
                return NULL;
            }
            have_waiter = 1;
            continue;
        }
        if (look != LOOK_QUEUED) {
            break;
        }
        if (park(self, &w) < 0) {
            cc_waiter_fini(&w);
            return NULL;
        }
    }
    if (have_waiter) {
        cc_waiter_fini(&w);
    }
    if (look == LOOK_SET) {
        return value;
    }
    if (look == LOOK_REENTRANT) {
        return refuse_reentrant(self, "get_or_init");
    }

    /* Our turn, outside any state section: fn may run any Python code. */
    value = PyObject_CallNoArgs(fn);
    Py_XINCREF(value);   /* one reference for the cell, one for the caller */
    STATE_BEGIN(self)
    self->initializer = 0;
    if (value != NULL) {
        cc_store_ptr(&self->value, value);   /* publish: complete before the store */
        cc_queue_wake_all(&self->waiters);
    }
    else {
        cc_queue_wake_one(&self->waiters);   /* the next waiter takes its turn */
    }
    STATE_END();
    return value;
}

static PyObject *
OnceLock_get_name(OnceLockObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->name);
}

static int
OnceLock_set_name(OnceLockObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "a OnceLock's name cannot be deleted");
        return -1;
    }
    Py_SETREF(self->name, Py_NewRef(value));
    return 0;
}

/* `_initializer`: the ident of the thread running an initializer, or None. */
static PyObject *
OnceLock_get_initializer(OnceLockObject *self, void *Py_UNUSED(closure))
{
    unsigned long ident;
    STATE_BEGIN(self)
    ident = self->initializer;
    STATE_END();
    if (ident == 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLong(ident);
}

/* `_waiting`: how many threads wait for the initializer (a snapshot). */
static PyObject *
OnceLock_get_waiting(OnceLockObject *self, void *Py_UNUSED(closure))
{
    Py_ssize_t n;
    STATE_BEGIN(self)
    n = self->waiters.count;
    STATE_END();
    return PyLong_FromSsize_t(n);
}

static PyObject *
OnceLock_repr(OnceLockObject *self)
{
    PyObject *value = cc_load_ptr(&self->value);
    if (value != NULL) {
        return PyUnicode_FromFormat("<OnceLock %S set>", self->name);
    }
    return PyUnicode_FromFormat("<OnceLock %S empty>", self->name);
}

static PyObject *
OnceLock_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    OnceLockObject *self = (OnceLockObject *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->name = Py_NewRef(Py_None);
    }
    return (PyObject *)self;
}

/* OnceLock(*, name=None). */
static int
OnceLock_init(OnceLockObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", NULL};
    PyObject *name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$O:OnceLock", kwlist, &name)) {
        return -1;
    }
    PyObject *label = cc_name_or_auto(name, "OnceLock");
    if (label == NULL) {
        return -1;
    }
    Py_SETREF(self->name, label);
    return 0;
}

static int
OnceLock_traverse(OnceLockObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->value);
    Py_VISIT(self->name);
    return 0;
}

static int
OnceLock_clear(OnceLockObject *self)
{
    PyObject *value = cc_exchange_ptr(&self->value, NULL);
    Py_XDECREF(value);
    return 0;
}

static void
OnceLock_dealloc(OnceLockObject *self)
{
    PyObject_GC_UnTrack(self);
    OnceLock_clear(self);
    Py_CLEAR(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef OnceLock_methods[] = {
    {"get", (PyCFunction)OnceLock_get, METH_NOARGS,
     "get() -> value | None\n\nThe value, or None while empty; never blocks."},
    {"set", (PyCFunction)OnceLock_set, METH_O, set_doc},
    {"get_or_init", (PyCFunction)OnceLock_get_or_init, METH_O, get_or_init_doc},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef OnceLock_getset[] = {
    {"name", (getter)OnceLock_get_name, (setter)OnceLock_set_name,
     "Label used in errors.", NULL},
    {"_initializer", (getter)OnceLock_get_initializer, NULL, NULL, NULL},
    {"_waiting", (getter)OnceLock_get_waiting, NULL, NULL, NULL},
    {NULL}
};

static PyTypeObject OnceLockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.OnceLock",
    .tp_doc = PyDoc_STR("A cell written at most once; get_or_init runs exactly one "
                        "initializer at a time (native core)."),
    .tp_basicsize = sizeof(OnceLockObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = OnceLock_new,
    .tp_init = (initproc)OnceLock_init,
    .tp_dealloc = (destructor)OnceLock_dealloc,
    .tp_traverse = (traverseproc)OnceLock_traverse,
    .tp_clear = (inquiry)OnceLock_clear,
    .tp_repr = (reprfunc)OnceLock_repr,
    .tp_methods = OnceLock_methods,
    .tp_getset = OnceLock_getset,
};

int
cc_add_oncelock_types(PyObject *module)
{
    return cc_add_type(module, &OnceLockType);
}
