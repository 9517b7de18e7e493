/* atomic.c: AtomicInt, AtomicBool and AtomicRef, cells whose every operation
   is sequentially consistent.

   Each cell is one object pointer, `value`, read and written only inside the
   cell's state section (STATE_BEGIN/STATE_END).  Every operation is one
   section, so the operations on one cell are totally ordered by its lock and
   each one is linearizable; linearizability composes, so the operations on
   all cells together are sequentially consistent (the store-buffer and
   message-passing litmus tests never show a reordering).  With the GIL the
   sections cost nothing; on free-threaded builds a load pays one uncontended
   critical section, which is also what keeps the loaded object alive: a
   plain atomic load followed by Py_INCREF could race with a swap that drops
   the last reference.

   Semantics (those of the pure-Python backends):
   - AtomicInt(value=0, *, name=None), AtomicBool(value=False, *, name=None),
     AtomicRef(obj=None, *, name=None); no type checks: a cell holds whatever
     it is given;
   - load(), store(v), swap(v) -> old;
   - compare_exchange(expected, new) -> (ok, current): AtomicRef compares by
     identity (`current is expected`), AtomicInt and AtomicBool by equality
     (`current == expected`); `current` is the object that was in the cell;
   - AtomicInt.fetch_add(d) / fetch_sub(d) return the old value (`old + d`,
     `old - d`: arbitrary-precision ints, or whatever the operands make).

   Equality and arithmetic on plain ints and bools are pure C that neither
   calls Python nor triggers the garbage collector, so they run inside the
   section.  Anything else may run Python code (`__eq__`, `__add__`), which
   must not happen inside a section: such an operation reads the current
   object, computes outside, and commits in a section only if the cell still
   holds that same object (which it kept alive meanwhile), else it starts
   again. */

#include "core.h"

typedef enum {
    ATOMIC_INT,
    ATOMIC_BOOL,
    ATOMIC_REF,
} atomic_kind;

typedef struct {
    PyObject_HEAD
    PyObject *value;     /* the current value, never NULL (state section) */
    PyObject *name;      /* label for repr (state section) */
    atomic_kind kind;    /* how compare_exchange compares */
} AtomicObject;

extern PyTypeObject cc_AtomicIntType;
extern PyTypeObject cc_AtomicBoolType;
extern PyTypeObject cc_AtomicRefType;


/* ------------------------------------------------------------- the cell */

/* The current value (new reference). */
static inline PyObject *
cell_get(AtomicObject *self)
{
    PyObject *value;
    STATE_BEGIN(self)
    value = Py_NewRef(self->value);
    STATE_END();
    return value;
}

/* Put `value` (stolen) in the cell; returns the previous value, whose
   reference the caller now owns (and drops outside any section). */
static inline PyObject *
cell_exchange(AtomicObject *self, PyObject *value)
{
    PyObject *old;
    STATE_BEGIN(self)
    old = self->value;
    self->value = value;
    STATE_END();
    return old;
}

/* Put `value` (stolen) in the cell if it still holds `seen`.  On success the
   cell's reference to `seen` passes to the caller (1); else 0. */
static inline int
cell_commit(AtomicObject *self, PyObject *seen, PyObject *value)
{
    int done;
    STATE_BEGIN(self)
    done = self->value == seen;
    if (done) {
        self->value = value;
    }
    STATE_END();
    return done;
}

/* Ints and bools: comparing and adding them is pure C (no Python code, no
   garbage collection), so it may happen inside a section. */
static inline int
is_plain_int(PyObject *op)
{
    return Py_IS_TYPE(op, &PyLong_Type) || Py_IS_TYPE(op, &PyBool_Type);
}

/* `a == b` for two plain ints (never fails). */
static inline int
plain_equal(PyObject *a, PyObject *b)
{
    if (a == b) {
        return 1;
    }
    PyObject *r = PyLong_Type.tp_richcompare(a, b, Py_EQ);
    int equal = r == Py_True;
    Py_XDECREF(r);   /* a bool (or NotImplemented): never the last reference */
    return equal;
}


/* ------------------------------------------------------------ operations */

static PyObject *
Atomic_load(AtomicObject *self, PyObject *Py_UNUSED(ignored))
{
    return cell_get(self);
}

static PyObject *
Atomic_store(AtomicObject *self, PyObject *value)
{
    PyObject *old = cell_exchange(self, Py_NewRef(value));
    Py_DECREF(old);
    Py_RETURN_NONE;
}

