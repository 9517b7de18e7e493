/* module.c: concurrency.backends.native._core, the native core of the
   real-thread primitives.  One C file per primitive family adds its types;
   see core.h for the rules they all follow.

   The module declares that it does not need the GIL (Py_mod_gil), so
   importing it on a free-threaded build keeps the GIL off. */

#include "core.h"

typedef int (*add_types_func)(PyObject *module);

static const add_types_func families[] = {
    cc_add_mutex_types,
    cc_add_condvar_types,
    cc_add_rwlock_types,
    cc_add_semaphore_types,
    cc_add_barrier_types,
    cc_add_oncelock_types,
    cc_add_atomic_types,
    cc_add_channel_types,
};

CC_HIDDEN int cc_set_model_thread(int on);   /* core.c */

static PyObject *
set_model_thread(PyObject *Py_UNUSED(module), PyObject *on)
{
    int flag = PyObject_IsTrue(on);
    if (flag < 0) {
        return NULL;
    }
    return PyBool_FromLong(cc_set_model_thread(flag));
}

static PyMethodDef core_functions[] = {
    {"set_model_thread", set_model_thread, METH_O,
     "set_model_thread(on) -> previous\n\nMark this OS thread as running a model execution "
     "(its real-thread primitives then refuse to block); returns the previous mark."},
    {NULL, NULL, 0, NULL}
};

static int
core_exec(PyObject *module)
{
    if (cc_core_init() < 0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        if (families[i](module) < 0) {
            return -1;
        }
    }
#ifdef Py_GIL_DISABLED
    int free_threaded = 1;
#else
    int free_threaded = 0;
#endif
    return PyModule_AddIntConstant(module, "FREE_THREADED_BUILD", free_threaded);
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* The types are static: one interpreter per process. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL}
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "concurrency.backends.native._core",
    .m_doc = "The native core of the real-thread primitives (see native/core.h).",
    .m_size = 0,
    .m_slots = core_slots,
    .m_methods = core_functions,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&core_module);
}
