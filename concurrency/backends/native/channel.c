/* channel.c: Sender, Receiver and channel(), the message channels.

   The state of one channel lives in a hidden `_Channel` object that both
   ends point to; every change to it happens in its state section, so with the
   GIL a send or a receive that does not wait is a handful of C statements
   and no lock at all.

   - Messages wait in a ring buffer of PyObject* (a power-of-two array that
     grows on demand; a bounded channel never holds more than `bound`, an
     unbounded one has bound PY_SSIZE_T_MAX).  A rendezvous (bound 0) buffers
     nothing: a sender queues its *offer* (the waiter carries the message) and
     parks until a receiver takes it.
   - Two waiter queues: `receivers` (threads parked in recv*) and `senders`
     (threads parked for room in a full bounded channel, or rendezvous
     offers).  A thread that makes progress possible wakes one parked thread
     of the other side only when the queue is not empty, so a busy channel
     makes no wake-up syscall.  As everywhere in the native core a wake-up
     means "look again", and a woken thread that gives up passes it on.
   - A Sender's `closed` flag is read and written in the channel's state
     section: a send enqueues only while its Sender is open, and closing a
     Sender wakes the sends of that very Sender parked for room (or offering
     in a rendezvous), which then give up with Disconnected without
     enqueueing.  So when the last Sender closes nothing can be added any
     more, and a receiver that sees "empty and no sender open" (Disconnected)
     has seen every message whose send returned normally.
   - Interrupts (a signal handler raising while parked, or an asynchronous
     exception that arrived meanwhile, which checkpoint() raises right after
     the wake-up): a send parked for room enqueues nothing; a rendezvous send
     withdraws its offer unless a receiver already took it (then the message
     is delivered and the send still raises); a recv takes a message only in
     the state section that decides to return it, so an interrupted recv
     drops nothing.
   - Parking spins briefly (yielding, GIL released) before it sleeps: in a
     ping-pong the answer usually comes within microseconds.
   - wait_any's readiness protocol on Receiver (_ready, _add_waker,
     _remove_waker): the wakers tuple is snapshotted in the state section and
     the wakers are called after it, never inside.

   The Python classes: channel(bound, name, *, sender_class=None,
   receiver_class=None) builds instances of the given subclasses of
   Sender/Receiver (the bases when omitted); clone() keeps the class of the
   Sender it is called on.  Neither end can be constructed directly. */

#include "core.h"

static PyObject *Disconnected;   /* concurrency._errors.Disconnected */
static PyObject *Empty;          /* concurrency._errors.Empty */

#define UNBOUNDED PY_SSIZE_T_MAX
#define SHRINK_ABOVE 4096        /* an emptied ring larger than this is freed */

typedef struct {
    PyObject_HEAD
    Py_ssize_t bound;          /* UNBOUNDED, 0 (rendezvous) or the capacity */
    PyObject **ring;           /* messages: ring[(head + i) & (cap - 1)], i < len */
    Py_ssize_t cap;            /* 0 or a power of two */
    Py_ssize_t head;
    Py_ssize_t len;
    Py_ssize_t senders_open;   /* Sender handles not yet closed */
    int receiver_closed;
    cc_queue receivers;        /* parked in recv / recv_timeout */
    cc_queue senders;          /* parked for room, or rendezvous offers */
    PyObject *wakers;          /* wait_any wakers: a non-empty tuple, or NULL */
    PyObject *name;
} ChannelObject;

typedef struct {
    PyObject_HEAD
    ChannelObject *channel;
    int closed;                /* written in the channel's state section */
} SenderObject;

typedef struct {
    PyObject_HEAD
    ChannelObject *channel;
} ReceiverObject;

/* A parked send: `w` first, so a cc_waiter* in `senders` is a send_waiter*. */
typedef struct {
    cc_waiter w;
    SenderObject *sender;      /* whose send it is (its close wakes us) */
    PyObject *value;           /* rendezvous: the message offered (borrowed) */
    int taken;                 /* rendezvous: a receiver took `value` */
} send_waiter;

static PyTypeObject ChannelType;
static PyTypeObject SenderType;
static PyTypeObject ReceiverType;


/* ------------------------------------------------------------- parking */

#ifdef _WIN32
#  include <windows.h>
#  define CC_YIELD() SwitchToThread()
#else
#  include <sched.h>
#  define CC_YIELD() sched_yield()
#endif

#ifndef SPIN_ROUNDS
#define SPIN_ROUNDS 40          /* yields before sleeping, as CPython's PyMutex does */
#endif
#define SIGNAL_GRACE 2000000    /* ns: see park() */

static unsigned long main_thread_ident;   /* the thread that runs signal handlers */

/* Wait on the parker until `deadline`, GIL released by the caller. */
static PyLockStatus
wait_parker(cc_waiter *w, cc_time deadline)
{
    PY_TIMEOUT_T microseconds = -1;
    if (deadline != CC_FOREVER) {
        cc_time left = deadline - cc_now();
        long long us = left <= 0 ? 0 : (left + 999) / 1000;
        microseconds = us > PY_TIMEOUT_MAX ? PY_TIMEOUT_MAX : (PY_TIMEOUT_T)us;
    }
    return PyThread_acquire_lock_timed(w->parker, microseconds, 1);
}

static PyObject *checkpoint_func;   /* a Python function that does nothing */

/* After a wake-up, before the state section that would take or enqueue a
   message: let an interrupt that came while we were parked happen *now*,
   while the operation can still have no effect.  An asynchronous exception
   (PyThreadState_SetAsyncExc) is only raised where the interpreter checks
   for one, which for a C call is after it returned: a recv that took a
   message and then met it would lose the message in the caller.  So: run the
   signal handlers (main thread), and if an asynchronous exception is
   pending, call a Python function, whose entry raises it with the
   interpreter's own bookkeeping.  -1 with the exception set. */
