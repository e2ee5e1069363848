/* cmd_serve.c: `tessera serve MODEL_DIR`: starts the OpenAI-compatible
 * server and stops it.
 *
 * Threads: the libuv loop (http.c and the server's files, see serve.h), the
 * engine thread, libuv's worker threads (request preparation, offload.c),
 * and a loading thread at start, while /health answers 503. SIGTERM/SIGINT
 * stop accepting, let running requests finish for --shutdown-timeout, then
 * end the rest properly (job_fail) and exit 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../engine/comm.h"
#include "../base/err.h"
#include "launch.h"
#include "serve.h"

// ---------------------------------------------------------------------------
// loading, signals, main

static void load_main(void *arg)
{
    struct srv *s = arg;
    char err[1024];
    const char *delay = getenv("TESSERA_TEST_LOAD_DELAY_MS"); /* tests: a slow load, to see /health say 503 */
    if (delay) uv_sleep((unsigned)atoi(delay));
    if (launch(&s->model, s->o.model_dir, &s->o.bk, &s->o.ec, true, err, sizeof(err)))
        snprintf(s->load_err, sizeof(s->load_err), "%s", err);
    uv_async_send(&s->loaded);
}

/* The chat format: --chat-template FILE's template, else the model's (the
 * default when none), and the output parsers. -1 when the file cannot be
 * read. */
static int chat_format_of(struct srv *s)
{
    if (chat_format_load(&s->chat, s->o.chat_template_file, s->model.tok)) {
        fprintf(stderr, "tessera: --chat-template %s\n", err_msg());
        return -1;
    }
    if (strcmp(s->o.tool_parser, "auto")) tool_format_from_name(s->o.tool_parser, &s->tool_format); /* checked */
    else s->tool_format = s->chat.tools;
    reasoning_format_from_name(s->o.reasoning_parser, &s->reasoning);
    /* the markers that decode to nothing (control tokens) are shown to the
     * parsers as their text */
    static const char *const markers[] = {"<tool_call>", "</tool_call>", "<|python_tag|>", "[TOOL_CALLS]", "[ARGS]",
                                          "<think>", "</think>"};
    for (size_t i = 0; i < sizeof(markers) / sizeof(*markers); i++) {
        int id = tok_piece_to_id(s->model.tok, markers[i]);
        char text[32];
        if (id >= 0 && tok_decode(s->model.tok, &id, 1, text, sizeof(text)) == 0) s->markers[s->n_markers++] = id;
    }
    return 0;
}

/* What constrained decoding needs of the tokenizer: each token's bytes. */
static void give_token_bytes(struct srv *s)
{
    struct tok_vocab_bytes vb;
    tok_vocab_bytes_init(&vb, s->model.tok);
    const uint8_t **bytes = xcalloc((size_t)vb.n + 1, sizeof(*bytes));
    uint32_t *lens = xcalloc((size_t)vb.n + 1, sizeof(*lens));
    for (int i = 0; i < vb.n; i++)
        if (vb.len[i] > 0) {
            bytes[i] = (const uint8_t *)vb.data + vb.off[i];
            lens[i] = (uint32_t)vb.len[i];
        }
    engine_set_token_bytes(s->model.eng, vb.n, bytes, lens);
    free(bytes);
    free(lens);
    tok_vocab_bytes_deinit(&vb);
}

/* The engine's wake hook, on the engine thread: the loop drains its outbox. */
static void wake_loop(void *arg) { uv_async_send(arg); }

