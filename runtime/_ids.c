/* The id index's lookup (runtime/id_index.py) in C: a user's first request looks up the ~30 ids of
 * its history, and in Python each id cost about 5 us (the FNV-1a hash byte by byte, the bucket's
 * entries, two os.pread calls to confirm the id's bytes). The same steps here cost well under a
 * microsecond an id plus the two system calls. read_rows reads rows of such a pair of files (ids,
 * tag codes) with the same two system calls a row and none of Python's cost around them; read_cells
 * does the same for rows of a fixed-width column (column_rows.py).
 *
 * find(entries, starts, ids, row_bits, fp_bits, shift, offsets_fd, offsets_at, width, signed, blob_fd)
 *   entries: the index's uint32 words (fingerprint << row_bits | row); starts: uint32 bucket starts;
 *   ids: a list of bytes; the ids column is read with pread(): its offsets file (fd, where the array
 *   starts, 4- or 8-byte little-endian offsets, signed or not) and its blob file.
 *   -> a list of rows (int) or None, as IdIndex._search returns. Every hit is confirmed against the
 *   id's bytes in the file, so a hash collision never returns a wrong row.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static uint64_t fnv1a(const unsigned char *data, Py_ssize_t n) {
    uint64_t h = 0xCBF29CE484222325ULL;
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ data[i]) * 0x100000001B3ULL;
    return h;
}

/* pread() of `n` bytes at `at` with the GIL released (a slow storage read must not stop the app's other
 * threads, as os.pread does not), retried when a signal interrupts it (EINTR, as Python retries) and
 * continued after a partial read: the bytes read (fewer at the file's end), or -1 with errno set. */
static ssize_t read_at(int fd, void *into, size_t n, long long at) {
    size_t done = 0;
    int error = 0;
    Py_BEGIN_ALLOW_THREADS
    while (done < n) {
        ssize_t got = pread(fd, (char *)into + done, n - done, (off_t)(at + (long long)done));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            error = errno;
            break;
        }
        if (got == 0) break;
        done += (size_t)got;
    }
    Py_END_ALLOW_THREADS
    if (error) {
        errno = error;
        return -1;
    }
    return (ssize_t)done;
}

/* The bounds [start, end) of `row` in a file of offsets (pread): 0, or -1 with an exception set
 * (the file ends before them: struct.error in Python's unpacking of a short read). */