static int
checkpoint(void)
{
    if (PyErr_CheckSignals() < 0) {
        return -1;
    }
    PyThreadState *ts = PyThreadState_Get();
    if (cc_load_ptr(&ts->async_exc) == NULL) {
        return 0;
    }
    PyObject *result = PyObject_CallNoArgs(checkpoint_func);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* cc_park with a short spin first.  A channel's partner usually answers
   within microseconds (a ping-pong), and a wake-up caught while spinning
   saves the futex sleep and wake-up of the parker.  The spin and the sleep
   happen in one stretch with the GIL released, so a spin that catches
   nothing costs no extra GIL hand-over.  The parker is polled with a
   non-blocking acquire, which consumes a wake-up exactly as the blocking one
   does.  Otherwise the same as cc_park (whose wait this mirrors): a signal
   handler that raises ends the wait with CC_PARK_ERROR.

   A signal that arrives during the spin does not interrupt the sleep that
   follows, so on the main thread (the only one that runs signal handlers)
   the first sleep after a spin is capped at SIGNAL_GRACE, after which the
   handlers run and the wait goes on: Ctrl-C is never held up longer. */
CC_HIDDEN int cc_refuse_park_in_model(void);   /* core.c */

static cc_park_result
park(cc_waiter *w, cc_time deadline)
{
    if (cc_refuse_park_in_model() < 0) {
        return CC_PARK_ERROR;   /* a model thread: blocking would stop every one of them */
    }
    int spin = 1;
    for (;;) {
        PyLockStatus r = PY_LOCK_FAILURE;
        int capped = 0;
        Py_BEGIN_ALLOW_THREADS
        if (spin) {
            for (int i = 0; i < SPIN_ROUNDS; i++) {
                if (PyThread_acquire_lock(w->parker, NOWAIT_LOCK)) {
                    r = PY_LOCK_ACQUIRED;
                    break;
                }
                if (deadline != CC_FOREVER && cc_now() >= deadline) {
                    break;
                }
                CC_YIELD();
            }
        }
        if (r != PY_LOCK_ACQUIRED) {
            cc_time until = deadline;
            if (spin && w->ident == main_thread_ident) {
                cc_time grace = cc_now() + SIGNAL_GRACE;
                if (deadline == CC_FOREVER || grace < deadline) {
                    until = grace;
                    capped = 1;
                }
            }
            r = wait_parker(w, until);
        }
        Py_END_ALLOW_THREADS
        spin = 0;
        if (r == PY_LOCK_ACQUIRED) {
            return CC_PARK_WOKEN;
        }
        if (r == PY_LOCK_FAILURE && !capped) {
            return CC_PARK_TIMEOUT;
        }
        /* Interrupted, or the grace is over: run the signal handlers; one
           that raises ends the wait. */
        if (Py_MakePendingCalls() < 0) {
            return CC_PARK_ERROR;
        }
    }
}


/* ------------------------------------------------------------ the ring */

/* Make room for one more message.  State section held: raw memory only.
   -1 when out of memory (no exception set: the caller raises it later). */
static int
ring_grow(ChannelObject *ch)
{
    Py_ssize_t cap = ch->cap ? ch->cap * 2 : 8;
    if (ch->cap > PY_SSIZE_T_MAX / 2 / (Py_ssize_t)sizeof(PyObject *)) {
        return -1;
    }
    PyObject **ring = PyMem_Malloc((size_t)cap * sizeof(PyObject *));
    if (ring == NULL) {
        return -1;
    }
    Py_ssize_t mask = ch->cap - 1;
    for (Py_ssize_t i = 0; i < ch->len; i++) {
        ring[i] = ch->ring[(ch->head + i) & mask];
    }
    PyMem_Free(ch->ring);
    ch->ring = ring;
    ch->cap = cap;
    ch->head = 0;
    return 0;
}

/* Append a new reference to `value`.  State section held. -1 out of memory. */
static inline int
ring_push(ChannelObject *ch, PyObject *value)
{
    if (ch->len == ch->cap && ring_grow(ch) < 0) {
        return -1;
    }
    ch->ring[(ch->head + ch->len) & (ch->cap - 1)] = Py_NewRef(value);
    ch->len++;
    return 0;
}

/* Take the oldest message (the ring's reference).  State section held, len > 0. */
static inline PyObject *
ring_pop(ChannelObject *ch)
{
    PyObject *value = ch->ring[ch->head];
    ch->head = (ch->head + 1) & (ch->cap - 1);
    if (--ch->len == 0 && ch->cap > SHRINK_ABOVE) {
        PyMem_Free(ch->ring);   /* raw memory: fine in a state section */
        ch->ring = NULL;
        ch->cap = 0;
        ch->head = 0;
    }
    return value;
}

/* Put `value` (its reference goes to the ring) back in front.  State section
   held. -1 out of memory. */
static inline int
ring_push_front(ChannelObject *ch, PyObject *value)
{
    if (ch->len == ch->cap && ring_grow(ch) < 0) {
        return -1;
    }
    ch->head = (ch->head - 1) & (ch->cap - 1);
    ch->ring[ch->head] = value;
    ch->len++;
    return 0;
}

/* The ring's contents, moved out so they can be dropped after the section. */
typedef struct {
    PyObject **ring;
    Py_ssize_t cap, head, len;
} detached_ring;

static void
ring_detach(ChannelObject *ch, detached_ring *out)
{
    out->ring = ch->ring;
    out->cap = ch->cap;
    out->head = ch->head;
    out->len = ch->len;
    ch->ring = NULL;
    ch->cap = ch->head = ch->len = 0;
}

/* Drop the detached messages (outside any state section: finalizers may run). */
static void
ring_drop(detached_ring *r)
{
    for (Py_ssize_t i = 0; i < r->len; i++) {
        Py_DECREF(r->ring[(r->head + i) & (r->cap - 1)]);
    }
    PyMem_Free(r->ring);
    r->ring = NULL;
    r->len = 0;
}


/* -------------------------------------------------------------- wakers */

/* A new reference to the wakers to call, or NULL.  State section held. */
static inline PyObject *
snapshot_wakers(ChannelObject *ch)
{
    return ch->wakers != NULL ? Py_NewRef(ch->wakers) : NULL;
}

/* Call every waker of `snapshot` (stolen; may be NULL), outside any state
   section.  They all run even if one raises; the exceptions are raised
   afterwards (-1), the newest with the older ones as context. */
static int
call_wakers(PyObject *snapshot)
{
    if (snapshot == NULL) {
        return 0;
    }
    PyObject *pending = NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(snapshot); i++) {
        PyObject *result = PyObject_CallNoArgs(PyTuple_GET_ITEM(snapshot, i));
        if (result == NULL) {
            cc_pending_add(&pending, PyErr_GetRaisedException());
        }
        else {
            Py_DECREF(result);
        }
    }
    Py_DECREF(snapshot);
    return cc_pending_raise(&pending);
}


