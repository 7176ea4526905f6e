/*
 * libFuzzer target: the operators' HTTP request parser (pkg/obs/http.c, the
 * server behind /metrics and /healthz). Its parsing and routing are file-local
 * to that file, which is included here so the real code runs, read path
 * included: the input is written into a socketpair and the server's own
 * readable handler reads and answers it. Invariant: whatever arrives, a
 * complete or oversized request gets an HTTP/1.1 status line and the
 * connection is closed.
 */
#include "../../pkg/obs/http.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static obs_http h; /* no listener or thread: only the per-connection code runs */
    int sv[2];
    if (size > 2 * OBS_HTTP_MAX_REQUEST)
        size = 2 * OBS_HTTP_MAX_REQUEST;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
    if (size > 0 && write(sv[0], data, size) != (ssize_t)size) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    shutdown(sv[0], SHUT_WR);
    static http_conn c;
    c.fd = sv[1];
    c.len = 0;
    c.since_ms = http_now_ms();
    for (int i = 0; i < 4 && c.fd >= 0; i++)
        http_on_readable(&h, &c);
    if (c.fd >= 0)
        http_close(&c);
    static char out[1 << 16];
    ssize_t n = read(sv[0], out, sizeof out - 1);
    close(sv[0]);
    out[n > 0 ? n : 0] = '\0';
    if (n > 0 && strncmp(out, "HTTP/1.1 ", 9) != 0)
        abort(); /* an answer is a status line first */
    return 0;
}
