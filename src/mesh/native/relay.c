/*
 * shoal's ingress TCP data path: one thread, one epoll, relaying bytes between accepted clients and
 * the backends the JavaScript side picked. Compiled at run time by Bun's TinyCC (bun:ffi `cc`), so it
 * includes no header: the few libc calls and Linux constants it needs are declared below (the same on
 * x86-64 and arm64, except struct epoll_event's packing).
 *
 * The split (see src/mesh/native-relay.ts and docs/mesh.md): JavaScript decides — which backend, when
 * to give up, how many connections — and this file only moves bytes. A client is not read until its
 * upstream has connected, so its first bytes wait in the kernel and a refused backend can be replaced
 * by another without the client noticing. Then each readable side is read into one buffer and written
 * straight to the other; a side that does not take it all gets the rest held (one chunk per direction,
 * at most CHUNK bytes) and the reading side is left alone until it drains. FINs are passed on once the
 * bytes before them are out.
 *
 * Threads: calls from JavaScript (relay_*) and the loop take the one mutex; the loop holds it while it
 * handles a batch of events, never while it waits. Events for JavaScript go to a queue it drains with
 * relay_drain, after a byte on the notify socket (a socketpair it watches) says the queue is not empty.
 */
typedef unsigned int u32;
typedef int i32;
typedef unsigned long usize;
typedef long isize;
typedef long long i64;

/* libc */
int socket(int, int, int);
int socketpair(int, int, int, int *);
int bind(int, const void *, u32);
int listen(int, int);
int accept4(int, void *, u32 *, int);
int connect(int, const void *, u32);
int getsockname(int, void *, u32 *);
int getsockopt(int, int, int, void *, u32 *);
int setsockopt(int, int, int, const void *, u32);
isize recv(int, void *, usize, int);
isize send(int, const void *, usize, int);
int shutdown(int, int);
int close(int);
isize write(int, const void *, usize);
isize read(int, void *, usize);
int eventfd(u32, int);
int epoll_create1(int);
int epoll_ctl(int, int, int, void *);
int epoll_wait(int, void *, int, int);
int inet_pton(int, const char *, void *);
const char *inet_ntop(int, const void *, char *, u32);
int *__errno_location(void);
void *calloc(usize, usize);
void *malloc(usize);
void *realloc(void *, usize);
void free(void *);
void *memcpy(void *, const void *, usize);
void *memset(void *, int, usize);
int clock_gettime(int, void *);
int pthread_create(usize *, const void *, void *(*)(void *), void *);
int pthread_detach(usize);
int pthread_mutex_lock(void *);
int pthread_mutex_unlock(void *);

#define errno (*__errno_location())
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_NONBLOCK 04000
#define SOCK_CLOEXEC 02000000
#define SOL_SOCKET 1
#define SO_REUSEADDR 2
#define SO_ERROR 4
#define SO_LINGER 13
#define IPPROTO_TCP 6
#define TCP_NODELAY 1
#define MSG_DONTWAIT 0x40
#define MSG_NOSIGNAL 0x4000
#define SHUT_WR 1
#define EPOLLIN 0x001
#define EPOLLOUT 0x004
#define EPOLLERR 0x008
#define EPOLLHUP 0x010
#define EPOLLRDHUP 0x2000
#define EPOLL_CTL_ADD 1
#define EPOLL_CTL_DEL 2
#define EPOLL_CTL_MOD 3
#define EPOLL_CLOEXEC 02000000
#define EFD_NONBLOCK 04000
#define EFD_CLOEXEC 02000000
#define CLOCK_MONOTONIC 1
#define EAGAIN 11
#define EINTR 4
#define EINPROGRESS 115
#define ETIMEDOUT 110
#define ENOMEM 12
#define EMFILE 24
#define ENFILE 23
#define ENOBUFS 105
#define EINVAL 22

/* struct epoll_event is packed (12 bytes) on x86-64 only; TinyCC ignores the packed attribute, so the
   layout is spelt out. `lo` carries a slot index, `hi` its kind and generation. */
#if defined(__x86_64__)
struct ev { u32 events; u32 lo; u32 hi; };
#else
struct ev { u32 events; u32 pad; u32 lo; u32 hi; };
#endif