/* ----------------------------------------------------------- disconnects */

static PyObject *
closed_sender_error(ChannelObject *ch)
{
    PyErr_Format(Disconnected, "send on a closed Sender of %S", ch->name);
    return NULL;
}

static PyObject *
closed_receiver_error(ChannelObject *ch)
{
    PyErr_Format(Disconnected, "send on %S: its receiver is closed", ch->name);
    return NULL;
}


/* ----------------------------------------------------------------- send */

typedef enum {
    SEND_DONE,            /* enqueued (or, for a rendezvous, taken) */
    SEND_WAIT,            /* full, or a rendezvous: wait */
    SEND_CLOSED,          /* this Sender is closed */
    SEND_RECEIVER_CLOSED, /* the Receiver is closed */
    SEND_NOMEM,
} send_outcome;

/* Enqueue `value` if the Sender is open and there is room.  State section
   held; *wakers gets the wakers to call when it was enqueued. */
static inline send_outcome
send_now(ChannelObject *ch, SenderObject *s, PyObject *value, PyObject **wakers)
{
    if (s->closed) {
        return SEND_CLOSED;
    }
    if (ch->receiver_closed) {
        return SEND_RECEIVER_CLOSED;
    }
    if (ch->len >= ch->bound) {   /* full; always for a rendezvous */
        return SEND_WAIT;
    }
    if (ring_push(ch, value) < 0) {
        return SEND_NOMEM;
    }
    if (ch->receivers.count > 0) {
        cc_queue_wake_one(&ch->receivers);
    }
    *wakers = snapshot_wakers(ch);
    return SEND_DONE;
}

static PyObject *
send_failed(ChannelObject *ch, send_outcome outcome)
{
    switch (outcome) {
    case SEND_CLOSED:
        return closed_sender_error(ch);
    case SEND_RECEIVER_CLOSED:
        return closed_receiver_error(ch);
    case SEND_NOMEM:
        return PyErr_NoMemory();
    default:
        PyErr_SetString(PyExc_SystemError, "channel: unexpected send outcome");
        return NULL;
    }
}

/* A full bounded channel: park for room until the message is enqueued, this
   Sender or the Receiver is closed, or a signal handler raises.  Nothing is
   enqueued unless this returns normally. */
