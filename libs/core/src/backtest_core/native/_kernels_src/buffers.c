/* Buffer checks shared by the kernels: type code, item size, length, contiguity. */
#include "kernels.h"

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

int get_vector(PyObject *obj, Py_buffer *view, enum kind kind, Py_ssize_t length, int writable,
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
