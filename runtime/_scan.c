/* Python bindings of the retrieval scan's compiled kernel (the kernels: scan_kernels.h): int8 dot
 * products of one query against every row of a row-major int8 table, and the k best rows without
 * an N-long score array.
 *
 * It reads the table where it lies (the bundle's memory map), holds no copy and releases the GIL
 * while it runs. The code path (avx2, neon-dotprod, neon or portable) is chosen at run time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan_kernels.h"

/* ------------------------------------------------------------ argument checks */

static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, int writable, const char *what) {
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    if (view->itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "%s must have %zd-byte items, got %zd", what, itemsize, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* table (N*D int8), query (D int8) -> rows N, dim D; or -1 with an exception set */
static int table_shape(Py_buffer *table, Py_buffer *query, Py_ssize_t *rows, Py_ssize_t *dim) {
    *dim = query->len;
    if (*dim <= 0 || *dim > MAX_DIM || table->len % *dim != 0) {
        PyErr_Format(PyExc_ValueError, "table of %zd bytes does not hold rows of %zd int8 values (1 to %d)",
                     table->len, *dim, MAX_DIM);
        return -1;
    }
    *rows = table->len / *dim;
    return 0;
}

/* ------------------------------------------------------------ dots */

static PyObject *scan_dots(PyObject *self, PyObject *args) {
    PyObject *t, *q, *o;
    if (!PyArg_ParseTuple(args, "OOO:dots", &t, &q, &o)) return NULL;
    Py_buffer table, query, out;
    if (get_buffer(t, &table, 1, 0, "table") < 0) return NULL;
    if (get_buffer(q, &query, 1, 0, "query") < 0) goto fail_table;
    if (get_buffer(o, &out, 4, 1, "out") < 0) goto fail_query;
    Py_ssize_t rows, dim;
    if (table_shape(&table, &query, &rows, &dim) < 0) goto fail_out;
    if (out.len / 4 != rows) {
        PyErr_Format(PyExc_ValueError, "out holds %zd scores, the table has %zd rows", out.len / 4, rows);
        goto fail_out;
    }
    const char *name;
    dots_fn kernel = pick_kernel(dim, &name);
    Py_BEGIN_ALLOW_THREADS
    kernel((const int8_t *)table.buf, rows, dim, (const int8_t *)query.buf, (int32_t *)out.buf);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    PyBuffer_Release(&query);
    PyBuffer_Release(&table);
    Py_RETURN_NONE;
fail_out:
    PyBuffer_Release(&out);
fail_query:
    PyBuffer_Release(&query);
fail_table:
    PyBuffer_Release(&table);
    return NULL;
}

/* ------------------------------------------------------------ top_k */

static PyObject *scan_top_k(PyObject *self, PyObject *args) {
    PyObject *t, *q, *r, *s, *x = NULL;
    if (!PyArg_ParseTuple(args, "OOOO|O:top_k", &t, &q, &r, &s, &x)) return NULL;
    Py_buffer table, query, best_rows, best_scores, skip = {0};
    PyObject *result = NULL;
    if (get_buffer(t, &table, 1, 0, "table") < 0) return NULL;
    if (get_buffer(q, &query, 1, 0, "query") < 0) goto fail_table;
    if (get_buffer(r, &best_rows, 8, 1, "rows") < 0) goto fail_query;
    if (get_buffer(s, &best_scores, 4, 1, "scores") < 0) goto fail_rows;
    if (x != NULL && x != Py_None && get_buffer(x, &skip, 8, 0, "skip") < 0) goto fail_scores;
    Py_ssize_t rows, dim, k = best_rows.len / 8, n_skip = skip.buf ? skip.len / 8 : 0;
    if (table_shape(&table, &query, &rows, &dim) < 0) goto fail_skip;
    if (best_scores.len / 4 != k) {
        PyErr_SetString(PyExc_ValueError, "rows and scores must have the same length (k)");
        goto fail_skip;
    }
    for (Py_ssize_t i = 1; i < n_skip; i++)
        if (((const int64_t *)skip.buf)[i] <= ((const int64_t *)skip.buf)[i - 1]) {
            PyErr_SetString(PyExc_ValueError, "skip must hold rows in increasing order, each once");
            goto fail_skip;
        }
    const char *name;
    dots_fn kernel = pick_kernel(dim, &name);
    Py_ssize_t kept = 0;
    if (k > 0) {
        Py_BEGIN_ALLOW_THREADS
        kept = top_k_scan(kernel, (const int8_t *)table.buf, rows, dim, (const int8_t *)query.buf, k,
                          (const int64_t *)skip.buf, n_skip, (int64_t *)best_rows.buf, (int32_t *)best_scores.buf);
        Py_END_ALLOW_THREADS
    }
    result = kept < 0 ? PyErr_NoMemory() : PyLong_FromSsize_t(kept);
fail_skip:
    if (skip.buf) PyBuffer_Release(&skip);
fail_scores:
    PyBuffer_Release(&best_scores);
fail_rows:
    PyBuffer_Release(&best_rows);
fail_query:
    PyBuffer_Release(&query);
fail_table:
    PyBuffer_Release(&table);
    return result;
}

static PyObject *scan_kernel_name(PyObject *self, PyObject *arg) {
    Py_ssize_t dim = PyLong_AsSsize_t(arg);
    if (dim == -1 && PyErr_Occurred()) return NULL;
    const char *name;
    pick_kernel(dim, &name);
    return PyUnicode_FromString(name);
}

static PyMethodDef methods[] = {
    {"dots", scan_dots, METH_VARARGS,
     "dots(table, query, out): out[i] = table row i . query (int8 in, exact int32 out)."},
    {"top_k", scan_top_k, METH_VARARGS,
     "top_k(table, query, rows, scores, skip=None) -> kept: the len(rows) best rows (unordered) and their "
     "int32 dots, leaving out the rows of `skip` (int64, increasing)."},
    {"kernel_name", scan_kernel_name, METH_O, "kernel_name(dim): the code path used for rows of this width."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", "edgerec's compiled int8 scan.", -1, methods};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }
