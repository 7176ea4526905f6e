/*
 * lb-bench-api: sticky request latency through the slave's HTTP/JSON API and
 * through its nng front door, in the same run, against a running cluster.
 *
 *   lb-bench-api --slave NNG_ADDR --api URL [--app echo] [--location ZONE]
 *                [--clients 8] [--requests 2000]
 *
 * Each of --clients ids first gets a session (one new request each, through
 * nng); then --requests sticky requests go out one at a time, alternating in
 * blocks of 50 between the two paths so both see the same machine load. HTTP
 * uses one kept-alive libcurl connection, as a real client would; nng one REQ
 * socket. Prints p50/p90/p99 per path and RESULT with the ratio of medians
 * (goal <= 1.5). Bounded: clients + 2 * requests requests.
 */
#include "wire/wire.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    return v[(int)((n - 1) * p)];
}

static bool nng_request(nng_socket s, const char *app, const char *client, const char *loc)
{
    Lb__ClientRequest cr = LB__CLIENT_REQUEST__INIT;
    cr.app = (char *)app;
    cr.client_id = (char *)client;
    cr.location = (char *)loc;
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_CLIENT_REQUEST;
    env.client_request = &cr;
    lb_errmsg em = {{0}};
    bool ok = wire_call(s, &env, 10000, WIRE_DEFAULT_MAX, &rep, &em) == LB_OK &&
              rep->body_case == LB__ENVELOPE__BODY_INSTRUCTION &&
              rep->instruction->action == LB__ACTION__SERVE;
    wire_free(&rep);
    return ok;
}

typedef struct sink {
    char buf[8192];
    size_t len;
} sink;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    sink *s = arg;
    size_t k = size * n;
    if (s->len + k < sizeof s->buf) {
        memcpy(s->buf + s->len, p, k);
        s->len += k;
    }
    return k;
}

static bool http_request(CURL *h, const char *url, const char *app, const char *client,
                         const char *loc)
{
    char body[512];
    snprintf(body, sizeof body, "{\"app\":\"%s\",\"client_id\":\"%s\",\"location\":\"%s\"}", app,
             client, loc);
    sink s = {.len = 0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    long code = 0;
    bool ok = curl_easy_perform(h) == CURLE_OK &&
              curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200;
    s.buf[s.len] = '\0';
    return ok && strstr(s.buf, "\"action\":\"SERVE\"") != NULL;
}

int main(int argc, char **argv)
{
    const char *slave = NULL, *api = NULL, *app = "echo", *loc = "";
    int clients = 8, requests = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--slave") == 0)
            slave = argv[i + 1];
        else if (strcmp(argv[i], "--api") == 0)
            api = argv[i + 1];
        else if (strcmp(argv[i], "--app") == 0)
            app = argv[i + 1];
        else if (strcmp(argv[i], "--location") == 0)
            loc = argv[i + 1];
        else if (strcmp(argv[i], "--clients") == 0)
            clients = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--requests") == 0)
            requests = atoi(argv[i + 1]);
    }
    if (slave == NULL || api == NULL || clients < 1 || requests < 100) {
        fprintf(stderr, "usage: lb-bench-api --slave NNG_ADDR --api URL [--app A] "
                        "[--location Z] [--clients N] [--requests N>=100]\n");
        return 2;
    }
    nng_socket s;
    lb_errmsg em = {{0}};
    if (wire_req_dial(slave, &s, &em) != LB_OK) {
        fprintf(stderr, "lb-bench-api: %s\n", em.text);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    char url[512];
    snprintf(url, sizeof url, "%s/v1/request", api);
    char id[64];
    for (int c = 0; c < clients; c++) { /* sessions first: what follows is sticky */
        snprintf(id, sizeof id, "bench-api-%d", c);
        if (!nng_request(s, app, id, loc)) {
            fprintf(stderr, "lb-bench-api: new session for %s failed\n", id);
            return 1;
        }
    }
    double *lat[2] = {calloc((size_t)requests, sizeof(double)),
                      calloc((size_t)requests, sizeof(double))};
    int n[2] = {0, 0}, failed = 0;
    for (int i = 0; i < 2 * requests; i++) {
        int path = (i / 50) % 2; /* 0 nng, 1 http, in alternating blocks */
        snprintf(id, sizeof id, "bench-api-%d", i % clients);
        double t0 = now_us();
        bool ok = path == 0 ? nng_request(s, app, id, loc) : http_request(h, url, app, id, loc);
        double dt = now_us() - t0;
        if (!ok)
            failed++;
        else if (n[path] < requests)
            lat[path][n[path]++] = dt;
    }
    const char *names[2] = {"nng front door", "HTTP/JSON API"};
    double p50[2];
    for (int p = 0; p < 2; p++) {
        qsort(lat[p], (size_t)n[p], sizeof(double), cmp_d);
        p50[p] = pct(lat[p], n[p], 0.5);
        printf("%-15s sticky: n=%d p50=%.0f us p90=%.0f us p99=%.0f us\n", names[p], n[p], p50[p],
               pct(lat[p], n[p], 0.9), pct(lat[p], n[p], 0.99));
    }
    printf("RESULT sticky latency HTTP/nng p50 ratio=%.2f (goal <= 1.5) failed=%d\n",
           p50[1] / p50[0], failed);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    nng_close(s);
    free(lat[0]);
    free(lat[1]);
    return failed == 0 ? 0 : 1;
}
