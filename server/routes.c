/* routes.c: the route table (method, path, handler, whether it needs the API
 * key and a loaded model), CORS, the access log, and the replies every
 * route ends with. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../base/err.h"
#include "oai_render.h"
#include "serve.h"

void cors_headers(const struct srv *s, const struct http_request *r, char *out, size_t cap)
{
    out[0] = '\0';
    const char *origin = http_header(r, "origin");
    const char *allowed = s->o.origins;
    if (!origin || !allowed || !*allowed) return;
    bool ok = !strcmp(allowed, "*");
    size_t ol = strlen(origin);
    for (const char *p = allowed; !ok && *p;) {
        size_t n = strcspn(p, ",");
        ok = n == ol && !strncmp(p, origin, n);
        p += n + (p[n] == ',');
    }
    if (!ok || strchr(origin, '\r') || strchr(origin, '\n') || ol > 256) return;
    snprintf(out, cap,
             "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\nAccess-Control-Expose-Headers: X-Request-Id\r\n",
             origin);
}

void log_request(struct srv *s, const struct http_request *r, int status, int prompt, int completion, double ttft)
{
    double total = mono_seconds() - r->t_start;
    metrics_count_status(&s->m, status);
    if (prompt >= 0 && status == 200) metrics_observe(&s->m.e2e, total);
    /* the path as sent, but no terminal control bytes or broken text in the log */
    char path[200];
    size_t k = 0;
    for (const char *p = r->path; *p && k + 5 < sizeof(path); p++) {
        unsigned char c = (unsigned char)*p;
        if (c > 0x20 && c < 0x7F && c != '\\') path[k++] = (char)c;
        else k += (size_t)snprintf(path + k, sizeof(path) - k, "\\x%02x", c);
    }
    path[k] = '\0';
    fprintf(stderr, "tessera: %s %s %d", r->method, path, status);
    if (prompt >= 0) fprintf(stderr, " prompt=%d completion=%d", prompt, completion);
    if (ttft >= 0) fprintf(stderr, " ttft=%.3fs", ttft);
    fprintf(stderr, " total=%.3fs id=%s\n", total, r->request_id);
}

void reply_json(struct srv *s, struct http_request *r, int status, json_t *body, int prompt, int completion,
                double ttft)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        struct oai_error e;
        oai_fail(&e, 500, NULL, NULL, "the reply could not be encoded");
        reply_error(s, r, &e);
        return;
    }
    char cors[512];
    cors_headers(s, r, cors, sizeof(cors));
    log_request(s, r, status, prompt, completion, ttft);
    http_respond(r, status, "application/json", cors, text, strlen(text));
    free(text);
}

void reply_text(struct srv *s, struct http_request *r, int status, const char *text)
{
    char cors[512];
    cors_headers(s, r, cors, sizeof(cors));
    log_request(s, r, status, -1, -1, -1);
    http_respond(r, status, "application/json", cors, text, strlen(text));
}

void reply_error(struct srv *s, struct http_request *r, const struct oai_error *e)
{
    char cors[512], extra[600];
    cors_headers(s, r, cors, sizeof(cors));
    snprintf(extra, sizeof(extra), "%s%s", cors,
             e->status == 405 ? "Allow: GET, HEAD, POST, DELETE, OPTIONS\r\n" : e->status == 503 ? "Retry-After: 1\r\n" : "");
    char *text = oai_error_json(e);
    log_request(s, r, e->status, -1, -1, -1);
    http_respond(r, e->status, "application/json", extra, text, strlen(text));
    free(text);
}

void serve_maybe_stop(struct srv *s)
{
    if (s->shutting_down && !s->jobs.n && !s->n_preps) uv_stop(s->loop);
}

// ---------------------------------------------------------------------------
// the small routes

static void health(struct srv *s, struct http_request *r)
{
    bool ready = atomic_load(&s->ready) && !s->shutting_down;
    log_request(s, r, ready ? 200 : 503, -1, -1, -1);
    http_respond(r, ready ? 200 : 503, "application/json", ready ? NULL : "Retry-After: 1\r\n",
                 ready ? "{}" : "{\"status\": \"loading\"}", ready ? 2 : 21);
}

static void metrics(struct srv *s, struct http_request *r)
{
    struct strbuf b = {0};
    struct engine_stats st;
    size_t n, bytes;
    resp_store_usage(&s->responses, &n, &bytes);
    s->m.responses_stored = n;
    s->m.responses_stored_bytes = bytes;
    if (atomic_load(&s->ready)) st = engine_stats(s->model.eng);
    metrics_render(&s->m, atomic_load(&s->ready) ? &st : NULL, &b);
    metrics_count_status(&s->m, 200);
    http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, b.s, b.len);
    strbuf_free(&b);
}

static void models(struct srv *s, struct http_request *r)
{
    reply_json(s, r, 200,
               json_pack("{s:s, s:[{s:s, s:s, s:I, s:s, s:i}]}", "object", "list", "data", "id", s->model_name,
                         "object", "model", "created", (json_int_t)time(NULL), "owned_by", "tessera",
                         "max_model_len", s->max_len),
               -1, -1, -1);
}

