/* core.c: waiters, parking, time and the small Python helpers every
   primitive of the native core shares (see core.h for the protocol). */

#include "core.h"
#include <math.h>
#include <stdarg.h>


/* ------------------------------------------------------------------- time */

cc_time
cc_now(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    (void)PyTime_MonotonicRaw(&t);
    return (cc_time)t;
#else
    return (cc_time)_PyTime_GetMonotonicClock();
#endif
}

static PyObject *check_timeout_func;
static PyObject *raise_poisoned_func;
static PyObject *allow_none_false;   /* {"allow_none": False} */
static PyObject *checked_module;     /* concurrency.backends.threading, lazily */

int
cc_deadline_from(PyObject *seconds, const char *what, int allow_none,
                 cc_time *deadline)
{
    if (seconds == Py_None && allow_none) {
        *deadline = CC_FOREVER;
        return 0;
    }
    PyObject *args = Py_BuildValue("(Os)", seconds, what);
    if (args == NULL) {
        return -1;
    }
    PyObject *checked = PyObject_Call(check_timeout_func, args,
                                      allow_none ? NULL : allow_none_false);
    Py_DECREF(args);
    if (checked == NULL) {
        return -1;
    }
    if (checked == Py_None) {
        Py_DECREF(checked);
        *deadline = CC_FOREVER;
        return 0;
    }
    double secs = PyFloat_AsDouble(checked);
    Py_DECREF(checked);
    if (secs == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    /* check_timeout caps at 1e9 s, so this cannot overflow 64 bits. */
    *deadline = cc_now() + (cc_time)ceil(secs * 1e9);
    return 0;
}


/* ---------------------------------------------------------------- waiters */

int
cc_waiter_init(cc_waiter *w, int kind)
{
    w->prev = w->next = NULL;
    w->woken = 0;
    w->kind = kind;
    w->ident = PyThread_get_thread_ident();
    w->ticket = 0;
    w->parker = PyThread_allocate_lock();
    if (w->parker == NULL) {
        PyErr_SetString(PyExc_MemoryError, "cannot allocate a parking lock");
        return -1;
    }
    (void)PyThread_acquire_lock(w->parker, NOWAIT_LOCK);
    return 0;
}

void
cc_waiter_rearm(cc_waiter *w)
{
    w->woken = 0;
    (void)PyThread_acquire_lock(w->parker, NOWAIT_LOCK);
}

void
cc_waiter_fini(cc_waiter *w)
{
    if (w->parker != NULL) {
        PyThread_free_lock(w->parker);
        w->parker = NULL;
    }
}

void
cc_queue_push(cc_queue *q, cc_waiter *w)
{
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail != NULL) {
        q->tail->next = w;
    }
    else {
        q->head = w;
    }
    q->tail = w;
    q->count++;
}

void
cc_queue_remove(cc_queue *q, cc_waiter *w)
{
    if (w->prev != NULL) {
        w->prev->next = w->next;
    }
    else {
        q->head = w->next;
    }
    if (w->next != NULL) {
        w->next->prev = w->prev;
    }
    else {
        q->tail = w->prev;
    }
    w->prev = w->next = NULL;
    q->count--;
}

void
cc_wake(cc_waiter *w)
{
    w->woken = 1;
    PyThread_release_lock(w->parker);
}

int
cc_queue_wake_one(cc_queue *q)
{
    cc_waiter *w = q->head;
    if (w == NULL) {
        return 0;
    }
    cc_queue_remove(q, w);
    cc_wake(w);
    return 1;
}

Py_ssize_t
cc_queue_wake_all(cc_queue *q)
{
    Py_ssize_t n = 0;
    while (cc_queue_wake_one(q)) {
        n++;
    }
    return n;
}


/* ---------------------------------------------------------------- parking */

/* Wait on the parker for what is left until `deadline`.  Mirrors
   acquire_timed() in CPython's Modules/_threadmodule.c: the GIL is released
   and a signal interrupts the wait (PY_LOCK_INTR). */
