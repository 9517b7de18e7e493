/* condvar.c: Condvar, used with the guard of one native Mutex.

   A waiter queues itself in the condvar's state section *before* it lets go
   of the mutex, so a notify made under the mutex after the waiter checked its
   condition always finds it.  Whatever happens while it sleeps -- a timeout,
   a notify, a signal handler raising KeyboardInterrupt -- the waiter takes
   the mutex back before it returns or raises (cc_mutex_reacquire keeps any
   exception raised meanwhile for afterwards).  A waiter that was notified but
   leaves with an exception passes the notification on, so none is lost. */

#include "mutex.h"

typedef struct {
    PyObject_HEAD
    cc_queue waiters;          /* threads in wait* (state section) */
    MutexObject *mutex;        /* the mutex it is bound to, or NULL */
    PyObject *name;
} CondvarObject;

/* Bind to `m` on first use; refuse another mutex afterwards. */
static int
bind(CondvarObject *self, MutexObject *m)
{
    MutexObject *bound;
    STATE_BEGIN(self)
    bound = self->mutex;
    if (bound == NULL) {
        self->mutex = (MutexObject *)Py_NewRef((PyObject *)m);
        bound = m;
    }
    STATE_END();
    if (bound != m) {
        PyErr_Format(PyExc_RuntimeError,
                     "%S was used with %S and now with %S; a Condvar must always be "
                     "used with the same Mutex", self->name, bound->name, m->name);
        return -1;
    }
    return 0;
}

/* Release the guard's mutex, sleep until notified or `deadline`, take the
   mutex back.  Returns 1 when notified, 0 on timeout, -1 with an exception
   set -- in every case holding the mutex again. */
static int
wait_once(CondvarObject *self, PyObject *guard, cc_time deadline)
{
    MutexObject *m = cc_mutex_for_wait(guard, self->name);
    if (m == NULL || bind(self, m) < 0) {
        return -1;
    }
    cc_waiter w;
    if (cc_waiter_init(&w, 0) < 0) {
        return -1;
    }
    unsigned long owner = ((MutexGuardObject *)guard)->owner;
    Py_INCREF(m);   /* the guard may be released meanwhile by a misbehaving thread */

    STATE_BEGIN(self)
    cc_queue_push(&self->waiters, &w);
    STATE_END();
    cc_mutex_guard_lend(guard, 1);
    cc_mutex_release_for_wait(m);

    cc_park_result r = cc_park(&w, deadline);
    int notified;
    STATE_BEGIN(self)
    notified = w.woken;
    if (!w.woken) {
        cc_queue_remove(&self->waiters, &w);
    }
    else if (r == CC_PARK_ERROR) {
        cc_queue_wake_one(&self->waiters);   /* pass the notification on */
    }
    STATE_END();

    PyObject *pending = r == CC_PARK_ERROR ? PyErr_GetRaisedException() : NULL;
    cc_mutex_reacquire(m, owner, &pending);
    cc_mutex_guard_lend(guard, 0);
    cc_waiter_fini(&w);
    int result = notified;
    if (cc_pending_raise(&pending) < 0) {
        result = -1;
    }
    else if (cc_load_ptr(&m->poison) != NULL) {
        cc_raise_poisoned((PyObject *)m);   /* still held: the `with` releases it */
        result = -1;
    }
    Py_DECREF(m);
    return result;
}

/* predicate(guard.value): 1 true, 0 false, -1 error. */
static int
holds(PyObject *guard, PyObject *predicate)
{
    PyObject *value = PyObject_GetAttrString(guard, "value");
    if (value == NULL) {
        return -1;
    }
    PyObject *verdict = PyObject_CallOneArg(predicate, value);
    Py_DECREF(value);
    if (verdict == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(verdict);
    Py_DECREF(verdict);
    return truth;
}

PyDoc_STRVAR(wait_doc,
"wait(guard)\n\
\n\
Release the guard's lock, sleep until notified, re-acquire (may wake spuriously).");

static PyObject *
Condvar_wait(CondvarObject *self, PyObject *guard)
{
    if (wait_once(self, guard, CC_FOREVER) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(wait_while_doc,
"wait_while(guard, predicate)\n\
\n\
Wait until `predicate(guard.value)` is false.");

static PyObject *
Condvar_wait_while(CondvarObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!cc_check_nargs("wait_while", nargs, 2)) {
        return NULL;
    }
    for (;;) {
        int truth = holds(args[0], args[1]);
        if (truth < 0) {
            return NULL;
        }
        if (!truth) {
            Py_RETURN_NONE;
        }
        if (wait_once(self, args[0], CC_FOREVER) < 0) {
            return NULL;
        }
    }
}

PyDoc_STRVAR(wait_timeout_doc,
"wait_timeout(guard, seconds) -> bool\n\
\n\
Like wait() but for at most `seconds`; True when it timed out.");

static PyObject *
Condvar_wait_timeout(CondvarObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!cc_check_nargs("wait_timeout", nargs, 2)) {
        return NULL;
    }
    cc_time deadline;
    if (cc_deadline_from(args[1], "Condvar.wait_timeout", 0, &deadline) < 0) {
        return NULL;
    }
    int notified = wait_once(self, args[0], deadline);
    if (notified < 0) {
        return NULL;
    }
    return PyBool_FromLong(!notified);
}

PyDoc_STRVAR(wait_timeout_while_doc,
"wait_timeout_while(guard, seconds, predicate) -> bool\n\
\n\
Wait while `predicate(guard.value)` holds, at most `seconds`; True on timeout.");

static PyObject *
Condvar_wait_timeout_while(CondvarObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!cc_check_nargs("wait_timeout_while", nargs, 3)) {
        return NULL;
    }
    cc_time deadline;
    if (cc_deadline_from(args[1], "Condvar.wait_timeout_while", 0, &deadline) < 0) {
        return NULL;
    }
    for (;;) {
        int truth = holds(args[0], args[2]);
        if (truth < 0) {
            return NULL;
        }
        if (!truth) {
            Py_RETURN_FALSE;
        }
        if (cc_now() >= deadline) {
            Py_RETURN_TRUE;
        }
        if (wait_once(self, args[0], deadline) < 0) {
            return NULL;
        }
    }
}

static PyObject *
Condvar_notify_one(CondvarObject *self, PyObject *Py_UNUSED(ignored))
{
    STATE_BEGIN(self)
    cc_queue_wake_one(&self->waiters);
    STATE_END();
    Py_RETURN_NONE;
}

static PyObject *
Condvar_notify_all(CondvarObject *self, PyObject *Py_UNUSED(ignored))
{
    STATE_BEGIN(self)
    cc_queue_wake_all(&self->waiters);
    STATE_END();
    Py_RETURN_NONE;
}

static PyObject *
Condvar_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    CondvarObject *self = (CondvarObject *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->name = Py_NewRef(Py_None);
    }
    return (PyObject *)self;
}

static int
Condvar_init(CondvarObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", NULL};
    PyObject *name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$O:Condvar", kwlist, &name)) {
        return -1;
    }
    PyObject *label = cc_name_or_auto(name, "Condvar");
    if (label == NULL) {
        return -1;
    }
    Py_SETREF(self->name, label);
    return 0;
}

static PyObject *
Condvar_get_name(CondvarObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->name);
}

static int
Condvar_set_name(CondvarObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "a Condvar's name cannot be deleted");
        return -1;
    }
    Py_SETREF(self->name, Py_NewRef(value));
    return 0;
}

/* `_mutex`: the Mutex it is bound to, or None before its first wait. */
static PyObject *
Condvar_get_mutex(CondvarObject *self, void *Py_UNUSED(closure))
{
    PyObject *m = (PyObject *)self->mutex;
    return Py_NewRef(m != NULL ? m : Py_None);
}

/* `_waiting`: how many threads are parked in wait* (a snapshot). */
static PyObject *
Condvar_get_waiting(CondvarObject *self, void *Py_UNUSED(closure))
{
    Py_ssize_t n;
    STATE_BEGIN(self)
    n = self->waiters.count;
    STATE_END();
    return PyLong_FromSsize_t(n);
}

static int
Condvar_traverse(CondvarObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->mutex);
    Py_VISIT(self->name);
    return 0;
}

static int
Condvar_clear(CondvarObject *self)
{
    Py_CLEAR(self->mutex);
    return 0;
}

static void
Condvar_dealloc(CondvarObject *self)
{
    PyObject_GC_UnTrack(self);
    Condvar_clear(self);
    Py_CLEAR(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Condvar_repr(CondvarObject *self)
{
    return PyUnicode_FromFormat("<Condvar %S>", self->name);
}

static PyMethodDef Condvar_methods[] = {
    {"wait", (PyCFunction)Condvar_wait, METH_O, wait_doc},
    {"wait_while", (PyCFunction)(void (*)(void))Condvar_wait_while, METH_FASTCALL,
     wait_while_doc},
    {"wait_timeout", (PyCFunction)(void (*)(void))Condvar_wait_timeout, METH_FASTCALL,
     wait_timeout_doc},
    {"wait_timeout_while", (PyCFunction)(void (*)(void))Condvar_wait_timeout_while,
     METH_FASTCALL, wait_timeout_while_doc},
    {"notify_one", (PyCFunction)Condvar_notify_one, METH_NOARGS, "Wake one waiter."},
    {"notify_all", (PyCFunction)Condvar_notify_all, METH_NOARGS, "Wake every waiter."},
    {NULL, NULL}
};

static PyGetSetDef Condvar_getset[] = {
    {"name", (getter)Condvar_get_name, (setter)Condvar_set_name, "Label used in errors.", NULL},
    {"_mutex", (getter)Condvar_get_mutex, NULL, NULL, NULL},
    {"_waiting", (getter)Condvar_get_waiting, NULL, NULL, NULL},
    {NULL}
};

static PyTypeObject CondvarType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.Condvar",
    .tp_doc = PyDoc_STR("A condition variable used with one native Mutex."),
    .tp_basicsize = sizeof(CondvarObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Condvar_new,
    .tp_init = (initproc)Condvar_init,
    .tp_dealloc = (destructor)Condvar_dealloc,
    .tp_traverse = (traverseproc)Condvar_traverse,
    .tp_clear = (inquiry)Condvar_clear,
    .tp_repr = (reprfunc)Condvar_repr,
    .tp_methods = Condvar_methods,
    .tp_getset = Condvar_getset,
};

int
cc_add_condvar_types(PyObject *module)
{
    return cc_add_type(module, &CondvarType);
}
