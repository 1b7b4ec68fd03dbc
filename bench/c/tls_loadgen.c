/* Closed-loop TLS echo load generator for bench/echo.py: one blocking thread per connection.

   tls_loadgen -p PORT -c CONNS -s SIZE -w WARMUP_S -d DURATION_S [-P SERVER_PID] [-a ADDR]

   Opens CONNS TLS connections (OpenSSL, no certificate verification: the server's certificate
   is a throwaway one made at bench time) to ADDR:PORT (default 127.0.0.1). Each thread sends a
   SIZE-byte message and reads the whole echo before sending the next. After WARMUP_S seconds
   the measured window starts; it lasts DURATION_S. At both ends of the window the main thread
   reads the server's CPU time (/proc/SERVER_PID/stat utime+stime, and the summed schedstat of
   its threads) and this process's CPU time, so handshakes and warm-up stay outside the
   figures. Prints one line, as loadgen.c:

   requests=N elapsed=S client_cpu=S server_cpu=S server_sched=S server_user=S lost=0

   Exit status 1 on any error (handshake failure, connection closed, short echo).
   Build: gcc -O2 -pthread -o tls_loadgen tls_loadgen.c -lssl -lcrypto */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static SSL_CTX *ctx;
static struct sockaddr_in addr;
static size_t size;
static atomic_ullong done;
static atomic_int stop, ready;

static void die(const char *what) {
    fprintf(stderr, "tls_loadgen: %s: %s\n", what, errno ? strerror(errno) : "error");
    ERR_print_errors_fp(stderr);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double self_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
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
    char *p = strrchr(text, ')');
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

static void *client(void *arg) {
    (void)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) die("SSL_connect");
    char *sbuf = malloc(size), *rbuf = malloc(size);
    memset(sbuf, 'x', size);
    atomic_fetch_add(&ready, 1);
    while (!atomic_load(&stop)) {
        if (SSL_write(ssl, sbuf, (int)size) != (int)size) die("SSL_write");
        size_t got = 0;
        while (got < size) {
            int n = SSL_read(ssl, rbuf + got, (int)(size - got));
            if (n <= 0) die("SSL_read (connection closed?)");
            got += n;
        }
        atomic_fetch_add(&done, 1);
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    free(sbuf);
    free(rbuf);
    return NULL;
}

int main(int argc, char **argv) {
    int port = 0, conns = 1, pid = 0, opt;
    double warmup = 0.3, duration = 1.0;
    const char *host = "127.0.0.1";
    size = 1024;
    while ((opt = getopt(argc, argv, "p:c:s:w:d:P:a:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'c': conns = atoi(optarg); break;
        case 's': size = strtoul(optarg, NULL, 10); break;
        case 'w': warmup = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'P': pid = atoi(optarg); break;
        case 'a': host = optarg; break;
        default: fprintf(stderr, "usage: see the comment at the top\n"); return 2;
        }
    }
    if (!port || conns < 1 || !size) { fprintf(stderr, "tls_loadgen: bad arguments\n"); return 2; }
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, host, &addr.sin_addr);
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) die("SSL_CTX_new");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    pthread_t *threads = calloc(conns, sizeof *threads);
    for (int i = 0; i < conns; i++)
        if (pthread_create(&threads[i], NULL, client, NULL)) die("pthread_create");
    double t0 = now();
    while (atomic_load(&ready) < conns) {
        if (now() - t0 > 30) { errno = 0; die("handshakes not done after 30 s"); }
        usleep(1000);
    }
    usleep((useconds_t)(warmup * 1e6));
    unsigned long long r0 = atomic_load(&done);
    double u0 = 0, u1 = 0;
    double s0 = pid ? server_stat(pid, &u0) : 0, q0 = pid ? server_sched(pid) : 0;
    double c0 = self_cpu(), w0 = now();
    usleep((useconds_t)(duration * 1e6));
    unsigned long long r1 = atomic_load(&done);
    double s1 = pid ? server_stat(pid, &u1) : 0, q1 = pid ? server_sched(pid) : 0;
    double c1 = self_cpu(), w1 = now();
    atomic_store(&stop, 1);
    for (int i = 0; i < conns; i++) pthread_join(threads[i], NULL);
    printf("requests=%llu elapsed=%.6f client_cpu=%.6f server_cpu=%.6f server_sched=%.6f "
           "server_user=%.6f lost=0\n", r1 - r0, w1 - w0, c1 - c0, s1 - s0, q1 - q0,
           pid ? u1 - u0 : -1);
    return 0;
}
