/* Statistics of the equity curve: the drawdown (metrics.max_drawdown) and the mean, standard deviation
 * and downside deviation of its returns (metrics.return_moments). */
#include "kernels.h"

/* The largest fall below the running peak, as a fraction (1 - lowest / peak, 0 for a peak <= 0), and
 * the longest run of bars below it, in one pass: while the peak stays the same its largest fall is at
 * the lowest value since it was set, so one division per peak suffices. A NaN value makes the fall
 * NaN (the curve is not a number from there on). */
static double fall_from(double peak, double lowest) { return peak > 0 ? 1.0 - lowest / peak : 0.0; }

static void falls(const double *e, Py_ssize_t len, double *worst_out, long long *longest_out) {
    double peak = e[0], lowest = e[0], worst = 0.0;
    long long run = 0, longest = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        double v = e[i];
        if (isnan(v)) {
            *worst_out = NAN;
            *longest_out = longest;
            return;
        }
        if (v > peak) {
            double f = fall_from(peak, lowest);
            worst = f > worst ? f : worst;
            peak = v;
            lowest = v;
        }
        lowest = v < lowest ? v : lowest;
        run = v < peak ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    double f = fall_from(peak, lowest);
    *worst_out = f > worst ? f : worst;
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

/* Pairwise summation of TERM(a[i]) (rounding error grows with log n, not n): up to 128 values are
 * summed in eight interleaved running sums (lane j adds values j, j+8, ...; SIMD), combined as
 * ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the rest in order; longer vectors are split in two halves
 * (the first a multiple of 8 long) summed the same way. TERM: the value, its deviation from m squared,
 * cubed or to the fourth power, or min(v, 0)^2 (NaN kept). */
#define PW_BLOCK 128
#define TERM_PLAIN(v) (v)
#define TERM_DEV(v) (((v) - m) * ((v) - m))
#define TERM_DEV3(v) ({ __typeof__(v) d_ = (v) - m; d_ * d_ * d_; })
#define TERM_DEV4(v) ({ __typeof__(v) d_ = (v) - m; (d_ * d_) * (d_ * d_); })
#define TERM_DOWN(v) (down_of(v) * down_of(v))
#define TERM_DOWN_V(v) (down_of_v(v) * down_of_v(v))

static inline double down_of(double v) { return v >= 0.0 ? 0.0 : v; } /* min(v, 0.0), NaN kept */

static inline v8d down_of_v(v8d v) {
    v8l at_least_zero = v >= 0.0; /* false for negatives and NaN, which stay */
    return (v8d)((v8l)v & ~at_least_zero);
}

#define PAIRWISE(NAME, TERM_S, TERM_V)                                                                      \
    SIMD_CLONES static double NAME(const double *a, int64_t n, double m) {                                              \
        (void)m;                                                                                            \
        if (n < 8) {                                                                                        \
            double res = 0.0;                                                                              \
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
PAIRWISE(pairwise_dev3, TERM_DEV3, TERM_DEV3)
PAIRWISE(pairwise_dev4, TERM_DEV4, TERM_DEV4)
PAIRWISE(pairwise_down, TERM_DOWN, TERM_DOWN_V)

/* moments(r) -> (mean, sd, downside, skewness, kurtosis) of per-bar returns, with d = r - mean and
 * m_k = sum(d^k) / n: the mean, the sample standard deviation sqrt(sum(d^2) / (n - 1)) (NaN for one
 * value), the downside deviation sqrt(sum(min(r, 0)^2) / n), the skewness m_3 / m_2^1.5 and the
 * (non-excess) kurtosis m_4 / m_2^2 from population moments; each sum pairwise. Needs a value. */
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
    double mean, sd, downside, skew, kurt;
    Py_BEGIN_ALLOW_THREADS;
    mean = pairwise_plain(r, n, 0.0) / (double)n;
    double dev2 = pairwise_dev(r, n, mean);
    sd = n > 1 ? sqrt(dev2 / (double)(n - 1)) : NAN;
    downside = sqrt(pairwise_down(r, n, 0.0) / (double)n);
    double m2 = dev2 / (double)n;
    skew = pairwise_dev3(r, n, mean) / (double)n / pow(m2, 1.5);
    kurt = pairwise_dev4(r, n, mean) / (double)n / (m2 * m2);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&rb);
    return Py_BuildValue("ddddd", mean, sd, downside, skew, kurt);
}
