/* Array kernels of the engine's hot path in C, each the twin of a numpy function that stays the reference.
 *
 *   window_sums(x, n, weights, out)          strategies.indicators.window_sums_python
 *   sma_cross_sides(close, fast, slow, side)  strategies.sma_cross.sma_cross_sides_python
 *   drawdown(equity) -> (worst, longest)     metrics.max_drawdown_python (before its final * 100)
 *   moments(returns) -> (mean, sd, downside) np.mean, np.std(ddof=1) of metrics.sharpe_ratio / sortino_ratio
 *   folds(pnls) -> (total, wins, losses, ...) metrics.pnl_folds_python (sequential sums of trade pnls)
 *   equity(...) -> status                    equity.build_equity_python
 *
 * Built by setuptools from libs/core/pyproject.toml with -O2 -ffp-contract=off -fno-fast-math: no fused
 * multiply-add and no reassociation, so every double is the result of the same IEEE-754 operations, in
 * the same order, as the numpy twin. Window sums are vectorised across outputs only (several consecutive
 * window sums in SIMD registers at once); each output's own chain of adds stays oldest to newest. The
 * SIMD loops (SIMD_CLONES) are compiled, on x86-64 with GCC, for AVX-512F, AVX2 and baseline SSE2, and
 * the loader picks the best one the CPU has (target_clones); all give the same bits, only the width
 * differs (-DKERNELS_NO_CLONES builds one version, to test the others on an AVX-512 machine).
 *
 * Every function checks its buffers (type code, item size, length) and raises ValueError on a mismatch.
 * Where the numpy twin would raise or do something odd on malformed input (unsorted bars, an index out
 * of range), `equity` returns BAIL instead and the caller runs the twin, which behaves as it always did.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BAIL 1

/* -DKERNELS_NO_CLONES builds one version for the compiler's target (to test the baseline or AVX2 code
 * on an AVX-512 machine: gcc -march=x86-64 or -march=haswell). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(KERNELS_NO_CLONES)
#define SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SIMD_CLONES
#endif

/* Eight doubles; GCC lowers the arithmetic to whatever vector width the clone's target has. */
typedef double v8d __attribute__((vector_size(64)));
#define LANES 8

/* Unaligned load and store of eight doubles (macros: a v8d argument or return value would change the ABI). */
#define load8(p) ({ v8d v_; memcpy(&v_, (p), sizeof v_); v_; })
#define store8(p, v) do { v8d v_ = (v); memcpy((p), &v_, sizeof v_); } while (0)

/* out[t] = x[t] + x[t+1] + ... + x[t+n-1], left to right, for t < m (the window ending at t+n-1). */
SIMD_CLONES
static void sums_plain(const double *x, int64_t m, int64_t n, double *out) {
    int64_t t = 0;
    for (; t + 4 * LANES <= m; t += 4 * LANES) {
        const double *p = x + t;
        v8d a0 = load8(p), a1 = load8(p + LANES), a2 = load8(p + 2 * LANES), a3 = load8(p + 3 * LANES);
        for (int64_t k = 1; k < n; k++) {
            const double *q = p + k;
            a0 += load8(q);
            a1 += load8(q + LANES);
            a2 += load8(q + 2 * LANES);
            a3 += load8(q + 3 * LANES);
        }
        store8(out + t, a0);
        store8(out + t + LANES, a1);
        store8(out + t + 2 * LANES, a2);
        store8(out + t + 3 * LANES, a3);
    }
    for (; t < m; t++) {
        double a = x[t];
        for (int64_t k = 1; k < n; k++) {
            a += x[t + k];
        }
        out[t] = a;
    }
}

/* Two window sums at once, small <= big windows ending at the same bar: out_big[t] = x[t] + ... +
 * x[t+big-1] and out_small[t] = x[t+big-small] + ... + x[t+big-1], each left to right; the small
 * window's values are the big window's last loads, so they are loaded once for both. */
