/* The portfolio replay loop (backtest_core.engine.replay_loop.replay_events states its rules).
 *
 * replay(symbol, seq, is_entry, direction, fills, rates, mark_bar, closes, cash, size, step, units_at,
 *        exit_of) -> (rejected, cash)
 *   int64[events]: symbol, seq, direction, mark_bar; bool[events]: is_entry; float64[events]: fills, rates;
 *   closes: a tuple of one float64[bars] per symbol (each symbol's close on the union grid, 0 before its
 *   first bar); step: float or None; outputs (preset by the caller): float64 units_at[events] = 0,
 *   int64 exit_of[events] = -1. Raises ValueError on inputs the replay cannot value (a symbol or mark bar
 *   out of range, a zero fill cost, a non-finite quantity to round to the step).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define CASH_TOLERANCE 1e-12

typedef struct {
    const int64_t *symbol, *seq, *direction, *mark_bar;
    const unsigned char *is_entry;
    const double *fill, *rate;
    const double **closes;
    int64_t events, bars, n_symbols;
    double cash, size, step;
    int has_step;
    double *units_at;
    int64_t *exit_of;
} Replay;

/* Why the loop stopped at event `at` (NULL: it did not). */
typedef struct {
    const char *why;
    int64_t at;
} Stop;

/* The closes of union bars [lo, lo + ROWS) as rows (rows[(b - lo) * n + s] = closes[s][b]): a symbol's
 * closes are a column each, and marking reads one bar of every symbol, so they are copied a block at
 * a time (reading each column sequentially) instead of read with a stride of a whole column. */
#define ROWS 256

typedef struct {
    double *rows;
    int64_t lo, hi;
} Block;

static const double *row_of(const Replay *r, Block *k, int64_t bar) {
    if (bar < k->lo || bar >= k->hi) {
        k->lo = bar;
        k->hi = bar + ROWS < r->bars ? bar + ROWS : r->bars;
        int64_t n = r->n_symbols;
        for (int64_t s = 0; s < n; s++) {
            const double *c = r->closes[s];
            for (int64_t b = k->lo; b < k->hi; b++) {
                k->rows[(b - k->lo) * n + s] = c[b];
            }
        }
    }
    return k->rows + (bar - k->lo) * r->n_symbols;
}

/* Cash + cnst + the positions marked at the closes of one bar: the sum of coef[s] * close[s] (coef is 0
 * for a flat symbol, +units for a long, -units for a short; cnst holds the shorts' 2 * units * entry), in
 * four partial sums (symbol s into sum s % 4, added as (m0 + m1) + (m2 + m3)) so that the adds overlap. */
static double equity_at(const Replay *r, const double *coef, const double *close, double cash, double cnst) {
    double m[4] = {0.0, 0.0, 0.0, 0.0};
    int64_t n = r->n_symbols, s = 0;
    for (; s + 4 <= n; s += 4) {
        for (int j = 0; j < 4; j++) {
            m[j] += coef[s + j] * close[s + j];
        }
    }
    for (int j = 0; s < n; s++, j++) {
        m[j] += coef[s] * close[s];
    }
    return cash + cnst + ((m[0] + m[1]) + (m[2] + m[3]));
}

