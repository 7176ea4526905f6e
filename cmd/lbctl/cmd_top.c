/*
 * lbctl top: a full-screen table of the servers (group, zone, status,
 * sessions/capacity as a bar, cpu, memory) redrawn every second from etcd.
 * 'q' quits (the terminal is put in raw mode while it runs); --iterations N
 * stops after N frames (tests, pipes).
 */
#include "ctl_args.h"
#include "ctl_ops.h"

#include "common/util.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define TOP_BAR 20

static volatile sig_atomic_t top_stop;

static void top_on_signal(int sig)
{
    (void)sig;
    top_stop = 1;
}

static void top_bar(char *out, uint32_t used, uint32_t cap)
{
    int fill = cap > 0 ? (int)((uint64_t)used * TOP_BAR / cap) : 0;
    if (fill > TOP_BAR)
        fill = TOP_BAR;
    out[0] = '[';
    for (int i = 0; i < TOP_BAR; i++)
        out[1 + i] = i < fill ? '#' : '.';
    out[TOP_BAR + 1] = ']';
    out[TOP_BAR + 2] = '\0';
}

static const char *top_color(const char *status)
{
    return strcmp(status, "UP") == 0         ? "\033[32m"
           : strcmp(status, "DRAINING") == 0 ? "\033[33m"
                                             : "\033[31m";
}

static void top_frame(const ctl_view *v, bool ansi, int frame)
{
    if (ansi)
        printf("\033[H\033[2J");
    printf("lbcp top - leader %s - %zu servers, %zu slaves, %zu sessions - frame %d   "
           "(q to quit)\n\n",
           v->leader[0] ? v->leader : "(none)", v->n_servers, v->n_slaves, v->n_sessions, frame);
    printf("%-16s %-10s %-10s %-9s %-22s %-9s %-6s %s\n", "SERVER", "GROUP", "ZONE", "STATUS",
           "SESSIONS", "USED/CAP", "CPU", "MEM FREE");
    for (size_t i = 0; i < v->n_servers; i++) {
        const ctl_server *s = &v->servers[i];
        uint32_t used = s->load != NULL ? s->load->sessions + s->pending : s->sessions;
        char bar[TOP_BAR + 3], uc[24], cpu[16] = "-", mem[24] = "-";
        top_bar(bar, used, s->info->capacity);
        snprintf(uc, sizeof uc, "%u/%u", used, s->info->capacity);
        if (s->load != NULL) {
            snprintf(cpu, sizeof cpu, "%.2f", s->load->cpu_load);
            snprintf(mem, sizeof mem, "%.0f MiB", (double)s->load->mem_free / (1024.0 * 1024));
        }
        printf("%-16s %-10s %-10s %s%-9s%s %-22s %-9s %-6s %s\n", s->info->id, s->group,
               s->info->zone, ansi ? top_color(s->status) : "", s->status, ansi ? "\033[0m" : "",
               bar, uc, cpu, mem);
    }
    fflush(stdout);
}

/* Waits up to ms for a key; true when 'q' (or Ctrl-C / EOF) asks to quit. */
static bool top_wait_quit(int ms, bool tty_in)
{
    int64_t end = lb_mono_ms() + ms;
    for (;;) {
        int64_t left = end - lb_mono_ms();
        if (top_stop)
            return true;
        if (left <= 0)
            return false;
        if (!tty_in) {
            lb_sleep_ms(left < 100 ? left : 100);
            continue;
        }
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        if (poll(&p, 1, (int)(left < 100 ? left : 100)) > 0) {
            char ch = 0;
            if (read(STDIN_FILENO, &ch, 1) <= 0 || ch == 'q' || ch == 'Q' || ch == 3)
                return true;
        }
    }
}

int cmd_top(const ctl_opts *o, int argc, char **argv)
{
    const char *it_s = NULL;
    const ctl_flag flags[] = {{"--iterations", &it_s, NULL}};
    if (ctl_parse_flags("top", argc, argv, flags, 1, NULL, 0, NULL) != 0)
        return EXIT_USAGE;
    char *end = NULL;
    long iterations = it_s != NULL ? strtol(it_s, &end, 10) : 0;
    if (it_s != NULL && (end == it_s || *end != '\0' || iterations < 1))
        return ctl_usage_error("top", "--iterations takes a positive number (got '%s')", it_s);
    bool tty_in = isatty(STDIN_FILENO), ansi = isatty(STDOUT_FILENO);
    struct termios saved, raw;
    if (tty_in && tcgetattr(STDIN_FILENO, &saved) == 0) {
        raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    } else {
        tty_in = false;
    }
    signal(SIGINT, top_on_signal);
    signal(SIGTERM, top_on_signal);
    if (ansi)
        printf("\033[?1049h\033[?25l"); /* alternate screen, hide the cursor */
    int rc = EXIT_OK;
    etcd_client *c = NULL;
    if (ctl_etcd_open(o, &c) != 0) {
        rc = EXIT_FAIL;
    } else {
        for (int frame = 1; iterations <= 0 || frame <= iterations; frame++) {
            ctl_view v;
            if (ctl_view_load_live(c, o, &v) != 0) {
                rc = EXIT_FAIL;
                break;
            }
            top_frame(&v, ansi, frame);
            ctl_view_free(&v);
            if ((iterations <= 0 || frame < iterations) && top_wait_quit(1000, tty_in))
                break;
        }
        etcd_close(&c);
    }
    if (ansi)
        printf("\033[?25h\033[?1049l");
    fflush(stdout);
    if (tty_in)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    return rc;
}