static PyObject *
Atomic_swap(AtomicObject *self, PyObject *value)
{
    return cell_exchange(self, Py_NewRef(value));
}

/* (ok, current) with `current` a reference the result takes over. */
static PyObject *
exchange_result(int ok, PyObject *current)
{
    PyObject *result = PyTuple_New(2);
    if (result == NULL) {
        Py_DECREF(current);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, Py_NewRef(ok ? Py_True : Py_False));
    PyTuple_SET_ITEM(result, 1, current);
    return result;
}

static PyObject *
Atomic_compare_exchange(AtomicObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!cc_check_nargs("compare_exchange", nargs, 2)) {
        return NULL;
    }
    PyObject *expected = args[0], *new = args[1];
    PyObject *current;
    int ok;
    int by_identity = self->kind == ATOMIC_REF;
    int plain = !by_identity && is_plain_int(expected);

    /* Identity, or equality of plain ints: decided and done in one section. */
    STATE_BEGIN(self)
    current = self->value;
    if (by_identity || (plain && is_plain_int(current))) {
        ok = by_identity ? current == expected : plain_equal(current, expected);
        if (ok) {
            self->value = Py_NewRef(new);   /* the cell's reference to current is ours */
        }
        else {
            Py_INCREF(current);
        }
    }
    else {
        ok = -1;                             /* compare with Python code, below */
        Py_INCREF(current);
    }
    STATE_END();
    if (ok >= 0) {
        return exchange_result(ok, current);
    }

    /* `current == expected` may run Python: compare outside the section and
       commit only if the cell still holds the object that was compared. */
    for (;;) {
        PyObject *eq = PyObject_RichCompare(current, expected, Py_EQ);
        if (eq == NULL) {
            Py_DECREF(current);
            return NULL;
        }
        ok = PyObject_IsTrue(eq);
        Py_DECREF(eq);
        if (ok < 0) {
            Py_DECREF(current);
            return NULL;
        }
        if (!ok) {
            return exchange_result(0, current);
        }
        Py_INCREF(new);
        if (cell_commit(self, current, new)) {
            Py_DECREF(current);        /* the cell's reference; ours goes in the tuple */
            return exchange_result(1, current);
        }
        Py_DECREF(new);
        Py_DECREF(current);
        current = cell_get(self);      /* changed meanwhile: compare again */
    }
}

/* fetch_add / fetch_sub: `op(old, delta)` stored, `old` returned. */
static PyObject *
fetch_op(AtomicObject *self, PyObject *delta, binaryfunc op)
{
    PyObject *old, *value = NULL;
    int plain = is_plain_int(delta);
    int done = 0;

    /* Plain ints: computed and stored in one section. */
    STATE_BEGIN(self)
    old = self->value;
    if (plain && is_plain_int(old)) {
        value = op(old, delta);        /* pure C; NULL only on MemoryError */
        if (value != NULL) {
            self->value = value;       /* the cell's reference to old is ours */
        }
        done = 1;
    }
    else {
        Py_INCREF(old);
    }
    STATE_END();
    if (done) {
        return value != NULL ? old : NULL;
    }

    /* `old + delta` may run Python: compute outside the section and commit
       only if the cell still holds `old`. */
    for (;;) {
        value = op(old, delta);
        if (value == NULL) {
            Py_DECREF(old);
            return NULL;
        }
        if (cell_commit(self, old, value)) {
            Py_DECREF(old);            /* the cell's reference; ours is returned */
            return old;
        }
        Py_DECREF(value);
        Py_DECREF(old);
        old = cell_get(self);          /* changed meanwhile: compute again */
    }
}

static PyObject *
AtomicInt_fetch_add(AtomicObject *self, PyObject *delta)
{
    return fetch_op(self, delta, PyNumber_Add);
}

static PyObject *
AtomicInt_fetch_sub(AtomicObject *self, PyObject *delta)
{
    return fetch_op(self, delta, PyNumber_Subtract);
}


/* ------------------------------------------------------ object protocol */

static PyObject *
Atomic_get_name(AtomicObject *self, void *Py_UNUSED(closure))
{
    PyObject *name;
    STATE_BEGIN(self)
    name = Py_NewRef(self->name);
    STATE_END();
    return name;
}

static int
Atomic_set_name(AtomicObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "%s's name cannot be deleted",
                     Py_TYPE(self)->tp_name);
        return -1;
    }
    PyObject *old;
    Py_INCREF(value);
    STATE_BEGIN(self)
    old = self->name;
    self->name = value;
    STATE_END();
    Py_DECREF(old);
    return 0;
}

