/* jinja_methods.c: the Python methods templates call on their data: str
 * (strip, split, startswith, replace, format...), dict (items, keys, values,
 * get) and list (index, count), plus loop.cycle. Methods that mutate
 * (list.append, dict.pop, dict.update...) exist but are unsafe, as in
 * jinja2's ImmutableSandboxedEnvironment: getting one gives an Undefined
 * that fails with the sandbox's message when called. */
#include <string.h>

#include "jinja_internal.h"

static const char *const str_methods[] = {
    "strip", "lstrip", "rstrip", "startswith", "endswith", "split", "rsplit", "upper", "lower", "title",
    "capitalize", "replace", "find", "rfind", "count", "format", "join", "isdigit", "isalpha", "isalnum",
    "isspace", "isupper", "islower", "splitlines", "index", NULL};
static const char *const dict_methods[] = {"items", "keys", "values", "get", "copy", NULL};
static const char *const dict_unsafe[] = {"pop", "popitem", "update", "setdefault", "clear", NULL};
static const char *const list_methods[] = {"index", "count", "copy", NULL};
static const char *const list_unsafe[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort",
                                          "clear", NULL};

static bool listed(const char *const *names, const char *name, size_t n)
{
    for (; *names; names++)
        if ((*names)[0] == name[0] && strlen(*names) == n && !memcmp(*names, name, n))
            return true;
    return false;
}

bool jinja__has_method(jv self, const char *name, size_t n, bool *unsafe)
{
    static const unsigned short lengths = 1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10;
    *unsafe = false;
    if (n > 10 || !(lengths >> n & 1)) /* no method has that length */
        return false;
    if (self.kind == JV_DICT && !strchr("ikvgcpus", name[0])) /* items keys values get copy pop update setdefault */
        return false;
    switch (self.kind) {
    case JV_STR: return listed(str_methods, name, n);
    case JV_DICT:
        *unsafe = listed(dict_unsafe, name, n);
        return *unsafe || listed(dict_methods, name, n);
    case JV_LIST:
        *unsafe = listed(list_unsafe, name, n);
        return *unsafe || listed(list_methods, name, n);
    case JV_TUPLE: return listed(list_methods, name, n) && !(n == 4 && !memcmp(name, "copy", 4));
    default: return false;
    }
}

static jv opt(jv *args, int nargs, int i, const char **kwn, jv *kwv, int nkw, const char *kw)
{
    if (i < nargs)
        return args[i];
    for (int k = 0; k < nkw; k++)
        if (!strcmp(kwn[k], kw))
            return kwv[k];
    return jv_undef(UND_NAME, 0, kw, strlen(kw));
}

static jv need_str_arg(struct jrender *r, jv v, const char *method)
{
    if (v.kind != JV_STR)
        jinja__fail(r, "%s arg must be None or str", method);
    return v;
}

static bool affix(struct jrender *r, jv s, jv x, bool end)
{
    if (x.kind == JV_TUPLE || x.kind == JV_LIST) {
        for (size_t i = 0; i < x.u.l->n; i++)
            if (affix(r, s, x.u.l->v[i], end))
                return true;
        return false;
    }
    if (x.kind != JV_STR)
        jinja__fail(r, "%s first arg must be str or a tuple of str, not %s", end ? "endswith" : "startswith",
                    jv_type_name(x));
    return x.n <= s.n && !memcmp(s.u.s + (end ? s.n - x.n : 0), x.u.s, x.n);
}

static jv str_join(struct jrender *r, jv sep, jv seq)
{
    jv items = jv_iter_list(r, seq);
    struct jbuf b = {0};
    for (size_t i = 0; i < items.u.l->n; i++) {
        jv v = items.u.l->v[i];
        if (v.kind != JV_STR)
            jinja__fail(r, "sequence item %zu: expected str instance, %s found", i, jv_type_name(v));
        if (i)
            jbuf_put(r, &b, sep.u.s, sep.n);
        jbuf_put(r, &b, v.u.s, v.n);
    }
    return jv_buf(&b);
}

static int64_t find(jv s, jv sub, bool last)
{
    const char *hit = NULL;
    if (sub.n > s.n)
        return -1;
    for (size_t i = 0; i + sub.n <= s.n; i++)
        if (!memcmp(s.u.s + i, sub.u.s, sub.n)) {
            hit = s.u.s + i;
            if (!last)
                break;
        }
    return hit ? (int64_t)u8_count(s.u.s, (size_t)(hit - s.u.s)) : -1;
}

static bool str_pred(jv s, const char *name)
{
    size_t i = 0;
    bool cased = false, all = s.n > 0;
    for (; i < s.n && all; i++) {
        unsigned char c = (unsigned char)s.u.s[i];
        bool lo = c >= 'a' && c <= 'z', up = c >= 'A' && c <= 'Z', dig = c >= '0' && c <= '9';
        cased |= lo || up;
        if (!strcmp(name, "isdigit"))
            all = dig;
        else if (!strcmp(name, "isalpha"))
            all = lo || up || c >= 0x80;
        else if (!strcmp(name, "isalnum"))
            all = lo || up || dig || c >= 0x80;
        else if (!strcmp(name, "isspace"))
            all = c == ' ' || (c >= 9 && c <= 13);
        else if (!strcmp(name, "isupper"))
            all = !lo;
        else
            all = !up;
    }
    return all && (strcmp(name, "isupper") && strcmp(name, "islower") ? true : cased);
}

static jv splitlines(struct jrender *r, jv s)
{
    jv out = jv_list(r, 4);
    for (size_t i = 0, next; i < s.n; i = next) {
        size_t e = str_line_end(s.u.s, s.n, i, &next);
        jv_push(r, out, jv_str(s.u.s + i, e - i));
    }
    return out;
}

