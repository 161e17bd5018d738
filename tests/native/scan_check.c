/* Checks every scan kernel this CPU runs against the scalar loop: dot products and top-k, over
 * widths that take the SIMD paths and ones that do not, row counts that are not multiples of 4,
 * and extreme values (-128, 127). Built natively and, for aarch64, cross-compiled and run under
 * qemu-aarch64 by tests/test_scan_native.py. Prints "kernel <name>" lines, then "ok" (exit 0) or
 * the first mismatch (exit 1). */
#include <stdio.h>
#include <string.h>

#include "../../runtime/scan_kernels.h"

static uint32_t state = 12345u;
static int8_t next_int8(void) {
    state = state * 1664525u + 1013904223u;
    return (int8_t)(state >> 24);
}

static int check(scan_size rows, scan_size dim, int extreme) {
    int8_t *table = malloc((size_t)(rows * dim)), query[MAX_DIM];
    int32_t *want = malloc(sizeof(int32_t) * rows), *got = malloc(sizeof(int32_t) * rows);
    for (scan_size i = 0; i < rows * dim; i++) table[i] = extreme ? (i % 3 ? -128 : 127) : next_int8();
    /* extreme 1: a query of -128 (AVX2's dim-16 path steps aside); 2: +-127 against -128 rows, the
     * largest sums that path adds in int16 */
    for (scan_size j = 0; j < dim; j++) query[j] = extreme == 1 ? -128 : extreme == 2 ? (j % 2 ? -127 : 127) : next_int8();
    const char *name;
    dots_fn kernel = pick_kernel(dim, &name);
    printf("kernel %s dim %ld\n", name, (long)dim);
    dots_portable(table, rows, dim, query, want);
    kernel(table, rows, dim, query, got);
    int bad = 0;
    for (scan_size i = 0; i < rows && !bad; i++)
        if (want[i] != got[i]) {
            printf("MISMATCH dots %s rows %ld dim %ld row %ld: %d != %d\n", name, (long)rows, (long)dim,
                   (long)i, got[i], want[i]);
            bad = 1;
        }
    /* top-k: the k best by (score desc, row asc) against a plain selection over the scalar dots */
    const scan_size k = rows < 37 ? rows : 37;
    int64_t best_rows[37];
    int32_t best_scores[37];
    /* every third row skipped half the time: the k best of the others */
    int64_t *skip = calloc((size_t)(rows / 3 + 1), sizeof(int64_t));
    scan_size n_skip = 0;
    if (rows % 2)
        for (scan_size i = 0; i < rows; i += 3) skip[n_skip++] = i;
    const scan_size left = rows - n_skip, keep = left < k ? left : k;
    scan_size kept = top_k_scan(kernel, table, rows, dim, query, k, skip, n_skip, best_rows, best_scores);
    if (!bad && kept != keep) {
        printf("MISMATCH top_k kept %ld of %ld\n", (long)kept, (long)keep);
        bad = 1;
    }
    for (scan_size r = 0; r < kept && !bad; r++) {
        /* the rank of each kept row among the rows not skipped must be below k */
        scan_size ahead = 0;
        for (scan_size i = 0; i < rows; i++)
            ahead += (n_skip == 0 || i % 3) &&
                     (want[i] > want[best_rows[r]] || (want[i] == want[best_rows[r]] && i < best_rows[r]));
        if (ahead >= k || best_scores[r] != want[best_rows[r]] || (n_skip && best_rows[r] % 3 == 0)) {
            printf("MISMATCH top_k %s row %ld rank %ld score %d\n", name, (long)best_rows[r], (long)ahead,
                   best_scores[r]);
            bad = 1;
        }
    }
    free(skip);
    free(table);
    free(want);
    free(got);
    return bad;
}

int main(void) {
    const scan_size dims[] = {16, 32, 48, 64, 128, 256, 24, 7};
    const scan_size rows[] = {1, 3, 4, 5, 1023, 1024, 1025, 5003};
    int bad = 0;
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++)
        for (size_t r = 0; r < sizeof rows / sizeof *rows; r++)
            bad |= check(rows[r], dims[d], 0) | check(rows[r], dims[d], 1) | check(rows[r], dims[d], 2);
    printf(bad ? "FAILED\n" : "ok\n");
    return bad;
}