static PyObject *
send_bounded_slow(SenderObject *self, PyObject *value)
{
    ChannelObject *ch = self->channel;
    send_waiter sw;
    if (cc_waiter_init(&sw.w, 0) < 0) {
        return NULL;
    }
    sw.sender = self;
    sw.value = NULL;
    sw.taken = 0;
    PyObject *wakers = NULL;
    send_outcome outcome;
    int woken = 0;
    for (;;) {
        STATE_BEGIN(ch)
        outcome = send_now(ch, self, value, &wakers);
        if (outcome == SEND_WAIT) {
            cc_queue_push(&ch->senders, &sw.w);
        }
        else if (outcome != SEND_DONE && woken && ch->len < ch->bound
                 && ch->senders.count > 0) {
            cc_queue_wake_one(&ch->senders);   /* giving up: pass the wake-up on */
        }
        STATE_END();
        if (outcome != SEND_WAIT) {
            break;
        }
        cc_park_result r = park(&sw.w, CC_FOREVER);
        if (r == CC_PARK_WOKEN && checkpoint() < 0) {
            r = CC_PARK_ERROR;
        }
        if (r == CC_PARK_WOKEN) {
            cc_waiter_rearm(&sw.w);   /* the waker took us out of the queue */
            woken = 1;
            continue;
        }
        /* Interrupted: leave, enqueueing nothing. */
        STATE_BEGIN(ch)
        if (!sw.w.woken) {
            cc_queue_remove(&ch->senders, &sw.w);
        }
        else if (ch->len < ch->bound && ch->senders.count > 0) {
            cc_queue_wake_one(&ch->senders);
        }
        STATE_END();
        cc_waiter_fini(&sw.w);
        return NULL;
    }
    cc_waiter_fini(&sw.w);
    if (outcome != SEND_DONE) {
        return send_failed(ch, outcome);
    }
    if (call_wakers(wakers) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* A rendezvous: offer `value` in `senders` and wait until a receiver takes
   it.  Interrupted before that, the offer is withdrawn (nothing delivered);
   if it was taken already the send raises after delivering. */
static PyObject *
send_rendezvous(SenderObject *self, PyObject *value)
{
    ChannelObject *ch = self->channel;
    send_waiter sw;
    if (cc_waiter_init(&sw.w, 0) < 0) {
        return NULL;
    }
    sw.sender = self;
    sw.value = value;
    sw.taken = 0;
    for (;;) {
        PyObject *wakers = NULL;
        send_outcome outcome = SEND_WAIT;
        STATE_BEGIN(ch)
        if (self->closed) {
            outcome = SEND_CLOSED;
        }
        else if (ch->receiver_closed) {
            outcome = SEND_RECEIVER_CLOSED;
        }
        else {
            cc_queue_push(&ch->senders, &sw.w);
            if (ch->receivers.count > 0) {
                cc_queue_wake_one(&ch->receivers);
            }
            wakers = snapshot_wakers(ch);
        }
        STATE_END();
        if (outcome != SEND_WAIT) {
            cc_waiter_fini(&sw.w);
            return send_failed(ch, outcome);
        }
        int failed = call_wakers(wakers) < 0;   /* counts as an interrupt */
        cc_park_result r = failed ? CC_PARK_ERROR : park(&sw.w, CC_FOREVER);
        int taken;
        STATE_BEGIN(ch)
        taken = sw.taken;
        if (!sw.w.woken) {
            cc_queue_remove(&ch->senders, &sw.w);   /* withdraw the offer */
        }
        STATE_END();
        if (r == CC_PARK_ERROR) {
            cc_waiter_fini(&sw.w);
            return NULL;   /* delivered if taken, else withdrawn */
        }
        if (taken) {
            cc_waiter_fini(&sw.w);
            Py_RETURN_NONE;
        }
        /* Woken without being taken: a close; the next round reports it. */
        cc_waiter_rearm(&sw.w);
    }
}

PyDoc_STRVAR(send_doc,
"send(value)\n\
\n\
Send `value`; blocks while a bounded channel is full, and in a rendezvous\n\
until a receiver took it.  Raises Disconnected if this Sender is closed\n\
(also while the send waits) or the Receiver is closed.");

static PyObject *
Sender_send(SenderObject *self, PyObject *value)
{
    ChannelObject *ch = self->channel;
    PyObject *wakers = NULL;
    send_outcome outcome;
    STATE_BEGIN(ch)
    outcome = send_now(ch, self, value, &wakers);
    STATE_END();
    if (outcome == SEND_DONE) {
        if (wakers != NULL && call_wakers(wakers) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    if (outcome != SEND_WAIT) {
        return send_failed(ch, outcome);
    }
    return ch->bound == 0 ? send_rendezvous(self, value) : send_bounded_slow(self, value);
}

PyDoc_STRVAR(clone_doc,
"clone() -> Sender\n\
\n\
Another open Sender of the same channel (of the same class); the receiver\n\
disconnects only once every Sender is closed.");

static PyObject *
Sender_clone(SenderObject *self, PyObject *Py_UNUSED(ignored))
{
    ChannelObject *ch = self->channel;
    PyTypeObject *type = Py_TYPE(self);
    SenderObject *copy = (SenderObject *)type->tp_alloc(type, 0);
    if (copy == NULL) {
        return NULL;
    }
    copy->channel = (ChannelObject *)Py_NewRef((PyObject *)ch);
    copy->closed = 1;   /* opened below, if this one is still open */
    int opened = 0;
    STATE_BEGIN(ch)
    if (!self->closed) {
        ch->senders_open++;
        cc_store_int(&copy->closed, 0);
        opened = 1;
    }
    STATE_END();
    if (!opened) {
        Py_DECREF(copy);
        PyErr_Format(Disconnected, "clone of a closed Sender of %S", ch->name);
        return NULL;
    }
    return (PyObject *)copy;
}

/* Close `self`: its parked sends give up, and closing the last Sender
   disconnects the receiver.  Returns -1 if a waker raised (closed anyway). */
static int
close_sender(SenderObject *self)
{
    ChannelObject *ch = self->channel;
    PyObject *wakers = NULL;
    STATE_BEGIN(ch)
    if (!self->closed) {
        cc_store_int(&self->closed, 1);
        ch->senders_open--;
        cc_waiter *w = ch->senders.head;
        while (w != NULL) {
            cc_waiter *next = w->next;
            if (((send_waiter *)w)->sender == self) {
                cc_queue_remove(&ch->senders, w);
                cc_wake(w);
            }
            w = next;
        }
        if (ch->senders_open == 0) {
            cc_queue_wake_all(&ch->receivers);
            wakers = snapshot_wakers(ch);
        }
    }
    STATE_END();
    return call_wakers(wakers);
}

PyDoc_STRVAR(sender_close_doc,
"close()\n\
\n\
Close this handle (idempotent); a send of it still waiting raises\n\
Disconnected, and receivers disconnect once every Sender is closed.");

static PyObject *
Sender_close(SenderObject *self, PyObject *Py_UNUSED(ignored))
{
    if (close_sender(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
End_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self);
}

static PyObject *
Sender_exit(SenderObject *self, PyObject *const *Py_UNUSED(args), Py_ssize_t Py_UNUSED(nargs))
{
    return Sender_close(self, NULL);
}

static PyObject *
Sender_get_name(SenderObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->channel->name);
}

/* `_closed`: whether this handle is closed. */
static PyObject *
Sender_get_closed(SenderObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(cc_load_int(&self->closed));
}

/* `_channel`: the shared state (diagnostics). */
static PyObject *
End_get_channel(SenderObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef((PyObject *)self->channel);
}

static PyObject *
Sender_repr(SenderObject *self)
{
    return PyUnicode_FromFormat("<Sender of %S %s>", self->channel->name,
                                cc_load_int(&self->closed) ? "closed" : "open");
}

static int
End_traverse(SenderObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->channel);
    return 0;
}

/* Dropping an open Sender does not close it (as the pure-Python backends). */
static void
Sender_dealloc(SenderObject *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->channel);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Sender_methods[] = {
    {"send", (PyCFunction)Sender_send, METH_O, send_doc},
    {"clone", (PyCFunction)Sender_clone, METH_NOARGS, clone_doc},
    {"close", (PyCFunction)Sender_close, METH_NOARGS, sender_close_doc},
    {"__enter__", End_enter, METH_NOARGS, "__enter__() -> the Sender itself"},
    {"__exit__", (PyCFunction)(void (*)(void))Sender_exit, METH_FASTCALL,
     "__exit__(*exc)\n\nClose this Sender."},
    {NULL, NULL}
};

static PyGetSetDef Sender_getset[] = {
    {"name", (getter)Sender_get_name, NULL, "The channel's name.", NULL},
    {"_closed", (getter)Sender_get_closed, NULL, NULL, NULL},
    {"_channel", (getter)End_get_channel, NULL, NULL, NULL},
    {NULL}
};

static PyTypeObject SenderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.Sender",
    .tp_doc = PyDoc_STR("The sending end of a channel (native core); made by channel()."),
    .tp_basicsize = sizeof(SenderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)Sender_dealloc,
    .tp_traverse = (traverseproc)End_traverse,
    .tp_repr = (reprfunc)Sender_repr,
    .tp_methods = Sender_methods,
    .tp_getset = Sender_getset,
};


/* -------------------------------------------------------------- receive */

typedef enum {
    RECV_GOT,
    RECV_EMPTY,
    RECV_DISCONNECTED,   /* empty, and every Sender is closed */
    RECV_CLOSED,         /* the Receiver is closed */
    RECV_TIMEOUT,
    RECV_INTERRUPTED,    /* a message waits, but so does an asynchronous exception */
    RECV_ERROR,          /* an exception is set */
} recv_outcome;

/* Whether a recv would return at once.  State section held. */
static inline int
ready_now(ChannelObject *ch)
{
    return ch->len > 0 || (ch->bound == 0 && ch->senders.count > 0)
        || ch->senders_open == 0 || ch->receiver_closed;
}

/* Whether an asynchronous exception waits for thread `ts` (NULL: do not ask). */
static inline int
async_exc_pending(PyThreadState *ts)
{
    return ts != NULL && cc_load_ptr(&ts->async_exc) != NULL;
}

/* Take the next message into *value (a new reference) if there is one.
   State section held: the message leaves the channel exactly when the
   caller decides to return it.  If an asynchronous exception waits for
   `ts`, nothing is taken (RECV_INTERRUPTED): it would be raised as soon as
   the call returns and the message would be lost in the caller. */
static inline recv_outcome
recv_now(ChannelObject *ch, PyObject **value, PyThreadState *ts)
{
    if (ch->receiver_closed) {
        return RECV_CLOSED;
    }
    if (ch->len > 0) {
        if (async_exc_pending(ts)) {
            return RECV_INTERRUPTED;
        }
        *value = ring_pop(ch);
        if (ch->senders.count > 0) {
            cc_queue_wake_one(&ch->senders);   /* a place is free */
        }
        return RECV_GOT;
    }
    if (ch->bound == 0 && ch->senders.head != NULL) {
        if (async_exc_pending(ts)) {
            return RECV_INTERRUPTED;
        }
        send_waiter *offer = (send_waiter *)ch->senders.head;
        *value = Py_NewRef(offer->value);
        offer->taken = 1;
        cc_queue_remove(&ch->senders, &offer->w);
        cc_wake(&offer->w);
        return RECV_GOT;
    }
    if (ch->senders_open == 0) {
        return RECV_DISCONNECTED;
    }
    return RECV_EMPTY;
}

static PyObject *
recv_failed(ChannelObject *ch, recv_outcome outcome)
{
    switch (outcome) {
    case RECV_CLOSED:
        PyErr_Format(Disconnected, "recv on a closed Receiver of %S", ch->name);
        break;
    case RECV_DISCONNECTED:
        PyErr_Format(Disconnected, "recv on %S: every sender is closed", ch->name);
        break;
    case RECV_EMPTY:
        PyErr_Format(Empty, "%S is empty", ch->name);
        break;
    case RECV_TIMEOUT:
        PyErr_Format(PyExc_TimeoutError, "recv_timeout on %S: no message in time", ch->name);
        break;
    default:
        PyErr_SetString(PyExc_SystemError, "channel: unexpected recv outcome");
    }
    return NULL;
}

/* Park until a message, a disconnect, `deadline` or an interrupt
   (RECV_ERROR).  A recv that raises has taken nothing. */
static recv_outcome
recv_slow(ChannelObject *ch, cc_time deadline, PyThreadState *ts, PyObject **value)
{
    cc_waiter w;
    if (cc_waiter_init(&w, 0) < 0) {
        return RECV_ERROR;
    }
    recv_outcome outcome;
    int timed_out = 0;
    int woken = 0;   /* a waker took us out of the queue since we last looked */
    for (;;) {
        STATE_BEGIN(ch)
        outcome = recv_now(ch, value, ts);
        if (outcome == RECV_EMPTY) {
            if (timed_out) {
                outcome = RECV_TIMEOUT;
            }
            else {
                cc_queue_push(&ch->receivers, &w);
            }
        }
        else if (outcome == RECV_INTERRUPTED && woken && ch->receivers.count > 0) {
            cc_queue_wake_one(&ch->receivers);   /* pass the wake-up on */
        }
        STATE_END();
        if (outcome == RECV_INTERRUPTED) {
            if (checkpoint() < 0) {
                outcome = RECV_ERROR;
                break;
            }
            ts = NULL;   /* it did not go off: do not ask again */
            woken = 0;
            continue;
        }
        if (outcome != RECV_EMPTY) {
            break;
        }
        cc_park_result r = park(&w, deadline);
        if (r != CC_PARK_ERROR && checkpoint() < 0) {
            r = CC_PARK_ERROR;
        }
        if (r == CC_PARK_WOKEN) {
            cc_waiter_rearm(&w);   /* the waker took us out of the queue */
            woken = 1;
            continue;
        }
        if (r == CC_PARK_TIMEOUT) {
            /* Leave the queue; the last look above then decides. */
            STATE_BEGIN(ch)
            if (!w.woken) {
                cc_queue_remove(&ch->receivers, &w);
            }
            STATE_END();
            woken = w.woken;
            timed_out = 1;
            continue;
        }
        /* Interrupted: leave with nothing taken. */
        STATE_BEGIN(ch)
        if (!w.woken) {
            cc_queue_remove(&ch->receivers, &w);
        }
        else if (ready_now(ch) && ch->receivers.count > 0) {
            cc_queue_wake_one(&ch->receivers);   /* pass the wake-up on */
        }
        STATE_END();
        outcome = RECV_ERROR;
        break;
    }
    cc_waiter_fini(&w);
    return outcome;
}

/* A message was just taken for thread `ts`.  If an asynchronous exception
   arrived for it meanwhile, the interpreter would raise it as soon as recv
   returns and the message would be lost in the caller: put it back in front
   (a buffered channel; a rendezvous sender was released already, so that
   message is returned) and raise the exception instead.  1: return `value`;
   -1: put back, exception set; 0: put back, but the exception did not go
   off -- receive again. */
static int
keep_or_put_back(ChannelObject *ch, PyObject *value, PyThreadState *ts)
{
    if (ch->bound == 0 || !async_exc_pending(ts)) {
        return 1;
    }
    int put_back = 0;
    PyObject *wakers = NULL;
    STATE_BEGIN(ch)
    if (!ch->receiver_closed && ring_push_front(ch, value) == 0) {
        put_back = 1;
        if (ch->receivers.count > 0) {
            cc_queue_wake_one(&ch->receivers);
        }
        wakers = snapshot_wakers(ch);
    }
    STATE_END();
    if (!put_back) {
        return 1;
    }
    if (call_wakers(wakers) < 0 || checkpoint() < 0) {
        return -1;
    }
    return 0;
}

static inline PyObject *
receive(ReceiverObject *self, int blocking, cc_time deadline)
{
    ChannelObject *ch = self->channel;
    PyThreadState *ts = PyThreadState_Get();
    for (;;) {
        PyObject *value = NULL;
        recv_outcome outcome;
        STATE_BEGIN(ch)
        outcome = recv_now(ch, &value, ts);
        STATE_END();
        if (outcome == RECV_EMPTY && blocking) {
            outcome = recv_slow(ch, deadline, ts, &value);
        }
        switch (outcome) {
        case RECV_GOT: {
            int kept = keep_or_put_back(ch, value, ts);
            if (kept > 0) {
                return value;
            }
            if (kept < 0) {
                return NULL;
            }
            break;
        }
        case RECV_INTERRUPTED:
            if (checkpoint() < 0) {
                return NULL;
            }
            break;
        case RECV_ERROR:
            return NULL;
        default:
            return recv_failed(ch, outcome);
        }
        ts = NULL;   /* the pending exception did not go off: do not ask again */
    }
}

PyDoc_STRVAR(recv_doc,
"recv() -> message\n\
\n\
The next message, waiting for one; raises Disconnected once the channel is\n\
empty and every Sender is closed, or when this Receiver is closed.");

static PyObject *
Receiver_recv(ReceiverObject *self, PyObject *Py_UNUSED(ignored))
{
    return receive(self, 1, CC_FOREVER);
}

PyDoc_STRVAR(try_recv_doc,
"try_recv() -> message\n\
\n\
The next message if one is waiting; raises Empty on an empty open channel\n\
and Disconnected as recv() does.");

static PyObject *
Receiver_try_recv(ReceiverObject *self, PyObject *Py_UNUSED(ignored))
{
    return receive(self, 0, CC_FOREVER);
}

PyDoc_STRVAR(recv_timeout_doc,
"recv_timeout(seconds) -> message\n\
\n\
Like recv(), but raises TimeoutError when no message comes within `seconds`.");

static PyObject *
Receiver_recv_timeout(ReceiverObject *self, PyObject *seconds)
{
    cc_time deadline;
    if (cc_deadline_from(seconds, "Receiver.recv_timeout", 0, &deadline) < 0) {
        return NULL;
    }
    return receive(self, 1, deadline);
}

PyDoc_STRVAR(receiver_close_doc,
"close()\n\
\n\
Close the receiving end (idempotent): the messages still queued are dropped,\n\
waiting and later sends raise Disconnected, and so does every later recv.");

static PyObject *
Receiver_close(ReceiverObject *self, PyObject *Py_UNUSED(ignored))
{
    ChannelObject *ch = self->channel;
    PyObject *wakers = NULL;
    detached_ring dropped = {NULL, 0, 0, 0};
    STATE_BEGIN(ch)
    if (!ch->receiver_closed) {
        ch->receiver_closed = 1;
        ring_detach(ch, &dropped);
        cc_queue_wake_all(&ch->receivers);
        cc_queue_wake_all(&ch->senders);   /* rendezvous offers are withdrawn */
        wakers = snapshot_wakers(ch);
    }
    STATE_END();
    ring_drop(&dropped);
    if (call_wakers(wakers) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Receiver_exit(ReceiverObject *self, PyObject *const *Py_UNUSED(args),
              Py_ssize_t Py_UNUSED(nargs))
{
    return Receiver_close(self, NULL);
}

static PyObject *
Receiver_iter(PyObject *self)
{
    return Py_NewRef(self);
}

/* Iteration: recv() until Disconnected (which ends it). */
static PyObject *
Receiver_iternext(ReceiverObject *self)
{
    PyObject *value = receive(self, 1, CC_FOREVER);
    if (value == NULL && PyErr_ExceptionMatches(Disconnected)) {
        PyErr_Clear();
    }
    return value;
}

PyDoc_STRVAR(ready_doc,
"_ready() -> bool\n\
\n\
wait_any's readiness: would recv() return at once (a message waits, or the\n\
channel is disconnected or closed)?  Never blocks; consumes nothing.");

static PyObject *
Receiver_ready(ReceiverObject *self, PyObject *Py_UNUSED(ignored))
{
    ChannelObject *ch = self->channel;
    int ready;
    STATE_BEGIN(ch)
    ready = ready_now(ch);
    STATE_END();
    return PyBool_FromLong(ready);
}

/* Replace the wakers tuple by one with `waker` added (add) or every
   occurrence of it removed: the new tuple is built outside the state section
   and swapped in only if nobody changed the wakers meanwhile. */
static PyObject *
update_wakers(ReceiverObject *self, PyObject *waker, int add)
{
    ChannelObject *ch = self->channel;
    for (;;) {
        PyObject *old;
        STATE_BEGIN(ch)
        old = Py_XNewRef(ch->wakers);
        STATE_END();
        Py_ssize_t n = old != NULL ? PyTuple_GET_SIZE(old) : 0;
        Py_ssize_t keep = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            keep += PyTuple_GET_ITEM(old, i) != waker;
        }
        if (!add && keep == n) {
            Py_XDECREF(old);
            Py_RETURN_NONE;   /* absent: nothing to remove */
        }
        PyObject *new = NULL;
        Py_ssize_t size = keep + (add ? n - keep + 1 : 0);
        if (size > 0) {
            new = PyTuple_New(size);
            if (new == NULL) {
                Py_XDECREF(old);
                return NULL;
            }
            Py_ssize_t j = 0;
            for (Py_ssize_t i = 0; i < n; i++) {
                PyObject *item = PyTuple_GET_ITEM(old, i);
                if (add || item != waker) {
                    PyTuple_SET_ITEM(new, j++, Py_NewRef(item));
                }
            }
            if (add) {
                PyTuple_SET_ITEM(new, j, Py_NewRef(waker));
            }
        }
        PyObject *drop = NULL;
        int swapped = 0;
        STATE_BEGIN(ch)
        if (ch->wakers == old) {
            drop = ch->wakers;
            ch->wakers = new;
            swapped = 1;
        }
        STATE_END();
        Py_XDECREF(old);
        Py_XDECREF(drop);
        if (swapped) {
            Py_RETURN_NONE;
        }
        Py_XDECREF(new);   /* changed meanwhile: start again */
    }
}

PyDoc_STRVAR(add_waker_doc,
"_add_waker(fn)\n\
\n\
Call fn() after every change that may make this receiver ready (from any\n\
thread, never inside the channel's state section).");

static PyObject *
Receiver_add_waker(ReceiverObject *self, PyObject *waker)
{
    return update_wakers(self, waker, 1);
}

PyDoc_STRVAR(remove_waker_doc,
"_remove_waker(fn)\n\
\n\
Stop calling fn (removing one that is absent is a no-op).");

static PyObject *
Receiver_remove_waker(ReceiverObject *self, PyObject *waker)
{
    return update_wakers(self, waker, 0);
}

static PyObject *
Receiver_get_name(ReceiverObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->channel->name);
}

static PyObject *
Receiver_repr(ReceiverObject *self)
{
    ChannelObject *ch = self->channel;
    Py_ssize_t queued;
    const char *state;
    STATE_BEGIN(ch)
    queued = ch->bound == 0 ? ch->senders.count : ch->len;
    state = ch->receiver_closed ? "closed"
        : ch->senders_open == 0 ? "disconnected" : "open";
    STATE_END();
    if (ch->bound == UNBOUNDED) {
        return PyUnicode_FromFormat("<Receiver of %S: %zd queued, %s>",
                                    ch->name, queued, state);
    }
    return PyUnicode_FromFormat("<Receiver of %S (bound %zd): %zd queued, %s>",
                                ch->name, ch->bound, queued, state);
}

/* Dropping the Receiver does not close it (as the pure-Python backends). */
static void
Receiver_dealloc(ReceiverObject *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->channel);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Receiver_methods[] = {
    {"recv", (PyCFunction)Receiver_recv, METH_NOARGS, recv_doc},
    {"try_recv", (PyCFunction)Receiver_try_recv, METH_NOARGS, try_recv_doc},
    {"recv_timeout", (PyCFunction)Receiver_recv_timeout, METH_O, recv_timeout_doc},
    {"close", (PyCFunction)Receiver_close, METH_NOARGS, receiver_close_doc},
    {"__enter__", End_enter, METH_NOARGS, "__enter__() -> the Receiver itself"},
    {"__exit__", (PyCFunction)(void (*)(void))Receiver_exit, METH_FASTCALL,
     "__exit__(*exc)\n\nClose this Receiver."},
    {"_ready", (PyCFunction)Receiver_ready, METH_NOARGS, ready_doc},
    {"_add_waker", (PyCFunction)Receiver_add_waker, METH_O, add_waker_doc},
    {"_remove_waker", (PyCFunction)Receiver_remove_waker, METH_O, remove_waker_doc},
    {NULL, NULL}
};

static PyGetSetDef Receiver_getset[] = {
    {"name", (getter)Receiver_get_name, NULL, "The channel's name.", NULL},
    {"_channel", (getter)End_get_channel, NULL, NULL, NULL},
    {NULL}
};

static PyTypeObject ReceiverType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.Receiver",
    .tp_doc = PyDoc_STR("The receiving end of a channel (native core); made by channel().\n"
                        "Iterating it receives until Disconnected."),
    .tp_basicsize = sizeof(ReceiverObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)Receiver_dealloc,
    .tp_traverse = (traverseproc)End_traverse,
    .tp_repr = (reprfunc)Receiver_repr,
    .tp_iter = Receiver_iter,
    .tp_iternext = (iternextfunc)Receiver_iternext,
    .tp_methods = Receiver_methods,
    .tp_getset = Receiver_getset,
};


/* ------------------------------------------------------- the shared state */

static int
Channel_traverse(ChannelObject *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < self->len; i++) {
        Py_VISIT(self->ring[(self->head + i) & (self->cap - 1)]);
    }
    Py_VISIT(self->wakers);
    Py_VISIT(self->name);
    return 0;
}

