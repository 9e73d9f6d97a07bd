/* Build the result's Trade models and UTC datetimes in C (backtest_core.trade_rows has the Python twin).
 *
 * build(cls, keys, fields, setters, lookups, codes, values, held) -> list[cls]
 *   keys: the 12 field names of Trade in order; setters: the slot descriptors of
 *   __pydantic_fields_set__, __pydantic_extra__, __pydantic_private__; lookups: (symbols, sides,
 *   reasons, stamps) tuples; codes: int64 columns (symbol, side, reason, entry_stamp, exit_stamp)
 *   indexing them; values: float64 columns (units, entry_price, exit_price, pnl, return_pct, fees);
 *   held: int64 column. Each object is cls.__new__(cls) whose __dict__ gets {symbol, side, units,
 *   entry_time, entry_price, exit_time, exit_price, exit_reason, pnl, return_pct, fees, bars_held}
 *   (in that order), and __pydantic_fields_set__ = fields, __pydantic_extra__ = __pydantic_private__ =
 *   None, each set through its slot descriptor: what the Python loop does, without the interpreter.
 *   The __dict__ is the instance's own (PyObject_GenericGetDict), so it shares the class's cached keys
 *   (a split table: 168 bytes instead of 632, and cheaper to make and free); it compares equal.
 *
 * datetimes(ns, tz) -> list[datetime]: int64 nanoseconds since the epoch as datetimes in `tz`,
 *   floored to microseconds, like pandas' to_datetime(ns, unit="ns", utc=True).to_pydatetime().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>

#define N_CODES 5
#define N_VALUES 6

/* Get a C-contiguous buffer of n 8-byte items; return 0 or -1 with an exception set. */
static int column(PyObject *obj, Py_buffer *view, Py_ssize_t n) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
        return -1;
    }
    if (view->itemsize != 8 || view->len != n * 8) {
        PyErr_Format(PyExc_ValueError, "expected a column of %zd items of 8 bytes, got %zd bytes of %zd-byte items",
                     n, view->len, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Return a new reference to items[index], or NULL with IndexError. */
static PyObject *pick(PyObject *items, int64_t index) {
    if (index < 0 || index >= PyTuple_GET_SIZE(items)) {
        PyErr_Format(PyExc_IndexError, "code %lld is out of range of %zd items", (long long)index,
                     PyTuple_GET_SIZE(items));
        return NULL;
    }
    PyObject *item = PyTuple_GET_ITEM(items, index);
    Py_INCREF(item);
    return item;
}

/* Fill one object's dict in key order; return 0 or -1. */
static int fill_dict(PyObject *dict, PyObject *keys, PyObject *const *lookups, const int64_t *const *code,
                     const double *const *value, const int64_t *held, Py_ssize_t k) {
    PyObject *items[12];
    items[0] = pick(lookups[0], code[0][k]);
    items[1] = pick(lookups[1], code[1][k]);
    items[2] = PyFloat_FromDouble(value[0][k]);
    items[3] = pick(lookups[3], code[3][k]);
    items[4] = PyFloat_FromDouble(value[1][k]);
    items[5] = pick(lookups[3], code[4][k]);
    items[6] = PyFloat_FromDouble(value[2][k]);
    items[7] = pick(lookups[2], code[2][k]);
    items[8] = PyFloat_FromDouble(value[3][k]);
    items[9] = PyFloat_FromDouble(value[4][k]);
    items[10] = PyFloat_FromDouble(value[5][k]);
    items[11] = PyLong_FromLongLong(held[k]);
    int status = 0;
    for (int j = 0; j < 12; j++) {
        if (items[j] == NULL || (status == 0 && PyDict_SetItem(dict, PyTuple_GET_ITEM(keys, j), items[j]) != 0)) {
            status = -1;
        }
    }
    for (int j = 0; j < 12; j++) {
        Py_XDECREF(items[j]);
    }
    return status;
}

/* Set __pydantic_fields_set__, __pydantic_extra__, __pydantic_private__ through their slots. */
static int set_slots(PyObject *const *set, PyObject *obj, PyObject *fields) {
    PyObject *vals[3] = {fields, Py_None, Py_None};
    for (int j = 0; j < 3; j++) {
        if (Py_TYPE(set[j])->tp_descr_set(set[j], obj, vals[j]) != 0) {
            return -1;
        }
    }
    return 0;
}

static PyObject *build(PyObject *self, PyObject *args) {
    PyTypeObject *cls;
    PyObject *keys, *fields, *setters, *lookups, *codes, *values, *o_held;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!OO!O!O!O!O", &PyType_Type, &cls, &PyTuple_Type, &keys, &fields, &PyTuple_Type,
                          &setters, &PyTuple_Type, &lookups, &PyTuple_Type, &codes, &PyTuple_Type, &values,
                          &o_held)) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(keys) != 12 || PyTuple_GET_SIZE(setters) != 3 || PyTuple_GET_SIZE(lookups) != 4 ||
        PyTuple_GET_SIZE(codes) != N_CODES || PyTuple_GET_SIZE(values) != N_VALUES) {
        PyErr_SetString(PyExc_ValueError, "expected 12 keys, 3 setters, 4 lookups, 5 code and 6 value columns");
        return NULL;
    }
    PyObject *set[3], *look[4];
    for (int j = 0; j < 4; j++) {
        look[j] = PyTuple_GET_ITEM(lookups, j);
        if (j < 3) {
            set[j] = PyTuple_GET_ITEM(setters, j);
        }
        if ((j < 3 && Py_TYPE(set[j])->tp_descr_set == NULL) || !PyTuple_Check(look[j])) {
            PyErr_SetString(PyExc_TypeError, "setters must be data descriptors and lookups tuples");
            return NULL;
        }
    }
    Py_ssize_t n = PyObject_Length(o_held);
    if (n < 0) {
        return NULL;
    }
    Py_buffer views[N_CODES + N_VALUES + 1];
    int got = 0;
    PyObject *out = NULL, *empty = NULL;
    const int64_t *code[N_CODES];
    const double *value[N_VALUES];
    for (; got < N_CODES + N_VALUES + 1; got++) {
        PyObject *obj = got < N_CODES ? PyTuple_GET_ITEM(codes, got)
                        : got < N_CODES + N_VALUES ? PyTuple_GET_ITEM(values, got - N_CODES)
                                                   : o_held;
        if (column(obj, &views[got], n) != 0) {
            goto release;
        }
        if (got < N_CODES) {
            code[got] = views[got].buf;
        } else if (got < N_CODES + N_VALUES) {
            value[got - N_CODES] = views[got].buf;
        }
    }
    const int64_t *held = views[N_CODES + N_VALUES].buf;
    empty = PyTuple_New(0);
    out = PyList_New(n);
    if (empty == NULL || out == NULL) {
        Py_CLEAR(out);
        goto release;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *obj = cls->tp_new(cls, empty, NULL);
        if (obj == NULL) {
            Py_CLEAR(out);
            goto release;
        }
        PyList_SET_ITEM(out, k, obj); /* the list owns it from here (freed with the list on error) */
        PyObject *dict = PyObject_GenericGetDict(obj, NULL); /* shares Trade's cached keys when it can */
        if (dict == NULL || fill_dict(dict, keys, look, code, value, held, k) != 0 ||
            set_slots(set, obj, fields) != 0) {
            Py_XDECREF(dict);
            Py_CLEAR(out);
            goto release;
        }
        Py_DECREF(dict);
    }
