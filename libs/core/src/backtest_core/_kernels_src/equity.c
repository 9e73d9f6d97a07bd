/* The equity curve: cash after the last event at each bar plus each symbol's marked positions
 * (equity.build_equity_python, the same additions in the same order per bar). */
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
    int dirty; /* the cash holds a -0.0 or a signalling NaN, which `+ 0.0` changes */
} Equity;

/* Whether x + 0.0 differs from x bit for bit: x is -0.0 (becomes +0.0) or a signalling NaN (quieted). */
static int changed_by_adding_zero(double x) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits == 0x8000000000000000ULL || (isnan(x) && !(bits & 0x0008000000000000ULL));
}

/* Set the equity to the cash after the last event at or before each bar; BAIL unless the event bars
 * are sorted and in [0, bars). */
static int cash_at_bars(Equity *q) {
    if (q->log_len < q->events) {
        return BAIL;
    }
    int64_t j = 0;
    for (int64_t i = 0; i < q->events; i++) {
        int64_t b = q->event_bar[i];
        if (b < 0 || b >= q->bars || (i > 0 && b < q->event_bar[i - 1])) {
            return BAIL;
        }
    }
    for (int64_t g = 0; g < q->bars; g++) {
        while (j < q->events && q->event_bar[j] <= g) {
            j++;
        }
        double c = j == 0 ? q->start_cash : q->log[j - 1];
        q->equity[g] = c;
        q->dirty |= changed_by_adding_zero(c);
    }
    return 0;
}

/* e[i] += 0.0 over [lo, hi): what numpy's `equity += marked` does outside a symbol's positions.
 * Only needed while the curve may hold a -0.0 or a signalling NaN: x + 0.0 is x for every other x, and
 * adding a marked value to such an x never makes one (a sum is -0.0 only if both terms are, and
 * arithmetic returns quiet NaNs). So `build` calls it only when the cash has such a value. */
SIMD_CLONES
static void add_zero(double *e, int64_t lo, int64_t hi) {
    const v8d zero = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int64_t i = lo;
    for (; i + LANES <= hi; i += LANES) {
        store8(e + i, load8(e + i) + zero);
    }
    for (; i < hi; i++) {
        e[i] = e[i] + 0.0;
    }
}

/* e[i] += coef * close[i] (longs only) or e[i] += cnst + coef * close[i] (a symbol with a short), i in
 * [lo, hi): numpy's marked value of the bar, then its add to the equity. */
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
static int add_symbol(Equity *q, const Segment *seg, int64_t count, int64_t sym) {
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
            return BAIL; /* overlapping or unordered positions: numpy raises, let it */
        }
        if (q->dirty) {
            add_zero(e, done, start);
        }
        add_marked(e, close, start, stop, seg[j].coef, seg[j].cnst, has_short);
        memset(held_any + start, 1, (size_t)(stop - start));
        held += stop - start;
        done = stop;
    }
    if (q->dirty) {
        add_zero(e, done, bars);
    }
    q->held_count[sym] = held;
    return 0;
}

static int build(Equity *q) {
    q->dirty = 0;
    if (cash_at_bars(q) != 0) {
        return BAIL;
    }
    memset(q->held_any, 0, (size_t)q->bars);
    q->groups = 0;
    if (q->trades == 0) {
        return 0;
    }
    int64_t ns = q->n_symbols;
    int64_t *start = calloc((size_t)ns + 1, sizeof(int64_t));
    Segment *seg = malloc(sizeof(Segment) * (size_t)q->trades);
    int status = 0;
    if (start == NULL || seg == NULL) {
        status = BAIL;
        goto done;
    }
    for (int64_t k = 0; k < q->trades; k++) {
        int64_t s = q->symbol[k], a = q->entry_event[k], b = q->exit_event[k];
        if (s < 0 || s >= ns || q->closes[s] == NULL || a < 0 || a >= q->events || b < 0 || b >= q->events) {
            status = BAIL;
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
        if (add_symbol(q, seg + lo, hi - lo, s) != 0) {
            status = BAIL;
            goto done;
        }
    }
done:
    free(start);
    free(seg);
    return status;
}

/* equity(event_bar, log, start_cash, symbol, direction, units, entry_fill, entry_event, exit_event, closes,
 *        equity_out, held_any_out, held_count_out, order_out) -> (status, groups)
 * int64[events] event_bar; float64[>= events] log; trade columns int64/float64[trades]; closes: a tuple of
 * n_symbols float64[bars] arrays or None; outputs: float64[bars], bool[bars], int64[n_symbols] x2. */
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
    int status;
    Py_BEGIN_ALLOW_THREADS;
    status = build(&q);
    Py_END_ALLOW_THREADS;
    result = Py_BuildValue("iL", status, (long long)q.groups);
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