/* Only for unreachable channels: no thread is inside one of its operations. */
static int
Channel_clear(ChannelObject *self)
{
    detached_ring dropped;
    ring_detach(self, &dropped);
    ring_drop(&dropped);
    Py_CLEAR(self->wakers);
    return 0;
}

static void
Channel_dealloc(ChannelObject *self)
{
    PyObject_GC_UnTrack(self);
    Channel_clear(self);
    Py_CLEAR(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Read-only diagnostics (tests look at `rx._channel.wakers`). */
static PyObject *
Channel_get_wakers(ChannelObject *self, void *Py_UNUSED(closure))
{
    PyObject *wakers;
    STATE_BEGIN(self)
    wakers = Py_XNewRef(self->wakers);
    STATE_END();
    return wakers != NULL ? wakers : PyTuple_New(0);
}

static PyObject *
Channel_get_name(ChannelObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->name);
}

static PyObject *
Channel_get_bound(ChannelObject *self, void *Py_UNUSED(closure))
{
    if (self->bound == UNBOUNDED) {
        Py_RETURN_NONE;
    }
    return PyLong_FromSsize_t(self->bound);
}

/* Snapshot counters: (queued, senders_open, receiver_closed, parked receivers,
   parked senders). */
static PyObject *
Channel_get_stats(ChannelObject *self, void *Py_UNUSED(closure))
{
    Py_ssize_t len, open, recv_parked, send_parked;
    int closed;
    STATE_BEGIN(self)
    len = self->len;
    open = self->senders_open;
    closed = self->receiver_closed;
    recv_parked = self->receivers.count;
    send_parked = self->senders.count;
    STATE_END();
    return Py_BuildValue("(nnOnn)", len, open, closed ? Py_True : Py_False,
                         recv_parked, send_parked);
}

static PyGetSetDef Channel_getset[] = {
    {"wakers", (getter)Channel_get_wakers, NULL, "wait_any wakers (a tuple).", NULL},
    {"name", (getter)Channel_get_name, NULL, NULL, NULL},
    {"bound", (getter)Channel_get_bound, NULL, "None, 0 (rendezvous) or the capacity.", NULL},
    {"stats", (getter)Channel_get_stats, NULL,
     "(queued, senders_open, receiver_closed, parked receivers, parked senders)", NULL},
    {NULL}
};

static PyTypeObject ChannelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core._Channel",
    .tp_doc = PyDoc_STR("The state shared by the two ends of one channel."),
    .tp_basicsize = sizeof(ChannelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)Channel_dealloc,
    .tp_traverse = (traverseproc)Channel_traverse,
    .tp_clear = (inquiry)Channel_clear,
    .tp_getset = Channel_getset,
};


