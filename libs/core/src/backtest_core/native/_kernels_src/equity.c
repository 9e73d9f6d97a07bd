/* The equity curve: at each union bar's close, the cash after the last event at or before that bar
 * plus each symbol's open position marked at the bar's close (equity.build_equity). */
#include "kernels.h"

typedef struct {
    int64_t bars, events, log_len, trades, n_symbols;
    const int64_t *event_bar;
    const double *log;
    double start_cash;
    const int64_t *symbol, *direction, *entry_event, *exit_event;
    const double *units, *entry_fill;
    const double **closes; /* per symbol: its close on the union grid, or NULL */
    double *equity;
    unsigned char *held_any;
    int64_t *held_count, *order; /* per symbol; order[g] = the symbol of group g */
    int64_t groups;
} Equity;

/* Set the equity to the cash after the last event at or before each bar; an error unless the event
 * bars are sorted and in [0, bars). */
static const char *cash_at_bars(Equity *q) {
    if (q->log_len < q->events) {
        return "the cash log is shorter than the events";
    }
    int64_t j = 0;
    for (int64_t i = 0; i < q->events; i++) {
        int64_t b = q->event_bar[i];
        if (b < 0 || b >= q->bars || (i > 0 && b < q->event_bar[i - 1])) {
            return "the event bars are not sorted within [0, bars)";
        }
    }
    for (int64_t g = 0; g < q->bars; g++) {
        while (j < q->events && q->event_bar[j] <= g) {
            j++;
        }
        q->equity[g] = j == 0 ? q->start_cash : q->log[j - 1];
    }
    return NULL;
}

/* e[i] += coef * close[i] (longs only) or e[i] += cnst + coef * close[i] (a symbol with a short), i in
 * [lo, hi): the position's value at the bar's close added to the equity. */
SIMD_CLONES
static void add_marked(double *e, const double *close, int64_t lo, int64_t hi, double coef, double cnst,
                       int with_cnst) {
    int64_t i = lo;
    if (with_cnst) {
        for (; i + LANES <= hi; i += LANES) {
            store8(e + i, load8(e + i) + (cnst + coef * load8(close + i)));
        }
        for (; i < hi; i++) {
            e[i] = e[i] + (cnst + coef * close[i]);
        }
    } else {
        for (; i + LANES <= hi; i += LANES) {
            store8(e + i, load8(e + i) + coef * load8(close + i));
        }
        for (; i < hi; i++) {
            e[i] = e[i] + coef * close[i];
        }
    }
}

/* One closed trade as the curve needs it: held on union bars [start, stop), valued cnst + coef * close. */
typedef struct {
    int64_t start, stop;
    double coef, cnst;
    int64_t is_short;
} Segment;

/* Add one symbol's marked positions to the equity, its segments in closing order. */
static const char *add_symbol(Equity *q, const Segment *seg, int64_t count, int64_t sym) {
    const double *close = q->closes[sym];
    double *e = q->equity;
    unsigned char *held_any = q->held_any;
    int has_short = 0;
    for (int64_t j = 0; j < count; j++) {
        has_short |= seg[j].is_short != 0;
    }
    int64_t done = 0, held = 0, bars = q->bars;
    for (int64_t j = 0; j < count; j++) {
        int64_t start = seg[j].start, stop = seg[j].stop > start ? seg[j].stop : start;
        if (start < done || stop > bars) {
            return "a symbol's positions overlap or end after the last bar";
        }
        add_marked(e, close, start, stop, seg[j].coef, seg[j].cnst, has_short);
        memset(held_any + start, 1, (size_t)(stop - start));
        held += stop - start;
        done = stop;
    }
    q->held_count[sym] = held;
    return NULL;
}

/* Fill the curve; return NULL or what is wrong with the inputs. */
static const char *build(Equity *q) {
    memset(q->held_any, 0, (size_t)q->bars);
    q->groups = 0;
    const char *error = cash_at_bars(q);
    if (error != NULL || q->trades == 0) {
        return error;
    }
    int64_t ns = q->n_symbols;
    int64_t *start = calloc((size_t)ns + 1, sizeof(int64_t));
    Segment *seg = malloc(sizeof(Segment) * (size_t)q->trades);
    if (start == NULL || seg == NULL) {
        error = "out of memory";
        goto done;
    }
    for (int64_t k = 0; k < q->trades; k++) {
        int64_t s = q->symbol[k], a = q->entry_event[k], b = q->exit_event[k];
        if (s < 0 || s >= ns || q->closes[s] == NULL || a < 0 || a >= q->events || b < 0 || b >= q->events) {
            error = "a trade's symbol has no closes or its events are out of range";
            goto done;
        }
        if (start[s + 1]++ == 0) {
            q->order[q->groups++] = s; /* groups in the order of their first closed trade */
        }
    }
    for (int64_t s = 0; s < ns; s++) {
        start[s + 1] += start[s];
    }
    /* Stable bucket sort by symbol (closing order kept within a symbol), in one sequential pass over
     * the trade columns, so that each symbol's pass below reads its segments contiguously. */
    for (int64_t k = 0; k < q->trades; k++) {
        int64_t d = q->direction[k];
        double units = q->units[k];
        Segment *g = &seg[start[q->symbol[k]]++];
        g->start = q->event_bar[q->entry_event[k]];
        g->stop = q->event_bar[q->exit_event[k]];
        g->coef = (double)d * units;
        g->cnst = d < 0 ? 2.0 * units * q->entry_fill[k] : 0.0;
        g->is_short = d < 0;
    }
    for (int64_t g = 0; g < q->groups; g++) {
        int64_t s = q->order[g];
        int64_t hi = start[s], lo = s == 0 ? 0 : start[s - 1];
        error = add_symbol(q, seg + lo, hi - lo, s);
        if (error != NULL) {
            goto done;
        }
    }
done:
    free(start);
    free(seg);
    return error;
}

