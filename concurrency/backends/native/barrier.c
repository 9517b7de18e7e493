/* barrier.c: Barrier, reusable, with one leader per round.

   State (all changed in the state section): `count` parties have arrived in
   the current round, `broken` says whether the barrier is broken, and the
   queue holds exactly the parked parties of the current round.  Every round
   ends in one state section, by whoever ends it: the leader (the party that
   arrives last), or a thread that breaks it (abort, reset, a timed-out or
   interrupted waiter).  Ending a round writes its outcome (passed or broken)
   into each of its waiters before waking them, resets `count` to zero and
   leaves the queue empty, so rounds never mix and a waiter reads its own
   round's outcome from its waiter, however late it runs.

   Semantics (those of the pure-Python Barrier, and of threading.Barrier):
   - Barrier(parties, *, name=None), parties an int >= 1;
   - wait(timeout=None) -> BarrierWaitResult(is_leader=...): exactly one
     leader per round, the last to arrive;
   - abort() breaks the barrier: the current waiters and every later wait()
     raise BrokenBarrierError until reset();
   - reset() empties the barrier (current waiters raise BrokenBarrierError)
     and un-breaks it;
   - a wait() that times out breaks the barrier for everyone (it raises
     BrokenBarrierError too).

   Asynchronous exceptions.  Only a parked waiter can be interrupted (a signal
   handler raising, e.g. KeyboardInterrupt).  If its round is still open, the
   interrupted party leaves it and the barrier BREAKS, as threading.Barrier
   does: the others would otherwise wait for a party that is not coming (or
   pass one short), so they raise BrokenBarrierError and the barrier stays
   broken (n_waiting 0) until reset().  If its round already ended (the leader
   or a breaker woke it just before the handler raised), the party was counted
   in that round: the exception propagates and the barrier is left as that
   round left it -- a completed round stays completed and later rounds work.

   The BarrierWaitResult class is the type's `_result_class` attribute (read
   in tp_new) when it has one, else concurrency.sync.BarrierWaitResult,
   imported at the first wait.  The two results (leader, not leader) are made
   once per barrier before the first arrival, so a counted party never fails
   to get its result. */

#include "core.h"

/* A waiter's outcome, written into its `kind` by whoever ends its round. */
#define BW_WAITING 0
#define BW_PASSED 1
#define BW_BROKEN 2

typedef struct {
    PyObject_HEAD
    Py_ssize_t parties;        /* fixed by __init__ */
    Py_ssize_t count;          /* arrived in the current round (written in the section) */
    Py_ssize_t rounds;         /* rounds ended so far, passed or broken (diagnostics) */
    int broken;                /* broken until reset() (written in the section) */
    cc_queue waiters;          /* the current round's parked parties */
    PyObject *name;            /* label for errors and repr */
    PyObject *result_class;    /* `_result_class` of the type, or NULL */
    PyObject *leader_result;   /* BarrierWaitResult(is_leader=True), made at first use */
    PyObject *follower_result; /* BarrierWaitResult(is_leader=False), stored last */
} BarrierObject;

static PyObject *broken_barrier_error;   /* concurrency._errors.BrokenBarrierError */


/* ------------------------------------------------------------ the rounds */

/* End the current round with `outcome` for each of its waiters: mark them,
   wake them all, start a new round.  State section held. */
static void
end_round(BarrierObject *self, int outcome)
{
    for (cc_waiter *w = self->waiters.head; w != NULL; w = w->next) {
        w->kind = outcome;
    }
    cc_queue_wake_all(&self->waiters);
    cc_store_ssize(&self->count, 0);
    self->rounds++;
}

/* Break the barrier: the current round's waiters raise BrokenBarrierError,
   and so does every wait() until reset().  State section held. */
static void
break_barrier(BarrierObject *self)
{
    cc_store_int(&self->broken, 1);
    end_round(self, BW_BROKEN);
}