SIMD_CLONES
static void sums_pair(const double *x, int64_t m, int64_t big, int64_t small, double *out_big, double *out_small) {
    int64_t t = 0, skip = big - small;
    for (; t + 4 * LANES <= m; t += 4 * LANES) {
        const double *p = x + t;
        v8d a0 = load8(p), a1 = load8(p + LANES), a2 = load8(p + 2 * LANES), a3 = load8(p + 3 * LANES);
        for (int64_t k = 1; k < skip; k++) {
            const double *q = p + k;
            a0 += load8(q);
            a1 += load8(q + LANES);
            a2 += load8(q + 2 * LANES);
            a3 += load8(q + 3 * LANES);
        }
        v8d b0, b1, b2, b3;
        if (skip == 0) {
            b0 = a0, b1 = a1, b2 = a2, b3 = a3;
        } else {
            const double *q = p + skip;
            b0 = load8(q), b1 = load8(q + LANES), b2 = load8(q + 2 * LANES), b3 = load8(q + 3 * LANES);
            a0 += b0, a1 += b1, a2 += b2, a3 += b3;
        }
        for (int64_t k = skip + 1; k < big; k++) {
            const double *q = p + k;
            v8d c0 = load8(q), c1 = load8(q + LANES), c2 = load8(q + 2 * LANES), c3 = load8(q + 3 * LANES);
            a0 += c0, a1 += c1, a2 += c2, a3 += c3;
            b0 += c0, b1 += c1, b2 += c2, b3 += c3;
        }
        store8(out_big + t, a0);
        store8(out_big + t + LANES, a1);
        store8(out_big + t + 2 * LANES, a2);
        store8(out_big + t + 3 * LANES, a3);
        store8(out_small + t, b0);
        store8(out_small + t + LANES, b1);
        store8(out_small + t + 2 * LANES, b2);
        store8(out_small + t + 3 * LANES, b3);
    }
    if (t < m) {
        sums_plain(x + t, m - t, big, out_big + t);
        sums_plain(x + t + skip, m - t, small, out_small + t);
    }
}

/* out[t] = w[0]*x[t] + w[1]*x[t+1] + ..., each product rounded, then added left to right. */
SIMD_CLONES
static void sums_weighted(const double *x, const double *w, int64_t m, int64_t n, double *out) {
    int64_t t = 0;
    for (; t + 4 * LANES <= m; t += 4 * LANES) {
        const double *p = x + t;
        double w0 = w[0];
        v8d a0 = w0 * load8(p), a1 = w0 * load8(p + LANES);
        v8d a2 = w0 * load8(p + 2 * LANES), a3 = w0 * load8(p + 3 * LANES);
        for (int64_t k = 1; k < n; k++) {
            const double *q = p + k;
            double wk = w[k];
            a0 += wk * load8(q);
            a1 += wk * load8(q + LANES);
            a2 += wk * load8(q + 2 * LANES);
            a3 += wk * load8(q + 3 * LANES);
        }
        store8(out + t, a0);
        store8(out + t + LANES, a1);
        store8(out + t + 2 * LANES, a2);
        store8(out + t + 3 * LANES, a3);
    }
    for (; t < m; t++) {
        double a = w[0] * x[t];
        for (int64_t k = 1; k < n; k++) {
            a += w[k] * x[t + k];
        }
        out[t] = a;
    }
}

/* ---- buffers ---------------------------------------------------------------------------------------- */

enum kind { F64, I64, BOOL };

static int kind_matches(const Py_buffer *v, enum kind kind) {
    const char *f = v->format == NULL ? "B" : v->format;
    if (f[0] == '<' || f[0] == '=' || f[0] == '@') {
        f++;
    }
    if (f[0] == '\0' || f[1] != '\0') {
        return 0;
    }
    switch (kind) {
    case F64:
        return v->itemsize == 8 && f[0] == 'd';
    case I64:
        return v->itemsize == 8 && (f[0] == 'q' || f[0] == 'l');
    case BOOL:
        return v->itemsize == 1 && (f[0] == '?' || f[0] == 'B' || f[0] == 'b');
    }
    return 0;
}