/* equity(event_bar, log, start_cash, symbol, direction, units, entry_fill, entry_event, exit_event, closes,
 *        equity_out, held_any_out, held_count_out, order_out) -> groups
 * int64[events] event_bar; float64[>= events] log; trade columns int64/float64[trades]; closes: a tuple of
 * n_symbols float64[bars] arrays or None (a symbol without trades); outputs: float64[bars], bool[bars],
 * int64[n_symbols] x2 (held bars per symbol; the symbols with trades in the order of their first closed
 * trade). Raises ValueError on inputs the replay never produces (unsorted bars, overlapping positions). */
PyObject *equity(PyObject *self, PyObject *args) {
    PyObject *o[13];
    double start_cash;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOdOOOOOOOOOOO", &o[0], &o[1], &start_cash, &o[2], &o[3], &o[4], &o[5], &o[6],
                          &o[7], &o[8], &o[9], &o[10], &o[11], &o[12])) {
        return NULL;
    }
    PyObject *o_closes = o[8];
    if (!PyTuple_Check(o_closes)) {
        return PyErr_Format(PyExc_TypeError, "closes: expected a tuple, got %s", Py_TYPE(o_closes)->tp_name);
    }
    Py_ssize_t ns = PyTuple_GET_SIZE(o_closes);
    Py_buffer v[12];
    Py_buffer *cv = PyMem_Calloc((size_t)(ns > 0 ? ns : 1), sizeof(Py_buffer));
    const double **closes = PyMem_Calloc((size_t)(ns > 0 ? ns : 1), sizeof(double *));
    int got = 0, got_closes = 0;
    PyObject *result = NULL;
    if (cv == NULL || closes == NULL) {
        PyErr_NoMemory();
        goto release;
    }
    /* inputs: event_bar, log, symbol, direction, units, entry_fill, entry_event, exit_event;
     * outputs: equity, held_any, held_count, order */
    static const char *names[12] = {"event_bar",   "log",        "symbol", "direction", "units",      "entry_fill",
                                    "entry_event", "exit_event", "equity", "held_any",  "held_count", "order"};
    static const enum kind kinds[12] = {I64, F64, I64, I64, F64, F64, I64, I64, F64, BOOL, I64, I64};
    PyObject *objs[12] = {o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[9], o[10], o[11], o[12]};
    Py_ssize_t lengths[12];
    for (; got < 12; got++) {
        Py_ssize_t want = -1;
        if (got >= 3 && got <= 7) {
            want = lengths[2]; /* trade columns: as many as symbols */
        } else if (got == 9) {
            want = lengths[8]; /* held_any: as many as equity */
        } else if (got >= 10) {
            want = ns;
        }
        if (get_vector(objs[got], &v[got], kinds[got], want, got >= 8, names[got]) != 0) {
            goto release;
        }
        lengths[got] = items_of(&v[got]);
    }
    Py_ssize_t bars = lengths[8];
    for (; got_closes < ns; got_closes++) {
        PyObject *c = PyTuple_GET_ITEM(o_closes, got_closes);
        if (c == Py_None) {
            continue;
        }
        if (get_vector(c, &cv[got_closes], F64, bars, 0, "closes[i]") != 0) {
            goto release;
        }
        closes[got_closes] = cv[got_closes].buf;
    }
    Equity q = {
        .bars = bars,
        .events = lengths[0],
        .log_len = lengths[1],
        .trades = lengths[2],
        .n_symbols = ns,
        .event_bar = v[0].buf,
        .log = v[1].buf,
        .start_cash = start_cash,
        .symbol = v[2].buf,
        .direction = v[3].buf,
        .units = v[4].buf,
        .entry_fill = v[5].buf,
        .entry_event = v[6].buf,
        .exit_event = v[7].buf,
        .closes = closes,
        .equity = v[8].buf,
        .held_any = v[9].buf,
        .held_count = v[10].buf,
        .order = v[11].buf,
    };
    const char *error;
    Py_BEGIN_ALLOW_THREADS;
    error = build(&q);
    Py_END_ALLOW_THREADS;
    if (error != NULL) {
        PyErr_Format(PyExc_ValueError, "equity: %s", error);
        goto release;
    }
    result = PyLong_FromLongLong((long long)q.groups);
release:
    for (int k = 0; k < got; k++) {
        PyBuffer_Release(&v[k]);
    }
    for (Py_ssize_t s = 0; s < got_closes; s++) {
        if (closes[s] != NULL) {
            PyBuffer_Release(&cv[s]);
        }
    }
    PyMem_Free(cv);
    PyMem_Free(closes);
    return result;
}
