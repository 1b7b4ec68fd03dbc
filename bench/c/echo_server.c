/* Minimal echo server, the ceiling for bench/echo.py: one thread, epoll level-triggered,
   non-blocking sockets.

   echo_server [-u] [PORT]        (PORT 0 or absent: any free port)

   Prints "READY <pid> <port>" once listening. Exits on SIGTERM or when stdin closes.

   TCP: one read of up to 256 KiB into a shared buffer, written straight back; only what a
   write leaves over is copied to the connection, which then waits for EPOLLOUT (and reads
   nothing more) until it is drained. UDP: recvfrom + sendto until EAGAIN. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (256 * 1024)

struct conn {
    int fd;
    char *pending;  /* unwritten rest of the last echo, or NULL */
    size_t off, len;
};

static int ep;
static char buf[BUF];
static struct conn listener, stdin_conn;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void watch(int op, struct conn *c, unsigned events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static void drop(struct conn *c) {
    close(c->fd);  /* also removes it from the epoll set */
    free(c->pending);
    free(c);
}

/* Write buf[0:n) or the pending rest; keep what does not fit. 0 ok, -1 connection gone. */
static int send_all(struct conn *c, const char *data, size_t n) {
    while (n > 0) {
        ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN) return -1;
        if (w < 0) break;
        data += w;
        n -= w;
    }
    if (n == 0) {
        if (c->pending) {
            free(c->pending);
            c->pending = NULL;
            watch(EPOLL_CTL_MOD, c, EPOLLIN);
        }
        return 0;
    }
    if (!c->pending) {
        c->pending = malloc(n);
        memcpy(c->pending, data, n);
        c->off = 0;
        c->len = n;
        watch(EPOLL_CTL_MOD, c, EPOLLOUT);
    } else {
        c->off = c->len - n;
    }
    return 0;
}

static void on_tcp(struct conn *c) {
    if (c->pending) {  /* only EPOLLOUT (or an error) is watched while something is pending */
        if (send_all(c, c->pending + c->off, c->len - c->off) < 0) drop(c);
        return;
    }
    ssize_t n = recv(c->fd, buf, BUF, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0 || send_all(c, buf, n) < 0) drop(c);
}

static void on_accept(void) {
    for (;;) {
        int fd = accept4(listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
            die("accept4");
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        c->fd = fd;
        watch(EPOLL_CTL_ADD, c, EPOLLIN);
    }
}

static void on_udp(void) {
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        ssize_t n = recvfrom(listener.fd, buf, BUF, 0, (struct sockaddr *)&peer, &plen);
        if (n < 0) {
            if (errno == EAGAIN) return;
            if (errno == EINTR || errno == ECONNREFUSED) continue;
            die("recvfrom");
        }
        sendto(listener.fd, buf, n, 0, (struct sockaddr *)&peer, plen);  /* drop on EAGAIN */
    }
}

int main(int argc, char **argv) {
    int udp = argc > 1 && strcmp(argv[1], "-u") == 0, one = 1;
    int port = argc > 1 + udp ? atoi(argv[1 + udp]) : 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof sa;
    listener.fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK, 0);
    if (listener.fd < 0) die("socket");
    setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listener.fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
    if (!udp && listen(listener.fd, 1024) < 0) die("listen");
    if (getsockname(listener.fd, (struct sockaddr *)&sa, &slen) < 0) die("getsockname");
    if ((ep = epoll_create1(0)) < 0) die("epoll_create1");
    watch(EPOLL_CTL_ADD, &listener, EPOLLIN);
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &stdin_conn};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev);  /* fails harmlessly if stdin is a regular file */
    printf("READY %d %d\n", getpid(), ntohs(sa.sin_port));
    fflush(stdout);

    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == &stdin_conn) {
                if (read(0, buf, BUF) <= 0) return 0;  /* stdin closed: the parent is gone */
            } else if (c == &listener) {
                if (udp) on_udp();
                else on_accept();
            } else {
                on_tcp(c);
            }
        }
    }
}
