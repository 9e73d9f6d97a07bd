/* The portfolio replay loop in C: backtest_core.replay_loop.replay_events_python, operation for operation.
 *
 * Built by setuptools from libs/core/pyproject.toml with -O2 -ffp-contract=off (no FMA contraction, no
 * fast-math), so every double is computed by the same IEEE-754 sequence as the Python loop. The mark of
 * open positions is the same BLAS ddot numpy's `coef.dot(row)` calls (its function pointer comes from
 * Python), so shared-cash runs agree bit for bit too. Whenever Python would raise (division by zero,
 * floor of a non-finite value, an index out of range, marks missing), the loop stops and returns
 * BAIL: the caller then runs the Python loop, which raises the same error.
 *
 * replay(symbol, seq, is_entry, direction, fills, rates, mark_bar, marks, cash, size, step, n_symbols,
 *        ddot, units_at, exit_of) -> (status, rejected, cash)
 *   int64[events]: symbol, seq, direction, mark_bar; bool[events]: is_entry; float64[events]: fills, rates;
 *   marks: float64[bars, n_symbols] C-contiguous or None; step: float or None; ddot: address of
 *   cblas_ddot with 64-bit ints (0: none); outputs (preset by the caller): float64 units_at[events] = 0,
 *   int64 exit_of[events] = -1. status 0: done; 1: BAIL (outputs are partial: discard them).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define CASH_TOLERANCE 1e-12
#define BAIL 1

typedef double (*ddot_fn)(int64_t n, const double *x, int64_t incx, const double *y, int64_t incy);

typedef struct {
    const int64_t *symbol, *seq, *direction, *mark_bar;
    const unsigned char *is_entry;
    const double *fill, *rate, *marks;
    int64_t events, bars, n_symbols;
    double cash, size, step;
    int has_step;
    ddot_fn ddot;
    double *units_at;
    int64_t *exit_of;
} Replay;

/* Run the loop; return 0 or BAIL; *rejected and *cash_out get the counts and the final cash. */
static int run(const Replay *r, int64_t *rejected_out, double *cash_out) {
    int64_t n = r->n_symbols;
    int64_t *open_seq = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    int64_t *open_event = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    double *coef = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    int status = 0;
    if (open_seq == NULL || open_event == NULL || coef == NULL) {
        status = BAIL;
        goto done;
    }
    for (int64_t s = 0; s < n; s++) {
        open_seq[s] = -1;
        open_event[s] = -1;
    }
    double cash = r->cash, cnst = 0.0;
    int64_t n_open = 0, rejected = 0;
    for (int64_t i = 0; i < r->events; i++) {
        int64_t sym = r->symbol[i];
        if (sym < 0 || sym >= n) {
            status = BAIL;
            goto done;
        }
        double fill = r->fill[i], rate = r->rate[i];
        if (r->is_entry[i]) {
            if (open_seq[sym] >= 0) {
                rejected += 1;
                continue;
            }
            double equity;
            if (n_open == 0) {
                equity = cash;
            } else {
                int64_t bar = r->mark_bar[i];
                if (r->marks == NULL || r->ddot == NULL || bar < 0 || bar >= r->bars) {
                    status = BAIL;
                    goto done;
                }
                double dot = 0.0; /* numpy's DOUBLE_dot: sum = 0.0; sum += cblas_ddot(...) */
                dot += r->ddot(n, coef, 1, r->marks + bar * n, 1);
                equity = cash + cnst + dot;
            }
            double den = fill * (1.0 + rate);
            if (den == 0.0) {
                status = BAIL; /* Python: ZeroDivisionError */
                goto done;
            }
            double units = r->size * equity / den;
            if (r->has_step) {
                if (r->step == 0.0) {
                    status = BAIL;
                    goto done;
                }
                double q = units / r->step + 1e-9;
                if (!isfinite(q)) {
                    status = BAIL; /* Python: math.floor raises on inf and nan */
                    goto done;
                }
                units = floor(q) * r->step;
            }
            double cost = units * fill;
            double fee = cost * rate;
            if (!(units > 0) || cost + fee > cash + CASH_TOLERANCE * fabs(equity)) {
                rejected += 1;
                continue;
            }
            cash -= cost + fee;
            open_seq[sym] = r->seq[i];
            open_event[sym] = i;
            r->units_at[i] = units;
            n_open += 1;
            if (r->direction[i] > 0) {
                coef[sym] = units;
            } else {
                coef[sym] = -units;
                cnst += 2.0 * units * fill;
            }
        } else if (open_seq[sym] == r->seq[i]) {
            int64_t e = open_event[sym];
            double units = r->units_at[e];
            double fee = units * fill * rate;
            if (r->direction[i] > 0) {
                cash += units * fill - fee;
            } else {
                double entry = r->fill[e];
                cash += units * (2.0 * entry - fill) - fee;
                cnst -= 2.0 * units * entry;
            }
            open_seq[sym] = -1;
            coef[sym] = 0.0;
            n_open -= 1;
            if (n_open == 0) {
                cnst = 0.0;
            }
            r->exit_of[e] = i;
        }
    }
    *rejected_out = rejected;
    *cash_out = cash;
done:
    free(open_seq);
    free(open_event);
    free(coef);
    return status;
}