static int row_bounds(int offsets_fd, long long offsets_at, int width, int is_signed, long long row,
                      long long *start, long long *end) {
    unsigned char pair[16];
    ssize_t got = read_at(offsets_fd, pair, 2 * width, offsets_at + row * width);
    if (got < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (got != 2 * width) {
        PyErr_Format(PyExc_ValueError, "the offsets file ends before row %lld", row);
        return -1;
    }
    if (width == 4) {
        uint32_t a, b;
        memcpy(&a, pair, 4);
        memcpy(&b, pair + 4, 4);
        *start = is_signed ? (long long)(int32_t)a : (long long)a;
        *end = is_signed ? (long long)(int32_t)b : (long long)b;
    } else {
        int64_t a, b;
        memcpy(&a, pair, 8);
        memcpy(&b, pair + 8, 8);
        *start = a;
        *end = b;
    }
    if (*start < 0 || *end < *start) {
        PyErr_Format(PyExc_ValueError, "the offsets at row %lld do not rise (%lld, %lld)", row, *start, *end);
        return -1;
    }
    return 0;
}

/* 1: row's id is `want`, 0: it is not, -1: an exception is set */
static int confirm(uint32_t row, const char *want, Py_ssize_t n, int offsets_fd, long long offsets_at, int width,
                   int is_signed, int blob_fd) {
    long long start, end;
    if (row_bounds(offsets_fd, offsets_at, width, is_signed, row, &start, &end) < 0) return -1;
    if (end - start != n) return 0;
    char buffer[256];
    char *read_into = n <= (Py_ssize_t)sizeof(buffer) ? buffer : PyMem_Malloc(n ? n : 1);
    if (read_into == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    ssize_t got = read_at(blob_fd, read_into, n, start);
    int same = got == n && memcmp(read_into, want, n) == 0;
    int error = got < 0 ? errno : 0;
    if (read_into != buffer) PyMem_Free(read_into);
    if (got < 0) {
        errno = error;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return same;
}

/* read_rows(offsets_fd, offsets_at, width, signed, data_fd, data_at, itemsize, rows) -> [bytes]: each
 * row's items of a CSR pair of files (offsets in items, data from data_at), as two os.pread calls a
 * row give them (a data file that ends early gives fewer bytes). The caller checks the rows' range. */
static PyObject *ids_read_rows(PyObject *self, PyObject *args) {
    int offsets_fd, width, is_signed, data_fd, itemsize;
    long long offsets_at, data_at;
    PyObject *rows;
    if (!PyArg_ParseTuple(args, "iLiiiLiO!", &offsets_fd, &offsets_at, &width, &is_signed, &data_fd, &data_at,
                          &itemsize, &PyList_Type, &rows))
        return NULL;
    if ((width != 4 && width != 8) || itemsize < 1 || itemsize > 8) {
        PyErr_SetString(PyExc_ValueError, "read_rows: offsets of 4 or 8 bytes, items of 1 to 8");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(rows);
    PyObject *out = PyList_New(count);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        long long row = PyLong_AsLongLong(PyList_GET_ITEM(rows, i)), start = 0, end = 0;
        if (row == -1 && PyErr_Occurred()) goto fail;
        if (row_bounds(offsets_fd, offsets_at, width, is_signed, row, &start, &end) < 0) goto fail;
        Py_ssize_t n = (Py_ssize_t)((end - start) * itemsize);
        PyObject *data = PyBytes_FromStringAndSize(NULL, n);
        if (data == NULL) goto fail;
        ssize_t got = n ? read_at(data_fd, PyBytes_AS_STRING(data), n, data_at + start * itemsize) : 0;
        if (got < 0) {
            Py_DECREF(data);
            PyErr_SetFromErrno(PyExc_OSError);
            goto fail;
        }
        if (got < n && _PyBytes_Resize(&data, got) < 0) goto fail;
        PyList_SET_ITEM(out, i, data);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* read_cells(fd, at, itemsize, rows) -> bytes: the `itemsize` bytes at at + row * itemsize of each of
 * `rows` (ints the caller checked), joined in order: a pread a run of consecutive rows (r, r + 1, ...:
 * a series watched in order, its episodes side by side in the catalog), without Python's cost around
 * each (~0.8 us a call through os.pread, measured; a history's encoder inputs are 30 to 50 rows). The
 * bytes stop at the first short read (a file cut after open): the caller compares the length. */
static PyObject *ids_read_cells(PyObject *self, PyObject *args) {
    int fd, itemsize;
    long long at;
    PyObject *rows;
    if (!PyArg_ParseTuple(args, "iLiO!", &fd, &at, &itemsize, &PyList_Type, &rows)) return NULL;
    if (itemsize < 1 || itemsize > 16 || at < 0) {
        PyErr_SetString(PyExc_ValueError, "read_cells: items of 1 to 16 bytes from a position >= 0");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(rows);
    PyObject *out = PyBytes_FromStringAndSize(NULL, count * itemsize);
    if (out == NULL) return NULL;
    char *into = PyBytes_AS_STRING(out);
    Py_ssize_t i = 0;
    long long row = 0, next = 0;
    if (count && (row = PyLong_AsLongLong(PyList_GET_ITEM(rows, 0))) == -1 && PyErr_Occurred()) goto fail;
    while (i < count) {
        if (row < 0 || row > (LLONG_MAX - at) / itemsize - 16) { /* its position would not fit a file offset */
            PyErr_Format(PyExc_IndexError, "read_cells: row %lld is outside any file", row);
            goto fail;
        }
        Py_ssize_t run = 1; /* rows i .. i + run - 1 are row, row + 1, ... */
        while (i + run < count) {
            next = PyLong_AsLongLong(PyList_GET_ITEM(rows, i + run));
            if (next == -1 && PyErr_Occurred()) goto fail;
            if (next != row + run) break;
            run++;
        }
        if (run > (LLONG_MAX - at) / itemsize - row) {
            PyErr_Format(PyExc_IndexError, "read_cells: rows from %lld are outside any file", row);
            goto fail;
        }
        ssize_t want = (ssize_t)run * itemsize, got = read_at(fd, into + i * itemsize, want, at + row * itemsize);
        if (got < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            goto fail;
        }
        if (got < want) {
            if (_PyBytes_Resize(&out, i * itemsize + got) < 0) return NULL;
            return out;
        }
        i += run;
        row = next; /* the row that ended the run (unused once i == count) */
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *ids_find(PyObject *self, PyObject *args) {
    PyObject *entries_obj, *starts_obj, *ids, *out = NULL;
    int row_bits, fp_bits, shift, offsets_fd, width, is_signed, blob_fd;
    long long offsets_at;
    if (!PyArg_ParseTuple(args, "OOO!iiiiLiii", &entries_obj, &starts_obj, &PyList_Type, &ids, &row_bits, &fp_bits,
                          &shift, &offsets_fd, &offsets_at, &width, &is_signed, &blob_fd))
        return NULL;
    if (row_bits < 1 || row_bits > 31 || fp_bits < 0 || row_bits + fp_bits > 32 || shift < 0 || shift > 63 ||
        (width != 4 && width != 8)) {
        PyErr_SetString(PyExc_ValueError, "find: an index layout this lookup does not handle");
        return NULL;
    }
    Py_buffer entries, starts;
    if (PyObject_GetBuffer(entries_obj, &entries, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (PyObject_GetBuffer(starts_obj, &starts, PyBUF_C_CONTIGUOUS) < 0) goto fail_entries;
    if (entries.itemsize != 4 || starts.itemsize != 4 || starts.len < 8) {
        PyErr_SetString(PyExc_TypeError, "find: entries and starts must be uint32 arrays");
        goto fail_starts;
    }
    const uint32_t *entry = entries.buf, *start = starts.buf;
    Py_ssize_t n_entries = entries.len / 4, n_buckets = starts.len / 4 - 1;
    uint32_t row_mask = (1u << row_bits) - 1;
    uint64_t fp_mask = (1ULL << fp_bits) - 1;
    Py_ssize_t count = PyList_GET_SIZE(ids);
    out = PyList_New(count);
    if (out == NULL) goto fail_starts;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *id = PyList_GET_ITEM(ids, i), *row_obj = NULL;
        if (!PyBytes_Check(id)) {
            PyErr_SetString(PyExc_TypeError, "find: ids must be bytes");
            goto fail_out;
        }
        const char *data = PyBytes_AS_STRING(id);
        Py_ssize_t n = PyBytes_GET_SIZE(id);
        uint64_t h = fnv1a((const unsigned char *)data, n) >> shift;
        uint64_t bucket = h >> fp_bits, fp = h & fp_mask;
        if (bucket >= (uint64_t)n_buckets || start[bucket + 1] > n_entries || start[bucket] > start[bucket + 1]) {
            PyErr_SetString(PyExc_ValueError, "find: the hash falls outside the index's buckets");
            goto fail_out;
        }
        for (uint32_t e = start[bucket]; e < start[bucket + 1]; e++) {
            if (entry[e] >> row_bits != fp) continue;
            int same = confirm(entry[e] & row_mask, data, n, offsets_fd, offsets_at, width, is_signed, blob_fd);
            if (same < 0) goto fail_out;
            if (same) {
                row_obj = PyLong_FromUnsignedLong(entry[e] & row_mask);
                if (row_obj == NULL) goto fail_out;
                break;
            }
        }
        if (row_obj == NULL) row_obj = Py_NewRef(Py_None);
        PyList_SET_ITEM(out, i, row_obj);
    }
    goto fail_starts; /* done: release the buffers, return `out` */
fail_out:
    Py_CLEAR(out);
fail_starts:
    PyBuffer_Release(&starts);
fail_entries:
    PyBuffer_Release(&entries);
    return out;
}

static PyMethodDef methods[] = {
    {"find", ids_find, METH_VARARGS,
     "find(entries, starts, ids, row_bits, fp_bits, shift, offsets_fd, offsets_at, width, signed, blob_fd) -> "
     "rows (int or None) of the ids (bytes), each hit confirmed against the ids file."},
    {"read_rows", ids_read_rows, METH_VARARGS,
     "read_rows(offsets_fd, offsets_at, width, signed, data_fd, data_at, itemsize, rows) -> each row's bytes "
     "of a pair of offsets and data files."},
    {"read_cells", ids_read_cells, METH_VARARGS,
     "read_cells(fd, at, itemsize, rows) -> the itemsize bytes of each row of a fixed-width file, joined."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ids", "edgerec's compiled id lookup.", -1, methods};

PyMODINIT_FUNC PyInit__ids(void) { return PyModule_Create(&module); }
