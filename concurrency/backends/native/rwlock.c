/* rwlock.c: RwLock and its guards (ReadGuard, WriteGuard, UpgradableReadGuard).

   A phase-fair readers-writer lock with upgradable reads.  The exclusive part
   is the *token*: a writer (inside, or waiting for the readers to leave) or
   the one upgradable reader holds it.  Writers and upgradable readers park
   for it in `token_q`, first come, first served.

   The whole lock is one atomic word (`state`), in the style of parking_lot:

       RW_WRITER    a writer holds the token (also: a poisoned lock keeps it)
       RW_UPGRADER  the upgradable reader holds the token
       RW_BLOCKED   arriving readers take the slow path: a writer holds the
                    token or waits for it, or the upgradable reader upgrades
       RW_PARKED    threads are parked here: releases take the slow path
       readers      the count of plain readers inside, above the flags

   Uncontended paths are one compare-and-swap on the word, with no state
   section: a reader enters while !BLOCKED and leaves while !PARKED; a writer
   enters from 0 and leaves back to 0 from exactly WRITER|BLOCKED.  Every
   other transition runs in the state section and changes the word with a
   compare-and-swap too, deciding from the exact value it replaces.  There is
   no handshake between two words: all that fast paths can see is one word,
   so with sequentially consistent atomics each transition is linearizable.
   A thread parks only after a compare-and-swap that set PARKED on the very
   state that made it wait (and BLOCKED for a reader), so the release it waits
   for fails its fast path and, in the state section, finds it queued.

   Phase-fair, eventually strict (parking_lot's "eventual fairness"): once a
   writer waits, arriving readers queue in `read_q`.  When a writer phase ends
   (the writer leaves, downgrades, or gives up), the queued readers are woken
   with a *pass*: they may enter ahead of the next writer as long as it is not
   inside yet (it waits for them to leave, `drainer`); the first thread parked
   for the token is woken to compete for it again.  Such a release hands
   nothing to a thread that is not running, so the running threads never
   convoy behind sleeping ones (with the GIL that costs a thread switch per
   operation).  To bound every wait, once the lock has been unfair for 0.5-1
   ms (`fair_at`) the next release is strict instead: the queued readers are
   counted in at once and the token is handed to the first parked thread.  So
   the readers that queued meanwhile go before the next writer, readers
   arriving later queue behind it, and neither side starves.  An upgradable
   reader leaving does not end a writer phase: the readers queued behind a
   waiting writer stay behind it.

   As in a phase-fair ticket lock, the writer handed the token at the end of a
   writer phase (or woken to compete for it) blocks new readers from the
   moment it runs; the readers arriving before that join the reader phase it
   then waits for.

   Free-threaded builds spin before they park, as parking_lot does: the lock
   is usually held for a short critical section by a thread that is running,
   and a futex sleep and wake-up cost far more.  An acquire retries its fast
   path for a few microseconds (cc_spin_wait) while nobody is parked (PARKED
   clear: parked threads queued first, and phase-fairness makes readers wait
   behind a parked writer); a writer that took the token, or an upgrade,
   spins for the readers inside to leave before it registers as the drainer.
   Spins happen outside the state section, in states the lock is in anyway
   (a writer holding the token without a drainer, an upgrade blocking
   readers without one), and run no Python code.  With the GIL nothing
   spins: the thread we would wait for could not run meanwhile.

   Asynchronous exceptions arrive only in cc_park.  A thread that was handed
   something (a read slot, the token) and then raises gives it back the
   ordinary way; a thread that was not takes itself off its queue and
   recomputes the flags (an interrupted writer stops holding readers back and
   lets them in); an interrupted upgrade() leaves the guard an upgradable read
   guard.  No reader count or token is ever leaked.

   Semantics (as the pure-Python reference):
   - an exception leaving a WriteGuard's or UpgradableReadGuard's `with`
     poisons the lock: the token stays taken, every parked thread wakes and
     raises PoisonError, and so does every later acquire until clear_poison();
     a ReadGuard never poisons;
   - a guard dropped while held releases without poisoning (a checked one also
     warns with a ResourceWarning naming the lock and the acquiring line);
   - try_* report the state for whoever asks (a thread holding a read guard
     gets a second one from try_read while readers may enter);
   - checked (`_checked_ = True`, the `threading` backend): which threads hold
     the lock in which mode is recorded; a blocking or timed acquire by a
     holder, an upgrade() by a thread also holding a read guard, and releases
     by a thread other than the acquirer are refused with RuntimeError. */

#include "core.h"

#define RW_WRITER      1
#define RW_UPGRADER    2
#define RW_BLOCKED     4
#define RW_PARKED      8
#define RW_ONE_READER  16
#define RW_TOKEN       (RW_WRITER | RW_UPGRADER)
#define RW_FLAGS       (RW_TOKEN | RW_BLOCKED | RW_PARKED)
#define RW_READERS(s)  ((s) >> 4)

/* Guard modes; also the `kind` of a waiter queued for that mode. */
enum { MODE_READ = 0, MODE_WRITE = 1, MODE_UPGRADABLE = 2 };
#define KIND_DRAIN 3   /* the token's holder, waiting for the readers to leave */

static const char *const mode_names[] = {"read", "write", "upgradable read"};
static const char *const guard_names[] = {"ReadGuard", "WriteGuard", "UpgradableReadGuard"};

/* What one attempt in the state section found. */
enum {
    OUT_REFUSED = 0,     /* not now (try_*), timed out */
    OUT_GOT = 1,         /* acquired */
    OUT_QUEUED,          /* queued: park */
    OUT_NEED_WAITER,     /* would queue: prepare a waiter first, then try again */
    OUT_POISONED,        /* raise PoisonError */
    OUT_DRAIN,           /* a writer took the token; readers are still inside */
    OUT_RETRY,           /* woken without a grant: look again */
    OUT_PARK,            /* park again */
    OUT_FAILED,          /* an exception is set */
};

typedef struct {
    unsigned long ident;
    int mode;
    Py_ssize_t count;
} Holder;

typedef struct {
    PyObject_HEAD
    int state;                 /* the atomic word (see above) */
    int checked;               /* the `threading` backend's checks are on */
    /* -- state section only -- */
    cc_queue read_q;           /* readers held back (until a pass or counted in) */
    cc_queue token_q;          /* writers and upgradable readers, FIFO */
    cc_waiter *drainer;        /* the token's holder waiting for readers to leave */
    Py_ssize_t writers_parked; /* writers in token_q */
    Py_ssize_t phase;          /* writer phases ended so far (readers' passes) */
    cc_time fair_at;           /* from then on, the next release is strict */
    int upgrading;             /* the upgradable reader waits in upgrade() */
    int draining;              /* the writer holding the token is not inside yet */
    int announced;             /* the writer holding the token blocks readers; 1
                                  whenever no writer was handed the token unseen */
    Holder *holders;           /* checked: who holds the lock in which mode */
    Py_ssize_t n_holders, holders_cap;
    /* -- */
    PyObject *value;           /* the protected value */
    PyObject *poison;          /* the exception that poisoned it, or NULL */
    PyObject *name;            /* label for errors and repr */
    PyTypeObject *guard_types[3];  /* indexed by mode */
} RwLockObject;

typedef struct {
    PyObject_HEAD
    RwLockObject *rw;          /* the lock held, or NULL once released */
    unsigned long owner;       /* the thread that acquired it */
    int mode;                  /* MODE_READ, MODE_WRITE or MODE_UPGRADABLE */
    cc_location where;         /* checked: where it was acquired */
} RwGuardObject;

static PyTypeObject RwLockType;
static PyTypeObject ReadGuardType;
static PyTypeObject WriteGuardType;
static PyTypeObject UpgradableReadGuardType;


/* -------------------------------------------------------- the fast paths */

static inline int
read_fast(RwLockObject *self)
{
    int s = cc_load_int(&self->state);
    while (!(s & RW_BLOCKED)) {
        if (cc_cas_int(&self->state, s, s + RW_ONE_READER)) {
            return 1;
        }
        s = cc_load_int(&self->state);
    }
    return 0;
}

static inline int
read_release_fast(RwLockObject *self)
{
    int s = cc_load_int(&self->state);
    while (!(s & RW_PARKED)) {
        if (cc_cas_int(&self->state, s, s - RW_ONE_READER)) {
            return 1;
        }
        s = cc_load_int(&self->state);
    }
    return 0;
}

static inline int
write_fast(RwLockObject *self)
{
    return cc_cas_int(&self->state, 0, RW_WRITER | RW_BLOCKED);
}

static inline int
write_release_fast(RwLockObject *self)
{
    return cc_cas_int(&self->state, RW_WRITER | RW_BLOCKED, 0);
}

