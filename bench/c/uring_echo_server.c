/* Minimal io_uring echo server, the io_uring counterpart of echo_server.c (c-epoll) for
   bench/echo.py: one thread, raw io_uring syscalls (no liburing), TCP only.

   uring_echo_server [PORT]        (PORT 0 or absent: any free port)

   Prints "READY <pid> <port> {"setup": ...}" once listening (the JSON says which ring flags
   the kernel took). With -u it prints "NA ..." and exits 3 (no UDP row). Exits on SIGTERM or
   when stdin (a pipe or socket) closes.

   Design: one multishot accept (IORING_OP_ACCEPT + IORING_ACCEPT_MULTISHOT); per connection
   one multishot recv (IORING_OP_RECV + IORING_RECV_MULTISHOT) that picks its buffers from a
   provided-buffer ring (IORING_REGISTER_PBUF_RING, IOSQE_BUFFER_SELECT). Each received
   buffer is queued on its connection and echoed with IORING_OP_SEND, one send in flight per
   connection (two sends on one socket could complete out of order); a buffer goes back into
   the ring only when its send has completed, a short send re-sends the rest. A recv CQE
   without IORING_CQE_F_MORE re-arms the recv (after -ENOBUFS only once a buffer has come
   back in the ring). EOF or an error: the queued echoes are finished (or dropped, on a send error), then
   the socket is closed. The loop makes one io_uring_enter per iteration: it submits whatever
   is queued and waits for at least one completion (IORING_ENTER_GETEVENTS).

   The ring is set up with IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN (falling
   back to no flags if the kernel says EINVAL): completions are run as task work only inside
   our io_uring_enter, never by interrupting the thread. This is the best case for io_uring on
   this workload, the ceiling, as echo_server.c is for epoll. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SQ_ENTRIES 256
#define CQ_ENTRIES 4096
#ifndef NBUF
#define NBUF 512             /* provided buffers (a power of two) */
#endif
#ifndef BUFSZ
#define BUFSZ (128 * 1024)   /* bytes each */
#endif
#define BGID 0

enum { T_ACCEPT = 1, T_RECV, T_SEND, T_STDIN };  /* low 3 bits of user_data */

struct conn {
    int fd, recv_armed, send_busy, closing, starved;
    int head, tail;          /* queued buffer ids, linked through next_bid[]; -1: none */
    unsigned off;            /* bytes of the head buffer already sent */
    struct conn *next_starved;
} __attribute__((aligned(8)));

static int ring_fd, listen_fd;
static unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;
static unsigned sq_local_tail, to_submit;
static struct io_uring_buf_ring *br;
static unsigned short br_tail;
static char *bufs;
static int next_bid[NBUF];
static unsigned buf_len[NBUF];
static struct conn *starved_list;
static int held = NBUF;      /* buffers out of the ring (received, not yet echoed) */
static char stdin_buf[64];

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int enter(unsigned submit, unsigned wait, unsigned flags) {
    return syscall(__NR_io_uring_enter, ring_fd, submit, wait, flags, NULL, 0);
}

static struct io_uring_sqe *get_sqe(void) {
    /* the kernel consumes entries only inside enter(): if we have filled the ring, flush */
    if (to_submit == SQ_ENTRIES) {
        int r = enter(to_submit, 0, 0);
        if (r < 0) die("io_uring_enter (flush)");
        to_submit -= r;
    }
    struct io_uring_sqe *sqe = &sqes[sq_local_tail & *sq_mask];
    memset(sqe, 0, sizeof *sqe);
    sq_local_tail++;
    to_submit++;
    __atomic_store_n(sq_tail, sq_local_tail, __ATOMIC_RELEASE);
    return sqe;
}

static void queue_accept(void) {
    struct io_uring_sqe *s = get_sqe();
    s->opcode = IORING_OP_ACCEPT;
    s->fd = listen_fd;
    s->ioprio = IORING_ACCEPT_MULTISHOT;
    s->accept_flags = SOCK_CLOEXEC;
    s->user_data = T_ACCEPT;
}