/* Get a 1-d C-contiguous buffer of the kind; length -1 = any. Return 0, or -1 with ValueError set. */
static int get_vector(PyObject *obj, Py_buffer *view, enum kind kind, Py_ssize_t length, int writable,
                      const char *name) {
    static const char *kinds[] = {"float64", "int64", "bool"};
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) {
        return -1;
    }
    Py_ssize_t items = view->itemsize > 0 ? view->len / view->itemsize : 0;
    if (!kind_matches(view, kind) || view->ndim > 1 || (length >= 0 && items != length)) {
        PyErr_Format(PyExc_ValueError, "%s: expected a contiguous %s vector of %zd items, got format '%s', %zd items",
                     name, kinds[kind], length, view->format ? view->format : "B", items);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static Py_ssize_t items_of(const Py_buffer *v) { return v->len / v->itemsize; }

/* ---- window_sums ------------------------------------------------------------------------------------ */

static PyObject *window_sums(PyObject *self, PyObject *args) {
    PyObject *o_x, *o_w, *o_out;
    Py_ssize_t n;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnOO", &o_x, &n, &o_w, &o_out)) {
        return NULL;
    }
    if (n < 1) {
        return PyErr_Format(PyExc_ValueError, "window length must be >= 1, was %zd", n);
    }
    Py_buffer x, w, out;
    if (get_vector(o_x, &x, F64, -1, 0, "x") != 0) {
        return NULL;
    }
    Py_ssize_t len = items_of(&x);
    if (get_vector(o_out, &out, F64, len, 1, "out") != 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    int weighted = o_w != Py_None;
    if (weighted) {
        if (get_vector(o_w, &w, F64, -1, 0, "weights") != 0) {
            goto fail;
        }
        if (items_of(&w) < n) {
            PyErr_Format(PyExc_ValueError, "weights: expected at least %zd values, got %zd", n, items_of(&w));
            PyBuffer_Release(&w);
            goto fail;
        }
    }
    const double *xs = x.buf;
    double *os = out.buf;
    Py_BEGIN_ALLOW_THREADS;
    Py_ssize_t head = n - 1 < len ? n - 1 : len;
    for (Py_ssize_t t = 0; t < head; t++) {
        os[t] = NAN;
    }
    if (len >= n) {
        if (weighted) {
            sums_weighted(xs, w.buf, len - n + 1, n, os + n - 1);
        } else {
            sums_plain(xs, len - n + 1, n, os + n - 1);
        }
    }
    Py_END_ALLOW_THREADS;
    if (weighted) {
        PyBuffer_Release(&w);
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
fail:
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    return NULL;
}

/* ---- sma_cross_sides ------------------------------------------------------------------------------- */

typedef long long v8l __attribute__((vector_size(64)));
typedef signed char v8c __attribute__((vector_size(8)));
typedef signed char v16c __attribute__((vector_size(16)));
#define CHUNK 2048

/* c[i] = +1 if f[i]/fast > s[i]/slow, -1 if <, 0 if equal or NaN: numpy's `f /= fast; s /= slow; f > s`. */
SIMD_CLONES
static void compare_chunk(const double *f, double fast, const double *s, double slow, int64_t m, int8_t *c) {
    int64_t i = 0;
    for (; i + LANES <= m; i += LANES) {
        v8d a = load8(f + i) / fast, b = load8(s + i) / slow;
        v8l d = (a < b) - (a > b); /* comparisons give -1 (true) or 0 */
        v8c cc = __builtin_convertvector(d, v8c);
        memcpy(c + i, &cc, sizeof cc);
    }
    for (; i < m; i++) {
        double a = f[i] / fast, b = s[i] / slow;
        c[i] = (int8_t)((a > b) - (a < b));
    }
}

/* side[i] = cur[i] where prev[i] and cur[i] have opposite signs (a strict cross), else 0. */
SIMD_CLONES
static void crosses(const int8_t *prev, const int8_t *cur, int64_t m, int8_t *side) {
    int64_t i = 0;
    for (; i + 16 <= m; i += 16) {
        v16c p, c;
        memcpy(&p, prev + i, sizeof p);
        memcpy(&c, cur + i, sizeof c);
        v16c out = (p * c == -1) & c;
        memcpy(side + i, &out, sizeof out);
    }
    for (; i < m; i++) {
        side[i] = (int8_t)(prev[i] * cur[i] == -1 ? cur[i] : 0);
    }
}

/* The signals of sma_cross.decide_vectorized without its two full-length SMA arrays: window sums, the
 * divisions and the compares chunk by chunk (each value computed exactly as window_sums and numpy do). */
static void sma_sides(const double *x, int64_t len, int64_t fast, int64_t slow, int8_t *side) {
    double fsum[CHUNK], ssum[CHUNK];
    int8_t c[CHUNK + 1];
    int64_t first = (fast > slow ? fast : slow) - 1; /* the first bar with both SMAs (earlier: NaN, 0) */
    int64_t head = first + 1 < len ? first + 1 : len;
    memset(side, 0, (size_t)head);
    c[0] = 0;
    for (int64_t t0 = first; t0 < len; t0 += CHUNK) {
        int64_t m = len - t0 < CHUNK ? len - t0 : CHUNK;
        if (fast <= slow) {
            sums_pair(x + t0 - slow + 1, m, slow, fast, ssum, fsum);
        } else {
            sums_pair(x + t0 - fast + 1, m, fast, slow, fsum, ssum);
        }
        compare_chunk(fsum, (double)fast, ssum, (double)slow, m, c + 1);
        if (t0 == first) {
            crosses(c + 1, c + 2, m - 1, side + t0 + 1);
        } else {
            crosses(c, c + 1, m, side + t0);
        }
        c[0] = c[m];
    }
}

static PyObject *sma_cross_sides(PyObject *self, PyObject *args) {
    PyObject *o_x, *o_side;
    Py_ssize_t fast, slow;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnnO", &o_x, &fast, &slow, &o_side)) {
        return NULL;
    }
    if (fast < 1 || slow < 1) {
        return PyErr_Format(PyExc_ValueError, "SMA lengths must be >= 1, were fast=%zd, slow=%zd", fast, slow);
    }
    Py_buffer x, side;
    if (get_vector(o_x, &x, F64, -1, 0, "close") != 0) {
        return NULL;
    }
    Py_ssize_t len = items_of(&x);
    if (PyObject_GetBuffer(o_side, &side, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) != 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    if (side.itemsize != 1 || side.len != len || side.format == NULL || strcmp(side.format, "b") != 0) {
        PyErr_Format(PyExc_ValueError, "side: expected %zd int8 items, got %zd bytes of format '%s'", len,
                     side.len, side.format ? side.format : "B");
        PyBuffer_Release(&x);
        PyBuffer_Release(&side);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS;
    sma_sides(x.buf, len, fast, slow, side.buf);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&x);
    PyBuffer_Release(&side);
    Py_RETURN_NONE;
}

/* ---- drawdown --------------------------------------------------------------------------------------- */

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

static PyObject *drawdown(PyObject *self, PyObject *args) {
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

/* ---- mean, standard deviation, downside deviation ---------------------------------------------------- */

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
static PyObject *moments(PyObject *self, PyObject *args) {
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

/* ---- folds --------------------------------------------------------------------------------------------- */

/* folds(values) -> (total, wins, losses, win_count, loss_count): left folds from 0.0 of all values, of
 * those > 0 and of those < 0 (NaN in none but the total), in order: metrics.pnl_folds_python. */
static PyObject *folds(PyObject *self, PyObject *args) {
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

/* ---- equity ----------------------------------------------------------------------------------------- */

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
static PyObject *equity(PyObject *self, PyObject *args) {
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

static PyMethodDef methods[] = {
    {"window_sums", window_sums, METH_VARARGS, "Fill out with the window sums (see indicators.window_sums)."},
    {"sma_cross_sides", sma_cross_sides, METH_VARARGS, "Fill side with sma_cross's signals (+1, -1, 0)."},
    {"drawdown", drawdown, METH_VARARGS, "Return (largest fall as a fraction, longest underwater run)."},
    {"folds", folds, METH_VARARGS, "Return the left folds of all, positive and negative values, and counts."},
    {"moments", moments, METH_VARARGS, "Return numpy's (mean, std ddof=1, downside deviation) of returns."},
    {"equity", equity, METH_VARARGS, "Fill the equity curve's arrays (see equity.build_equity)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "Array kernels of the engine's hot path (window sums, drawdown, equity).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