/* The token is free and nobody queues: take it for the upgradable reader.
   (No PARKED means an empty token_q; a poisoned lock keeps RW_WRITER.) */
static inline int
upgradable_fast(RwLockObject *self)
{
    int s = cc_load_int(&self->state);
    while (!(s & (RW_TOKEN | RW_PARKED))) {
        if (cc_cas_int(&self->state, s, s | RW_UPGRADER)) {
            return 1;
        }
        s = cc_load_int(&self->state);
    }
    return 0;
}

/* Without PARKED nobody waits for the token (and nothing blocks readers). */
static inline int
upgradable_release_fast(RwLockObject *self)
{
    int s = cc_load_int(&self->state);
    while (!(s & RW_PARKED)) {
        if (cc_cas_int(&self->state, s, s & ~RW_UPGRADER)) {
            return 1;
        }
        s = cc_load_int(&self->state);
    }
    return 0;
}


/* ------------------------------------------------ spinning (free-threaded) */

#ifdef Py_GIL_DISABLED
static unsigned long main_thread_ident;   /* the thread that runs signal handlers */

static inline int
timed_out(cc_time deadline)
{
    return deadline != CC_FOREVER && cc_now() >= deadline;
}

/* Before queueing for `mode`: retry the fast path while a running thread
   holds the lock and nobody is parked (parked threads are a queue that a
   spinner would overtake; they mean a long wait anyway).  1 acquired; 0 go
   on to the state section: the rounds are spent, threads are parked, the
   deadline passed, or (a writer) the token is free while readers are inside,
   so take it there (blocking new readers) and wait for them in drain_wait.
   A poisoned lock (which keeps the token) is not waited for.  `*spun` is
   set if it waited at all. */
static int
spin_acquire(RwLockObject *self, int mode, cc_time deadline, int *spun)
{
    int round = 0;
    if (cc_load_ptr(&self->poison) != NULL) {
        return 0;
    }
    for (;;) {
        int s = cc_load_int(&self->state);
        if (s & RW_PARKED) {
            return 0;
        }
        if (mode == MODE_READ) {
            if (!(s & RW_BLOCKED)) {
                if (cc_cas_int(&self->state, s, s + RW_ONE_READER)) {
                    return 1;
                }
                continue;
            }
        }
        else if (!(s & RW_TOKEN)) {
            if (mode == MODE_UPGRADABLE) {
                if (cc_cas_int(&self->state, s, s | RW_UPGRADER)) {
                    return 1;
                }
                continue;
            }
            if (s != 0) {          /* readers inside */
                return 0;
            }
            if (write_fast(self)) {
                return 1;
            }
            continue;
        }
        if (!cc_spin_wait(round++) || timed_out(deadline)) {
            return 0;
        }
        *spun = 1;
    }
}

/* The token's holder, readers blocked (a writer not inside yet, or the
   upgradable reader upgrading): wait for the readers inside to leave.
   1 once none is seen (the state section looks again), else 0. */
static int
spin_drain(RwLockObject *self, cc_time deadline)
{
    for (int round = 0;; round++) {
        if (RW_READERS(cc_load_int(&self->state)) == 0) {
            return 1;
        }
        if (!cc_spin_wait(round) || timed_out(deadline)) {
            return 0;
        }
    }
}
#endif

/* Free-threaded: a signal that reached the main thread while it spun does not
   interrupt the sleep that follows (its handler is pending, not run), so the
   main thread's first sleep after a spin is capped at SIGNAL_GRACE_NS; then
   the handlers run (one that raises ends the wait, as in cc_park) and the
   wait goes on.  Otherwise cc_park. */
#define SIGNAL_GRACE_NS 2000000

static cc_park_result
park(cc_waiter *w, cc_time deadline, int spun)
{
#ifdef Py_GIL_DISABLED
    if (spun && w->ident == main_thread_ident) {
        cc_time grace = cc_now() + SIGNAL_GRACE_NS;
        if (deadline == CC_FOREVER || grace < deadline) {
            cc_park_result r = cc_park(w, grace);
            if (r != CC_PARK_TIMEOUT) {
                return r;
            }
            if (Py_MakePendingCalls() < 0) {
                return CC_PARK_ERROR;
            }
        }
    }
#else
    (void)spun;
#endif
    return cc_park(w, deadline);
}


/* ------------------------------------------- state-section transitions */

/* How long a lock may stay unfair: after this, the next release hands the
   lock over strictly (see release_token_locked).  Between 0.5 and 1 ms. */
#define FAIR_MIN_NS    500000
#define FAIR_SPREAD_NS 500000

static inline Py_ssize_t
queued_count(RwLockObject *self)
{
    return self->read_q.count + self->token_q.count + (self->drainer != NULL);
}

/* RW_BLOCKED for a lock whose token bits are `token`, with `writers` parked
   in token_q and a writer holding the token that has `announced` itself or
   not.  As in a phase-fair ticket lock, one writer at a time is "present" and
   blocks new readers: the one holding the token, from the moment it runs, or
   else a writer parked for the token.  A writer woken to compete again does
   not block them until it runs. */
static inline int
blocked_bit(RwLockObject *self, int token, Py_ssize_t writers, int announced)
{
    if (token & RW_WRITER) {
        return announced ? RW_BLOCKED : 0;
    }
    return (self->upgrading || writers > 0) ? RW_BLOCKED : 0;
}

static inline int
parked_bit(Py_ssize_t queued)
{
    return queued > 0 ? RW_PARKED : 0;
}

static void
queue_push_front(cc_queue *q, cc_waiter *w)
{
    w->prev = NULL;
    w->next = q->head;
    if (q->head != NULL) {
        q->head->prev = w;
    }
    else {
        q->tail = w;
    }
    q->head = w;
    q->count++;
}

static void
token_q_push(RwLockObject *self, cc_waiter *w, int front)
{
    if (front) {
        queue_push_front(&self->token_q, w);
    }
    else {
        cc_queue_push(&self->token_q, w);
    }
    if (w->kind == MODE_WRITE) {
        self->writers_parked++;
    }
}

static void
token_q_remove(RwLockObject *self, cc_waiter *w)
{
    cc_queue_remove(&self->token_q, w);
    if (w->kind == MODE_WRITE) {
        self->writers_parked--;
    }
}

/* Wake every queued reader; `granted`: they were counted in already, else
   they look again (with a pass if a writer phase ended since they queued). */
static void
wake_readers(RwLockObject *self, int granted)
{
    cc_waiter *w;
    while ((w = self->read_q.head) != NULL) {
        cc_queue_remove(&self->read_q, w);
        w->ticket = granted;
        cc_wake(w);
    }
}

enum {
    REFRESH_PLAIN = 0,        /* recompute the flags */
    REFRESH_PHASE_OVER = 1,   /* ... a writer gave up: queued readers get a pass */
    REFRESH_RECHECK = 2,      /* ... an upgrade gave up: readers look again */
};

/* After a change of plan (a waiter gave up, an upgrade was abandoned):
   recompute BLOCKED and PARKED; count the queued readers in if nothing blocks
   them now, else wake them to look again if `how` says they may pass.
   Decided from the exact word it replaces. */
static void
refresh_locked(RwLockObject *self, int how)
{
    Py_ssize_t queued_readers = self->read_q.count;
    for (;;) {
        int s = cc_load_int(&self->state);
        int token = s & RW_TOKEN;
        int blocked = blocked_bit(self, token, self->writers_parked, self->announced);
        int admit = queued_readers > 0 && !blocked;
        int recheck = queued_readers > 0 && blocked && how != REFRESH_PLAIN;
        Py_ssize_t queued = queued_count(self) - ((admit || recheck) ? queued_readers : 0);
        int ns = (s & ~(RW_BLOCKED | RW_PARKED)) | blocked | parked_bit(queued);
        if (admit) {
            ns += (int)queued_readers * RW_ONE_READER;
        }
        if (cc_cas_int(&self->state, s, ns)) {
            if (how == REFRESH_PHASE_OVER) {
                self->phase++;
            }
            if (admit || recheck) {
                wake_readers(self, admit);
            }
            return;
        }
    }
}

/* The token is free: wake the first thread parked for it to compete again (a
   woken thread that gives up passes this on). */
static void
wake_token_head_locked(RwLockObject *self)
{
    cc_waiter *head = self->token_q.head;
    if (head != NULL) {
        token_q_remove(self, head);
        head->ticket = 0;
        cc_wake(head);
    }
}