release:
    Py_XDECREF(empty);
    for (int j = 0; j < got; j++) {
        PyBuffer_Release(&views[j]);
    }
    return out;
}

/* Civil date of a day count since 1970-01-01 (Howard Hinnant's days_from_civil, inverted). */
static void civil(int64_t days, int *year, int *month, int *day) {
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(y + (m <= 2));
    *month = (int)m;
    *day = (int)d;
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static PyObject *datetimes(PyObject *self, PyObject *args) {
    PyObject *o_ns, *tz;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &o_ns, &tz)) {
        return NULL;
    }
    Py_ssize_t n = PyObject_Length(o_ns);
    Py_buffer view;
    if (n < 0 || column(o_ns, &view, n) != 0) {
        return NULL;
    }
    const int64_t *ns = view.buf;
    PyObject *out = PyList_New(n);
    for (Py_ssize_t k = 0; out != NULL && k < n; k++) {
        int64_t us = floor_div(ns[k], 1000);
        int64_t secs = floor_div(us, 1000000), days = floor_div(secs, 86400);
        int64_t sod = secs - days * 86400;
        int year, month, day;
        civil(days, &year, &month, &day);
        PyObject *item = PyDateTimeAPI->DateTime_FromDateAndTime(
            year, month, day, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)(us - secs * 1000000),
            tz, PyDateTimeAPI->DateTimeType);
        if (item == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, k, item);
    }
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"build", build, METH_VARARGS, "Build Trade models from columns (see backtest_core.trade_rows)."},
    {"datetimes", datetimes, METH_VARARGS, "Convert int64 epoch nanoseconds to datetimes in tz."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_trades", "Trade models and datetimes built in C (backtest_core.trade_rows).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__trades(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) {
        return NULL;
    }
    return PyModule_Create(&module);
}
