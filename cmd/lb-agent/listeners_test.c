/* Unit tests of listeners.c against the real kernel: the inodes of exactly
 * the sockets listening on a port (two with SO_REUSEPORT), none for a port
 * that is only bound, and the cap kept; the bitmap of ports with a listener.
 * Loopback only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A TCP socket on 127.0.0.1:port (0: any), listening when listen_it. */
static int tcp_on(uint16_t port, bool listen_it, uint16_t *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    if (listen_it)
        assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    if (bound != NULL)
        *bound = ntohs(sa.sin_port);
    return fd;
}

static unsigned long inode_of(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return (unsigned long)st.st_ino;
}

static void test_only_the_listeners_on_that_port(void **state)
{
    (void)state;
    uint16_t p1, p2, p3;
    int others[8];
    for (int i = 0; i < 8; i++) /* listeners on other ports: not reported */
        others[i] = tcp_on(0, true, NULL);
    int a = tcp_on(0, true, &p1);
    int b = tcp_on(p1, true, NULL); /* a second listener on p1 (SO_REUSEPORT) */
    int c = tcp_on(0, true, &p2);
    int bound_only = tcp_on(0, false, &p3); /* bound, not listening */
    unsigned long ino[4];
    assert_int_equal(listeners_on_port(p1, ino, 4), 2);
    assert_true((ino[0] == inode_of(a) && ino[1] == inode_of(b)) ||
                (ino[0] == inode_of(b) && ino[1] == inode_of(a)));
    assert_int_equal(listeners_on_port(p2, ino, 4), 1);
    assert_int_equal(ino[0], inode_of(c));
    assert_int_equal(listeners_on_port(p3, ino, 4), 0);
    assert_int_equal(listeners_on_port(p1, ino, 1), 1); /* the cap is kept */
    close(a);
    assert_int_equal(listeners_on_port(p1, ino, 4), 1);
    assert_int_equal(ino[0], inode_of(b));
    close(b);
    close(c);
    close(bound_only);
    assert_int_equal(listeners_on_port(p1, ino, 4), 0);
    for (int i = 0; i < 8; i++)
        close(others[i]);
}

static bool bit(const uint8_t *bits, uint16_t p)
{
    return (bits[p >> 3] >> (p & 7)) & 1;
}

static void test_ports_with_a_listener(void **state)
{
    (void)state;
    uint16_t l1, l2, b1;
    int a = tcp_on(0, true, &l1), b = tcp_on(0, true, &l2), c = tcp_on(0, false, &b1);
    static uint8_t bits[LISTENERS_BITMAP_BYTES];
    memset(bits, 0xff, sizeof bits); /* every bit is written */
    listeners_ports(bits);
    assert_true(bit(bits, l1));
    assert_true(bit(bits, l2));
    assert_false(bit(bits, b1)); /* bound, not listening */
    assert_false(bit(bits, 0));
    close(a);
    listeners_ports(bits);
    assert_false(bit(bits, l1));
    assert_true(bit(bits, l2));
    close(b);
    close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_the_listeners_on_that_port),
        cmocka_unit_test(test_ports_with_a_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