/* `_value`: the current value, as load() (for diagnostics). */
static PyObject *
Atomic_get_value(AtomicObject *self, void *Py_UNUSED(closure))
{
    return cell_get(self);
}

/* "<AtomicInt counter=3>": the class's name, the label and the value's repr. */
static PyObject *
Atomic_repr(AtomicObject *self)
{
    PyObject *name, *value;
    STATE_BEGIN(self)
    name = Py_NewRef(self->name);
    value = Py_NewRef(self->value);
    STATE_END();
    PyObject *result = NULL;
    PyObject *cls = PyType_GetName(Py_TYPE(self));
    if (cls != NULL) {
        result = PyUnicode_FromFormat("<%U %S=%R>", cls, name, value);
        Py_DECREF(cls);
    }
    Py_DECREF(name);
    Py_DECREF(value);
    return result;
}

/* The value and name a cell has even if a subclass skips __init__. */
static PyObject *
atomic_new(PyTypeObject *type, atomic_kind kind, PyObject *initial)
{
    AtomicObject *self = (AtomicObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->kind = kind;
    self->value = Py_NewRef(initial);
    self->name = Py_NewRef(Py_None);
    return (PyObject *)self;
}

static PyObject *
AtomicInt_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL) {
        return NULL;
    }
    PyObject *self = atomic_new(type, ATOMIC_INT, zero);
    Py_DECREF(zero);
    return self;
}

static PyObject *
AtomicBool_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    return atomic_new(type, ATOMIC_BOOL, Py_False);
}

static PyObject *
AtomicRef_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    return atomic_new(type, ATOMIC_REF, Py_None);
}

/* Set value and name from the constructor's arguments. */
static int
atomic_init(AtomicObject *self, PyObject *value, PyObject *name, const char *kind)
{
    PyObject *label = cc_name_or_auto(name, kind);
    if (label == NULL) {
        return -1;
    }
    PyObject *old_value, *old_name;
    Py_INCREF(value);
    STATE_BEGIN(self)
    old_value = self->value;
    old_name = self->name;
    self->value = value;
    self->name = label;
    STATE_END();
    Py_DECREF(old_value);
    Py_DECREF(old_name);
    return 0;
}

static int
AtomicInt_init(AtomicObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"value", "name", NULL};
    PyObject *value = NULL, *name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$O:AtomicInt", kwlist, &value, &name)) {
        return -1;
    }
    if (value != NULL) {
        return atomic_init(self, value, name, "AtomicInt");
    }
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL) {
        return -1;
    }
    int r = atomic_init(self, zero, name, "AtomicInt");
    Py_DECREF(zero);
    return r;
}

static int
AtomicBool_init(AtomicObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"value", "name", NULL};
    PyObject *value = Py_False, *name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$O:AtomicBool", kwlist, &value, &name)) {
        return -1;
    }
    return atomic_init(self, value, name, "AtomicBool");
}

static int
AtomicRef_init(AtomicObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"obj", "name", NULL};
    PyObject *obj = Py_None, *name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$O:AtomicRef", kwlist, &obj, &name)) {
        return -1;
    }
    return atomic_init(self, obj, name, "AtomicRef");
}

static int
Atomic_traverse(AtomicObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->value);
    Py_VISIT(self->name);
    return 0;
}

/* Breaking a cycle leaves None in the cell (value is never NULL). */
static int
Atomic_clear(AtomicObject *self)
{
    Py_SETREF(self->value, Py_NewRef(Py_None));
    Py_SETREF(self->name, Py_NewRef(Py_None));
    return 0;
}