#define CHUNK 65536
#define MAX_CONNS (1 << 20)
#define MAX_LISTENERS 4096
#define KIND_WAKE 0
#define KIND_LISTENER 1
#define KIND_CLIENT 2
#define KIND_UPSTREAM 3
#define TAG(kind, gen) (((gen) << 2) | (kind))

/* events for JavaScript: 80 bytes each; every one names its listener (the accepting port) */
#define E_ACCEPTED 1
#define E_CONNECTED 2
#define E_FAILED 3
#define E_CLOSED 4
struct event { u32 type; u32 slot; u32 gen; i32 value; u32 listener; u32 port; char addr[56]; };

struct dir { char *buf; u32 off, len; };
struct leg { int fd; u32 mask; int registered; int eof; int shut; };
struct conn {
  int used, state; /* state: 0 waiting for JS, 1 connecting, 2 relaying */
  u32 gen, listener;
  i32 attempt;
  i64 deadline;
  struct leg c, u;
  struct dir c2u, u2c; /* bytes read from one side that the other has not taken yet */
};
struct lst { int fd, used; u32 gen; i64 paused_until; };

static char mutex[64] __attribute__((aligned(16)));
static int ep = -1, wakefd = -1, notify_js = -1, notify_c = -1;
static struct conn *conns;
static u32 nconns, cap_conns, free_hint;
static struct lst lsts[MAX_LISTENERS];
static struct event *queue;
static u32 qlen, qcap;
static u32 connecting; /* connections in state 1 */
static u32 waiting; /* connections in state 0: JavaScript owes them a connect or a close */
static i64 js_grace_ms = 60000; /* relay_set_js_grace */
static i64 next_deadline; /* no deadline (connect attempt, or JavaScript's grace) ends before this; 0: none */
static int paused_count; /* listeners not accepting for a while */
static char iobuf[CHUNK];
static u32 gen_counter = 1;

static i64 now_ms(void) {
  i64 ts[2];
  clock_gettime(CLOCK_MONOTONIC, ts);
  return ts[0] * 1000 + ts[1] / 1000000;
}

static void push(u32 type, u32 slot, u32 gen, i32 value, u32 listener, u32 port, const char *addr) {
  if (qlen == qcap) {
    u32 ncap = qcap ? qcap * 2 : 256;
    struct event *q = realloc(queue, (usize)ncap * sizeof(struct event));
    if (!q) return; /* out of memory: nothing better to do than drop */
    queue = q;
    qcap = ncap;
  }
  struct event *e = &queue[qlen++];
  memset(e, 0, sizeof *e);
  e->type = type; e->slot = slot; e->gen = gen; e->value = value; e->listener = listener; e->port = port;
  if (addr) { int i = 0; while (addr[i] && i < 55) { e->addr[i] = addr[i]; i++; } }
  if (qlen == 1) { char b = 1; write(notify_c, &b, 1); }
}

static void setmask(struct leg *l, u32 mask, u32 kind, u32 slot, u32 gen) {
  if (l->fd < 0) return;
  if (mask == 0) {
    if (l->registered) epoll_ctl(ep, EPOLL_CTL_DEL, l->fd, 0);
    l->registered = 0;
    l->mask = 0;
    return;
  }
  if (l->registered && l->mask == mask) return;
  struct ev e; memset(&e, 0, sizeof e);
  e.events = mask; e.lo = slot; e.hi = TAG(kind, gen);
  epoll_ctl(ep, l->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, l->fd, &e);
  l->registered = 1;
  l->mask = mask;
}

static void close_conn(u32 slot, int abort) {
  struct conn *c = &conns[slot];
  if (!c->used) return;
  if (abort && c->c.fd >= 0) { i32 lg[2] = {1, 0}; setsockopt(c->c.fd, SOL_SOCKET, SO_LINGER, lg, 8); }
  if (c->c.fd >= 0) close(c->c.fd);
  if (c->u.fd >= 0) close(c->u.fd);
  if (c->state == 1 && connecting > 0) connecting--;
  if (c->state == 0 && waiting > 0) waiting--;
  free(c->c2u.buf);
  free(c->u2c.buf);
  u32 gen = c->gen, listener = c->listener;
  memset(c, 0, sizeof *c);
  c->c.fd = c->u.fd = -1;
  if (slot < free_hint) free_hint = slot;
  nconns--;
  push(E_CLOSED, slot, gen, 0, listener, 0, 0);
}

