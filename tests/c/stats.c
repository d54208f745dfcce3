/* Statistics, stats_print, background threads and defragmentation.
 * Prints only coarse, deterministic facts: return codes, orderings between statistics, and
 * lower bounds implied by what the program allocated (blocks of 1 MiB are never cached by
 * jemalloc or memkind, so they show up exactly).
 */
#include "common.h"

static size_t stat_of(memkind_t k, memkind_stat_type t)
{
    size_t v = 0;
    int rc = memkind_get_stat(k, t, &v);
    if (rc != 0)
        printf("  get_stat(%s, %d) rc=%d\n", k ? kind_name(k) : "NULL", (int)t, rc);
    return v;
}

static void orderings(const char *what, memkind_t k)
{
    memkind_update_cached_stats();
    size_t r = stat_of(k, MEMKIND_STAT_TYPE_RESIDENT), a = stat_of(k, MEMKIND_STAT_TYPE_ACTIVE),
           al = stat_of(k, MEMKIND_STAT_TYPE_ALLOCATED);
    printf("%s: resident>=active=%d active>=allocated=%d\n", what, r >= a, a >= al);
}

static void grow_and_drop(memkind_t k)
{
    enum { N = 16 };
    void *b[N];
    memkind_update_cached_stats();
    size_t before = stat_of(k, MEMKIND_STAT_TYPE_ALLOCATED);
    size_t gbefore = stat_of(NULL, MEMKIND_STAT_TYPE_ALLOCATED);
    for (int i = 0; i < N; i++) {
        b[i] = memkind_malloc(k, MiB);
        memset(b[i], 1, MiB);
    }
    /* Not refreshed yet: unchanged, or (first use of the kind: its arenas are newer than the
     * last update) -13 with the value 0. */
    size_t stale = stat_of(k, MEMKIND_STAT_TYPE_ALLOCATED);
    memkind_update_cached_stats();
    size_t after = stat_of(k, MEMKIND_STAT_TYPE_ALLOCATED);
    size_t gafter = stat_of(NULL, MEMKIND_STAT_TYPE_ALLOCATED);
    size_t act = stat_of(k, MEMKIND_STAT_TYPE_ACTIVE);
    size_t res = stat_of(k, MEMKIND_STAT_TYPE_RESIDENT);
    printf("%s: cached_until_update=%d grew_by_16M=%d global_grew_by_16M=%d active_ge16M=%d "
           "resident_ge16M=%d\n",
           kind_name(k), stale == before || stale == 0, after >= before + N * MiB, gafter >= gbefore + N * MiB,
           act >= N * MiB, res >= N * MiB);
    for (int i = 0; i < N; i++)
        memkind_free(k, b[i]);
    memkind_update_cached_stats();
    size_t freed = stat_of(k, MEMKIND_STAT_TYPE_ALLOCATED);
    printf("%s: dropped_by_16M=%d\n", kind_name(k), freed + N * MiB <= after);

    /* Small blocks: ALLOCATED covers at least what the program holds. */
    enum { S = 1000 };
    static void *s[S];
    memkind_update_cached_stats();
    before = stat_of(k, MEMKIND_STAT_TYPE_ALLOCATED);
    for (int i = 0; i < S; i++)
        s[i] = memkind_malloc(k, 100);
    memkind_update_cached_stats();
    after = stat_of(k, MEMKIND_STAT_TYPE_ALLOCATED);
    printf("%s: small grew_by_100k=%d\n", kind_name(k), after >= before + S * 100);
    for (int i = 0; i < S; i++)
        memkind_free(k, s[i]);
}

struct sink {
    size_t calls;
    size_t len;
    char buf[1 << 20];
};

static void sink_cb(void *opaque, const char *s)
{
    struct sink *k = opaque;
    k->calls++;
    size_t n = strlen(s);
    if (k->len + n < sizeof(k->buf)) {
        memcpy(k->buf + k->len, s, n + 1);
        k->len += n;
    }
}

static struct sink SINK;

static void print_case(const char *what, unsigned opts, const char *const *keys)
{
    SINK.calls = 0;
    SINK.len = 0;
    SINK.buf[0] = 0;
    int rc = memkind_stats_print(sink_cb, &SINK, (memkind_stat_print_opt)opts);
    printf("stats_print %s rc=%d called=%d", what, rc, SINK.calls > 0);
    for (; keys && *keys; keys++)
        printf(" has[%s]=%d", *keys, strstr(SINK.buf, *keys) != NULL);
    printf("\n");
}