static void chat(struct srv *s, struct http_request *r) { completions_route(s, r, GEN_CHAT); }
static void completions(struct srv *s, struct http_request *r) { completions_route(s, r, GEN_COMPLETIONS); }
static void responses(struct srv *s, struct http_request *r) { completions_route(s, r, GEN_RESPONSES); }
static void tokenize(struct srv *s, struct http_request *r) { tokenize_route(s, r, ROUTE_TOKENIZE); }
static void detokenize(struct srv *s, struct http_request *r) { tokenize_route(s, r, ROUTE_DETOKENIZE); }
static void apply_template(struct srv *s, struct http_request *r) { tokenize_route(s, r, ROUTE_APPLY_TEMPLATE); }

static const struct route {
    const char *path;     /* ending in '/': a prefix, followed by an id */
    const char *method;   /* GET also answers HEAD */
    bool auth;            /* needs --api-key */
    bool ready;           /* needs the model loaded and the server not stopping */
    void (*handler)(struct srv *s, struct http_request *r);
} ROUTES[] = {
    {"/health", "GET", false, false, health},
    {"/metrics", "GET", true, false, metrics},
    {"/v1/models", "GET", true, true, models},
    {"/v1/chat/completions", "POST", true, true, chat},
    {"/v1/completions", "POST", true, true, completions},
    {"/v1/responses", "POST", true, true, responses},
    {"/v1/responses/", "GET", true, false, responses_get_route},
    {"/v1/responses/", "DELETE", true, false, responses_delete_route},
    {"/tokenize", "POST", true, true, tokenize},
    {"/detokenize", "POST", true, true, detokenize},
    {"/apply-template", "POST", true, true, apply_template},
};

static bool path_matches(const struct route *rt, const char *path)
{
    size_t n = strlen(rt->path);
    if (rt->path[n - 1] != '/') return !strcmp(path, rt->path);
    return !strncmp(path, rt->path, n) && path[n] && !strchr(path + n, '/');
}

/* The route of r's path and method; *path_known whether any route has the
 * path (a 405 rather than a 404). */
static const struct route *find_route(const struct http_request *r, bool *path_known)
{
    /* HEAD is GET without the body (http_respond leaves it out) */
    const char *m = !strcmp(r->method, "HEAD") ? "GET" : r->method;
    *path_known = false;
    for (size_t i = 0; i < sizeof(ROUTES) / sizeof(ROUTES[0]); i++) {
        if (!path_matches(&ROUTES[i], r->path)) continue;
        *path_known = true;
        if (!strcmp(ROUTES[i].method, m)) return &ROUTES[i];
    }
    return NULL;
}

// ---------------------------------------------------------------------------
// routing

/* Authorization: Bearer KEY (the scheme in any case, RFC 9110), the key
 * compared in time that does not depend on where it differs. */
static bool authorized(const struct srv *s, const struct http_request *r)
{
    if (!s->o.api_key) return true;
    const char *a = http_header(r, "authorization");
    if (!a || strncasecmp(a, "Bearer ", 7)) return false;
    const char *given = a + 7, *key = s->o.api_key;
    size_t n = strlen(given), k = strlen(key);
    unsigned char diff = n != k;
    for (size_t i = 0; i < k; i++) diff |= (unsigned char)key[i] ^ (unsigned char)given[i < n ? i : 0];
    return n && !diff;
}

/* A CORS preflight, on any path. */
static void preflight(struct srv *s, struct http_request *r)
{
    char cors[512], extra[1024];
    cors_headers(s, r, cors, sizeof(cors));
    const char *want = http_header(r, "access-control-request-headers");
    if (cors[0])
        snprintf(extra, sizeof(extra),
                 "%sAccess-Control-Allow-Methods: GET, HEAD, POST, DELETE, OPTIONS\r\nAccess-Control-Allow-Headers: %s\r\n"
                 "Access-Control-Max-Age: 600\r\n", cors,
                 want && !strpbrk(want, "\r\n") && strlen(want) < 256 ? want
                                                                       : "Authorization, Content-Type, X-Request-Id");
    else
        snprintf(extra, sizeof(extra), "Allow: GET, HEAD, POST, DELETE, OPTIONS\r\n");
    log_request(s, r, 204, -1, -1, -1);
    http_respond(r, 204, NULL, extra, "", 0);
}

void route_request(struct http_request *r, void *arg)
{
    struct srv *s = arg;
    struct oai_error e;
    if (!strcmp(r->method, "OPTIONS")) {
        preflight(s, r);
        return;
    }
    bool path_known;
    const struct route *rt = find_route(r, &path_known);
    if (!rt && !path_known)
        oai_fail(&e, 404, NULL, NULL, "no route %s %s", r->method, r->path);
    else if (!rt)
        oai_fail(&e, 405, NULL, NULL, "%s is not allowed on %s", r->method, r->path);
    else if (rt->auth && !authorized(s, r))
        oai_fail(&e, 401, NULL, "invalid_api_key", "Incorrect API key provided.");
    else if (rt->ready && (!atomic_load(&s->ready) || s->shutting_down))
        oai_fail(&e, 503, NULL, NULL, s->shutting_down ? "the server is shutting down" : "the model is loading");
    else {
        rt->handler(s, r);
        return;
    }
    reply_error(s, r, &e);
}