static int alloc_conn(void) {
  if (nconns >= MAX_CONNS) return -1;
  if (nconns == cap_conns) {
    u32 ncap = cap_conns ? cap_conns * 2 : 1024;
    struct conn *n = realloc(conns, (usize)ncap * sizeof(struct conn));
    if (!n) return -1;
    memset(n + cap_conns, 0, (usize)(ncap - cap_conns) * sizeof(struct conn));
    for (u32 i = cap_conns; i < ncap; i++) n[i].c.fd = n[i].u.fd = -1;
    conns = n;
    cap_conns = ncap;
  }
  for (u32 i = free_hint; i < cap_conns; i++)
    if (!conns[i].used) { free_hint = i + 1; nconns++; return (int)i; }
  return -1;
}

static void nodelay(int fd) { int one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, 4); }

/* sockaddr from an address string and port; returns its length, 0 when the address is not one */
static u32 make_addr(const char *addr, int port, unsigned char *sa) {
  memset(sa, 0, 28);
  if (inet_pton(AF_INET, addr, sa + 4) == 1) {
    sa[0] = AF_INET; sa[2] = (unsigned char)(port >> 8); sa[3] = (unsigned char)port;
    return 16;
  }
  if (inet_pton(AF_INET6, addr, sa + 8) == 1) {
    sa[0] = AF_INET6; sa[2] = (unsigned char)(port >> 8); sa[3] = (unsigned char)port;
    return 28;
  }
  return 0;
}

/* State 0: JavaScript answers every accepted or failed connection at once (a connect or a close). One
   it never answers (a lost event would be a bug) is closed after js_grace_ms rather than kept forever. */
static void wait_for_js(struct conn *c) {
  c->state = 0;
  c->deadline = now_ms() + js_grace_ms;
  if (!next_deadline || c->deadline < next_deadline) next_deadline = c->deadline;
  waiting++;
}

static void do_accept(u32 li) {
  for (;;) {
    unsigned char sa[28]; u32 salen = 28;
    int fd = accept4(lsts[li].fd, sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        /* out of descriptors or memory: stop accepting for a while rather than spin on a full queue */
        epoll_ctl(ep, EPOLL_CTL_DEL, lsts[li].fd, 0);
        lsts[li].paused_until = now_ms() + 100;
        paused_count++;
      }
      return; /* EAGAIN, or a connection that died in the queue */
    }
    int slot = alloc_conn();
    if (slot < 0) { close(fd); continue; }
    nodelay(fd);
    struct conn *c = &conns[slot];
    c->used = 1; c->state = 0; c->gen = gen_counter++ & 0x3fffffff; c->listener = li;
    wait_for_js(c);
    c->c.fd = fd; c->u.fd = -1;
    char text[56]; text[0] = 0;
    if (sa[0] == AF_INET) inet_ntop(AF_INET, sa + 4, text, 56);
    else inet_ntop(AF_INET6, sa + 8, text, 56);
    u32 port = ((u32)sa[2] << 8) | sa[3];
    push(E_ACCEPTED, (u32)slot, c->gen, 0, li, port, text);
  }
}

/* The relay proper. Returns 0 when the connection was closed. */
static int pump(u32 slot, int from_client);
static int flush(u32 slot, int to_upstream);

static void update(u32 slot) {
  struct conn *c = &conns[slot];
  /* read a side only when the other holds nothing of it; write-watch a side only when something waits for it */
  u32 cm = 0, um = 0;
  if (!c->c.eof && c->c2u.len == 0) cm |= EPOLLIN | EPOLLRDHUP;
  if (!c->u.eof && c->u2c.len == 0) um |= EPOLLIN | EPOLLRDHUP;
  if (c->u2c.len) cm |= EPOLLOUT;
  if (c->c2u.len) um |= EPOLLOUT;
  setmask(&c->c, cm, KIND_CLIENT, slot, c->gen);
  setmask(&c->u, um, KIND_UPSTREAM, slot, c->gen);
  if (c->c.eof && c->u.eof && c->c2u.len == 0 && c->u2c.len == 0) close_conn(slot, 0);
}