static void queue_recv(struct conn *c) {
    struct io_uring_sqe *s = get_sqe();
    s->opcode = IORING_OP_RECV;
    s->fd = c->fd;
    s->ioprio = IORING_RECV_MULTISHOT;
    s->flags = IOSQE_BUFFER_SELECT;
    s->buf_group = BGID;
    s->user_data = (uintptr_t)c | T_RECV;
    c->recv_armed = 1;
}

static void queue_send(struct conn *c) {
    int bid = c->head;
    struct io_uring_sqe *s = get_sqe();
    s->opcode = IORING_OP_SEND;
    s->fd = c->fd;
    s->addr = (uintptr_t)(bufs + (size_t)bid * BUFSZ + c->off);
    s->len = buf_len[bid] - c->off;
    s->msg_flags = MSG_NOSIGNAL;
    s->user_data = (uintptr_t)c | T_SEND;
    c->send_busy = 1;
}

static void queue_stdin(void) {
    struct io_uring_sqe *s = get_sqe();
    s->opcode = IORING_OP_READ;
    s->fd = 0;
    s->addr = (uintptr_t)stdin_buf;
    s->len = sizeof stdin_buf;
    s->off = -1;  /* current position: a pipe */
    s->user_data = T_STDIN;
}

static void buf_return(int bid) {
    struct io_uring_buf *b = &br->bufs[br_tail & (NBUF - 1)];
    b->addr = (uintptr_t)(bufs + (size_t)bid * BUFSZ);
    b->len = BUFSZ;
    b->bid = bid;
    br_tail++;
    __atomic_store_n(&br->tail, br_tail, __ATOMIC_RELEASE);
    held--;
}

/* Pop the head buffer of c's queue back into the ring. */
static void pop(struct conn *c) {
    int bid = c->head;
    c->head = next_bid[bid];
    if (c->head < 0) c->tail = -1;
    c->off = 0;
    buf_return(bid);
}

static void maybe_free(struct conn *c) {
    if (c->closing && !c->recv_armed && !c->send_busy && !c->starved) {
        while (c->head >= 0) pop(c);
        close(c->fd);
        free(c);
    }
}