/* ---------------------------------------------------------- channel() */

static int
end_class(PyObject *cls, PyTypeObject *base, const char *what, PyTypeObject **out)
{
    if (cls == NULL || cls == Py_None) {
        *out = base;
        return 0;
    }
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, base)) {
        PyErr_Format(PyExc_TypeError, "channel: %s must be a subclass of %s, not %R",
                     what, base->tp_name, cls);
        return -1;
    }
    *out = (PyTypeObject *)cls;
    return 0;
}

PyDoc_STRVAR(channel_doc,
"channel(bound, name, *, sender_class=None, receiver_class=None) -> (Sender, Receiver)\n\
\n\
A new channel: bound None is unbounded, 0 a rendezvous, n > 0 holds at most\n\
n messages (the facade validates it).  A false `name` gets an automatic\n\
\"channel#N\".  The two ends are instances of `sender_class` and\n\
`receiver_class` (subclasses of Sender and Receiver; the bases by default).");

static PyObject *
channel_func(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"bound", "name", "sender_class", "receiver_class", NULL};
    PyObject *bound_obj = Py_None, *name = Py_None;
    PyObject *sender_cls = Py_None, *receiver_cls = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO$OO:channel", kwlist, &bound_obj,
                                     &name, &sender_cls, &receiver_cls)) {
        return NULL;
    }
    PyTypeObject *stype, *rtype;
    if (end_class(sender_cls, &SenderType, "sender_class", &stype) < 0
        || end_class(receiver_cls, &ReceiverType, "receiver_class", &rtype) < 0) {
        return NULL;
    }
    Py_ssize_t bound = UNBOUNDED;
    if (bound_obj != Py_None) {
        bound = PyNumber_AsSsize_t(bound_obj, NULL);   /* huge: clamped */
        if (bound == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (bound < 0) {
            PyErr_Format(PyExc_ValueError, "channel: bound must be >= 0, got %zd", bound);
            return NULL;
        }
    }
    PyObject *label = cc_name_or_auto(name, "channel");
    if (label == NULL) {
        return NULL;
    }
    ChannelObject *ch = (ChannelObject *)ChannelType.tp_alloc(&ChannelType, 0);
    if (ch == NULL) {
        Py_DECREF(label);
        return NULL;
    }
    ch->bound = bound;
    ch->senders_open = 1;
    ch->name = label;
    SenderObject *tx = (SenderObject *)stype->tp_alloc(stype, 0);
    ReceiverObject *rx = (ReceiverObject *)rtype->tp_alloc(rtype, 0);
    PyObject *pair = NULL;
    if (tx != NULL && rx != NULL) {
        tx->channel = (ChannelObject *)Py_NewRef((PyObject *)ch);
        rx->channel = (ChannelObject *)Py_NewRef((PyObject *)ch);
        pair = PyTuple_Pack(2, (PyObject *)tx, (PyObject *)rx);
    }
    Py_XDECREF(tx);
    Py_XDECREF(rx);
    Py_DECREF(ch);
    return pair;
}