static void defrag(memkind_t k)
{
    enum { N = 4000 };
    static char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = memkind_malloc(k, 48);
        fill(p[i], 48, i);
    }
    /* Leave every 8th block: under-used slabs. */
    for (int i = 0; i < N; i++)
        if (i % 8) {
            memkind_free(k, p[i]);
            p[i] = NULL;
        }
    int ok = 1;
    for (int i = 0; i < N; i += 8) {
        char *q = memkind_defrag_reallocate(k, p[i]);
        if (q) {
            ok &= check_fill(q, 48, i) && memkind_detect_kind(q) == k;
            p[i] = q;
        } else {
            ok &= check_fill(p[i], 48, i);
        }
    }
    /* NULL kind: the owner is detected. */
    for (int i = 0; i < N; i += 8) {
        char *q = memkind_defrag_reallocate(NULL, p[i]);
        if (q) {
            ok &= check_fill(q, 48, i);
            p[i] = q;
        }
    }
    for (int i = 0; i < N; i += 8)
        memkind_free(k, p[i]);
    void *big = memkind_malloc(k, 4 * MiB);
    printf("defrag %s: data_kept=%d null_ptr=%d large_stays=%d\n", kind_name(k), ok,
           memkind_defrag_reallocate(k, NULL) == NULL, memkind_defrag_reallocate(k, big) == NULL);
    memkind_free(k, big);
}

int main(void)
{
    setup_stdout();
    printf("update_cached_stats rc=%d\n", memkind_update_cached_stats());
    size_t v = 12345;
    printf("get_stat bad_type rc=%d untouched=%d\n",
           memkind_get_stat(NULL, MEMKIND_STAT_TYPE_MAX_VALUE, &v), v == 12345);
    printf("get_stat huge_type rc=%d untouched=%d\n",
           memkind_get_stat(MEMKIND_REGULAR, (memkind_stat_type)1000, &v), v == 12345);
    for (int t = 0; t < MEMKIND_STAT_TYPE_MAX_VALUE; t++) {
        v = 12345;
        int rc = memkind_get_stat(MEMKIND_INTERLEAVE, (memkind_stat_type)t, &v);
        printf("get_stat unused_interleave type=%d rc=%d zero=%d\n", t, rc, v == 0);
    }
    orderings("global", NULL);
    grow_and_drop(MEMKIND_DEFAULT);
    grow_and_drop(MEMKIND_REGULAR);
    orderings("global", NULL);
    orderings("default", MEMKIND_DEFAULT);
    orderings("regular", MEMKIND_REGULAR);

    static const char *const json_keys[] = {"\"jemalloc\":", "\"stats\":", "\"allocated\":",
                                            "\"resident\":", NULL};
    static const char *const text_keys[] = {"Begin jemalloc statistics", "End jemalloc statistics",
                                            NULL};
    print_case("all", MEMKIND_STAT_PRINT_ALL, text_keys);
    print_case("json", MEMKIND_STAT_PRINT_JSON_FORMAT, json_keys);
    static const char *const omit_keys[] = {"\"jemalloc\":", "\"version\":", "\"merged\":",
                                            "\"bins\":", NULL};
    print_case("json_omit_all",
               MEMKIND_STAT_PRINT_JSON_FORMAT | MEMKIND_STAT_PRINT_OMIT_GENERAL |
                   MEMKIND_STAT_PRINT_OMIT_MERGED_ARENA |
                   MEMKIND_STAT_PRINT_OMIT_DESTROYED_MERGED_ARENA |
                   MEMKIND_STAT_PRINT_OMIT_PER_ARENA | MEMKIND_STAT_PRINT_OMIT_PER_SIZE_CLASS_BINS |
                   MEMKIND_STAT_PRINT_OMIT_PER_SIZE_CLASS_LARGE | MEMKIND_STAT_PRINT_OMIT_MUTEX |
                   MEMKIND_STAT_PRINT_OMIT_EXTENT,
               omit_keys);
    print_case("json_general_only", MEMKIND_STAT_PRINT_JSON_FORMAT | MEMKIND_STAT_PRINT_OMIT_MERGED_ARENA,
               omit_keys);
    print_case("bad_bit", 1u << 9, NULL);
    print_case("bad_bits", 0xffffffffu, NULL);
    printf("stats_print stderr rc=%d\n",
           memkind_stats_print(NULL, NULL, MEMKIND_STAT_PRINT_JSON_FORMAT));

    printf("set_bg_threads(true) rc=%d\n", memkind_set_bg_threads(true));
    void *x = memkind_malloc(MEMKIND_REGULAR, 3 * MiB);
    memkind_free(MEMKIND_REGULAR, x);
    printf("set_bg_threads(false) rc=%d\n", memkind_set_bg_threads(false));
    printf("set_bg_threads(false) again rc=%d\n", memkind_set_bg_threads(false));

    defrag(MEMKIND_DEFAULT);
    defrag(MEMKIND_REGULAR);
    printf("defrag NULL,NULL=%d\n", memkind_defrag_reallocate(NULL, NULL) == NULL);
    printf("DONE\n");
    return 0;
}