/* The caller holds the token (or a poisoned lock kept it) and gives it up,
   staying a reader if `extra_readers` is 1 (downgrade); `write_phase_over`
   when a writer leaves.

   Usually the release is not a hand-off (no convoys): the token becomes free,
   the first thread parked for it is woken to compete again, and if a writer
   phase ended the queued readers are woken with a pass, to enter while no
   writer is inside.  Once the lock has been unfair for a while (fair_at), the
   release is strict instead: the queued readers are counted in first, then
   the token is handed to the first parked thread -- so nobody starves. */
static void
release_token_locked(RwLockObject *self, int extra_readers, int write_phase_over)
{
    cc_waiter *next = self->token_q.head;
    Py_ssize_t queued_readers = self->read_q.count;
    int fair = 0;
    if (next != NULL || queued_readers > 0) {
        cc_time now = cc_now();
        if (now >= self->fair_at) {
            fair = 1;
            self->fair_at = now + FAIR_MIN_NS + now % FAIR_SPREAD_NS;
        }
    }
    int token = 0;
    /* After a writer phase the next writer blocks readers once it runs; after
       an upgradable reader, at once (the readers queued behind it stay so). */
    int announced = fair ? !write_phase_over : 1;
    Py_ssize_t writers = self->writers_parked;
    if (next != NULL) {
        if (next->kind == MODE_WRITE) {
            writers--;
        }
        if (fair) {
            token = next->kind == MODE_WRITE ? RW_WRITER : RW_UPGRADER;
        }
    }
    int blocked = blocked_bit(self, token, writers, announced);
    int admit = queued_readers > 0 && (!blocked || (fair && write_phase_over));
    int pass = queued_readers > 0 && !admit && write_phase_over;
    Py_ssize_t queued = queued_count(self) - (next != NULL)
                        - ((admit || pass) ? queued_readers : 0);
    int readers_in = extra_readers + (admit ? (int)queued_readers : 0);
    /* The token is ours: fast paths can only move the reader count meanwhile. */
    for (;;) {
        int s = cc_load_int(&self->state);
        int ns = ((s & ~RW_FLAGS) | token | blocked | parked_bit(queued))
                 + readers_in * RW_ONE_READER;
        if (cc_cas_int(&self->state, s, ns)) {
            break;
        }
    }
    /* A free token (or one an upgradable reader holds) keeps `announced` set,
       so that a writer taking it by the fast path blocks readers. */
    self->announced = (token & RW_WRITER) ? announced : 1;
    if (write_phase_over) {
        self->phase++;
    }
    if (admit || pass) {
        wake_readers(self, admit);
    }
    if (next != NULL) {
        token_q_remove(self, next);
        next->ticket = fair;
        if (fair && next->kind == MODE_WRITE) {
            self->draining = 1;   /* it waits for the readers as soon as it runs */
        }
        cc_wake(next);
    }
}

/* The token's holder crashed with `exc`: keep the token (no writer or
   upgradable reader gets it until clear_poison), hold readers back, and wake
   every parked thread to raise PoisonError. */
static void
poison_locked(RwLockObject *self, PyObject *exc)
{
    if (self->poison == NULL) {
        cc_store_ptr(&self->poison, Py_NewRef(exc));
    }
    wake_readers(self, 0);
    while (self->token_q.head != NULL) {
        wake_token_head_locked(self);
    }
    self->upgrading = 0;
    self->draining = 0;
    self->announced = 1;
    for (;;) {
        int s = cc_load_int(&self->state);
        int ns = (s & ~RW_FLAGS) | RW_WRITER | RW_BLOCKED | parked_bit(self->drainer != NULL);
        if (cc_cas_int(&self->state, s, ns)) {
            return;
        }
    }
}

/* A reader leaves by the slow path; the last one wakes the drainer. */
static void
leave_read_locked(RwLockObject *self)
{
    for (;;) {
        int s = cc_load_int(&self->state);
        int ns = s - RW_ONE_READER;
        cc_waiter *drainer = NULL;
        if (RW_READERS(ns) == 0 && self->drainer != NULL) {
            drainer = self->drainer;
            ns = (ns & ~RW_PARKED) | parked_bit(queued_count(self) - 1);
        }
        if (cc_cas_int(&self->state, s, ns)) {
            if (drainer != NULL) {
                self->drainer = NULL;
                cc_wake(drainer);
            }
            return;
        }
    }
}

/* Holding the token (readers blocked): 1 if no reader is inside, else
   register `w` as the drainer the last reader wakes, and 0. */
static int
drained_or_register(RwLockObject *self, cc_waiter *w)
{
    for (;;) {
        int s = cc_load_int(&self->state);
        if (RW_READERS(s) == 0) {
            return 1;
        }
        if (cc_cas_int(&self->state, s, s | RW_PARKED)) {
            w->kind = KIND_DRAIN;
            self->drainer = w;
            return 0;
        }
    }
}

/* A writer holding the token gives up (timeout, exception) before getting in. */
static void
give_up_write_locked(RwLockObject *self, cc_waiter *w)
{
    if (self->drainer == w) {
        self->drainer = NULL;
    }
    self->draining = 0;
    release_token_locked(self, 0, 1);
}

/* A thread woken to compete for the token gives up: if the token is still
   free, the next parked thread gets the wake-up instead. */
static void
pass_wake_on_locked(RwLockObject *self)
{
    if (!(cc_load_int(&self->state) & RW_TOKEN)) {
        wake_token_head_locked(self);
    }
    refresh_locked(self, REFRESH_PLAIN);
}


/* ------------------------------------------------------- acquire attempts */

/* `arrived`: the writer phase a reader first queued in (-1 before): once a
   phase ended since, it may enter while no writer is inside or upgrading. */
static int
read_attempt_locked(RwLockObject *self, cc_waiter *w, int blocking, Py_ssize_t arrived)
{
    if (self->poison != NULL) {
        return OUT_POISONED;
    }
    for (;;) {
        int s = cc_load_int(&self->state);
        int passes = arrived >= 0 && arrived != self->phase && !self->upgrading
                     && (!(s & RW_WRITER) || self->draining || !self->announced);
        if (!(s & RW_BLOCKED) || passes) {
            if (cc_cas_int(&self->state, s, s + RW_ONE_READER)) {
                return OUT_GOT;
            }
            continue;
        }
        if (!blocking) {
            return OUT_REFUSED;
        }
        if (w == NULL) {
            return OUT_NEED_WAITER;
        }
        if (cc_cas_int(&self->state, s, s | RW_PARKED)) {
            w->kind = MODE_READ;
            w->ticket = 0;
            cc_queue_push(&self->read_q, w);
            return OUT_QUEUED;
        }
    }
}

/* A writer or an upgradable reader takes the free token, or queues for it
   (at the front when it was woken to compete again).  A writer that takes
   the token while readers are inside gets OUT_DRAIN: it holds the token,
   blocks new readers and waits for these to leave (drain_wait). */
static int
token_attempt_locked(RwLockObject *self, int mode, cc_waiter *w, int blocking, int front)
{
    if (self->poison != NULL) {
        return OUT_POISONED;
    }
    for (;;) {
        int s = cc_load_int(&self->state);
        if (!(s & RW_TOKEN)) {
            if (mode == MODE_UPGRADABLE) {
                if (cc_cas_int(&self->state, s, s | RW_UPGRADER)) {
                    return OUT_GOT;
                }
                continue;
            }
            if (RW_READERS(s) == 0) {
                if (cc_cas_int(&self->state, s, s | RW_WRITER | RW_BLOCKED)) {
                    self->draining = 0;
                    self->announced = 1;
                    return OUT_GOT;
                }
                continue;
            }
            if (!blocking) {
                return OUT_REFUSED;
            }
            if (cc_cas_int(&self->state, s, s | RW_WRITER | RW_BLOCKED)) {
                self->draining = 1;
                self->announced = 1;
                return OUT_DRAIN;
            }
            continue;
        }
        if (!blocking) {
            return OUT_REFUSED;
        }
        if (w == NULL) {
            return OUT_NEED_WAITER;
        }
        int blocked = mode == MODE_WRITE
            ? blocked_bit(self, s & RW_TOKEN, self->writers_parked + 1, self->announced)
            : 0;
        if (cc_cas_int(&self->state, s, s | blocked | RW_PARKED)) {
            w->kind = mode;
            w->ticket = 0;
            token_q_push(self, w, front);
            return OUT_QUEUED;
        }
    }
}