static PyLockStatus
wait_parker(cc_waiter *w, cc_time deadline)
{
    PY_TIMEOUT_T microseconds = -1;
    if (deadline != CC_FOREVER) {
        cc_time left = deadline - cc_now();
        if (left <= 0) {
            return PyThread_acquire_lock_timed(w->parker, 0, 0);
        }
        long long us = (left + 999) / 1000;
        microseconds = us > PY_TIMEOUT_MAX ? PY_TIMEOUT_MAX : (PY_TIMEOUT_T)us;
    }
    PyLockStatus r;
    Py_BEGIN_ALLOW_THREADS
    r = PyThread_acquire_lock_timed(w->parker, microseconds, 1);
    Py_END_ALLOW_THREADS
    return r;
}

/* Set while a model execution runs on this OS thread (see set_model_thread in
   module.c): its threads are greenlets sharing the OS thread, so a real-thread
   primitive that parks here would stop every one of them for good. */
#if defined(_MSC_VER)
static __declspec(thread) int model_thread;
#else
static _Thread_local int model_thread;
#endif

int
cc_set_model_thread(int on)
{
    int previous = model_thread;
    model_thread = on;
    return previous;
}

/* A real-thread primitive is about to block inside a model execution. */
static cc_park_result
refuse_park_in_model(void)
{
    PyErr_SetString(PyExc_RuntimeError,
        "a real-thread primitive would block inside a model execution, which only schedules "
        "the objects created inside the checked function: this one was created outside it "
        "(at module level, in a fixture, or before check() started). Create the locks, "
        "channels and other primitives the test shares inside the checked function");
    return CC_PARK_ERROR;
}

/* For parkers of their own (channel.c): -1 with the error set in a model thread, else 0. */
CC_HIDDEN int
cc_refuse_park_in_model(void)
{
    if (model_thread) {
        refuse_park_in_model();
        return -1;
    }
    return 0;
}

cc_park_result
cc_park(cc_waiter *w, cc_time deadline)
{
    if (model_thread) {
        return refuse_park_in_model();
    }
    for (;;) {
        PyLockStatus r = wait_parker(w, deadline);
        if (r == PY_LOCK_ACQUIRED) {
            return CC_PARK_WOKEN;
        }
        if (r == PY_LOCK_FAILURE) {
            return CC_PARK_TIMEOUT;
        }
        /* PY_LOCK_INTR: run the signal handlers; one that raises ends the wait. */
        if (Py_MakePendingCalls() < 0) {
            return CC_PARK_ERROR;
        }
    }
}

void
cc_pending_add(PyObject **pending, PyObject *exc)
{
    if (exc == NULL) {
        return;
    }
    if (*pending != NULL) {
        PyException_SetContext(exc, *pending);  /* steals *pending */
    }
    *pending = exc;
}

int
cc_pending_raise(PyObject **pending)
{
    if (*pending == NULL) {
        return 0;
    }
    PyErr_SetRaisedException(*pending);
    *pending = NULL;
    return -1;
}

cc_park_result
cc_park_uninterruptible(cc_waiter *w, cc_time deadline, PyObject **pending)
{
    for (;;) {
        cc_park_result r = cc_park(w, deadline);
        if (r != CC_PARK_ERROR) {
            return r;
        }
        cc_pending_add(pending, PyErr_GetRaisedException());
    }
}


/* ----------------------------------------------------- shared Python bits */

static Py_ssize_t name_serial;

PyObject *
cc_auto_name(const char *kind)
{
#ifdef Py_GIL_DISABLED
    Py_ssize_t n = _Py_atomic_add_ssize(&name_serial, 1) + 1;
#else
    Py_ssize_t n = ++name_serial;
#endif
    return PyUnicode_FromFormat("%s#%zd", kind, n);
}

PyObject *
cc_name_or_auto(PyObject *name, const char *kind)
{
    if (name == NULL || name == Py_None) {
        return cc_auto_name(kind);
    }
    int truth = PyObject_IsTrue(name);
    if (truth < 0) {
        return NULL;
    }
    return truth ? Py_NewRef(name) : cc_auto_name(kind);
}

PyObject *
cc_raise_poisoned(PyObject *lock)
{
    PyObject *result = PyObject_CallOneArg(raise_poisoned_func, lock);
    if (result != NULL) {
        Py_DECREF(result);
        PyErr_SetString(PyExc_SystemError, "raise_poisoned() returned");
    }
    return NULL;
}

