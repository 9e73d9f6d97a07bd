/* Window sums (indicators.window_sums) and sma_cross's vectorized signals (sma_cross.decide_vectorized).
 *
 * Vectorised across outputs only: several consecutive window sums in SIMD registers at once, each
 * output's own chain of adds oldest to newest (the order indicators.last_window_sums also uses). */
#include "kernels.h"

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

PyObject *window_sums(PyObject *self, PyObject *args) {
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

typedef signed char v8c __attribute__((vector_size(8)));
typedef signed char v16c __attribute__((vector_size(16)));
#define CHUNK 2048

/* c[i] = +1 if f[i]/fast > s[i]/slow, -1 if <, 0 if equal or NaN (the SMAs compared). */
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

/* sma_cross's signals without two full-length SMA arrays: the window sums, the divisions by the lengths
 * and the compares chunk by chunk; side[t] = +1 on a strict up-cross of SMA(fast) over SMA(slow) between
 * bars t-1 and t, -1 on a strict down-cross, else 0 (0 while either SMA is not defined yet). */
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

PyObject *sma_cross_sides(PyObject *self, PyObject *args) {
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