static PyObject *
raise_broken(BarrierObject *self, const char *what)
{
    PyErr_Format(broken_barrier_error, "%S %s", self->name, what);
    return NULL;
}

/* Make the two results before the first arrival.  -1 with an exception set. */
static int
ensure_results(BarrierObject *self)
{
    if (cc_load_ptr(&self->follower_result) != NULL) {
        return 0;
    }
    PyObject *cls = self->result_class != NULL ? Py_NewRef(self->result_class) : NULL;
    if (cls == NULL) {
        PyObject *sync = PyImport_ImportModule("concurrency.sync");
        if (sync == NULL) {
            return -1;
        }
        cls = PyObject_GetAttrString(sync, "BarrierWaitResult");
        Py_DECREF(sync);
        if (cls == NULL) {
            return -1;
        }
    }
    PyObject *leader = NULL, *follower = NULL;
    PyObject *empty = PyTuple_New(0);
    PyObject *kw_true = Py_BuildValue("{sO}", "is_leader", Py_True);
    PyObject *kw_false = Py_BuildValue("{sO}", "is_leader", Py_False);
    if (empty != NULL && kw_true != NULL && kw_false != NULL) {
        leader = PyObject_Call(cls, empty, kw_true);
        if (leader != NULL) {
            follower = PyObject_Call(cls, empty, kw_false);
        }
    }
    Py_XDECREF(empty);
    Py_XDECREF(kw_true);
    Py_XDECREF(kw_false);
    Py_DECREF(cls);
    if (follower == NULL) {
        Py_XDECREF(leader);
        return -1;
    }
    int installed = 0;
    STATE_BEGIN(self)
    if (self->follower_result == NULL) {
        cc_store_ptr(&self->leader_result, leader);
        cc_store_ptr(&self->follower_result, follower);   /* last: the flag */
        installed = 1;
    }
    STATE_END();
    if (!installed) {   /* another thread made them first */
        Py_DECREF(leader);
        Py_DECREF(follower);
    }
    return 0;
}


/* ------------------------------------------------------------------ wait */

enum { ARRIVE_BROKEN, ARRIVE_LEADER, ARRIVE_QUEUED, ARRIVE_NEED_WAITER };

PyDoc_STRVAR(wait_doc,
"wait(timeout=None) -> BarrierWaitResult\n\
\n\
Wait until all parties have called wait(); exactly one of them, the last to\n\
arrive, gets is_leader=True.  Raises BrokenBarrierError if the barrier is\n\
or gets broken (abort(), reset(), or a timed-out wait, which breaks it for\n\
everyone).");

static PyObject *
Barrier_wait(BarrierObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:wait", kwlist, &timeout)) {
        return NULL;
    }
    cc_time deadline;
    if (cc_deadline_from(timeout, "Barrier.wait", 1, &deadline) < 0) {
        return NULL;
    }
    if (ensure_results(self) < 0) {
        return NULL;
    }

    cc_waiter w;
    int have_waiter = 0;
    int step;
    for (;;) {
        STATE_BEGIN(self)
        if (self->broken) {
            step = ARRIVE_BROKEN;
        }
        else if (self->count + 1 >= self->parties) {
            end_round(self, BW_PASSED);   /* the leader ends the round, whole */
            step = ARRIVE_LEADER;
        }
        else if (have_waiter) {
            cc_store_ssize(&self->count, self->count + 1);
            cc_queue_push(&self->waiters, &w);
            step = ARRIVE_QUEUED;
        }
        else {
            step = ARRIVE_NEED_WAITER;
        }
        STATE_END();
        if (step != ARRIVE_NEED_WAITER) {
            break;
        }
        /* Allocate the parker only when this arrival has to wait, then look again. */
        if (cc_waiter_init(&w, BW_WAITING) < 0) {
            return NULL;
        }
        have_waiter = 1;
    }
    if (step != ARRIVE_QUEUED) {
        if (have_waiter) {
            cc_waiter_fini(&w);
        }
        if (step == ARRIVE_BROKEN) {
            return raise_broken(self, "is broken");
        }
        return Py_NewRef(cc_load_ptr(&self->leader_result));
    }

    cc_park_result r = cc_park(&w, deadline);
    int outcome = BW_WAITING;
    if (r == CC_PARK_WOKEN) {
        outcome = w.kind;   /* written by the waker before it unparked us */
    }
    else {
        STATE_BEGIN(self)
        if (w.woken) {
            outcome = w.kind;   /* the round ended just as we gave up */
        }
        else {
            /* Our round is still open and we leave it: break it, for everyone. */
            cc_queue_remove(&self->waiters, &w);
            break_barrier(self);
        }
        STATE_END();
    }
    cc_waiter_fini(&w);
    if (r == CC_PARK_ERROR) {
        return NULL;   /* counted (round passed or broken) or withdrawn: propagate */
    }
    if (outcome == BW_PASSED) {
        return Py_NewRef(cc_load_ptr(&self->follower_result));
    }
    return raise_broken(self, "was broken while waiting");
}