static void on_accept(struct io_uring_cqe *cqe) {
    if (!(cqe->flags & IORING_CQE_F_MORE)) queue_accept();
    if (cqe->res < 0) {
        if (cqe->res == -ECONNABORTED || cqe->res == -EINTR || cqe->res == -EAGAIN) return;
        errno = -cqe->res;
        die("accept");
    }
    int one = 1;
    setsockopt(cqe->res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    c->fd = cqe->res;
    c->head = c->tail = -1;
    queue_recv(c);
}

static void on_recv(struct conn *c, struct io_uring_cqe *cqe) {
    int more = cqe->flags & IORING_CQE_F_MORE;
    if (!more) c->recv_armed = 0;
    if (cqe->res > 0) {
        int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        held++;
        buf_len[bid] = cqe->res;
        next_bid[bid] = -1;
        if (c->tail >= 0) next_bid[c->tail] = bid;
        else c->head = bid;
        c->tail = bid;
        if (!c->send_busy && !c->closing) queue_send(c);
        if (!more && !c->closing) queue_recv(c);
        else if (c->closing) maybe_free(c);
    } else if (cqe->res == -ENOBUFS && !c->closing) {
        if (!more && !c->starved) {  /* re-armed once a buffer is back */
            c->starved = 1;
            c->next_starved = starved_list;
            starved_list = c;
        }
    } else if (!more) {  /* EOF or an error: finish the queued echoes, then close */
        c->closing = 1;
        if (cqe->res < 0) while (c->head >= 0 && !c->send_busy) pop(c);
        maybe_free(c);
    }
}

static void on_send(struct conn *c, struct io_uring_cqe *cqe) {
    c->send_busy = 0;
    if (cqe->res < 0) {  /* the peer is gone: drop what is queued, end the recv */
        while (c->head >= 0) pop(c);
        if (!c->closing) {
            c->closing = 1;
            shutdown(c->fd, SHUT_RDWR);  /* the multishot recv completes with EOF */
        }
        maybe_free(c);
        return;
    }
    c->off += cqe->res;
    if (c->off >= buf_len[c->head]) pop(c);
    if (c->head >= 0) queue_send(c);  /* the rest of a short send, or the next buffer */
    else maybe_free(c);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-u") == 0) {
        printf("NA c-uring has no UDP server\n");
        return 3;
    }
    int one = 1, port = argc > 1 ? atoi(argv[1]) : 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof sa;
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) die("socket");
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
    if (listen(listen_fd, 1024) < 0) die("listen");
    if (getsockname(listen_fd, (struct sockaddr *)&sa, &slen) < 0) die("getsockname");

    /* The ring: the best case first, then plain. */
    struct io_uring_params p;
    const char *setup = "single_issuer|defer_taskrun";
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = CQ_ENTRIES;
    ring_fd = syscall(__NR_io_uring_setup, SQ_ENTRIES, &p);
    if (ring_fd < 0 && errno == EINVAL) {
        setup = "none";
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = CQ_ENTRIES;
        ring_fd = syscall(__NR_io_uring_setup, SQ_ENTRIES, &p);
    }
    if (ring_fd < 0) die("io_uring_setup");
    if (p.sq_entries != SQ_ENTRIES) { errno = EINVAL; die("io_uring_setup sq_entries"); }
    size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    int single = p.features & IORING_FEAT_SINGLE_MMAP;
    if (single && cq_sz > sq_sz) sq_sz = cq_sz;
    char *sq = mmap(NULL, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd,
                    IORING_OFF_SQ_RING);
    if (sq == MAP_FAILED) die("mmap sq");
    char *cq = single ? sq : mmap(NULL, cq_sz, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_CQ_RING);
    if (cq == MAP_FAILED) die("mmap cq");
    sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) die("mmap sqes");
    sq_tail = (unsigned *)(sq + p.sq_off.tail);
    sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    sq_array = (unsigned *)(sq + p.sq_off.array);
    cq_head = (unsigned *)(cq + p.cq_off.head);
    cq_tail = (unsigned *)(cq + p.cq_off.tail);
    cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    for (unsigned i = 0; i < p.sq_entries; i++) sq_array[i] = i;  /* identity: slot i */
    sq_local_tail = *sq_tail;

    /* The provided-buffer ring, all buffers in it. */
    br = mmap(NULL, NBUF * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bufs = mmap(NULL, (size_t)NBUF * BUFSZ, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br == MAP_FAILED || bufs == MAP_FAILED) die("mmap buffers");
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)br, .ring_entries = NBUF,
                                   .bgid = BGID};
    if (syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0)
        die("io_uring_register PBUF_RING");
    for (int i = 0; i < NBUF; i++) buf_return(i);

    queue_accept();
    struct stat st;  /* as echo_server.c's epoll: watch stdin only if it can signal EOF */
    if (fstat(0, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) queue_stdin();
    printf("READY %d %d {\"setup\": \"%s\"}\n", getpid(), ntohs(sa.sin_port), setup);
    fflush(stdout);

    for (;;) {
        int r = enter(to_submit, 1, IORING_ENTER_GETEVENTS);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EBUSY) continue;
            die("io_uring_enter");
        }
        to_submit -= r;
        unsigned head = *cq_head, tail = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
        for (; head != tail; head++) {
            struct io_uring_cqe *cqe = &cqes[head & *cq_mask];
            uintptr_t ud = cqe->user_data;
            struct conn *c = (struct conn *)(ud & ~(uintptr_t)7);
            switch (ud & 7) {
            case T_ACCEPT: on_accept(cqe); break;
            case T_RECV: on_recv(c, cqe); break;
            case T_SEND: on_send(c, cqe); break;
            case T_STDIN:
                if (cqe->res <= 0) return 0;  /* stdin closed: the parent is gone */
                queue_stdin();
                break;
            }
            __atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
            /* the handlers only queue SQEs, so the CQ tail is re-read once per batch */
        }
        if (starved_list && held < NBUF) {  /* buffers are back: re-arm recvs that ran out */
            struct conn *s = starved_list;
            starved_list = NULL;
            while (s) {
                struct conn *next = s->next_starved;
                s->starved = 0;
                if (s->closing) maybe_free(s);
                else queue_recv(s);
                s = next;
            }
        }
    }
}