/* A parked reader or upgradable reader settles after cc_park returned `r`. */
static int
settle_queued_locked(RwLockObject *self, cc_waiter *w, int mode, cc_park_result r)
{
    if (w->woken && w->ticket) {           /* counted in / handed the token */
        if (r != CC_PARK_ERROR) {
            return OUT_GOT;
        }
        if (mode == MODE_READ) {
            leave_read_locked(self);
        }
        else {
            release_token_locked(self, 0, 0);
        }
        return OUT_FAILED;
    }
    if (w->woken) {                        /* look again (or: poisoned) */
        if (r != CC_PARK_ERROR) {
            return OUT_RETRY;
        }
        if (mode != MODE_READ) {
            pass_wake_on_locked(self);
        }
        return OUT_FAILED;
    }
    if (mode == MODE_READ) {
        cc_queue_remove(&self->read_q, w);
    }
    else {
        token_q_remove(self, w);
    }
    refresh_locked(self, REFRESH_PLAIN);
    return r == CC_PARK_ERROR ? OUT_FAILED : OUT_REFUSED;
}

/* A writer parked for the token settles after cc_park returned `r`.
   OUT_DRAIN: it was handed the token, and now waits for the readers. */
static int
settle_writer_locked(RwLockObject *self, cc_waiter *w, cc_park_result r)
{
    if (!w->woken) {
        token_q_remove(self, w);
        /* the readers we held back may go */
        refresh_locked(self, REFRESH_PHASE_OVER);
        return r == CC_PARK_ERROR ? OUT_FAILED : OUT_REFUSED;
    }
    if (!w->ticket) {                      /* look again (or: poisoned) */
        if (r != CC_PARK_ERROR) {
            return OUT_RETRY;
        }
        pass_wake_on_locked(self);
        return OUT_FAILED;
    }
    if (r == CC_PARK_ERROR) {              /* handed the token: give it back */
        give_up_write_locked(self, w);
        return OUT_FAILED;
    }
    if (!self->announced) {
        self->announced = 1;               /* from now on new readers wait */
        for (;;) {
            int s = cc_load_int(&self->state);
            if (cc_cas_int(&self->state, s, s | RW_BLOCKED)) {
                break;
            }
        }
    }
    return OUT_DRAIN;
}

/* A writer holding the token (`draining`: readers blocked, some may be
   inside) waits for the readers to leave: free-threaded builds spin first,
   then it registers as the drainer the last reader wakes, and parks.  Until
   it registers, the lock is in the state it was in before: a writer holding
   the token and draining, with no drainer, which every transition handles
   (readers leave by the fast path as long as nobody is parked).  `*w` is
   prepared here if `*have_waiter` is 0.  OUT_GOT; OUT_REFUSED (timed out)
   or OUT_FAILED (exception set), the token given back. */
static int
drain_wait(RwLockObject *self, cc_waiter *w, int *have_waiter, cc_time deadline, int spun)
{
    int out;
#ifdef Py_GIL_DISABLED
    spin_drain(self, deadline);
    spun = 1;
#endif
    for (;;) {
        STATE_BEGIN(self)
        if (*have_waiter) {
            cc_waiter_rearm(w);
            out = drained_or_register(self, w) ? OUT_GOT : OUT_PARK;
        }
        else {
            out = RW_READERS(cc_load_int(&self->state)) == 0 ? OUT_GOT : OUT_NEED_WAITER;
        }
        if (out == OUT_GOT) {
            self->draining = 0;
        }
        STATE_END();
        if (out != OUT_NEED_WAITER) {
            break;
        }
        if (cc_waiter_init(w, KIND_DRAIN) < 0) {
            STATE_BEGIN(self)
            give_up_write_locked(self, w);
            STATE_END();
            return OUT_FAILED;
        }
        *have_waiter = 1;
    }
    while (out == OUT_PARK) {
        cc_park_result r = park(w, deadline, spun);
        spun = 0;
        STATE_BEGIN(self)
        if (!w->woken || r == CC_PARK_ERROR) {
            /* timed out or interrupted (still the drainer unless woken) */
            give_up_write_locked(self, w);
            out = r == CC_PARK_ERROR ? OUT_FAILED : OUT_REFUSED;
        }
        else {
            cc_waiter_rearm(w);
            if (drained_or_register(self, w)) {
                self->draining = 0;
                out = OUT_GOT;
            }
        }
        STATE_END();
    }
    return out;
}

/* The slow path of an acquire in `mode`, until `deadline` (if `blocking`).
   1 acquired, 0 not (try_*, timeout), -1 with an exception set.

   Free-threaded builds spin before they queue (spin_acquire): when the lock
   is held for a short critical section by a thread that is running, a few
   microseconds of retrying the fast path save the futex sleep and wake-up
   of both sides.  Not with the GIL (the holder could not run meanwhile), not
   for try_* (non-blocking), not past the deadline, and not while threads
   are parked (parking_lot's rule: they queued first). */
static int
acquire_slow(RwLockObject *self, int mode, cc_time deadline, int blocking)
{
    cc_waiter w;
    int have_waiter = 0;
    int front = 0;             /* woken to compete again: keep our place */
    Py_ssize_t arrived = -1;   /* readers: the writer phase they first queued in */
    int spin = blocking;       /* free-threaded: spin before queueing */
    int spun = 0;              /* ... and did */
    int out;
#ifndef Py_GIL_DISABLED
    (void)spin;
#endif
    for (;;) {
#ifdef Py_GIL_DISABLED
        if (spin) {
            spin = 0;
            if (spin_acquire(self, mode, deadline, &spun)) {
                out = OUT_GOT;
                break;
            }
        }
#endif
        STATE_BEGIN(self)
        if (mode == MODE_READ) {
            out = read_attempt_locked(self, have_waiter ? &w : NULL, blocking, arrived);
            if (out == OUT_QUEUED && arrived < 0) {
                arrived = self->phase;
            }
        }
        else {
            out = token_attempt_locked(self, mode, have_waiter ? &w : NULL, blocking, front);
        }
        STATE_END();
        if (out == OUT_NEED_WAITER) {
            if (cc_waiter_init(&w, mode) < 0) {
                return -1;
            }
            have_waiter = 1;
            continue;
        }
        while (out == OUT_QUEUED) {
            cc_park_result r = park(&w, deadline, spun);
            spun = 0;
            STATE_BEGIN(self)
            out = mode == MODE_WRITE
                ? settle_writer_locked(self, &w, r)
                : settle_queued_locked(self, &w, mode, r);
            STATE_END();
        }
        if (out == OUT_DRAIN) {
            out = drain_wait(self, &w, &have_waiter, deadline, spun);
        }
        if (out != OUT_RETRY) {
            break;
        }
        cc_waiter_rearm(&w);
        front = 1;
        /* Woken to compete for the token again: spin if nobody is parked.  A
           reader woken to look again goes straight on: it may have a pass. */
        spin = blocking && mode != MODE_READ;
    }
    if (have_waiter) {
        cc_waiter_fini(&w);
    }
    switch (out) {
    case OUT_GOT:
        return 1;
    case OUT_REFUSED:
        return 0;
    case OUT_POISONED:
        cc_raise_poisoned((PyObject *)self);
        return -1;
    default:
        return -1;   /* OUT_FAILED: cc_park's exception is set */
    }
}


/* -------------------------------------------------------------- releases */

static void
release_read(RwLockObject *self)
{
    if (read_release_fast(self)) {
        return;
    }
    STATE_BEGIN(self)
    leave_read_locked(self);
    STATE_END();
}

/* Give the token back; `exc` (when not NULL) escaped the guard and poisons. */
static void
release_write(RwLockObject *self, PyObject *exc)
{
    if (exc == NULL && write_release_fast(self)) {
        return;
    }
    STATE_BEGIN(self)
    if (exc != NULL) {
        poison_locked(self, exc);
    }
    else {
        release_token_locked(self, 0, 1);
    }
    STATE_END();
}

static void
release_upgradable(RwLockObject *self, PyObject *exc)
{
    if (exc == NULL && upgradable_release_fast(self)) {
        return;
    }
    STATE_BEGIN(self)
    if (exc != NULL) {
        poison_locked(self, exc);
    }
    else {
        release_token_locked(self, 0, 0);
    }
    STATE_END();
}

static void
release_mode(RwLockObject *self, int mode, PyObject *exc)
{
    if (mode == MODE_READ) {
        release_read(self);
    }
    else if (mode == MODE_WRITE) {
        release_write(self, exc);
    }
    else {
        release_upgradable(self, exc);
    }
}


/* ----------------------------------------------------------- upgrade */

/* The upgradable reader waits for the plain readers to leave (new ones wait
   meanwhile), then becomes the writer.  0 done; -1 with an exception set, in
   which case it is still the upgradable reader.  Free-threaded builds block
   new readers and spin first (`upgrading` set, no drainer yet), as a writer's
   drain_wait does. */
static int
upgrade_slow(RwLockObject *self)
{
    cc_waiter w;
    int have_waiter = 0;
    int spin = 0;              /* free-threaded: block readers, spin first */
    int spun = 0;              /* ... and did */
    int out;
#ifdef Py_GIL_DISABLED
    spin = 1;
#endif
    for (;;) {
        STATE_BEGIN(self)
        out = OUT_NEED_WAITER;
        for (;;) {
            int s = cc_load_int(&self->state);
            if (RW_READERS(s) == 0) {
                int ns = (s & ~RW_UPGRADER) | RW_WRITER | RW_BLOCKED;
                if (cc_cas_int(&self->state, s, ns)) {
                    self->upgrading = 0;
                    self->announced = 1;
                    out = OUT_GOT;
                    break;
                }
                continue;
            }
            if (spin) {
                if (cc_cas_int(&self->state, s, s | RW_BLOCKED)) {
                    self->upgrading = 1;
                    out = OUT_DRAIN;
                    break;
                }
                continue;
            }
            if (!have_waiter) {
                break;
            }
            if (cc_cas_int(&self->state, s, s | RW_BLOCKED | RW_PARKED)) {
                self->upgrading = 1;
                w.kind = KIND_DRAIN;
                self->drainer = &w;
                out = OUT_PARK;
                break;
            }
        }
        STATE_END();
#ifdef Py_GIL_DISABLED
        if (out == OUT_DRAIN) {
            spin = 0;
            spun = 1;
            spin_drain(self, CC_FOREVER);
            continue;
        }
#endif
        if (out != OUT_NEED_WAITER) {
            break;
        }
        if (cc_waiter_init(&w, KIND_DRAIN) < 0) {
            STATE_BEGIN(self)
            if (self->upgrading) {   /* it spun: readers may come in again */
                self->upgrading = 0;
                refresh_locked(self, REFRESH_RECHECK);
            }
            STATE_END();
            return -1;
        }
        have_waiter = 1;
    }
    while (out == OUT_PARK) {
        cc_park_result r = park(&w, CC_FOREVER, spun);
        spun = 0;
        STATE_BEGIN(self)
        if (r == CC_PARK_ERROR) {
            /* Interrupted: stay the upgradable reader; readers may come in again. */
            if (self->drainer == &w) {
                self->drainer = NULL;
            }
            self->upgrading = 0;
            refresh_locked(self, REFRESH_RECHECK);
            out = OUT_FAILED;
        }
        else {
            cc_waiter_rearm(&w);
            if (drained_or_register(self, &w)) {
                for (;;) {
                    int s = cc_load_int(&self->state);
                    int ns = (s & ~RW_UPGRADER) | RW_WRITER | RW_BLOCKED;
                    if (cc_cas_int(&self->state, s, ns)) {
                        break;
                    }
                }
                self->upgrading = 0;
                self->announced = 1;
                out = OUT_GOT;
            }
        }
        STATE_END();
    }
    if (have_waiter) {
        cc_waiter_fini(&w);
    }
    return out == OUT_GOT ? 0 : -1;
}


/* ------------------------------------------------- checked: the holders */

static Py_ssize_t
holders_find(RwLockObject *self, unsigned long ident, int mode)
{
    for (Py_ssize_t i = 0; i < self->n_holders; i++) {
        Holder *h = &self->holders[i];
        if (h->ident == ident && (mode < 0 || h->mode == mode)) {
            return i;
        }
    }
    return -1;
}

/* Record one more guard of `mode` held by `ident`.  Plain C (no Python): if
   the array cannot grow, the guard goes unrecorded (the checks are advice). */
static void
holders_add_locked(RwLockObject *self, unsigned long ident, int mode)
{
    Py_ssize_t i = holders_find(self, ident, mode);
    if (i >= 0) {
        self->holders[i].count++;
        return;
    }
    if (self->n_holders == self->holders_cap) {
        Py_ssize_t cap = self->holders_cap ? self->holders_cap * 2 : 4;
        Holder *grown = PyMem_RawRealloc(self->holders, (size_t)cap * sizeof(Holder));
        if (grown == NULL) {
            return;
        }
        self->holders = grown;
        self->holders_cap = cap;
    }
    self->holders[self->n_holders++] = (Holder){ident, mode, 1};
}

static void
holders_remove_locked(RwLockObject *self, unsigned long ident, int mode)
{
    Py_ssize_t i = holders_find(self, ident, mode);
    if (i < 0 || --self->holders[i].count > 0) {
        return;
    }
    self->n_holders--;
    memmove(&self->holders[i], &self->holders[i + 1],
            (size_t)(self->n_holders - i) * sizeof(Holder));
}

static void
holders_add(RwLockObject *self, unsigned long ident, int mode)
{
    STATE_BEGIN(self)
    holders_add_locked(self, ident, mode);
    STATE_END();
}

static void
holders_remove(RwLockObject *self, unsigned long ident, int mode)
{
    STATE_BEGIN(self)
    holders_remove_locked(self, ident, mode);
    STATE_END();
}

/* The mode of the first guard `ident` holds, or -1. */
static int
holders_first_mode(RwLockObject *self, unsigned long ident, int mode)
{
    int held;
    STATE_BEGIN(self)
    Py_ssize_t i = holders_find(self, ident, mode);
    held = i >= 0 ? self->holders[i].mode : -1;
    STATE_END();
    return held;
}


/* ------------------------------------------------------------ the checks */

static PyObject *
current_thread_name(void)
{
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL) {
        return NULL;
    }
    PyObject *thread = PyObject_CallMethod(threading, "current_thread", NULL);
    Py_DECREF(threading);
    if (thread == NULL) {
        return NULL;
    }
    PyObject *name = PyObject_GetAttrString(thread, "name");
    Py_DECREF(thread);
    return name;
}

/* Checked: refuse a blocking or timed acquire by a thread that already holds
   the lock (the message of the checked backend's RwLock).  -1 if refused. */
static int
refuse_reentry(RwLockObject *self, unsigned long me, int mode)
{
    int held = holders_first_mode(self, me, -1);
    if (held < 0) {
        return 0;
    }
    PyObject *thread = current_thread_name();
    if (thread == NULL) {
        return -1;
    }
    const char *held_name = mode_names[held];
    PyErr_Format(PyExc_RuntimeError,
                 "%S: %S asks for a %s guard while it already holds %s %s guard; that can "
                 "deadlock (a waiting writer blocks new readers), so release the first "
                 "guard, or use upgradable_read()/upgrade()",
                 self->name, thread, mode_names[mode],
                 strchr("aeiou", held_name[0]) != NULL ? "an" : "a", held_name);
    Py_DECREF(thread);
    return -1;
}

/* Checked: an upgrade() by a thread that also holds a read guard would wait
   for itself. */
static PyObject *
refuse_upgrade_while_reading(RwLockObject *self)
{
    PyObject *thread = current_thread_name();
    if (thread == NULL) {
        return NULL;
    }
    PyErr_Format(PyExc_RuntimeError,
                 "%S: %S asks to upgrade while it also holds a read guard; upgrade() waits "
                 "for every reader to leave, so it would deadlock: release the read guard "
                 "first", self->name, thread);
    Py_DECREF(thread);
    return NULL;
}

/* A checked guard may only be released (or upgraded) by its acquirer. */
static inline int
foreign(RwGuardObject *g, RwLockObject *rw)
{
    return rw->checked && PyThread_get_thread_ident() != g->owner;
}

static PyObject *
refuse_foreign(RwGuardObject *g, RwLockObject *rw, const char *action)
{
    return cc_checked_error("_refuse_not_owner",
                            Py_BuildValue("(sOk)", action, rw->name, g->owner));
}

static PyObject *
guard_released(int mode)
{
    PyErr_Format(PyExc_RuntimeError,
                 "this %s was already released; it cannot be used any more", guard_names[mode]);
    return NULL;
}


/* ---------------------------------------------------------------- guards */

/* The lock was just acquired in `mode` by thread `me`: hand out its guard. */
static PyObject *
new_guard(RwLockObject *self, int mode, unsigned long me)
{
    PyTypeObject *type = self->guard_types[mode];
    RwGuardObject *g = (RwGuardObject *)type->tp_alloc(type, 0);
    if (g == NULL) {
        release_mode(self, mode, NULL);
        return NULL;
    }
    g->owner = me;
    g->mode = mode;
    if (self->checked) {
        cc_location_here(&g->where);
        holders_add(self, me, mode);
    }
    g->rw = (RwLockObject *)Py_NewRef(self);
    return (PyObject *)g;
}

/* Detach the lock from `g` atomically: of two threads releasing one guard at
   once, exactly one gets the lock (a new reference it must drop). */
static inline RwLockObject *
detach(RwGuardObject *g)
{
    return (RwLockObject *)cc_exchange_ptr((PyObject **)&g->rw, NULL);
}

/* Release `rw`, which `g` held in `mode`, poisoning with `exc` if not NULL
   (never for a read guard); drops the guard's reference. */
static void
release_held(RwGuardObject *g, RwLockObject *rw, int mode, PyObject *exc)
{
    if (rw->checked) {
        holders_remove(rw, g->owner, mode);
    }
    release_mode(rw, mode, mode == MODE_READ ? NULL : exc);
    Py_DECREF(rw);
}

static PyObject *
Guard_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self);
}

static PyObject *
guard_exit(RwGuardObject *self, int mode, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "__exit__() takes exactly 3 arguments (%zd given)", nargs);
        return NULL;
    }
    RwLockObject *rw = (RwLockObject *)cc_load_ptr((PyObject **)&self->rw);
    if (rw == NULL) {
        Py_RETURN_NONE;   /* released early with unlock() */
    }
    if (foreign(self, rw)) {
        return refuse_foreign(self, rw, "releasing");
    }
    rw = detach(self);
    if (rw == NULL) {
        Py_RETURN_NONE;   /* another thread released it just now */
    }
    release_held(self, rw, mode, args[0] != Py_None && args[1] != Py_None ? args[1] : NULL);
    Py_RETURN_NONE;
}

static PyObject *
guard_unlock(RwGuardObject *self, int mode)
{
    RwLockObject *rw = (RwLockObject *)cc_load_ptr((PyObject **)&self->rw);
    if (rw == NULL) {
        return guard_released(mode);
    }
    if (foreign(self, rw)) {
        return refuse_foreign(self, rw, "releasing");
    }
    rw = detach(self);
    if (rw == NULL) {
        return guard_released(mode);
    }
    release_held(self, rw, mode, NULL);
    Py_RETURN_NONE;
}

static PyObject *
guard_value(RwGuardObject *self, int mode)
{
    RwLockObject *rw = (RwLockObject *)cc_load_ptr((PyObject **)&self->rw);
    if (rw == NULL) {
        return guard_released(mode);
    }
    return Py_NewRef(rw->value);
}

PyDoc_STRVAR(read_exit_doc,
"__exit__(exc_type, exc, tb)\n\
\n\
Release the read lock unless unlock() already did (a reader never poisons).");

PyDoc_STRVAR(write_exit_doc,
"__exit__(exc_type, exc, tb)\n\
\n\
Release the lock unless unlock() or downgrade() already did; an exception\n\
leaving the block poisons the lock first.");

PyDoc_STRVAR(upgradable_exit_doc,
"__exit__(exc_type, exc, tb)\n\
\n\
Release the lock unless unlock() or upgrade() already did; an exception\n\
leaving the block poisons the lock first.");

PyDoc_STRVAR(unlock_doc,
"unlock()\n\
\n\
Release now; releasing a guard a second time raises RuntimeError.");

static PyObject *
ReadGuard_exit(RwGuardObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return guard_exit(self, MODE_READ, args, nargs);
}

static PyObject *
WriteGuard_exit(RwGuardObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return guard_exit(self, MODE_WRITE, args, nargs);
}

static PyObject *
UpgradableGuard_exit(RwGuardObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return guard_exit(self, MODE_UPGRADABLE, args, nargs);
}

static PyObject *
ReadGuard_unlock(RwGuardObject *self, PyObject *Py_UNUSED(ignored))
{
    return guard_unlock(self, MODE_READ);
}

static PyObject *
WriteGuard_unlock(RwGuardObject *self, PyObject *Py_UNUSED(ignored))
{
    return guard_unlock(self, MODE_WRITE);
}

static PyObject *
UpgradableGuard_unlock(RwGuardObject *self, PyObject *Py_UNUSED(ignored))
{
    return guard_unlock(self, MODE_UPGRADABLE);
}

static PyObject *
ReadGuard_get_value(RwGuardObject *self, void *Py_UNUSED(closure))
{
    return guard_value(self, MODE_READ);
}

static PyObject *
WriteGuard_get_value(RwGuardObject *self, void *Py_UNUSED(closure))
{
    return guard_value(self, MODE_WRITE);
}

static int
WriteGuard_set_value(RwGuardObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "a WriteGuard's value cannot be deleted");
        return -1;
    }
    RwLockObject *rw = (RwLockObject *)cc_load_ptr((PyObject **)&self->rw);
    if (rw == NULL) {
        guard_released(MODE_WRITE);
        return -1;
    }
    Py_SETREF(rw->value, Py_NewRef(value));
    return 0;
}

static PyObject *
UpgradableGuard_get_value(RwGuardObject *self, void *Py_UNUSED(closure))
{
    return guard_value(self, MODE_UPGRADABLE);
}

PyDoc_STRVAR(downgrade_doc,
"downgrade() -> ReadGuard\n\
\n\
Atomically turn this write guard into a read guard (no writer gets in\n\
between); this guard is consumed.");

static PyObject *
WriteGuard_downgrade(RwGuardObject *self, PyObject *Py_UNUSED(ignored))
{
    RwLockObject *rw = (RwLockObject *)cc_load_ptr((PyObject **)&self->rw);
    if (rw == NULL) {
        return guard_released(MODE_WRITE);
    }
    if (foreign(self, rw)) {
        return refuse_foreign(self, rw, "releasing");
    }
    rw = detach(self);
    if (rw == NULL) {
        return guard_released(MODE_WRITE);
    }
    STATE_BEGIN(rw)
    if (rw->checked) {
        holders_remove_locked(rw, self->owner, MODE_WRITE);
    }
    release_token_locked(rw, 1, 1);   /* counted in as a reader first */
    STATE_END();
    PyTypeObject *type = rw->guard_types[MODE_READ];
    RwGuardObject *g = (RwGuardObject *)type->tp_alloc(type, 0);
    if (g == NULL) {
        release_read(rw);
        Py_DECREF(rw);
        return NULL;
    }
    g->owner = self->owner;
    g->mode = MODE_READ;
    if (rw->checked) {
        cc_location_here(&g->where);
        holders_add(rw, g->owner, MODE_READ);
    }
    g->rw = rw;   /* the reference self held */
    return (PyObject *)g;
}

PyDoc_STRVAR(upgrade_doc,
"upgrade() -> WriteGuard\n\
\n\
Wait for plain readers to leave, then become the writer, atomically (no\n\
writer gets in between).  This guard is consumed: the returned write guard\n\
is what releases the lock.  If interrupted, this guard still holds the\n\
upgradable read.");

static PyObject *
UpgradableGuard_upgrade(RwGuardObject *self, PyObject *Py_UNUSED(ignored))
{
    RwLockObject *rw = (RwLockObject *)cc_load_ptr((PyObject **)&self->rw);
    if (rw == NULL) {
        return guard_released(MODE_UPGRADABLE);
    }
    if (rw->checked) {
        if (foreign(self, rw)) {
            return refuse_foreign(self, rw, "upgrading");
        }
        if (holders_first_mode(rw, self->owner, MODE_READ) >= 0) {
            return refuse_upgrade_while_reading(rw);
        }
    }
    PyTypeObject *type = rw->guard_types[MODE_WRITE];
    RwGuardObject *g = (RwGuardObject *)type->tp_alloc(type, 0);
    if (g == NULL) {
        return NULL;
    }
    rw = detach(self);
    if (rw == NULL) {
        Py_DECREF(g);
        return guard_released(MODE_UPGRADABLE);
    }
    if (upgrade_slow(rw) < 0) {
        cc_store_ptr((PyObject **)&self->rw, (PyObject *)rw);   /* still ours */
        Py_DECREF(g);
        return NULL;
    }
    g->owner = self->owner;
    g->mode = MODE_WRITE;
    if (rw->checked) {
        cc_location_here(&g->where);
        STATE_BEGIN(rw)
        holders_remove_locked(rw, self->owner, MODE_UPGRADABLE);
        holders_add_locked(rw, g->owner, MODE_WRITE);
        STATE_END();
    }
    g->rw = rw;   /* the reference self held */
    return (PyObject *)g;
}

/* `_rw`: the lock held, or None once released. */
static PyObject *
Guard_get_rw(RwGuardObject *self, void *Py_UNUSED(closure))
{
    PyObject *rw = cc_load_ptr((PyObject **)&self->rw);
    return Py_NewRef(rw != NULL ? rw : Py_None);
}

/* `_owner`: the ident of the thread that acquired this guard. */
static PyObject *
Guard_get_owner(RwGuardObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(self->owner);
}

static int
Guard_traverse(RwGuardObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->rw);
    return 0;
}

