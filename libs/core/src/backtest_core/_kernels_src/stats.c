/* Statistics of the equity curve and the trades: drawdown (metrics.max_drawdown_python), mean / std /
 * downside deviation in numpy's pairwise order (metrics.return_moments_python) and left folds of the
 * trades' pnl (metrics.pnl_folds_python). */
#include "kernels.h"

/* One pass of max_drawdown_python: peak = running max (NaN once any value was NaN, as np.maximum),
 * dd = peak > 0 ? 1.0 - e / peak : 0.0, worst = max(dd) (NaN if any dd is NaN, as ndarray.max),
 * longest = the longest run of bars with e < peak.
 *
 * Without a division per bar: while the peak p stays the same, 1.0 - v / p is largest at the smallest
 * v (a correctly rounded division and subtraction are monotonic), so one division per peak gives the
 * same maximum; the bar that set the peak is in its run (1.0 - p / p = 0.0), except for p = +inf,
 * where that bar's dd is NaN (inf / inf), which is flagged when the peak is set. Every dd is >= 0.0 or NaN, so the maximum starts from 0.0. Once a value is NaN, the peak is
 * NaN for good: every later dd is 0.0 and no later bar is under water. */
typedef struct {
    double worst;
    int worst_nan;
} Falls;

/* The largest dd of the bars whose running peak was `peak`, the lowest of them being `lowest`. */
static void close_peak(Falls *f, double peak, double lowest) {
    if (peak > 0) {
        double dd = 1.0 - lowest / peak;
        if (isnan(dd)) {
            f->worst_nan = 1;
        } else if (dd > f->worst) {
            f->worst = dd;
        }
    }
}

static void falls(const double *e, Py_ssize_t len, double *worst_out, long long *longest_out) {
    Falls f = {0.0, isinf(e[0]) && e[0] > 0};
    double peak = e[0], lowest = e[0];
    long long run = 0, longest = 0;
    int open = !isnan(peak);
    for (Py_ssize_t i = 1; i < len && open; i++) {
        double v = e[i];
        if (v > peak) {
            close_peak(&f, peak, lowest);
            peak = v;
            lowest = v;
            f.worst_nan |= isinf(v); /* v > peak: +inf */
        } else if (isnan(v)) {
            open = 0;
            break;
        }
        lowest = v < lowest ? v : lowest;
        run = v < peak ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    if (!isnan(peak)) {
        close_peak(&f, peak, lowest);
    }
    *worst_out = f.worst_nan ? NAN : f.worst;
    *longest_out = longest;
}

PyObject *drawdown(PyObject *self, PyObject *args) {
    PyObject *o_e;
    (void)self;
    if (!PyArg_ParseTuple(args, "O", &o_e)) {
        return NULL;
    }
    Py_buffer eb;
    if (get_vector(o_e, &eb, F64, -1, 0, "equity") != 0) {
        return NULL;
    }
    Py_ssize_t len = items_of(&eb);
    if (len == 0) {
        PyBuffer_Release(&eb);
        return PyErr_Format(PyExc_ValueError, "equity: expected at least one value, got 0");
    }
    double worst = 0.0;
    long long longest = 0;
    Py_BEGIN_ALLOW_THREADS;
    falls(eb.buf, len, &worst, &longest);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&eb);
    return Py_BuildValue("dL", worst, longest);
}

/* numpy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src), which np.add.reduce runs over a
 * whole contiguous float64 vector: below 8 values a plain loop; up to 128, eight running sums (lane j
 * adds values j, j+8, ...) combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the rest in order;
 * above, the two halves (the first a multiple of 8 long) summed recursively. The reduction starts from
 * 0.0: np.sum = 0.0 + pairwise(a). TERM is applied to every value first, as numpy's temporaries are:
 * (v - m) * (v - m) for np.var's squared deviations, min(v, 0)^2 (NaN kept) for the downside. */
#define PW_BLOCK 128
#define TERM_PLAIN(v) (v)
#define TERM_DEV(v) (((v) - m) * ((v) - m))
#define TERM_DOWN(v) (down_of(v) * down_of(v))
#define TERM_DOWN_V(v) (down_of_v(v) * down_of_v(v))

