/* The retrieval scan's compiled kernel: int8 dot products of one query against
 * every row of a row-major int8 table, and the k best rows without an N-long
 * score array.
 *
 * It reads the table where it lies (the bundle's memory map), holds no copy and
 * releases the GIL while it runs. On x86-64 an AVX2 path is chosen at run time
 * (sign-extend to int16, multiply-add pairs into int32: exact, no saturation);
 * elsewhere the portable loop below is left to the compiler's vectorizer.
 * Sums are exact: |127 * 127 * D| stays far inside int32 for D < 130,000.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EDGEREC_X86 1
#endif

#define BLOCK_ROWS 1024 /* top_k scores this many rows at a time into a stack buffer */
#define MAX_DIM 4096
/* Rows are requested this many bytes before they are read. Hardware prefetchers stop at
 * page boundaries, and a memory-mapped table sits on small pages; asking ahead keeps the
 * stream flowing across them (about 15% faster both from memory and from the caches). */
#define PREFETCH_AHEAD 8192

static void dots_portable(const int8_t *table, Py_ssize_t rows, Py_ssize_t dim, const int8_t *query,
                          int32_t *out) {
    for (Py_ssize_t i = 0; i < rows; i++) {
        const int8_t *row = table + i * dim;
        __builtin_prefetch(row + PREFETCH_AHEAD, 0, 3);
        int32_t sum = 0;
        for (Py_ssize_t j = 0; j < dim; j++) sum += (int16_t)row[j] * (int16_t)query[j];
        out[i] = sum;
    }
}

#ifdef EDGEREC_X86
/* dim % 16 == 0. Four rows per step so one horizontal reduction serves four scores. */
__attribute__((target("avx2"))) static void dots_avx2(const int8_t *table, Py_ssize_t rows, Py_ssize_t dim,
                                                      const int8_t *query, int32_t *out) {
    __m256i q[MAX_DIM / 16];
    const Py_ssize_t steps = dim / 16;
    for (Py_ssize_t s = 0; s < steps; s++)
        q[s] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(query + 16 * s)));
    Py_ssize_t i = 0;
    for (; i + 4 <= rows; i += 4) {
        const int8_t *r0 = table + i * dim, *r1 = r0 + dim, *r2 = r1 + dim, *r3 = r2 + dim;
        for (Py_ssize_t off = 0; off < 4 * dim; off += 64) __builtin_prefetch(r0 + PREFETCH_AHEAD + off, 0, 3);
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (Py_ssize_t s = 0; s < steps; s++) {
            const Py_ssize_t o = 16 * s;
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(r0 + o))), q[s]));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(r1 + o))), q[s]));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(r2 + o))), q[s]));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(r3 + o))), q[s]));
        }
        /* hadd twice leaves [r0 r1 r2 r3] partial sums in each 128-bit half; add the halves */
        __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
        __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        _mm_storeu_si128((__m128i *)(out + i), sum);
    }
    if (i < rows) dots_portable(table + i * dim, rows - i, dim, query, out + i);
}
#endif

typedef void (*dots_fn)(const int8_t *, Py_ssize_t, Py_ssize_t, const int8_t *, int32_t *);

static dots_fn pick_kernel(Py_ssize_t dim, const char **name) {
#ifdef EDGEREC_X86
    if (dim % 16 == 0 && dim <= MAX_DIM && __builtin_cpu_supports("avx2")) {
        *name = "avx2";
        return dots_avx2;
    }
#endif
    *name = "portable";
    return dots_portable;
}

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

/* Rows whose score beats the current threshold collect in a buffer; when it
 * fills, a quickselect keeps the k best and their worst score becomes the new
 * threshold. Few rows pass once the threshold is good, so the cost stays close
 * to the scan's. Equal scores rank the lower row first, as a stable sort would. */
typedef struct {
    int32_t score;
    int64_t row;
} candidate;

static int better(candidate a, candidate b) { return a.score > b.score || (a.score == b.score && a.row < b.row); }