PyObject *
cc_checked_error(const char *func, PyObject *args)
{
    if (args == NULL) {
        return NULL;
    }
    PyObject *module = checked_module;
    if (module == NULL) {
        module = PyImport_ImportModule("concurrency.backends.threading");
        if (module == NULL) {
            Py_DECREF(args);
            return NULL;
        }
        checked_module = module;   /* kept for the life of the process */
    }
    PyObject *callable = PyObject_GetAttrString(module, func);
    if (callable == NULL) {
        Py_DECREF(args);
        return NULL;
    }
    PyObject *result = PyObject_Call(callable, args, NULL);
    Py_DECREF(callable);
    Py_DECREF(args);
    if (result != NULL) {
        Py_DECREF(result);
        PyErr_Format(PyExc_SystemError, "%s() returned instead of raising", func);
    }
    return NULL;
}

void
cc_location_here(cc_location *where)
{
    PyFrameObject *frame = PyEval_GetFrame();   /* borrowed */
    if (frame == NULL) {
        where->code = NULL;
        where->lasti = -1;
        return;
    }
    where->code = PyFrame_GetCode(frame);
    where->lasti = PyFrame_GetLasti(frame);
}

void
cc_location_clear(cc_location *where)
{
    Py_CLEAR(where->code);
}

PyObject *
cc_location_text(const cc_location *where)
{
    if (where->code == NULL) {
        return PyUnicode_FromString("an unknown place");
    }
    return PyUnicode_FromFormat("%U:%d", where->code->co_filename,
                                PyCode_Addr2Line(where->code, where->lasti));
}

void
cc_warn_dropped(PyObject *source, const char *fmt, ...)
{
    PyObject *exc = PyErr_GetRaisedException();
    va_list vargs;
    va_start(vargs, fmt);
    PyObject *message = PyUnicode_FromFormatV(fmt, vargs);
    va_end(vargs);
    if (message == NULL
        || PyErr_WarnFormat(PyExc_ResourceWarning, 1, "%U", message) < 0) {
        PyErr_WriteUnraisable(source);
    }
    Py_XDECREF(message);
    PyErr_SetRaisedException(exc);
}

PyTypeObject *
cc_guard_class(PyTypeObject *type, const char *attr, PyTypeObject *base)
{
    PyObject *cls = PyObject_GetAttrString((PyObject *)type, attr);
    if (cls == NULL) {
        return NULL;
    }
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, base)) {
        PyErr_Format(PyExc_TypeError, "%s.%s must be a subclass of %s, not %R",
                     type->tp_name, attr, base->tp_name, cls);
        Py_DECREF(cls);
        return NULL;
    }
    return (PyTypeObject *)cls;
}

int
cc_is_checked_class(PyTypeObject *type)
{
    PyObject *flag = PyObject_GetAttrString((PyObject *)type, "_checked_");
    if (flag == NULL) {
        PyErr_Clear();
        return 0;
    }
    int truth = PyObject_IsTrue(flag);
    Py_DECREF(flag);
    return truth;
}

int
cc_check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs == expected) {
        return 1;
    }
    PyErr_Format(PyExc_TypeError, "%s() takes exactly %zd arguments (%zd given)",
                 name, expected, nargs);
    return 0;
}

int
cc_add_type(PyObject *module, PyTypeObject *type)
{
    if (PyType_Ready(type) < 0) {
        return -1;
    }
    const char *dot = strrchr(type->tp_name, '.');
    const char *name = dot != NULL ? dot + 1 : type->tp_name;
    return PyModule_AddObjectRef(module, name, (PyObject *)type);
}

int
cc_core_init(void)
{
    PyObject *errors = PyImport_ImportModule("concurrency._errors");
    if (errors == NULL) {
        return -1;
    }
    check_timeout_func = PyObject_GetAttrString(errors, "check_timeout");
    raise_poisoned_func = PyObject_GetAttrString(errors, "raise_poisoned");
    Py_DECREF(errors);
    if (check_timeout_func == NULL || raise_poisoned_func == NULL) {
        return -1;
    }
    allow_none_false = Py_BuildValue("{sO}", "allow_none", Py_False);
    return allow_none_false == NULL ? -1 : 0;
}