/* A guard dropped while held releases its lock (no poisoning). */
static void
Guard_dealloc(RwGuardObject *self)
{
    PyObject_GC_UnTrack(self);
    RwLockObject *rw = detach(self);
    if (rw != NULL) {
        int mode = self->mode;
        if (rw->checked) {
            PyObject *where = cc_location_text(&self->where);
            cc_warn_dropped((PyObject *)rw,
                            "a %s of %S acquired at %S was dropped while held; it was "
                            "released now (use `with` to release it where you mean to)",
                            guard_names[mode], rw->name, where != NULL ? where : Py_None);
            Py_XDECREF(where);
        }
        release_held(self, rw, mode, NULL);
    }
    cc_location_clear(&self->where);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef ReadGuard_methods[] = {
    {"__enter__", Guard_enter, METH_NOARGS, "__enter__() -> the guard itself"},
    {"__exit__", (PyCFunction)(void (*)(void))ReadGuard_exit, METH_FASTCALL, read_exit_doc},
    {"unlock", (PyCFunction)ReadGuard_unlock, METH_NOARGS, unlock_doc},
    {NULL, NULL}
};

static PyGetSetDef ReadGuard_getset[] = {
    {"value", (getter)ReadGuard_get_value, NULL, "The protected value (read-only).", NULL},
    {"_rw", (getter)Guard_get_rw, NULL, NULL, NULL},
    {"_owner", (getter)Guard_get_owner, NULL, NULL, NULL},
    {NULL}
};

static PyMethodDef WriteGuard_methods[] = {
    {"__enter__", Guard_enter, METH_NOARGS, "__enter__() -> the guard itself"},
    {"__exit__", (PyCFunction)(void (*)(void))WriteGuard_exit, METH_FASTCALL, write_exit_doc},
    {"unlock", (PyCFunction)WriteGuard_unlock, METH_NOARGS, unlock_doc},
    {"downgrade", (PyCFunction)WriteGuard_downgrade, METH_NOARGS, downgrade_doc},
    {NULL, NULL}
};

static PyGetSetDef WriteGuard_getset[] = {
    {"value", (getter)WriteGuard_get_value, (setter)WriteGuard_set_value,
     "The protected value; assigning replaces it.", NULL},
    {"_rw", (getter)Guard_get_rw, NULL, NULL, NULL},
    {"_owner", (getter)Guard_get_owner, NULL, NULL, NULL},
    {NULL}
};

static PyMethodDef UpgradableGuard_methods[] = {
    {"__enter__", Guard_enter, METH_NOARGS, "__enter__() -> the guard itself"},
    {"__exit__", (PyCFunction)(void (*)(void))UpgradableGuard_exit, METH_FASTCALL,
     upgradable_exit_doc},
    {"unlock", (PyCFunction)UpgradableGuard_unlock, METH_NOARGS, unlock_doc},
    {"upgrade", (PyCFunction)UpgradableGuard_upgrade, METH_NOARGS, upgrade_doc},
    {NULL, NULL}
};

static PyGetSetDef UpgradableGuard_getset[] = {
    {"value", (getter)UpgradableGuard_get_value, NULL, "The protected value (read-only).", NULL},
    {"_rw", (getter)Guard_get_rw, NULL, NULL, NULL},
    {"_owner", (getter)Guard_get_owner, NULL, NULL, NULL},
    {NULL}
};

static PyTypeObject ReadGuardType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.ReadGuard",
    .tp_doc = PyDoc_STR("Shared access to an RwLock's value; released on exit or drop."),
    .tp_basicsize = sizeof(RwGuardObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)Guard_dealloc,
    .tp_traverse = (traverseproc)Guard_traverse,
    .tp_methods = ReadGuard_methods,
    .tp_getset = ReadGuard_getset,
};

static PyTypeObject WriteGuardType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.WriteGuard",
    .tp_doc = PyDoc_STR("Exclusive access to an RwLock's value; released on exit or drop."),
    .tp_basicsize = sizeof(RwGuardObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)Guard_dealloc,
    .tp_traverse = (traverseproc)Guard_traverse,
    .tp_methods = WriteGuard_methods,
    .tp_getset = WriteGuard_getset,
};

static PyTypeObject UpgradableReadGuardType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.UpgradableReadGuard",
    .tp_doc = PyDoc_STR("A read guard that may become the writer; at most one per lock."),
    .tp_basicsize = sizeof(RwGuardObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)Guard_dealloc,
    .tp_traverse = (traverseproc)Guard_traverse,
    .tp_methods = UpgradableGuard_methods,
    .tp_getset = UpgradableGuard_getset,
};


/* ---------------------------------------------------------------- RwLock */

PyDoc_STRVAR(read_doc,
"read() -> ReadGuard\n\
\n\
Block until readers may enter (no writer inside or waiting) and return a\n\
read guard.");

static PyObject *
RwLock_read(RwLockObject *self, PyObject *Py_UNUSED(ignored))
{
    unsigned long me = PyThread_get_thread_ident();
    if (!self->checked) {
        if (read_fast(self)) {
            return new_guard(self, MODE_READ, me);
        }
    }
    else if (refuse_reentry(self, me, MODE_READ) < 0) {
        return NULL;
    }
    if (!read_fast(self) && acquire_slow(self, MODE_READ, CC_FOREVER, 1) < 0) {
        return NULL;
    }
    return new_guard(self, MODE_READ, me);
}

PyDoc_STRVAR(write_doc,
"write() -> WriteGuard\n\
\n\
Block until the lock is free (new readers queue behind a waiting writer) and\n\
return the write guard.");

static PyObject *
RwLock_write(RwLockObject *self, PyObject *Py_UNUSED(ignored))
{
    unsigned long me = PyThread_get_thread_ident();
    if (write_fast(self)) {
        /* A thread holding any guard of this lock never finds it free. */
        return new_guard(self, MODE_WRITE, me);
    }
    if (self->checked && refuse_reentry(self, me, MODE_WRITE) < 0) {
        return NULL;
    }
    if (acquire_slow(self, MODE_WRITE, CC_FOREVER, 1) < 0) {
        return NULL;
    }
    return new_guard(self, MODE_WRITE, me);
}

PyDoc_STRVAR(upgradable_read_doc,
"upgradable_read() -> UpgradableReadGuard\n\
\n\
Block until no writer or upgradable reader holds the lock and return the\n\
upgradable read guard (plain readers may share the lock with it).");

static PyObject *
RwLock_upgradable_read(RwLockObject *self, PyObject *Py_UNUSED(ignored))
{
    unsigned long me = PyThread_get_thread_ident();
    if (self->checked && refuse_reentry(self, me, MODE_UPGRADABLE) < 0) {
        return NULL;
    }
    if (!upgradable_fast(self) && acquire_slow(self, MODE_UPGRADABLE, CC_FOREVER, 1) < 0) {
        return NULL;
    }
    return new_guard(self, MODE_UPGRADABLE, me);
}

/* try_*: the guard if `mode` may be acquired right now, else None. */
static PyObject *
try_acquire(RwLockObject *self, int mode)
{
    int got;
    if (mode == MODE_READ) {
        got = read_fast(self);
    }
    else if (mode == MODE_WRITE) {
        got = write_fast(self);
    }
    else {
        got = upgradable_fast(self);
    }
    if (!got) {
        got = acquire_slow(self, mode, 0, 0);
        if (got < 0) {
            return NULL;
        }
        if (!got) {
            Py_RETURN_NONE;
        }
    }
    return new_guard(self, mode, PyThread_get_thread_ident());
}

static PyObject *
RwLock_try_read(RwLockObject *self, PyObject *Py_UNUSED(ignored))
{
    return try_acquire(self, MODE_READ);
}

static PyObject *
RwLock_try_write(RwLockObject *self, PyObject *Py_UNUSED(ignored))
{
    return try_acquire(self, MODE_WRITE);
}

static PyObject *
RwLock_try_upgradable_read(RwLockObject *self, PyObject *Py_UNUSED(ignored))
{
    return try_acquire(self, MODE_UPGRADABLE);
}

/* try_*_for: the guard if `mode` can be acquired within `seconds`, else None. */
static PyObject *
try_acquire_for(RwLockObject *self, int mode, PyObject *seconds, const char *what)
{
    cc_time deadline;
    if (cc_deadline_from(seconds, what, 0, &deadline) < 0) {
        return NULL;
    }
    unsigned long me = PyThread_get_thread_ident();
    if (self->checked && refuse_reentry(self, me, mode) < 0) {
        return NULL;
    }
    int got = mode == MODE_READ ? read_fast(self) : write_fast(self);
    if (!got) {
        got = acquire_slow(self, mode, deadline, 1);
        if (got < 0) {
            return NULL;
        }
        if (!got) {
            Py_RETURN_NONE;
        }
    }
    return new_guard(self, mode, me);
}