/* Reorders a[0..n) so that its first k are the k best (in no particular order). */
static void keep_best(candidate *a, Py_ssize_t n, Py_ssize_t k) {
    Py_ssize_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        candidate pivot = a[lo + (hi - lo) / 2];
        Py_ssize_t i = lo, j = hi;
        while (i <= j) {
            while (better(a[i], pivot)) i++;
            while (better(pivot, a[j])) j--;
            if (i <= j) {
                candidate t = a[i]; a[i] = a[j]; a[j] = t;
                i++; j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else return;
    }
}

static int32_t worst_score(const candidate *a, Py_ssize_t k) {
    int32_t worst = a[0].score;
    for (Py_ssize_t i = 1; i < k; i++)
        if (a[i].score < worst) worst = a[i].score;
    return worst;
}

/* Returns how many rows were kept (min(k, rows)), or -1 when out of memory. */
static Py_ssize_t top_k_scan(dots_fn kernel, const int8_t *table, Py_ssize_t rows, Py_ssize_t dim,
                             const int8_t *query, Py_ssize_t k, int64_t *best_rows, int32_t *best_scores) {
    int32_t block[BLOCK_ROWS];
    const Py_ssize_t capacity = 2 * k + 2048;
    candidate *buffer = malloc(sizeof(candidate) * capacity);
    if (buffer == NULL) return -1;
    Py_ssize_t held = 0;
    int32_t threshold = INT32_MIN; /* |dots| < 2^31 - 1, so every row passes until the first cut */
    for (Py_ssize_t start = 0; start < rows; start += BLOCK_ROWS) {
        Py_ssize_t count = rows - start < BLOCK_ROWS ? rows - start : BLOCK_ROWS;
        kernel(table + start * dim, count, dim, query, block);
        for (Py_ssize_t i = 0; i < count; i++) {
            if (block[i] > threshold) { /* equal scores lose: their rows come later */
                buffer[held].score = block[i];
                buffer[held].row = start + i;
                if (++held == capacity) {
                    keep_best(buffer, held, k);
                    held = k;
                    threshold = worst_score(buffer, k);
                }
            }
        }
    }
    if (held > k) {
        keep_best(buffer, held, k);
        held = k;
    }
    for (Py_ssize_t i = 0; i < held; i++) {
        best_rows[i] = buffer[i].row;
        best_scores[i] = buffer[i].score;
    }
    free(buffer);
    return held;
}

static PyObject *scan_top_k(PyObject *self, PyObject *args) {
    PyObject *t, *q, *r, *s;
    if (!PyArg_ParseTuple(args, "OOOO:top_k", &t, &q, &r, &s)) return NULL;
    Py_buffer table, query, best_rows, best_scores;
    PyObject *result = NULL;
    if (get_buffer(t, &table, 1, 0, "table") < 0) return NULL;
    if (get_buffer(q, &query, 1, 0, "query") < 0) goto fail_table;
    if (get_buffer(r, &best_rows, 8, 1, "rows") < 0) goto fail_query;
    if (get_buffer(s, &best_scores, 4, 1, "scores") < 0) goto fail_rows;
    Py_ssize_t rows, dim, k = best_rows.len / 8;
    if (table_shape(&table, &query, &rows, &dim) < 0) goto fail_scores;
    if (best_scores.len / 4 != k) {
        PyErr_SetString(PyExc_ValueError, "rows and scores must have the same length (k)");
        goto fail_scores;
    }
    const char *name;
    dots_fn kernel = pick_kernel(dim, &name);
    Py_ssize_t kept = 0;
    if (k > 0) {
        Py_BEGIN_ALLOW_THREADS
        kept = top_k_scan(kernel, (const int8_t *)table.buf, rows, dim, (const int8_t *)query.buf, k,
                          (int64_t *)best_rows.buf, (int32_t *)best_scores.buf);
        Py_END_ALLOW_THREADS
    }
    result = kept < 0 ? PyErr_NoMemory() : PyLong_FromSsize_t(kept);
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
     "top_k(table, query, rows, scores) -> kept: the len(rows) best rows (unordered) and their int32 dots."},
    {"kernel_name", scan_kernel_name, METH_O, "kernel_name(dim): the code path used for rows of this width."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", "edgerec's compiled int8 scan.", -1, methods};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }
