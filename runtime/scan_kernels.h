/* The int8 scan kernels in plain C (no Python): dot products of one query against every row of a
 * row-major int8 table, and the k best rows without an N-long score array.
 *
 * _scan.c wraps them for Python; tests/native/scan_check.c runs them alone, which is how the ARM
 * paths are tested on an x86 machine (cross-compiled, run under user-mode emulation).
 *
 * Code paths, chosen at run time by pick_kernel:
 *   avx2          x86-64: sign-extend to int16, multiply-add pairs into int32 (at dim 16, two
 *                 rows a register through maddubs, unless the query holds -128).
 *   neon-dotprod  aarch64 with the dot-product extension (Armv8.2+; HWCAP_ASIMDDP): vdotq_s32
 *                 multiplies 16 int8 pairs and adds each group of 4 into one int32 lane.
 *   neon          any aarch64: widening multiply to int16 (vmull_s8), pairwise add into int32.
 *   portable      anything else, left to the compiler's vectorizer.
 * Every path is exact (no saturation: |-128 * -128| * 2 fits int16 pairs' int32 sums), so all
 * give the same integers; sums stay inside int32 for D < 130,000.
 */
#ifndef EDGEREC_SCAN_KERNELS_H
#define EDGEREC_SCAN_KERNELS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EDGEREC_X86 1
#endif
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#include <arm_neon.h>
#define EDGEREC_ARM 1
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif
#endif

#define BLOCK_ROWS 1024 /* top_k scores this many rows at a time into a stack buffer */
#define MAX_DIM 4096
/* Rows are requested this many bytes before they are read. Hardware prefetchers stop at
 * page boundaries, and a memory-mapped table sits on small pages; asking ahead keeps the
 * stream flowing across them (about 15% faster both from memory and from the caches). */
#define PREFETCH_AHEAD 8192

typedef ptrdiff_t scan_size;
typedef void (*dots_fn)(const int8_t *, scan_size, scan_size, const int8_t *, int32_t *);

static void dots_portable(const int8_t *table, scan_size rows, scan_size dim, const int8_t *query,
                          int32_t *out) {
    for (scan_size i = 0; i < rows; i++) {
        const int8_t *row = table + i * dim;
        __builtin_prefetch(row + PREFETCH_AHEAD, 0, 3);
        int32_t sum = 0;
        for (scan_size j = 0; j < dim; j++) sum += (int16_t)row[j] * (int16_t)query[j];
        out[i] = sum;
    }
}

#ifdef EDGEREC_X86
/* dim == 16: two rows a register, eight rows a step. maddubs multiplies unsigned by signed bytes,
 * so each row byte's magnitude meets the query byte carrying the row byte's sign; exact while no
 * query byte is -128 (its negation would not fit): |row| <= 128 and |query| <= 127 keep each pair's
 * sum <= 32,512, inside int16. Twice the speed of widening to int16 at this width; at 32 and
 * wider the two cost the same. */
__attribute__((target("avx2"))) static void dots_avx2_pairs(const int8_t *table, scan_size rows,
                                                            const int8_t *query, int32_t *out) {
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)query));
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    scan_size i = 0;
    for (; i + 8 <= rows; i += 8) {
        const int8_t *r = table + i * 16;
        __builtin_prefetch(r + PREFETCH_AHEAD, 0, 3);
        __builtin_prefetch(r + PREFETCH_AHEAD + 64, 0, 3);
        __m256i p[4];
        for (int j = 0; j < 4; j++) {
            const __m256i x = _mm256_loadu_si256((const __m256i *)(r + 32 * j));
            p[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(q, x)), ones);
        }
        /* each p holds [row a: 4 partial sums | row b: 4]; two hadds leave rows 0 2 4 6 | 1 3 5 7 */
        const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
        _mm256_storeu_si256((__m256i *)(out + i), _mm256_permutevar8x32_epi32(h, order));
    }
    if (i < rows) dots_portable(table + i * 16, rows - i, 16, query, out + i);
}

static int holds_min_int8(const int8_t *query, scan_size dim) {
    for (scan_size j = 0; j < dim; j++)
        if (query[j] == INT8_MIN) return 1;
    return 0;
}

/* dim % 16 == 0. Four rows per step so one horizontal reduction serves four scores. */
__attribute__((target("avx2"))) static void dots_avx2(const int8_t *table, scan_size rows, scan_size dim,
                                                      const int8_t *query, int32_t *out) {
    if (dim == 16 && !holds_min_int8(query, dim)) { /* edgerec's queries never do (clipped to +-127) */
        dots_avx2_pairs(table, rows, query, out);
        return;
    }
    __m256i q[MAX_DIM / 16];
    const scan_size steps = dim / 16;
    for (scan_size s = 0; s < steps; s++)
        q[s] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(query + 16 * s)));
    scan_size i = 0;
    for (; i + 4 <= rows; i += 4) {
        const int8_t *r0 = table + i * dim, *r1 = r0 + dim, *r2 = r1 + dim, *r3 = r2 + dim;
        for (scan_size off = 0; off < 4 * dim; off += 64) __builtin_prefetch(r0 + PREFETCH_AHEAD + off, 0, 3);
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (scan_size s = 0; s < steps; s++) {
            const scan_size o = 16 * s;
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

#ifdef EDGEREC_ARM
/* One 16-byte step of a row: products widened to int16, adjacent pairs added into int32 lanes. */
static inline int32x4_t neon_step(int32x4_t acc, int8x16_t row, int8x16_t q) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(row), vget_low_s8(q)));
    return vpadalq_s16(acc, vmull_high_s8(row, q));
}

/* dim % 16 == 0; four rows per step, as the AVX2 path. */
static void dots_neon(const int8_t *table, scan_size rows, scan_size dim, const int8_t *query, int32_t *out) {
    const scan_size steps = dim / 16;
    scan_size i = 0;
    for (; i + 4 <= rows; i += 4) {
        const int8_t *r0 = table + i * dim, *r1 = r0 + dim, *r2 = r1 + dim, *r3 = r2 + dim;
        for (scan_size off = 0; off < 4 * dim; off += 64) __builtin_prefetch(r0 + PREFETCH_AHEAD + off, 0, 3);
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        for (scan_size s = 0; s < steps; s++) {
            const int8x16_t q = vld1q_s8(query + 16 * s);
            a0 = neon_step(a0, vld1q_s8(r0 + 16 * s), q);
            a1 = neon_step(a1, vld1q_s8(r1 + 16 * s), q);
            a2 = neon_step(a2, vld1q_s8(r2 + 16 * s), q);
            a3 = neon_step(a3, vld1q_s8(r3 + 16 * s), q);
        }
        /* two rounds of pairwise adds leave [r0 r1 r2 r3] */
        vst1q_s32(out + i, vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3)));
    }
    if (i < rows) dots_portable(table + i * dim, rows - i, dim, query, out + i);
}

/* dim % 16 == 0; the dot-product instruction does the widening, multiplying and adding at once. */
__attribute__((target("arch=armv8.2-a+dotprod"))) static void dots_neon_dotprod(const int8_t *table, scan_size rows,
                                                                   scan_size dim, const int8_t *query,
                                                                   int32_t *out) {
    const scan_size steps = dim / 16;
    scan_size i = 0;
    for (; i + 4 <= rows; i += 4) {
        const int8_t *r0 = table + i * dim, *r1 = r0 + dim, *r2 = r1 + dim, *r3 = r2 + dim;
        for (scan_size off = 0; off < 4 * dim; off += 64) __builtin_prefetch(r0 + PREFETCH_AHEAD + off, 0, 3);
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        for (scan_size s = 0; s < steps; s++) {
            const int8x16_t q = vld1q_s8(query + 16 * s);
            a0 = vdotq_s32(a0, vld1q_s8(r0 + 16 * s), q);
            a1 = vdotq_s32(a1, vld1q_s8(r1 + 16 * s), q);
            a2 = vdotq_s32(a2, vld1q_s8(r2 + 16 * s), q);
            a3 = vdotq_s32(a3, vld1q_s8(r3 + 16 * s), q);
        }
        vst1q_s32(out + i, vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3)));
    }
    if (i < rows) dots_portable(table + i * dim, rows - i, dim, query, out + i);
}

static int arm_has_dotprod(void) {
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
    return 0; /* no portable way to ask: the plain NEON path is always correct */
#endif
}
#endif

/* The fastest path for rows of `dim` values on this CPU; its name goes to *name. */
static dots_fn pick_kernel(scan_size dim, const char **name) {
    const int simd = dim % 16 == 0 && dim <= MAX_DIM;
#ifdef EDGEREC_X86
    if (simd && __builtin_cpu_supports("avx2")) {
        *name = "avx2";
        return dots_avx2;
    }
#endif
#ifdef EDGEREC_ARM
    if (simd && arm_has_dotprod()) {
        *name = "neon-dotprod";
        return dots_neon_dotprod;
    }
    if (simd) {
        *name = "neon";
        return dots_neon;
    }
#endif
    (void)simd;
    *name = "portable";
    return dots_portable;
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
static void keep_best(candidate *a, scan_size n, scan_size k) {
    scan_size lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        candidate pivot = a[lo + (hi - lo) / 2];
        scan_size i = lo, j = hi;
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

static int32_t worst_score(const candidate *a, scan_size k) {
    int32_t worst = a[0].score;
    for (scan_size i = 1; i < k; i++)
        if (a[i].score < worst) worst = a[i].score;
    return worst;
}

/* The first i in [from, n) with s[i] > threshold, or n. Once the threshold is good almost every
 * score falls below it, so the test runs eight scores at a time (SSE2 and NEON are baseline on
 * x86-64 and aarch64); a one-by-one test cost as much as the dot products themselves. */
static inline scan_size next_above(const int32_t *s, scan_size from, scan_size n, int32_t threshold) {
    scan_size i = from;
#if defined(EDGEREC_X86)
    const __m128i t = _mm_set1_epi32(threshold);
    for (; i + 8 <= n; i += 8) {
        const __m128i a = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)(s + i)), t);
        const __m128i b = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)(s + i + 4)), t);
        if (_mm_movemask_epi8(_mm_or_si128(a, b))) break;
    }
#elif defined(EDGEREC_ARM)
    const int32x4_t t = vdupq_n_s32(threshold);
    for (; i + 8 <= n; i += 8)
        if (vmaxvq_u32(vorrq_u32(vcgtq_s32(vld1q_s32(s + i), t), vcgtq_s32(vld1q_s32(s + i + 4), t)))) break;
#endif
    for (; i < n; i++)
        if (s[i] > threshold) return i;
    return n;
}

/* Returns how many rows were kept (min(k, rows not skipped)), or -1 when out of memory. `skip`:
 * n_skip rows in increasing order that are never kept (a user's seen items: the scan walks rows in
 * order, so one pointer along the list finds them without a k inflated by their number). */
static scan_size top_k_scan(dots_fn kernel, const int8_t *table, scan_size rows, scan_size dim,
                            const int8_t *query, scan_size k, const int64_t *skip, scan_size n_skip,
                            int64_t *best_rows, int32_t *best_scores) {
    int32_t block[BLOCK_ROWS];
    /* Each fill costs a quickselect over the buffer; a small one tightens the threshold sooner.
     * 2k + 256 took top-100 of 100k rows from 0.12 to 0.09 ms against 2k + 2048 (dim 16, AVX2). */
    const scan_size capacity = 2 * k + 256;
    candidate *buffer = malloc(sizeof(candidate) * capacity);
    if (buffer == NULL) return -1;
    scan_size held = 0, next_skip = 0;
    int32_t threshold = INT32_MIN; /* |dots| < 2^31 - 1, so every row passes until the first cut */
    for (scan_size start = 0; start < rows; start += BLOCK_ROWS) {
        scan_size count = rows - start < BLOCK_ROWS ? rows - start : BLOCK_ROWS;
        kernel(table + start * dim, count, dim, query, block);
        /* only scores above the threshold pass: equal scores lose, their rows come later */
        for (scan_size i = next_above(block, 0, count, threshold); i < count;
             i = next_above(block, i + 1, count, threshold)) {
            const int64_t row = start + i;
            while (next_skip < n_skip && skip[next_skip] < row) next_skip++;
            if (next_skip < n_skip && skip[next_skip] == row) continue;
            buffer[held].score = block[i];
            buffer[held].row = row;
            if (++held == capacity) {
                keep_best(buffer, held, k);
                held = k;
                threshold = worst_score(buffer, k);
            }
        }
    }
    if (held > k) {
        keep_best(buffer, held, k);
        held = k;
    }
    for (scan_size i = 0; i < held; i++) {
        best_rows[i] = buffer[i].row;
        best_scores[i] = buffer[i].score;
    }
    free(buffer);
    return held;
}

#endif