/* Run the loop; fill *rejected_out and *cash_out, or set stop->why. */
static void run(const Replay *r, int64_t *open_seq, int64_t *open_event, double *coef, Block *block,
                int64_t *rejected_out, double *cash_out, Stop *stop) {
    int64_t n = r->n_symbols;
    for (int64_t s = 0; s < n; s++) {
        open_seq[s] = -1;
        open_event[s] = -1;
        coef[s] = 0.0;
    }
    double cash = r->cash, cnst = 0.0;
    int64_t n_open = 0, rejected = 0;
    for (int64_t i = 0; i < r->events; i++) {
        int64_t sym = r->symbol[i];
        stop->at = i;
        if (sym < 0 || sym >= n) {
            stop->why = "its symbol index is outside [0, symbols)";
            return;
        }
        double fill = r->fill[i], rate = r->rate[i];
        if (r->is_entry[i]) {
            if (open_seq[sym] >= 0) {
                rejected += 1;
                continue;
            }
            double equity = cash;
            if (n_open > 0) {
                int64_t bar = r->mark_bar[i];
                if (bar < 0 || bar >= r->bars) {
                    stop->why = "its mark bar is outside the closes";
                    return;
                }
                equity = equity_at(r, coef, row_of(r, block, bar), cash, cnst);
            }
            double den = fill * (1.0 + rate);
            if (den == 0.0) {
                stop->why = "its fill price times (1 + fee rate) is 0";
                return;
            }
            double units = r->size * equity / den;
            if (r->has_step) {
                double q = units / r->step + 1e-9;
                if (!isfinite(q)) {
                    stop->why = "its quantity divided by step_size is not a finite number";
                    return;
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
}

/* Get a C-contiguous buffer of `count` items of `itemsize` bytes; return 0 or -1 with an exception. */
static int vector(PyObject *obj, Py_buffer *view, Py_ssize_t count, Py_ssize_t itemsize, int writable,
                  const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) {
        return -1;
    }
    if (view->itemsize != itemsize || view->len != count * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of %zd bytes, got %zd bytes of items of %zd",
                     name, count, itemsize, view->len, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *replay(PyObject *self, PyObject *args) {
    PyObject *o_symbol, *o_seq, *o_entry, *o_direction, *o_fill, *o_rate, *o_mark_bar, *o_closes, *o_step;
    PyObject *o_units, *o_exit;
    double cash, size;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOOO!ddOOO", &o_symbol, &o_seq, &o_entry, &o_direction, &o_fill, &o_rate,
                          &o_mark_bar, &PyTuple_Type, &o_closes, &cash, &size, &o_step, &o_units, &o_exit)) {
        return NULL;
    }
    Replay r = {0};
    r.cash = cash;
    r.size = size;
    r.n_symbols = PyTuple_GET_SIZE(o_closes);
    if (o_step != Py_None) {
        r.step = PyFloat_AsDouble(o_step);
        if (r.step == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        if (!(r.step > 0.0)) {
            return PyErr_Format(PyExc_ValueError, "step: expected a positive quantity step, got %R", o_step);
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
    Py_ssize_t n = r.n_symbols;
    Py_buffer views[9];
    Py_buffer *close_views = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(Py_buffer));
    const double **closes = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(double *));
    int64_t *open_seq = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(int64_t));
    int64_t *open_event = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(int64_t));
    double *coef = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    Block block = {PyMem_Calloc((size_t)ROWS * (size_t)(n > 0 ? n : 1), sizeof(double)), 0, 0};
    int got = 0;
    Py_ssize_t got_closes = 0;
    PyObject *out = NULL;
    if (close_views == NULL || closes == NULL || open_seq == NULL || open_event == NULL || coef == NULL ||
        block.rows == NULL) {
        PyErr_NoMemory();
        goto release;
    }
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
    Py_ssize_t bars = n > 0 ? PyObject_Length(PyTuple_GET_ITEM(o_closes, 0)) : 0;
    if (bars < 0) {
        goto release;
    }
    for (; got_closes < n; got_closes++) {
        if (vector(PyTuple_GET_ITEM(o_closes, got_closes), &close_views[got_closes], bars, 8, 0, "closes[i]") != 0) {
            goto release;
        }
        closes[got_closes] = close_views[got_closes].buf;
    }
    r.closes = closes;
    r.bars = bars;
    int64_t rejected = 0;
    double final_cash = 0.0;
    Stop stop = {NULL, 0};
    Py_BEGIN_ALLOW_THREADS;
    run(&r, open_seq, open_event, coef, &block, &rejected, &final_cash, &stop);
    Py_END_ALLOW_THREADS;
    if (stop.why != NULL) {
        PyErr_Format(PyExc_ValueError, "the replay cannot execute event %lld: %s", (long long)stop.at, stop.why);
        goto release;
    }
    out = Py_BuildValue("Ld", (long long)rejected, final_cash);
release:
    for (int k = 0; k < got; k++) {
        PyBuffer_Release(&views[k]);
    }
    for (Py_ssize_t s = 0; s < got_closes; s++) {
        PyBuffer_Release(&close_views[s]);
    }
    PyMem_Free(close_views);
    PyMem_Free(closes);
    PyMem_Free(open_seq);
    PyMem_Free(open_event);
    PyMem_Free(coef);
    PyMem_Free(block.rows);
    return out;
}

static PyMethodDef methods[] = {
    {"replay", replay, METH_VARARGS, "Replay the timeline's events (see backtest_core.engine.replay_loop)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_replay", "The portfolio replay loop (backtest_core.engine.replay_loop).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__replay(void) { return PyModule_Create(&module); }