/* Get a C-contiguous buffer of `events` items of `itemsize` bytes; return 0 or -1 with an exception. */
static int vector(PyObject *obj, Py_buffer *view, Py_ssize_t events, Py_ssize_t itemsize, int writable,
                  const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) {
        return -1;
    }
    if (view->itemsize != itemsize || view->len != events * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of %zd bytes, got %zd bytes of items of %zd",
                     name, events, itemsize, view->len, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *replay(PyObject *self, PyObject *args) {
    PyObject *o_symbol, *o_seq, *o_entry, *o_direction, *o_fill, *o_rate, *o_mark_bar, *o_marks, *o_step;
    PyObject *o_units, *o_exit;
    double cash, size;
    long long n_symbols;
    unsigned long long ddot;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOOOddOLKOO", &o_symbol, &o_seq, &o_entry, &o_direction, &o_fill,
                          &o_rate, &o_mark_bar, &o_marks, &cash, &size, &o_step, &n_symbols, &ddot, &o_units,
                          &o_exit)) {
        return NULL;
    }
    Replay r = {0};
    r.cash = cash;
    r.size = size;
    r.n_symbols = n_symbols;
    r.ddot = (ddot_fn)(uintptr_t)ddot;
    if (o_step != Py_None) {
        r.step = PyFloat_AsDouble(o_step);
        if (r.step == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        r.has_step = 1;
    }
    Py_ssize_t events = PyObject_Length(o_symbol);
    if (events < 0) {
        return NULL;
    }
    r.events = events;
    PyObject *objs[9] = {o_symbol, o_seq, o_direction, o_mark_bar, o_entry, o_fill, o_rate, o_units, o_exit};
    static const char *names[9] = {"symbol", "seq", "direction", "mark_bar", "is_entry",
                                   "fills", "rates", "units_at", "exit_of"};
    static const Py_ssize_t sizes[9] = {8, 8, 8, 8, 1, 8, 8, 8, 8};
    static const int writable[9] = {0, 0, 0, 0, 0, 0, 0, 1, 1};
    Py_buffer views[10];
    int got = 0;
    PyObject *out = NULL;
    for (; got < 9; got++) {
        if (vector(objs[got], &views[got], events, sizes[got], writable[got], names[got]) != 0) {
            goto release;
        }
    }
    r.symbol = views[0].buf;
    r.seq = views[1].buf;
    r.direction = views[2].buf;
    r.mark_bar = views[3].buf;
    r.is_entry = views[4].buf;
    r.fill = views[5].buf;
    r.rate = views[6].buf;
    r.units_at = views[7].buf;
    r.exit_of = views[8].buf;
    if (o_marks != Py_None) {
        Py_buffer *m = &views[9];
        if (PyObject_GetBuffer(o_marks, m, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND) != 0) {
            goto release;
        }
        got++;
        if (m->ndim != 2 || m->itemsize != 8 || m->shape[1] != n_symbols) {
            PyErr_Format(PyExc_ValueError, "marks: expected float64 of shape (bars, %lld)", n_symbols);
            goto release;
        }
        r.marks = m->buf;
        r.bars = m->shape[0];
    }
    int64_t rejected = 0;
    double final_cash = 0.0;
    int status;
    Py_BEGIN_ALLOW_THREADS;
    status = run(&r, &rejected, &final_cash);
    Py_END_ALLOW_THREADS;
    out = Py_BuildValue("iLd", status, (long long)rejected, final_cash);
release:
    for (int k = 0; k < got; k++) {
        PyBuffer_Release(&views[k]);
    }
    return out;
}

/* stack_columns(out, columns): out[b, j] = columns[j][b] for float64 out[bars, k] C-contiguous and k
 * float64[bars] columns; a copy in cache-sized tiles (a plain column-by-column copy writes with a stride
 * of k doubles and misses the cache on every element). */
