/* Benchmark only, never part of the product: an LD_PRELOAD shim that sets TCP_NODELAY on every
 * connection a process accepts. scripts/bench.sh runs a second real `spin up` under it to show
 * what Spin would serve if its HTTP trigger set TCP_NODELAY on accepted connections (Spin 4.1's
 * `serve_connection` does not): without it, an answer whose head and body hyper writes in two
 * calls (the body is not ready when the head goes out) waits for the client's delayed ACK, ~40 ms
 * (Nagle). See the README's "Run on Spin". Build: cc -shared -fPIC -O2 -o nodelay.so nodelay.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static int nodelay(int fd) {
    int on = 1;
    if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    return fd;
}

int accept(int s, struct sockaddr *addr, socklen_t *len) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    return nodelay(real(s, addr, len));
}

int accept4(int s, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    return nodelay(real(s, addr, len, flags));
}