PyDoc_STRVAR(abort_doc,
"abort()\n\
\n\
Break the barrier: current and future waiters raise BrokenBarrierError\n\
until reset().");

static PyObject *
Barrier_abort(BarrierObject *self, PyObject *Py_UNUSED(ignored))
{
    STATE_BEGIN(self)
    break_barrier(self);
    STATE_END();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(reset_doc,
"reset()\n\
\n\
Return to the empty, unbroken state; current waiters raise BrokenBarrierError.");

static PyObject *
Barrier_reset(BarrierObject *self, PyObject *Py_UNUSED(ignored))
{
    STATE_BEGIN(self)
    if (self->count > 0) {
        end_round(self, BW_BROKEN);
    }
    cc_store_int(&self->broken, 0);
    STATE_END();
    Py_RETURN_NONE;
}

static PyObject *
Barrier_get_broken(BarrierObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(cc_load_int(&self->broken));
}

static PyObject *
Barrier_get_n_waiting(BarrierObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(cc_load_ssize(&self->count));
}

static PyObject *
Barrier_get_parties(BarrierObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->parties);
}

/* `_rounds`: how many rounds have ended, passed or broken (diagnostics). */
static PyObject *
Barrier_get_rounds(BarrierObject *self, void *Py_UNUSED(closure))
{
    Py_ssize_t n;
    STATE_BEGIN(self)
    n = self->rounds;
    STATE_END();
    return PyLong_FromSsize_t(n);
}

static PyObject *
Barrier_get_name(BarrierObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->name);
}

static int
Barrier_set_name(BarrierObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "a Barrier's name cannot be deleted");
        return -1;
    }
    Py_SETREF(self->name, Py_NewRef(value));
    return 0;
}

static PyObject *
Barrier_repr(BarrierObject *self)
{
    return PyUnicode_FromFormat("<Barrier %S %zd/%zd waiting%s>", self->name,
                                cc_load_ssize(&self->count), self->parties,
                                cc_load_int(&self->broken) ? ", broken" : "");
}

/* Barrier(parties, *, name=None).  `_result_class` is read from the class
   here; without it concurrency.sync.BarrierWaitResult is used. */
static PyObject *
Barrier_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    PyObject *result_class = PyObject_GetAttrString((PyObject *)type, "_result_class");
    if (result_class == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return NULL;
        }
        PyErr_Clear();
    }
    else if (result_class == Py_None) {
        Py_CLEAR(result_class);
    }
    else if (!PyCallable_Check(result_class)) {
        PyErr_Format(PyExc_TypeError, "%s._result_class must be a class, not %R",
                     type->tp_name, result_class);
        Py_DECREF(result_class);
        return NULL;
    }
    BarrierObject *self = (BarrierObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_XDECREF(result_class);
        return NULL;
    }
    self->result_class = result_class;
    self->parties = 1;
    self->name = Py_NewRef(Py_None);
    return (PyObject *)self;
}