#define TILE 256
static PyObject *stack_columns(PyObject *self, PyObject *args) {
    PyObject *o_out, *columns;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO!", &o_out, &PyTuple_Type, &columns)) {
        return NULL;
    }
    Py_ssize_t k = PyTuple_GET_SIZE(columns);
    Py_buffer out;
    if (PyObject_GetBuffer(o_out, &out, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) != 0) {
        return NULL;
    }
    if (out.itemsize != 8 || k == 0 || out.len % (8 * k) != 0) {
        PyErr_Format(PyExc_ValueError, "out: expected float64 of shape (bars, %zd)", k);
        PyBuffer_Release(&out);
        return NULL;
    }
    Py_ssize_t bars = out.len / (8 * k);
    Py_buffer *views = PyMem_Calloc((size_t)k, sizeof(Py_buffer));
    Py_ssize_t got = 0;
    PyObject *result = NULL;
    if (views == NULL) {
        PyErr_NoMemory();
        goto release;
    }
    for (; got < k; got++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(columns, got), &views[got], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
            goto release;
        }
        if (views[got].itemsize != 8 || views[got].len != bars * 8) {
            PyErr_Format(PyExc_ValueError, "column %zd: expected %zd float64 values", got, bars);
            PyBuffer_Release(&views[got]);
            goto release;
        }
    }
    double *dst = out.buf;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t b0 = 0; b0 < bars; b0 += TILE) {
        Py_ssize_t b1 = b0 + TILE < bars ? b0 + TILE : bars;
        for (Py_ssize_t j0 = 0; j0 < k; j0 += TILE) {
            Py_ssize_t j1 = j0 + TILE < k ? j0 + TILE : k;
            for (Py_ssize_t j = j0; j < j1; j++) {
                const double *src = views[j].buf;
                for (Py_ssize_t b = b0; b < b1; b++) {
                    dst[b * k + j] = src[b];
                }
            }
        }
    }
    Py_END_ALLOW_THREADS;
    result = Py_NewRef(Py_None);
release:
    for (Py_ssize_t j = 0; j < got; j++) {
        PyBuffer_Release(&views[j]);
    }
    PyMem_Free(views);
    PyBuffer_Release(&out);
    return result;
}

/* event_order(bucket, key, buckets, out): out = the permutation sorting events by (bucket, key), for
 * int64 bucket in [0, buckets) and int64 keys unique within a bucket: what an argsort of the packed
 * (bucket, key) gives. A stable counting sort by bucket, then an insertion sort of each bucket by key,
 * which is linear when the events come in key order within each bucket (the timeline's do). */
static PyObject *event_order(PyObject *self, PyObject *args) {
    PyObject *o_bar, *o_key, *o_out;
    Py_ssize_t bars; /* buckets */
    (void)self;
    if (!PyArg_ParseTuple(args, "OOnO", &o_bar, &o_key, &bars, &o_out)) {
        return NULL;
    }
    Py_buffer views[3];
    PyObject *objs[3] = {o_bar, o_key, o_out};
    int got = 0;
    PyObject *result = NULL;
    Py_ssize_t n = PyObject_Length(o_bar);
    int64_t *start = NULL;
    if (n < 0) {
        return NULL;
    }
    for (; got < 3; got++) {
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (got == 2 ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(objs[got], &views[got], flags) != 0) {
            goto release;
        }
        if (views[got].itemsize != 8 || views[got].len != n * 8) {
            PyErr_Format(PyExc_ValueError, "expected %zd int64 values in argument %d", n, got + 1);
            PyBuffer_Release(&views[got]);
            goto release;
        }
    }
    const int64_t *bar = views[0].buf, *key = views[1].buf;
    int64_t *out = views[2].buf;
    start = PyMem_Calloc((size_t)bars + 1, sizeof(int64_t));
    if (start == NULL) {
        PyErr_NoMemory();
        goto release;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (bar[i] < 0 || bar[i] >= bars) {
            PyErr_Format(PyExc_ValueError, "bucket %lld of event %zd is outside [0, %zd)", (long long)bar[i], i,
                         bars);
            goto release;
        }
        start[bar[i] + 1]++;
    }
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t b = 0; b < bars; b++) {
        start[b + 1] += start[b];
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        out[start[bar[i]]++] = i; /* start[b] ends as the first slot of bucket b + 1 */
    }
    for (Py_ssize_t b = 0, lo = 0; b < bars; b++) {
        Py_ssize_t hi = start[b];
        for (Py_ssize_t j = lo + 1; j < hi; j++) {
            int64_t e = out[j];
            Py_ssize_t k = j;
            for (; k > lo && key[out[k - 1]] > key[e]; k--) {
                out[k] = out[k - 1];
            }
            out[k] = e;
        }
        lo = hi;
    }
    Py_END_ALLOW_THREADS;
    result = Py_NewRef(Py_None);
release:
    PyMem_Free(start);
    for (int j = 0; j < got; j++) {
        PyBuffer_Release(&views[j]);
    }
    return result;
}

static PyMethodDef methods[] = {
    {"event_order", event_order, METH_VARARGS, "The permutation sorting events by (bucket, key)."},
    {"replay", replay, METH_VARARGS, "Replay the timeline's events (see backtest_core.replay_loop)."},
    {"stack_columns", stack_columns, METH_VARARGS, "out[b, j] = columns[j][b], copied in tiles."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_replay", "The portfolio replay loop in C (backtest_core.replay_loop).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__replay(void) { return PyModule_Create(&module); }
