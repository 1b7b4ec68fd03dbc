/* Closed-loop echo load generator for bench/echo.py: one thread, epoll, non-blocking.

   loadgen [-u] -p PORT -c CONNS -s SIZE -w WARMUP_S -d DURATION_S [-P SERVER_PID] [-a ADDR]

   Opens CONNS TCP connections (or, with -u, CONNS connected UDP sockets) to ADDR:PORT
   (default 127.0.0.1). Each one sends a SIZE-byte message and waits for the whole echo before
   sending the next. After WARMUP_S seconds the measured window starts; it lasts DURATION_S.
   At both ends of the window it reads the server's CPU time from /proc/SERVER_PID/stat
   (utime+stime, clock ticks; utime alone as server_user) and
   /proc/SERVER_PID/task/.../schedstat (ns), and its own CPU time, so that warm-up and
   connection set-up stay outside the figures. Prints one line:

   requests=N elapsed=S client_cpu=S server_cpu=S server_sched=S server_user=S lost=N

   UDP: the first 8 bytes of a datagram carry a sequence number; a reply not seen within
   200 ms counts as lost and a new request (new number) goes out, so late replies never count.
   Exit status 1 on any error (connection closed, short echo, no progress for 10 s). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF (256 * 1024)
#define UDP_TIMEOUT 0.2

struct conn {
    int fd, want_out;
    size_t sent, rcvd;
    uint64_t seq;
    double t_sent;
};

static int ep, udp;
static size_t size;
static char *sbuf, *rbuf;
static unsigned long long done, lost;

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, errno ? strerror(errno) : "error");
    exit(1);
}

static double now(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Server CPU seconds from /proc/PID/stat (utime+stime); its user part (utime) in *user. */
static double server_stat(int pid, double *user) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *p = strrchr(text, ')');  /* the command name may contain spaces */
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &ut, &st) != 2)
        return -1;
    *user = (double)ut / sysconf(_SC_CLK_TCK);
    return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

/* Server CPU seconds summed over its threads' schedstat (ns resolution). */
static double server_sched(int pid) {
    char path[320];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    double total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long ns;
        if (f && fscanf(f, "%llu", &ns) == 1) total += ns * 1e-9;
        if (f) fclose(f);
    }
    closedir(d);
    return total;
}

static void set_events(struct conn *c, int out) {
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
    c->want_out = out;
}

static void tcp_send(struct conn *c) {
    while (c->sent < size) {
        ssize_t n = send(c->fd, sbuf + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (errno == EAGAIN) {
                if (!c->want_out) set_events(c, 1);
                return;
            }
        } else {
            die("send");
        }
    }
    if (c->want_out) set_events(c, 0);
}

static void udp_send(struct conn *c, double t) {
    memcpy(sbuf, &c->seq, sizeof c->seq);
    c->t_sent = t;
    if (send(c->fd, sbuf, size, 0) < 0 && errno != EAGAIN && errno != ENOBUFS
        && errno != ECONNREFUSED)
        die("send");  /* a dropped datagram is retried by the timeout */
}

static void start(struct conn *c, double t) {
    c->sent = c->rcvd = 0;
    if (udp) udp_send(c, t);
    else tcp_send(c);
}

static void on_readable(struct conn *c, double t) {
    if (udp) {
        for (;;) {
            ssize_t n = recv(c->fd, rbuf, RBUF, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == ECONNREFUSED) return;
                die("recv");
            }
            if ((size_t)n == size && memcmp(rbuf, &c->seq, sizeof c->seq) == 0) {
                done++;
                c->seq++;
                start(c, t);
            }
        }
    }
    ssize_t n = recv(c->fd, rbuf, RBUF, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        die("recv");
    }
    if (n == 0) { errno = 0; die("server closed a connection"); }
    c->rcvd += n;
    if (c->rcvd > size) { errno = 0; die("server sent more than it was sent"); }
    if (c->rcvd == size && c->sent == size) {
        done++;
        start(c, t);
    }
}

int main(int argc, char **argv) {
    const char *addr = "127.0.0.1";
    int port = 0, nconn = 1, pid = 0, opt;
    double warmup = 0.3, duration = 1.0;
    size = 1024;
    while ((opt = getopt(argc, argv, "ua:p:c:s:w:d:P:")) != -1) {
        switch (opt) {
        case 'u': udp = 1; break;
        case 'a': addr = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'c': nconn = atoi(optarg); break;
        case 's': size = strtoul(optarg, NULL, 10); break;
        case 'w': warmup = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'P': pid = atoi(optarg); break;
        default: fprintf(stderr, "usage: see the comment at the top of loadgen.c\n"); return 2;
        }
    }
    if (port <= 0 || nconn <= 0 || size < 8 || duration <= 0) {
        fprintf(stderr, "loadgen: need -p PORT, -c >= 1, -s >= 8, -d > 0\n");
        return 2;
    }
    sbuf = malloc(size);
    rbuf = malloc(RBUF);
    for (size_t i = 0; i < size; i++) sbuf[i] = 'a' + i % 26;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) die("bad address");
    if ((ep = epoll_create1(0)) < 0) die("epoll_create1");

    struct conn *conns = calloc(nconn, sizeof *conns);
    for (int i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];
        int one = 1;
        c->fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        if (c->fd < 0) die("socket");
        if (!udp) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
        if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    }

    struct epoll_event events[256];
    double t = now(CLOCK_MONOTONIC), t_begin = t, t_end = 0, t_check = t, t_progress = t;
    double cpu0 = 0, srv0 = 0, sch0 = 0, usr0 = 0, usr1 = 0;
    unsigned long long done0 = 0, lost0 = 0, seen = 0;
    int measuring = 0;
    for (int i = 0; i < nconn; i++) start(&conns[i], t);
    for (;;) {
        int n = epoll_wait(ep, events, 256, udp ? 20 : 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        t = now(CLOCK_MONOTONIC);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, t);
            if (!udp && (events[i].events & EPOLLOUT)) tcp_send(c);
        }
        if (udp && t - t_check > UDP_TIMEOUT / 4) {
            t_check = t;
            for (int i = 0; i < nconn; i++) {
                if (t - conns[i].t_sent > UDP_TIMEOUT) {
                    lost++;
                    conns[i].seq++;
                    start(&conns[i], t);
                }
            }
        }
        if (done != seen) {
            seen = done;
            t_progress = t;
        } else if (t - t_progress > 10) {
            errno = 0;
            die("no echo for 10 s");
        }
        if (!measuring && t - t_begin >= warmup) {
            measuring = 1;
            t_begin = t;
            t_end = t + duration;
            done0 = done;
            lost0 = lost;
            cpu0 = now(CLOCK_PROCESS_CPUTIME_ID);
            srv0 = pid ? server_stat(pid, &usr0) : 0;
            sch0 = pid ? server_sched(pid) : 0;
        } else if (measuring && t >= t_end) {
            double srv1 = pid ? server_stat(pid, &usr1) : 0, sch1 = pid ? server_sched(pid) : 0;
            double cpu1 = now(CLOCK_PROCESS_CPUTIME_ID);
            printf("requests=%llu elapsed=%.6f client_cpu=%.6f server_cpu=%.6f "
                   "server_sched=%.6f server_user=%.6f lost=%llu\n", done - done0, t - t_begin,
                   cpu1 - cpu0, pid ? srv1 - srv0 : -1, pid ? sch1 - sch0 : -1,
                   pid ? usr1 - usr0 : -1, lost - lost0);
            return 0;
        }
    }
}