static void on_loaded(uv_async_t *a)
{
    struct srv *s = a->data;
    uv_thread_join(&s->load_thread);
    s->load_joined = true;
    if (s->load_err[0]) {
        fprintf(stderr, "tessera: %s\n", s->load_err);
        s->exit_code = EXIT_USAGE;
        uv_stop(s->loop);
        return;
    }
    s->vocab = engine_vocab_size(s->model.eng);
    s->max_len = engine_max_model_len(s->model.eng);
    if (chat_format_of(s)) {
        s->exit_code = EXIT_USAGE;
        uv_stop(s->loop);
        return;
    }
    give_token_bytes(s);
    engine_set_wake(s->model.eng, wake_loop, &s->wake);
    if (engine_start(s->model.eng)) {
        fprintf(stderr, "tessera: %s\n", err_msg());
        s->exit_code = EXIT_RUNTIME;
        uv_stop(s->loop);
        return;
    }
    atomic_store(&s->ready, true);
    char fmt[300];
    fprintf(stderr, "tessera: ready: model \"%s\", context %d, chat format %s, tool calls %s, reasoning %s; point "
            "an OpenAI client at http://%s:%d/v1\n", s->model_name, s->max_len,
            chat_format_name(&s->chat, fmt, sizeof(fmt)), tool_format_name(s->tool_format),
            reasoning_format_name(s->reasoning), s->o.host, s->o.port);
}

/* The shutdown deadline: every reply still open ends properly (a stream with
 * an error event and [DONE], a whole reply with a 503), the engine drops
 * their sequences, and the loop stops (the replies drain as the connections
 * close: http_server_close). */
static void on_shutdown_timer(uv_timer_t *t)
{
    struct srv *s = t->data;
    fprintf(stderr, "tessera: shutdown timeout: ending %d requests\n", s->jobs.n);
    struct oai_error e;
    oai_fail(&e, 503, NULL, NULL, "the server is shutting down; the reply was cut at the shutdown timeout");
    for (int i = 0; i < s->jobs.n; i++)
        if (s->jobs.list[i]->req) job_fail(s, s->jobs.list[i], &e);
    uv_stop(s->loop);
}

static void on_signal(uv_signal_t *h, int sig)
{
    struct srv *s = h->data;
    if (s->shutting_down) return;
    s->shutting_down = true;
    fprintf(stderr, "tessera: %s: no new connections; finishing %d requests\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
            s->jobs.n);
    http_server_stop_listening(s->http);
    if ((!s->jobs.n && !s->n_preps) || !atomic_load(&s->ready)) {
        uv_stop(s->loop);
        return;
    }
    uv_timer_start(&s->shutdown_timer, on_shutdown_timer, (uint64_t)(s->o.shutdown_timeout * 1000), 0);
}

/* Connections need a descriptor each: the open-files limit is raised to its
 * hard maximum (as nginx and others do) and the connection cap kept 64 below
 * it, for the model's files, the engine and the listener (said on stderr
 * unless it is the default that gives way). */
static int max_connections(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return (int)want;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    long room = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1 << 22) ? 1 << 22 : (long)rl.rlim_cur - 64;
    if (room < want) {
        if (want != 4096) fprintf(stderr, "tessera: --max-connections %ld is over what the open-files limit (%ld) allows: using %ld\n",
                want, (long)rl.rlim_cur, room < 1 ? 1 : room);
        want = room < 1 ? 1 : room;
    }
    return (int)want;
}

static void help(FILE *f)
{
    fprintf(f,
            "usage: tessera serve MODEL_DIR [options]\n"
            "\n"
            "Serves the model in MODEL_DIR over an OpenAI-compatible HTTP API:\n"
            "POST /v1/chat/completions, /v1/completions, /v1/responses, /tokenize, /detokenize;\n"
            "GET /v1/models, /v1/responses/ID, /health, /metrics; DELETE /v1/responses/ID.\n"
            "\n"
            "options:\n"
            "  --host ADDR                address to listen on (default 127.0.0.1)\n"
            "  --port N                   port (default 8000)\n"
            "  --served-model-name NAME   the model's name in the API (default: MODEL_DIR)\n"
            "  --api-key KEY              require \"Authorization: Bearer KEY\" (not on /health)\n"
            "  --chat-template FILE       a Jinja chat template whose format replaces the model's\n"
            "  --tool-call-parser NAME    the models' tool-call format: hermes, llama3_json, mistral, none,\n"
            "                             or auto (default: what the chat template writes)\n"
            "  --reasoning-parser NAME    split <think>...</think> into reasoning_content: deepseek_r1,\n"
            "                             qwen3 or none (default)\n"
            "  --allowed-origins LIST     CORS: comma-separated origins, or * (default: none)\n"
            "  --max-queue N              choices (prompts x n) waiting beyond max-num-seqs: 503 (default 1024)\n"
            "  --responses-store-size N   finished /v1/responses kept in memory for GET and\n"
            "                             previous_response_id, least recently used dropped first\n"
            "                             (default 1000, and at most 256 MiB; 0 keeps none)\n"
            "  --shutdown-timeout S       on SIGTERM/SIGINT, seconds to let requests finish (default 30)\n"
            "  --max-connections N        connections open at once; more get 503 (default 4096, at\n"
            "                             most what the open-files limit allows)\n"
            "  --header-timeout S         seconds for a request's headers to arrive (default 10)\n"
            "  --body-timeout S           seconds for a request's whole body to arrive (default 30)\n"
            "  --idle-timeout S           seconds a keep-alive connection may idle (default 60)\n"
            "\n%s\n%s",
            CLI_ENGINE_HELP, CLI_BACKEND_HELP);
}

static int parse(int argc, char **argv, struct serve_opts *o)
{
    struct cli_opt t[CLI_MAX_OPTS] = {
        {"host", 0, CLI_STR, &o->host, 0, 0, NULL},
        {"port", 0, CLI_INT, &o->port, 0, 65535, NULL},
        {"served-model-name", 0, CLI_STR, &o->served_name, 0, 0, NULL},
        {"api-key", 0, CLI_STR, &o->api_key, 0, 0, NULL},
        {"chat-template", 0, CLI_STR, &o->chat_template_file, 0, 0, NULL},
        {"allowed-origins", 0, CLI_STR, &o->origins, 0, 0, NULL},
        {"tool-call-parser", 0, CLI_STR, &o->tool_parser, 0, 0, NULL},
        {"reasoning-parser", 0, CLI_STR, &o->reasoning_parser, 0, 0, NULL},
        {"max-queue", 0, CLI_INT, &o->max_queue, 0, 1 << 20, NULL},
        {"responses-store-size", 0, CLI_INT, &o->responses_store_size, 0, 1 << 24, NULL},
        {"max-connections", 0, CLI_INT, &o->max_connections, 1, 1 << 20, NULL},
        {"shutdown-timeout", 0, CLI_DOUBLE, &o->shutdown_timeout, 0, 86400, NULL},
        {"header-timeout", 0, CLI_DOUBLE, &o->header_timeout, 0.01, 3600, NULL},
        {"body-timeout", 0, CLI_DOUBLE, &o->body_timeout, 0.01, 3600, NULL},
        {"idle-timeout", 0, CLI_DOUBLE, &o->idle_timeout, 0.01, 86400, NULL},
    };
    int n = 15;
    n += cli_engine_opts(&o->ec, t + n);
    n += cli_backend_opts(&o->bk, t + n);
    if (cli_parse("serve", argc, argv, t, n, &o->model_dir, help)) return -1;
    if (!o->model_dir) {
        fprintf(stderr, "tessera serve: MODEL_DIR is required (see tessera serve --help)\n");
        return -1;
    }
    enum tool_format tf;
    enum reasoning_format rf;
    if ((strcmp(o->tool_parser, "auto") && tool_format_from_name(o->tool_parser, &tf)) ||
        reasoning_format_from_name(o->reasoning_parser, &rf)) {
        fprintf(stderr, "tessera serve: %s\n", err_msg());
        return -1;
    }
    return 0;
}

/* The loop's handles: engine wake-ups, the end of loading, signals, the
 * shutdown deadline. */
static void init_handles(struct srv *s)
{
    s->loop = uv_default_loop();
    uv_async_init(s->loop, &s->wake, jobs_on_wake);
    uv_async_init(s->loop, &s->loaded, on_loaded);
    s->wake.data = s->loaded.data = s;
    uv_signal_init(s->loop, &s->sigint);
    uv_signal_init(s->loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_timer_init(s->loop, &s->shutdown_timer);
    s->shutdown_timer.data = s;
    signal(SIGPIPE, SIG_IGN);
}

/* Stopped: the connections close (what is not answered is aborted, queued
 * replies drain), preparations in flight finish, then the engine, the
 * handles and the model go. The exit code. */
static int teardown(struct srv *s)
{
    if (!s->load_joined) uv_thread_join(&s->load_thread);
    if (s->model.eng) engine_set_wake(s->model.eng, NULL, NULL);
    if (s->http) http_server_close(s->http);
    uv_run(s->loop, UV_RUN_NOWAIT);
    while (s->n_preps) uv_run(s->loop, UV_RUN_ONCE); /* worker threads read the engine */
    engine_destroy(s->model.eng);
    s->model.eng = NULL;
    uv_close((uv_handle_t *)&s->wake, NULL);
    uv_close((uv_handle_t *)&s->loaded, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->shutdown_timer, NULL);
    uv_run(s->loop, UV_RUN_DEFAULT);
    jobs_free_all(s);
    resp_store_deinit(&s->responses);
    uv_loop_close(s->loop);
    chat_format_free(&s->chat);
    launch_free(&s->model);
    int code = s->exit_code;
    free(s->model_name);
    free(s);
    if (!code) fprintf(stderr, "tessera: stopped\n");
    return code;
}

int cmd_serve(int argc, char **argv)
{
    struct srv *s = xcalloc(1, sizeof(*s));
    s->o = (struct serve_opts){.host = "127.0.0.1", .port = 8000, .max_queue = 1024, .max_connections = 4096,
                               .shutdown_timeout = 30, .header_timeout = 10, .body_timeout = 30, .idle_timeout = 60,
                               .tool_parser = "auto", .reasoning_parser = "none",
                               .responses_store_size = RESP_STORE_DEFAULT_SIZE};
    s->o.ec = engine_config_default();
    s->o.bk = cli_backend_default();
    int rc = parse(argc, argv, &s->o) ? EXIT_USAGE : comm_rank() > 0 ? launch_worker(s->o.model_dir, &s->o.bk) : -1;
    if (rc >= 0) {
        free(s);
        return rc;
    }
    srand((unsigned)uv_hrtime());
    if (resp_store_init(&s->responses, (size_t)s->o.responses_store_size, RESP_STORE_DEFAULT_BYTES)) {
        fprintf(stderr, "tessera: cannot make the responses store's lock\n");
        free(s);
        return EXIT_RUNTIME;
    }
    s->model_name = xstrdup(s->o.served_name ? s->o.served_name : s->o.model_dir);
    init_handles(s);
    struct http_limits lim = http_limits_default();
    lim.header_timeout_ms = (int)(s->o.header_timeout * 1000);
    lim.body_timeout_ms = (int)(s->o.body_timeout * 1000);
    lim.idle_timeout_ms = (int)(s->o.idle_timeout * 1000);
    lim.max_connections = max_connections(s->o.max_connections);
    const char *err;
    s->load_joined = true;
    if (http_server_start(&s->http, s->loop, s->o.host, s->o.port, &lim, route_request, s, &err)) {
        fprintf(stderr, "tessera: cannot listen on %s:%d: %s\n", s->o.host, s->o.port, err);
        s->http = NULL;
        s->exit_code = EXIT_RUNTIME;
    } else {
        fprintf(stderr, "tessera: listening on http://%s:%d; loading %s\n", s->o.host, s->o.port, s->o.model_dir);
        if (uv_thread_create(&s->load_thread, load_main, s)) {
            fprintf(stderr, "tessera: cannot start the loading thread\n");
            s->exit_code = EXIT_RUNTIME;
        } else {
            s->load_joined = false;
            uv_run(s->loop, UV_RUN_DEFAULT);
        }
    }
    return teardown(s);
}