static jv str_method(struct jrender *r, jv s, const char *name, jv *args, int nargs, const char **kwn, jv *kwv,
                     int nkw)
{
    jv a0 = opt(args, nargs, 0, kwn, kwv, nkw, "chars"), a1;
    int which = !strcmp(name, "lstrip") ? 1 : !strcmp(name, "rstrip") ? 2 : !strcmp(name, "strip") ? 3 : 0;
    if (which) {
        bool has = a0.kind != JV_UNDEF && a0.kind != JV_NONE;
        if (has)
            need_str_arg(r, a0, name);
        return str_strip(r, s, has ? a0.u.s : NULL, has ? a0.n : 0, which);
    }
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith"))
        return jv_bool(affix(r, s, nargs ? args[0] : jv_none(), name[0] == 'e'));
    if (!strcmp(name, "split") || !strcmp(name, "rsplit")) {
        a0 = opt(args, nargs, 0, kwn, kwv, nkw, "sep");
        a1 = opt(args, nargs, 1, kwn, kwv, nkw, "maxsplit");
        bool has = a0.kind != JV_UNDEF && a0.kind != JV_NONE;
        int64_t max = a1.kind == JV_INT ? a1.u.i : -1;
        if (name[0] == 'r' && max >= 0)
            jinja__fail(r, "rsplit with maxsplit is not supported");
        return str_split(r, s, has ? &a0 : NULL, max);
    }
    if (!strcmp(name, "upper") || !strcmp(name, "lower"))
        return str_case(r, s, name[0] == 'u');
    if (!strcmp(name, "title") || !strcmp(name, "capitalize"))
        return str_case(r, s, name[0] == 't' ? 2 : 3);
    if (!strcmp(name, "replace")) {
        if (nargs < 2 || args[0].kind != JV_STR || args[1].kind != JV_STR)
            jinja__fail(r, "replace expected 2 str arguments");
        return str_replace(r, s, args[0], args[1], nargs > 2 && args[2].kind == JV_INT ? args[2].u.i : -1);
    }
    if (!strcmp(name, "find") || !strcmp(name, "rfind") || !strcmp(name, "index") || !strcmp(name, "count")) {
        jv sub = need_str_arg(r, nargs ? args[0] : jv_none(), name);
        jinja__charge(r, s.n * (sub.n > 16 ? 16 : sub.n + 1));
        if (!strcmp(name, "count")) {
            jv parts = str_split(r, s, sub.n ? &sub : NULL, -1);
            return jv_int(sub.n ? (int64_t)parts.u.l->n - 1 : (int64_t)u8_count(s.u.s, s.n) + 1);
        }
        int64_t at = find(s, sub, name[0] == 'r');
        if (at < 0 && name[0] == 'i')
            jinja__fail(r, "substring not found");
        return jv_int(at);
    }
    if (!strcmp(name, "format"))
        return str_format(r, s, args, nargs, kwn, kwv, nkw);
    if (!strcmp(name, "join"))
        return str_join(r, s, nargs ? args[0] : jv_none());
    if (!strcmp(name, "splitlines"))
        return splitlines(r, s);
    return jv_bool(str_pred(s, name));
}

static jv dict_method(struct jrender *r, jv d, const char *name, jv *args, int nargs)
{
    if (!strcmp(name, "get")) {
        if (nargs < 1 || nargs > 2)
            jinja__fail(r, "get expected at most 2 arguments, got %d", nargs);
        jv *v = jv_dict_find(d, args[0]);
        return v ? *v : nargs > 1 ? args[1] : jv_none();
    }
    if (!strcmp(name, "copy")) {
        jv c = jv_dict(r, d.u.d->n);
        for (size_t i = 0; i < d.u.d->n; i++)
            jv_dict_set(r, c, d.u.d->k[i], d.u.d->v[i]);
        return c;
    }
    jv out = jv_list(r, d.u.d->n);
    for (size_t i = 0; i < d.u.d->n; i++) {
        if (name[0] == 'k' || name[0] == 'v') {
            jv_push(r, out, name[0] == 'k' ? d.u.d->k[i] : d.u.d->v[i]);
            continue;
        }
        jv pair = jv_list(r, 2);
        jv_push(r, pair, d.u.d->k[i]);
        jv_push(r, pair, d.u.d->v[i]);
        pair.kind = JV_TUPLE;
        jv_push(r, out, pair);
    }
    return out;
}

jv jinja__method(struct jrender *r, jv self, const char *name, jv *args, int nargs, const char **kwn, jv *kwv,
                 int nkw)
{
    if (self.kind == JV_LOOP) { /* loop.cycle(a, b, ...) */
        if (!nargs)
            jinja__fail(r, "no items for cycling given");
        jv i = jinja__loop_attr(r, self, "index0", 6);
        return args[i.u.i % nargs];
    }
    if (self.kind == JV_STR)
        return str_method(r, self, name, args, nargs, kwn, kwv, nkw);
    if (self.kind == JV_DICT)
        return dict_method(r, self, name, args, nargs);
    if (!strcmp(name, "copy")) {
        jv out = jv_list(r, self.u.l->n);
        for (size_t i = 0; i < self.u.l->n; i++)
            jv_push(r, out, self.u.l->v[i]);
        return out;
    }
    jv x = nargs ? args[0] : jv_none();
    int64_t k = 0;
    for (size_t i = 0; i < self.u.l->n; i++)
        if (jv_equal(self.u.l->v[i], x)) {
            if (name[0] == 'i')
                return jv_int((int64_t)i);
            k++;
        }
    if (name[0] == 'i') {
        struct jbuf msg = {0};
        jv_repr(r, &msg, x);
        jinja__fail(r, "%s is not in list", msg.s ? msg.s : "");
    }
    return jv_int(k);
}