static PyObject *
RwLock_try_read_for(RwLockObject *self, PyObject *seconds)
{
    return try_acquire_for(self, MODE_READ, seconds, "RwLock.try_read_for");
}

static PyObject *
RwLock_try_write_for(RwLockObject *self, PyObject *seconds)
{
    return try_acquire_for(self, MODE_WRITE, seconds, "RwLock.try_write_for");
}

static PyObject *
RwLock_is_poisoned(RwLockObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(cc_load_ptr(&self->poison) != NULL);
}

static PyObject *
RwLock_clear_poison(RwLockObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *old;
    STATE_BEGIN(self)
    old = self->poison;
    if (old != NULL) {
        cc_store_ptr(&self->poison, NULL);
        release_token_locked(self, 0, 1);   /* a poisoned lock kept it */
    }
    STATE_END();
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

static PyObject *
RwLock_get_name(RwLockObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->name);
}

static int
RwLock_set_name(RwLockObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "an RwLock's name cannot be deleted");
        return -1;
    }
    Py_SETREF(self->name, Py_NewRef(value));
    return 0;
}

/* `_poison`: None while not poisoned; raise_poisoned() reads it. */
static PyObject *
RwLock_get_poison(RwLockObject *self, void *Py_UNUSED(closure))
{
    PyObject *poison;
    STATE_BEGIN(self)
    poison = Py_NewRef(self->poison != NULL ? self->poison : Py_None);
    STATE_END();
    return poison;
}

/* `_value`: the protected value (for diagnostics and the model's mirrors). */
static PyObject *
RwLock_get_value(RwLockObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->value);
}

static PyObject *
RwLock_repr(RwLockObject *self)
{
    int s, writer, poisoned;
    STATE_BEGIN(self)
    s = cc_load_int(&self->state);
    poisoned = self->poison != NULL;
    writer = (s & RW_WRITER) && !self->draining && !poisoned;
    STATE_END();
    return PyUnicode_FromFormat("<RwLock %S readers=%d writer=%s%s>", self->name,
                                RW_READERS(s), writer ? "True" : "False",
                                poisoned ? ", poisoned" : "");
}

/* RwLock(value=None, *, name=None).  The guard classes (`_read_guard`,
   `_write_guard`, `_upgradable_guard`) and the checked flag (`_checked_`) are
   read from the class in __new__, so an object is usable even if a subclass
   skips __init__. */
static PyObject *
RwLock_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    static const char *const attrs[] = {"_read_guard", "_write_guard", "_upgradable_guard"};
    PyTypeObject *const bases[] = {&ReadGuardType, &WriteGuardType, &UpgradableReadGuardType};
    PyTypeObject *guards[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        guards[i] = cc_guard_class(type, attrs[i], bases[i]);
        if (guards[i] == NULL) {
            goto fail;
        }
    }
    RwLockObject *self = (RwLockObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        goto fail;
    }
    for (int i = 0; i < 3; i++) {
        self->guard_types[i] = guards[i];
    }
    self->checked = cc_is_checked_class(type);
    self->announced = 1;
    self->value = Py_NewRef(Py_None);
    self->name = Py_NewRef(Py_None);
    return (PyObject *)self;
fail:
    for (int i = 0; i < 3; i++) {
        Py_XDECREF(guards[i]);
    }
    return NULL;
}

static int
RwLock_init(RwLockObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"value", "name", NULL};
    PyObject *value = Py_None, *name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$O:RwLock", kwlist, &value, &name)) {
        return -1;
    }
    PyObject *label = cc_name_or_auto(name, "RwLock");
    if (label == NULL) {
        return -1;
    }
    Py_SETREF(self->name, label);
    Py_SETREF(self->value, Py_NewRef(value));
    return 0;
}

static int
RwLock_traverse(RwLockObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->value);
    Py_VISIT(self->poison);
    Py_VISIT(self->name);
    for (int i = 0; i < 3; i++) {
        Py_VISIT(self->guard_types[i]);
    }
    return 0;
}

/* The guard types are kept: the acquires need them, and they are only classes. */
static int
RwLock_clear(RwLockObject *self)
{
    Py_CLEAR(self->value);
    Py_CLEAR(self->poison);
    return 0;
}

static void
RwLock_dealloc(RwLockObject *self)
{
    PyObject_GC_UnTrack(self);
    RwLock_clear(self);
    Py_CLEAR(self->name);
    for (int i = 0; i < 3; i++) {
        Py_CLEAR(self->guard_types[i]);
    }
    PyMem_RawFree(self->holders);
    self->holders = NULL;
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef RwLock_methods[] = {
    {"read", (PyCFunction)RwLock_read, METH_NOARGS, read_doc},
    {"write", (PyCFunction)RwLock_write, METH_NOARGS, write_doc},
    {"upgradable_read", (PyCFunction)RwLock_upgradable_read, METH_NOARGS, upgradable_read_doc},
    {"try_read", (PyCFunction)RwLock_try_read, METH_NOARGS,
     "try_read() -> ReadGuard | None\n\nA read guard if readers may enter right now, else None."},
    {"try_write", (PyCFunction)RwLock_try_write, METH_NOARGS,
     "try_write() -> WriteGuard | None\n\nThe write guard if nobody holds the lock right "
     "now, else None."},
    {"try_upgradable_read", (PyCFunction)RwLock_try_upgradable_read, METH_NOARGS,
     "try_upgradable_read() -> UpgradableReadGuard | None\n\nThe upgradable read guard if no "
     "writer or upgradable reader holds the lock right now, else None."},
    {"try_read_for", (PyCFunction)RwLock_try_read_for, METH_O,
     "try_read_for(seconds) -> ReadGuard | None\n\nA read guard if readers may enter within "
     "`seconds`, else None."},
    {"try_write_for", (PyCFunction)RwLock_try_write_for, METH_O,
     "try_write_for(seconds) -> WriteGuard | None\n\nThe write guard if the lock can be had "
     "within `seconds`, else None."},
    {"is_poisoned", (PyCFunction)RwLock_is_poisoned, METH_NOARGS,
     "is_poisoned() -> bool\n\nWhether an exception escaped a write or upgradable guard."},
    {"clear_poison", (PyCFunction)RwLock_clear_poison, METH_NOARGS,
     "clear_poison()\n\nDeclare the value consistent again so the lock can be acquired."},
    {NULL, NULL}
};

static PyGetSetDef RwLock_getset[] = {
    {"name", (getter)RwLock_get_name, (setter)RwLock_set_name, "Label used in errors.", NULL},
    {"_poison", (getter)RwLock_get_poison, NULL, NULL, NULL},
    {"_value", (getter)RwLock_get_value, NULL, NULL, NULL},
    {NULL}
};

static PyTypeObject RwLockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.RwLock",
    .tp_doc = PyDoc_STR("A phase-fair readers-writer lock that owns its value, with "
                        "upgradable reads (native core)."),
    .tp_basicsize = sizeof(RwLockObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = RwLock_new,
    .tp_init = (initproc)RwLock_init,
    .tp_dealloc = (destructor)RwLock_dealloc,
    .tp_traverse = (traverseproc)RwLock_traverse,
    .tp_clear = (inquiry)RwLock_clear,
    .tp_repr = (reprfunc)RwLock_repr,
    .tp_methods = RwLock_methods,
    .tp_getset = RwLock_getset,
};

int
cc_add_rwlock_types(PyObject *module)
{
    if (cc_add_type(module, &ReadGuardType) < 0
        || cc_add_type(module, &WriteGuardType) < 0
        || cc_add_type(module, &UpgradableReadGuardType) < 0
        || cc_add_type(module, &RwLockType) < 0) {
        return -1;
    }
    /* The base class hands out the base guards, so it is usable as it is. */
    PyObject *dict = RwLockType.tp_dict;
    if (PyDict_SetItemString(dict, "_read_guard", (PyObject *)&ReadGuardType) < 0
        || PyDict_SetItemString(dict, "_write_guard", (PyObject *)&WriteGuardType) < 0
        || PyDict_SetItemString(dict, "_upgradable_guard",
                                (PyObject *)&UpgradableReadGuardType) < 0) {
        return -1;
    }
    PyType_Modified(&RwLockType);
#ifdef Py_GIL_DISABLED
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
    main_thread_ident = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    if (main_thread_ident == (unsigned long)-1 && PyErr_Occurred()) {
        return -1;
    }
#endif
    return 0;
}
