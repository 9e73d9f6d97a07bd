/* kernels.h: what the files of the extension backtest_core.native._kernels share.
 *
 * The array kernels of the engine's hot path, each the only implementation of what it computes:
 *
 *   window_sums(x, n, weights, out)          strategies.indicators.window_sums
 *   sma_cross_sides(close, fast, slow, side)  strategies.sma_cross (the vectorized signals)
 *   drawdown(equity) -> (worst, longest)     metrics.max_drawdown (before its final * 100)
 *   moments(returns) -> (mean, sd, ...)     metrics.return_moments
 *   equity(...) -> groups                    equity.build_equity
 *
 * Built by setuptools from libs/core/pyproject.toml with -O2 -ffp-contract=off -fno-fast-math: no fused
 * multiply-add and no reassociation, so each double is the IEEE-754 result of the operations written,
 * in the order written. That matters for the window sums: the per-bar decide() path sums the last
 * window with numpy (indicators.last_window_sums) in the same oldest-to-newest order, and both paths
 * must give the same signals bit for bit. Window sums are vectorised across outputs only (several
 * consecutive window sums in SIMD registers at once); each output's own chain of adds stays oldest to
 * newest. The SIMD loops (SIMD_CLONES) are compiled, on x86-64 with GCC, for AVX-512F, AVX2 and
 * baseline SSE2, and the loader picks the best one the CPU has (target_clones); all give the same bits,
 * only the width differs (-DKERNELS_NO_CLONES builds one version).
 *
 * Every function checks its buffers (type code, item size, length) and raises ValueError on a mismatch.
 */
#ifndef BACKTEST_KERNELS_H
#define BACKTEST_KERNELS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

typedef long long v8l __attribute__((vector_size(64)));

enum kind { F64, I64, BOOL };

/* Get a 1-d C-contiguous buffer of the kind; length -1 = any. Return 0, or -1 with ValueError set. */
int get_vector(PyObject *obj, Py_buffer *view, enum kind kind, Py_ssize_t length, int writable, const char *name);

static inline Py_ssize_t items_of(const Py_buffer *v) { return v->len / v->itemsize; }

/* The functions of the module (each file's header comment says what it computes). */
PyObject *window_sums(PyObject *self, PyObject *args);
PyObject *sma_cross_sides(PyObject *self, PyObject *args);
PyObject *drawdown(PyObject *self, PyObject *args);
PyObject *moments(PyObject *self, PyObject *args);
PyObject *equity(PyObject *self, PyObject *args);

#endif
