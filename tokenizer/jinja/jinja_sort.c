/* jinja_sort.c: the ordering filters: sort, dictsort, unique, min and max,
 * as jinja2 defines them: a key per item (an attribute when asked, strings
 * lowercased unless case_sensitive), a stable sort (Python's sorted), and
 * Python's ordering (a TypeError between a str and an int). */
#include <string.h>

#include "jinja_internal.h"

struct keyed {
    jv key, item;
};

static jv sort_key(struct jrender *r, jv item, bool case_sensitive, const jv *attr)
{
    jv k = item;
    if (attr)
        k = jinja__getitem(r, item, *attr);
    if (!case_sensitive && k.kind == JV_STR)
        k = str_case(r, k, 0);
    return k;
}

static void merge_sort(struct jrender *r, struct keyed *v, struct keyed *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    merge_sort(r, v, tmp, h);
    merge_sort(r, v + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = jv_compare(r, v[j].key, v[i].key, "<") < 0 ? v[j++] : v[i++];
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof(*v));
}

static struct keyed *keyed_items(struct jrender *r, jv items, bool case_sensitive, const jv *attr)
{
    size_t n = items.u.l->n;
    struct keyed *v = arena_alloc(&r->arena, (n + 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].item = items.u.l->v[i];
        v[i].key = sort_key(r, v[i].item, case_sensitive, attr);
    }
    return v;
}

static jv sorted(struct jrender *r, struct keyed *v, size_t n, bool reverse)
{
    struct keyed *tmp = arena_alloc(&r->arena, (n + 1) * sizeof(*tmp));
    if (reverse) /* Python's reverse=True keeps equal items in their order */
        for (size_t i = 0; i < n / 2; i++) {
            struct keyed t = v[i];
            v[i] = v[n - 1 - i];
            v[n - 1 - i] = t;
        }
    merge_sort(r, v, tmp, n);
    jv out = jv_list(r, n);
    for (size_t i = 0; i < n; i++)
        jv_push(r, out, v[reverse ? n - 1 - i : i].item);
    return out;
}

jv jinja__sort(struct jrender *r, jv x, bool reverse, bool case_sensitive, const jv *attr)
{
    jv items = jv_iter_list(r, x);
    return sorted(r, keyed_items(r, items, case_sensitive, attr), items.u.l->n, reverse);
}

jv jinja__dictsort(struct jrender *r, jv x, bool case_sensitive, bool by_value, bool reverse)
{
    if (x.kind != JV_DICT)
        jinja__fail(r, "dictsort: %s is not a mapping", jv_type_name(x));
    size_t n = x.u.d->n;
    struct keyed *v = arena_alloc(&r->arena, (n + 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        jv pair = jv_list(r, 2);
        jv_push(r, pair, x.u.d->k[i]);
        jv_push(r, pair, x.u.d->v[i]);
        pair.kind = JV_TUPLE;
        v[i].item = pair;
        v[i].key = sort_key(r, by_value ? x.u.d->v[i] : x.u.d->k[i], case_sensitive, NULL);
    }
    return sorted(r, v, n, reverse);
}

jv jinja__unique(struct jrender *r, jv x, bool case_sensitive, const jv *attr)
{
    jv items = jv_iter_list(r, x), out = jv_list(r, 0), seen = jv_list(r, 0);
    for (size_t i = 0; i < items.u.l->n; i++) {
        jv k = sort_key(r, items.u.l->v[i], case_sensitive, attr);
        bool dup = false;
        for (size_t j = 0; j < seen.u.l->n && !dup; j++)
            dup = jv_equal(seen.u.l->v[j], k);
        if (!dup) {
            jv_push(r, seen, k);
            jv_push(r, out, items.u.l->v[i]);
        }
    }
    return out;
}

jv jinja__minmax(struct jrender *r, jv x, bool case_sensitive, const jv *attr, bool max)
{
    jv items = jv_iter_list(r, x);
    if (!items.u.l->n)
        return jv_undef(UND_HINT, 0, max ? "No aggregated item, sequence was empty." :
                                            "No aggregated item, sequence was empty.", 39);
    size_t best = 0;
    jv bk = sort_key(r, items.u.l->v[0], case_sensitive, attr);
    for (size_t i = 1; i < items.u.l->n; i++) {
        jv k = sort_key(r, items.u.l->v[i], case_sensitive, attr);
        int c = jv_compare(r, k, bk, max ? ">" : "<");
        if (max ? c > 0 : c < 0) {
            best = i;
            bk = k;
        }
    }
    return items.u.l->v[best];
}