static PyMethodDef channel_functions[] = {
    {"channel", (PyCFunction)(void (*)(void))channel_func, METH_VARARGS | METH_KEYWORDS,
     channel_doc},
    {NULL, NULL}
};

int
cc_add_channel_types(PyObject *module)
{
    PyObject *errors = PyImport_ImportModule("concurrency._errors");
    if (errors == NULL) {
        return -1;
    }
    Py_XSETREF(Disconnected, PyObject_GetAttrString(errors, "Disconnected"));
    Py_XSETREF(Empty, PyObject_GetAttrString(errors, "Empty"));
    Py_DECREF(errors);
    if (Disconnected == NULL || Empty == NULL) {
        return -1;
    }
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL) {
        return -1;
    }
    PyObject *main = PyObject_CallMethod(threading, "main_thread", NULL);
    Py_DECREF(threading);
    PyObject *ident = main != NULL ? PyObject_GetAttrString(main, "ident") : NULL;
    Py_XDECREF(main);
    if (ident == NULL) {
        return -1;
    }
    PyObject *globals = Py_BuildValue("{sO}", "__builtins__", PyEval_GetBuiltins());
    if (globals == NULL) {
        Py_DECREF(ident);
        return -1;
    }
    PyObject *defined = PyRun_String("def checkpoint():\n    pass\n", Py_file_input,
                                     globals, globals);
    Py_XDECREF(defined);
    Py_XSETREF(checkpoint_func, defined != NULL
               ? Py_XNewRef(PyDict_GetItemString(globals, "checkpoint")) : NULL);
    Py_DECREF(globals);
    if (checkpoint_func == NULL) {
        Py_DECREF(ident);
        return -1;
    }
    main_thread_ident = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    if (main_thread_ident == (unsigned long)-1 && PyErr_Occurred()) {
        return -1;
    }
    if (PyType_Ready(&ChannelType) < 0
        || cc_add_type(module, &SenderType) < 0
        || cc_add_type(module, &ReceiverType) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, channel_functions);
}
