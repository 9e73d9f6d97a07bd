/* The module table of backtest_core.native._kernels (the kernels are in the other files of this folder). */
#include "kernels.h"

static PyMethodDef methods[] = {
    {"window_sums", window_sums, METH_VARARGS, "Fill out with the window sums (see indicators.window_sums)."},
    {"sma_cross_sides", sma_cross_sides, METH_VARARGS, "Fill side with sma_cross's signals (+1, -1, 0)."},
    {"drawdown", drawdown, METH_VARARGS, "Return (largest fall as a fraction, longest underwater run)."},
    {"moments", moments, METH_VARARGS, "Return (mean, std ddof=1, downside deviation, skewness, kurtosis) of returns."},
    {"equity", equity, METH_VARARGS, "Fill the equity curve's arrays (see equity.build_equity)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "Array kernels of the engine's hot path (window sums, drawdown, equity).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