static int pump(u32 slot, int from_client) {
  struct conn *c = &conns[slot];
  struct leg *src = from_client ? &c->c : &c->u, *dst = from_client ? &c->u : &c->c;
  struct dir *d = from_client ? &c->c2u : &c->u2c;
  if (src->eof || d->len) return 1;
  isize n = recv(src->fd, iobuf, CHUNK, MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return 1;
    close_conn(slot, 0);
    return 0;
  }
  if (n == 0) {
    src->eof = 1;
    if (!dst->shut) { shutdown(dst->fd, SHUT_WR); dst->shut = 1; }
    return 1;
  }
  isize s = send(dst->fd, iobuf, (usize)n, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (s < 0) {
    if (errno != EAGAIN && errno != EINTR) { close_conn(slot, 0); return 0; }
    s = 0;
  }
  if (s < n) {
    d->buf = malloc((usize)(n - s));
    if (!d->buf) { close_conn(slot, 0); return 0; }
    memcpy(d->buf, iobuf + s, (usize)(n - s));
    d->off = 0; d->len = (u32)(n - s);
  }
  return 1;
}

static int flush(u32 slot, int to_upstream) {
  struct conn *c = &conns[slot];
  struct dir *d = to_upstream ? &c->c2u : &c->u2c;
  struct leg *dst = to_upstream ? &c->u : &c->c;
  if (!d->len) return 1;
  isize s = send(dst->fd, d->buf + d->off, d->len, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (s < 0) {
    if (errno == EAGAIN || errno == EINTR) return 1;
    close_conn(slot, 0);
    return 0;
  }
  d->off += (u32)s; d->len -= (u32)s;
  if (d->len == 0) { free(d->buf); d->buf = 0; d->off = 0; }
  /* No FIN to pass on here: the side these bytes came from is not read while they wait, so its end
     is seen (and passed on, in pump) only after they are out. */
  return 1;
}

static void upstream_ready(u32 slot) {
  struct conn *c = &conns[slot];
  int err = 0; u32 len = 4;
  if (getsockopt(c->u.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  connecting--;
  if (err) {
    setmask(&c->u, 0, KIND_UPSTREAM, slot, c->gen);
    close(c->u.fd);
    c->u.fd = -1;
    wait_for_js(c);
    push(E_FAILED, slot, c->gen, c->attempt, c->listener, (u32)err, 0);
    return;
  }
  c->state = 2;
  push(E_CONNECTED, slot, c->gen, c->attempt, c->listener, 0, 0);
  update(slot);
}

static void expire(i64 now) {
  i64 next = 0;
  for (u32 i = 0; i < cap_conns && connecting + waiting > 0; i++) {
    struct conn *c = &conns[i];
    if (!c->used || c->state == 2) continue;
    if (c->deadline > now) {
      if (!next || c->deadline < next) next = c->deadline;
      continue;
    }
    if (c->state == 0) { close_conn(i, 1); continue; }
    connecting--;
    setmask(&c->u, 0, KIND_UPSTREAM, i, c->gen);
    close(c->u.fd);
    c->u.fd = -1;
    wait_for_js(c);
    if (!next || c->deadline < next) next = c->deadline;
    push(E_FAILED, i, c->gen, c->attempt, c->listener, ETIMEDOUT, 0);
  }
  next_deadline = next;
}

static void *loop(void *arg) {
  struct ev evs[256];
  (void)arg;
  for (;;) {
    int timeout = -1;
    pthread_mutex_lock(mutex);
    i64 now = now_ms(), next = now + 1000;
    int pending_timer = 0;
    for (int i = 0; paused_count > 0 && i < MAX_LISTENERS; i++)
      if (lsts[i].used && lsts[i].paused_until) {
        if (lsts[i].paused_until <= now) {
          struct ev e; memset(&e, 0, sizeof e);
          e.events = EPOLLIN; e.lo = (u32)i; e.hi = TAG(KIND_LISTENER, lsts[i].gen);
          epoll_ctl(ep, EPOLL_CTL_ADD, lsts[i].fd, &e);
          lsts[i].paused_until = 0;
          paused_count--;
        } else {
          pending_timer = 1;
          if (lsts[i].paused_until < next) next = lsts[i].paused_until;
        }
      }
    if (connecting + waiting > 0 && next_deadline) {
      pending_timer = 1;
      if (next_deadline < next) next = next_deadline;
    }
    if (pending_timer) timeout = next > now ? (int)(next - now) : 0;
    pthread_mutex_unlock(mutex);
    int n = epoll_wait(ep, evs, 256, timeout);
    pthread_mutex_lock(mutex);
    for (int i = 0; i < n; i++) {
      u32 slot = evs[i].lo, kind = evs[i].hi & 3, gen = evs[i].hi >> 2, m = evs[i].events;
      if (kind == KIND_WAKE) { u32 b[2]; read(wakefd, b, 8); continue; }
      if (kind == KIND_LISTENER) {
        if (slot < MAX_LISTENERS && lsts[slot].used && lsts[slot].gen == gen) do_accept(slot);
        continue;
      }
      if (slot >= cap_conns) continue;
      struct conn *c = &conns[slot];
      if (!c->used || c->gen != gen) continue; /* closed since epoll_wait returned */
      int up = kind == KIND_UPSTREAM;
      if (c->state == 1) {
        if (up) upstream_ready(slot);
        continue;
      }
      if (c->state != 2) {
        if (m & (EPOLLERR | EPOLLHUP)) close_conn(slot, 0);
        continue;
      }
      if (m & EPOLLERR) { close_conn(slot, 0); continue; }
      if (m & EPOLLOUT) { if (!flush(slot, up)) continue; }
      if (m & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) { if (!pump(slot, !up)) continue; }
      if (conns[slot].used && conns[slot].gen == gen) update(slot);
    }
    if (connecting + waiting == 0) next_deadline = 0;
    else if (now_ms() >= next_deadline) expire(now_ms());
    pthread_mutex_unlock(mutex);
  }
  return 0;
}

/* ---- called from JavaScript ---- */

static int started;

/* Starts the thread once; returns the fd JavaScript watches, or -errno. */
int relay_start(void) {
  if (started) return notify_js;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return -errno;
  wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd < 0) return -errno;
  struct ev e; memset(&e, 0, sizeof e);
  e.events = EPOLLIN; e.lo = 0; e.hi = TAG(KIND_WAKE, 0);
  epoll_ctl(ep, EPOLL_CTL_ADD, wakefd, &e);
  notify_js = sv[0];
  notify_c = sv[1];
  usize t;
  if (pthread_create(&t, 0, loop, 0) != 0) return -EINVAL;
  pthread_detach(t);
  started = 1;
  return notify_js;
}

/* Binds and listens; returns the listener's slot (≥ 0) or -errno. */
int relay_listen(const char *addr, int port) {
  unsigned char sa[28];
  u32 len = make_addr(addr, port, sa);
  if (!len) return -EINVAL;
  int fd = socket(sa[0], SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4);
  if (bind(fd, sa, len) < 0 || listen(fd, 511) < 0) { int e = errno; close(fd); return -e; }
  pthread_mutex_lock(mutex);
  int li = -1;
  for (int i = 0; i < MAX_LISTENERS; i++) if (!lsts[i].used) { li = i; break; }
  if (li < 0) { pthread_mutex_unlock(mutex); close(fd); return -ENOMEM; }
  lsts[li].used = 1; lsts[li].fd = fd; lsts[li].paused_until = 0; lsts[li].gen = gen_counter++ & 0x3fffffff;
  struct ev e; memset(&e, 0, sizeof e);
  e.events = EPOLLIN; e.lo = (u32)li; e.hi = TAG(KIND_LISTENER, lsts[li].gen);
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
  pthread_mutex_unlock(mutex);
  return li;
}

int relay_listener_port(int li) {
  if (li < 0 || li >= MAX_LISTENERS || !lsts[li].used) return -EINVAL;
  unsigned char sa[28]; u32 len = 28;
  if (getsockname(lsts[li].fd, sa, &len) < 0) return -errno;
  return ((int)sa[2] << 8) | sa[3];
}

/* Stops listening; the connections it accepted are closed too (each gets its E_CLOSED). */
int relay_unlisten(int li) {
  if (li < 0 || li >= MAX_LISTENERS) return -EINVAL;
  pthread_mutex_lock(mutex);
  if (lsts[li].used) {
    if (lsts[li].paused_until) paused_count--;
    lsts[li].paused_until = 0;
    close(lsts[li].fd);
    lsts[li].used = 0;
    for (u32 i = 0; i < cap_conns; i++) if (conns[i].used && conns[i].listener == (u32)li) close_conn(i, 0);
  }
  pthread_mutex_unlock(mutex);
  return 0;
}

/* Connects a waiting connection to a backend (dropping an earlier attempt's socket); 0, or -errno
   when the attempt failed at once (E_FAILED is not sent then), or 1 when the connection is gone. */
int relay_connect(i32 slot_, i32 gen_, const char *addr, int port, int attempt, int timeout_ms) {
  u32 slot = (u32)slot_, gen = (u32)gen_;
  unsigned char sa[28];
  u32 len = make_addr(addr, port, sa);
  if (!len) return -EINVAL;
  pthread_mutex_lock(mutex);
  if (slot >= cap_conns || !conns[slot].used || conns[slot].gen != gen || conns[slot].state == 2) { pthread_mutex_unlock(mutex); return 1; }
  struct conn *c = &conns[slot];
  if (c->u.fd >= 0) {
    setmask(&c->u, 0, KIND_UPSTREAM, slot, gen);
    close(c->u.fd);
    c->u.fd = -1;
    if (c->state == 1) { connecting--; c->state = 0; waiting++; }
  }
  int fd = socket(sa[0], SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { int e = errno; pthread_mutex_unlock(mutex); return -e; }
  nodelay(fd);
  if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) { int e = errno; close(fd); pthread_mutex_unlock(mutex); return -e; }
  c->u.fd = fd; c->u.registered = 0; c->u.mask = 0; c->u.eof = 0; c->u.shut = 0;
  waiting--;
  c->state = 1;
  c->attempt = attempt;
  c->deadline = now_ms() + timeout_ms;
  if (!next_deadline || c->deadline < next_deadline) next_deadline = c->deadline;
  connecting++;
  setmask(&c->u, EPOLLOUT, KIND_UPSTREAM, slot, gen);
  pthread_mutex_unlock(mutex);
  u32 one[2] = {1, 0};
  write(wakefd, one, 8); /* the loop's wait must now end by this deadline */
  return 0;
}

/* Closes a connection (abort: with a reset); E_CLOSED follows. */
int relay_close(i32 slot_, i32 gen_, int abort) {
  u32 slot = (u32)slot_, gen = (u32)gen_;
  pthread_mutex_lock(mutex);
  if (slot < cap_conns && conns[slot].used && conns[slot].gen == gen) close_conn(slot, abort);
  pthread_mutex_unlock(mutex);
  return 0;
}

/* Copies up to `max` queued events into `out`; returns how many. */
int relay_drain(struct event *out, int max) {
  pthread_mutex_lock(mutex);
  int n = (int)qlen < max ? (int)qlen : max;
  memcpy(out, queue, (usize)n * sizeof(struct event));
  if ((u32)n < qlen) {
    for (u32 i = (u32)n; i < qlen; i++) queue[i - n] = queue[i];
  }
  qlen -= (u32)n;
  pthread_mutex_unlock(mutex);
  return n;
}

/* For tests: how long a connection may wait for JavaScript's answer. */
int relay_set_js_grace(int ms) { pthread_mutex_lock(mutex); js_grace_ms = ms; pthread_mutex_unlock(mutex); return 0; }

int relay_event_size(void) { return (int)sizeof(struct event); }
int relay_connections(void) {
  pthread_mutex_lock(mutex);
  int n = (int)nconns;
  pthread_mutex_unlock(mutex);
  return n;
}