static int
Barrier_init(BarrierObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"parties", "name", NULL};
    PyObject *parties, *name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:Barrier", kwlist, &parties, &name)) {
        return -1;
    }
    /* As the pure-Python Barrier: anything but an int >= 1 is a ValueError. */
    Py_ssize_t n = 0;
    if (PyLong_Check(parties) && !PyBool_Check(parties)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(parties, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (overflow > 0 || v > (long long)PY_SSIZE_T_MAX) {
            PyErr_Format(PyExc_ValueError,
                         "Barrier: parties must be an int >= 1 and <= %zd, got %R",
                         PY_SSIZE_T_MAX, parties);
            return -1;
        }
        if (overflow == 0 && v >= 1) {
            n = (Py_ssize_t)v;
        }
    }
    if (n < 1) {
        PyErr_Format(PyExc_ValueError, "Barrier: parties must be an int >= 1, got %R", parties);
        return -1;
    }
    PyObject *label = cc_name_or_auto(name, "Barrier");
    if (label == NULL) {
        return -1;
    }
    Py_SETREF(self->name, label);
    STATE_BEGIN(self)
    self->parties = n;
    STATE_END();
    return 0;
}

static int
Barrier_traverse(BarrierObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->name);
    Py_VISIT(self->result_class);
    Py_VISIT(self->leader_result);
    Py_VISIT(self->follower_result);
    return 0;
}

/* The results are kept: wait() needs them once made (they are plain values). */
static int
Barrier_clear(BarrierObject *self)
{
    Py_CLEAR(self->result_class);
    return 0;
}

static void
Barrier_dealloc(BarrierObject *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->result_class);
    Py_CLEAR(self->leader_result);
    Py_CLEAR(self->follower_result);
    Py_CLEAR(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Barrier_methods[] = {
    {"wait", (PyCFunction)(void (*)(void))Barrier_wait, METH_VARARGS | METH_KEYWORDS, wait_doc},
    {"abort", (PyCFunction)Barrier_abort, METH_NOARGS, abort_doc},
    {"reset", (PyCFunction)Barrier_reset, METH_NOARGS, reset_doc},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef Barrier_getset[] = {
    {"name", (getter)Barrier_get_name, (setter)Barrier_set_name, "Label used in errors.", NULL},
    {"parties", (getter)Barrier_get_parties, NULL,
     "How many parties each round waits for.", NULL},
    {"broken", (getter)Barrier_get_broken, NULL,
     "Whether the barrier is broken (until reset()).", NULL},
    {"n_waiting", (getter)Barrier_get_n_waiting, NULL,
     "How many parties wait in the current round (a snapshot).", NULL},
    {"_rounds", (getter)Barrier_get_rounds, NULL, NULL, NULL},
    {NULL}
};

static PyTypeObject BarrierType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.Barrier",
    .tp_doc = PyDoc_STR("Blocks `parties` threads until all of them have called wait() "
                        "(native core)."),
    .tp_basicsize = sizeof(BarrierObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Barrier_new,
    .tp_init = (initproc)Barrier_init,
    .tp_dealloc = (destructor)Barrier_dealloc,
    .tp_traverse = (traverseproc)Barrier_traverse,
    .tp_clear = (inquiry)Barrier_clear,
    .tp_repr = (reprfunc)Barrier_repr,
    .tp_methods = Barrier_methods,
    .tp_getset = Barrier_getset,
};

int
cc_add_barrier_types(PyObject *module)
{
    if (broken_barrier_error == NULL) {   /* kept for the life of the process */
        PyObject *errors = PyImport_ImportModule("concurrency._errors");
        if (errors == NULL) {
            return -1;
        }
        broken_barrier_error = PyObject_GetAttrString(errors, "BrokenBarrierError");
        Py_DECREF(errors);
        if (broken_barrier_error == NULL) {
            return -1;
        }
    }
    return cc_add_type(module, &BarrierType);
}