static inline double down_of(double v) { return v >= 0.0 ? 0.0 : v; } /* np.minimum(v, 0.0), NaN kept */

static inline v8d down_of_v(v8d v) {
    v8l at_least_zero = v >= 0.0; /* false for negatives and NaN, which stay */
    return (v8d)((v8l)v & ~at_least_zero);
}

#define PAIRWISE(NAME, TERM_S, TERM_V)                                                                      \
    SIMD_CLONES static double NAME(const double *a, int64_t n, double m) {                                              \
        (void)m;                                                                                            \
        if (n < 8) {                                                                                        \
            double res = -0.0;                                                                              \
            for (int64_t i = 0; i < n; i++) {                                                               \
                res += TERM_S(a[i]);                                                                        \
            }                                                                                               \
            return res;                                                                                     \
        }                                                                                                   \
        if (n <= PW_BLOCK) {                                                                                \
            v8d r = TERM_V(load8(a));                                                                       \
            int64_t i = 8;                                                                                  \
            for (; i < n - (n % 8); i += 8) {                                                               \
                r += TERM_V(load8(a + i));                                                                  \
            }                                                                                               \
            double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));                 \
            for (; i < n; i++) {                                                                            \
                res += TERM_S(a[i]);                                                                        \
            }                                                                                               \
            return res;                                                                                     \
        }                                                                                                   \
        int64_t n2 = n / 2;                                                                                 \
        n2 -= n2 % 8;                                                                                       \
        return NAME(a, n2, m) + NAME(a + n2, n - n2, m);                                                    \
    }

PAIRWISE(pairwise_plain, TERM_PLAIN, TERM_PLAIN)
PAIRWISE(pairwise_dev, TERM_DEV, TERM_DEV)
PAIRWISE(pairwise_down, TERM_DOWN, TERM_DOWN_V)

/* moments(r) -> (mean, sd, downside): np.mean(r); np.std(r, ddof=1) (NaN below 2 values, as numpy
 * divides by max(n - 1, 0)); sqrt(np.mean(np.minimum(r, 0) ** 2)). Needs at least one value. */
PyObject *moments(PyObject *self, PyObject *args) {
    PyObject *o_r;
    (void)self;
    if (!PyArg_ParseTuple(args, "O", &o_r)) {
        return NULL;
    }
    Py_buffer rb;
    if (get_vector(o_r, &rb, F64, -1, 0, "returns") != 0) {
        return NULL;
    }
    Py_ssize_t n = items_of(&rb);
    if (n == 0) {
        PyBuffer_Release(&rb);
        return PyErr_Format(PyExc_ValueError, "returns: expected at least one value, got 0");
    }
    const double *r = rb.buf;
    double mean, sd, downside;
    Py_BEGIN_ALLOW_THREADS;
    mean = (0.0 + pairwise_plain(r, n, 0.0)) / (double)n;
    double dev = 0.0 + pairwise_dev(r, n, mean);
    sd = sqrt(dev / (double)(n - 1 > 0 ? n - 1 : 0));
    downside = sqrt((0.0 + pairwise_down(r, n, 0.0)) / (double)n);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&rb);
    return Py_BuildValue("ddd", mean, sd, downside);
}

/* folds(values) -> (total, wins, losses, win_count, loss_count): left folds from 0.0 of all values, of
 * those > 0 and of those < 0 (NaN in none but the total), in order: metrics.pnl_folds_python. */
PyObject *folds(PyObject *self, PyObject *args) {
    PyObject *o_v;
    (void)self;
    if (!PyArg_ParseTuple(args, "O", &o_v)) {
        return NULL;
    }
    Py_buffer vb;
    if (get_vector(o_v, &vb, F64, -1, 0, "values") != 0) {
        return NULL;
    }
    const double *v = vb.buf;
    Py_ssize_t n = items_of(&vb);
    double total = 0.0, wins = 0.0, losses = 0.0;
    long long win_count = 0, loss_count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double x = v[i];
        total += x;
        if (x > 0) {
            wins += x;
            win_count += 1;
        } else if (x < 0) {
            losses += x;
            loss_count += 1;
        }
    }
    PyBuffer_Release(&vb);
    return Py_BuildValue("dddLL", total, wins, losses, win_count, loss_count);
}