static void
Atomic_dealloc(AtomicObject *self)
{
    PyObject_GC_UnTrack(self);
    Py_TRASHCAN_BEGIN(self, Atomic_dealloc)
    Py_CLEAR(self->value);
    Py_CLEAR(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
    Py_TRASHCAN_END
}


/* ----------------------------------------------------------------- types */

PyDoc_STRVAR(load_doc,
"load()\n\
\n\
The current value.");

PyDoc_STRVAR(store_doc,
"store(value)\n\
\n\
Replace the value.");

PyDoc_STRVAR(swap_doc,
"swap(value)\n\
\n\
Store `value` and return the previous one.");

PyDoc_STRVAR(compare_exchange_doc,
"compare_exchange(expected, new) -> (bool, current)\n\
\n\
If the current value equals `expected`, store `new`.\n\
\n\
Returns `(True, current)` on success and `(False, current)` otherwise;\n\
`current` is the value the cell held.");

PyDoc_STRVAR(ref_compare_exchange_doc,
"compare_exchange(expected, new) -> (bool, current)\n\
\n\
If the current value is `expected` (identity, not equality), store `new`.\n\
\n\
Returns `(True, expected)` on success and `(False, current)` otherwise.");

PyDoc_STRVAR(fetch_add_doc,
"fetch_add(delta)\n\
\n\
Add `delta` and return the previous value.");

PyDoc_STRVAR(fetch_sub_doc,
"fetch_sub(delta)\n\
\n\
Subtract `delta` and return the previous value.");

#define ATOMIC_COMMON_METHODS \
    {"load", (PyCFunction)Atomic_load, METH_NOARGS, load_doc}, \
    {"store", (PyCFunction)Atomic_store, METH_O, store_doc}, \
    {"swap", (PyCFunction)Atomic_swap, METH_O, swap_doc}

static PyMethodDef AtomicInt_methods[] = {
    ATOMIC_COMMON_METHODS,
    {"compare_exchange", (PyCFunction)(void (*)(void))Atomic_compare_exchange, METH_FASTCALL,
     compare_exchange_doc},
    {"fetch_add", (PyCFunction)AtomicInt_fetch_add, METH_O, fetch_add_doc},
    {"fetch_sub", (PyCFunction)AtomicInt_fetch_sub, METH_O, fetch_sub_doc},
    {NULL, NULL}
};

static PyMethodDef AtomicBool_methods[] = {
    ATOMIC_COMMON_METHODS,
    {"compare_exchange", (PyCFunction)(void (*)(void))Atomic_compare_exchange, METH_FASTCALL,
     compare_exchange_doc},
    {NULL, NULL}
};

static PyMethodDef AtomicRef_methods[] = {
    ATOMIC_COMMON_METHODS,
    {"compare_exchange", (PyCFunction)(void (*)(void))Atomic_compare_exchange, METH_FASTCALL,
     ref_compare_exchange_doc},
    {NULL, NULL}
};

static PyGetSetDef Atomic_getset[] = {
    {"name", (getter)Atomic_get_name, (setter)Atomic_set_name, "Label used in repr.", NULL},
    {"_value", (getter)Atomic_get_value, NULL, NULL, NULL},
    {NULL}
};

#define ATOMIC_TYPE_COMMON \
    .tp_basicsize = sizeof(AtomicObject), \
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, \
    .tp_dealloc = (destructor)Atomic_dealloc, \
    .tp_traverse = (traverseproc)Atomic_traverse, \
    .tp_clear = (inquiry)Atomic_clear, \
    .tp_repr = (reprfunc)Atomic_repr, \
    .tp_getset = Atomic_getset

PyTypeObject cc_AtomicIntType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.AtomicInt",
    .tp_doc = PyDoc_STR("AtomicInt(value=0, *, name=None)\n--\n\n"
                        "An integer cell with fetch_add/fetch_sub (both return the old "
                        "value); every operation is sequentially consistent."),
    ATOMIC_TYPE_COMMON,
    .tp_new = AtomicInt_new,
    .tp_init = (initproc)AtomicInt_init,
    .tp_methods = AtomicInt_methods,
};

PyTypeObject cc_AtomicBoolType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.AtomicBool",
    .tp_doc = PyDoc_STR("AtomicBool(value=False, *, name=None)\n--\n\n"
                        "A boolean cell; every operation is sequentially consistent."),
    ATOMIC_TYPE_COMMON,
    .tp_new = AtomicBool_new,
    .tp_init = (initproc)AtomicBool_init,
    .tp_methods = AtomicBool_methods,
};

PyTypeObject cc_AtomicRefType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurrency.backends.native._core.AtomicRef",
    .tp_doc = PyDoc_STR("AtomicRef(obj=None, *, name=None)\n--\n\n"
                        "A reference cell; compare_exchange compares by identity (`is`). "
                        "Every operation is sequentially consistent."),
    ATOMIC_TYPE_COMMON,
    .tp_new = AtomicRef_new,
    .tp_init = (initproc)AtomicRef_init,
    .tp_methods = AtomicRef_methods,
};

int
cc_add_atomic_types(PyObject *module)
{
    if (cc_add_type(module, &cc_AtomicIntType) < 0
        || cc_add_type(module, &cc_AtomicBoolType) < 0) {
        return -1;
    }
    return cc_add_type(module, &cc_AtomicRefType);
}
