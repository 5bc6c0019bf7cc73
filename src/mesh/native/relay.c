/*
 * shoal's ingress TCP data path: a few threads, each with its own epoll and its own connections,
 * relaying bytes between accepted clients and the backends the JavaScript side picked. Compiled at run time by Bun's TinyCC (bun:ffi `cc`), so it
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
 * Threads: one loop per shard (relay_start(n, pin): n shards, one per CPU by default, each pinned to a
 * CPU of its own unless told not to). A shard owns its
 * connections, its epoll and its mutex; its loop holds the mutex while it handles a batch of events,
 * never while it waits. Listeners are watched by shard 0 only, which accepts and hands each connection
 * to the shard with the fewest (so a burst of connections is spread, not taken by whichever thread
 * woke first); listeners are guarded by shard 0's mutex. A connection's slot, as JavaScript sees it,
 * is local slot * shards + shard. Calls from JavaScript (relay_*) take the mutex of the shard they
 * concern; relay_unlisten takes them all, in shard order, as does nothing else, so no two threads ever
 * wait on each other in a cycle (shard 0 accepting into shard k takes 0 then k). Events for
 * JavaScript go to one queue, under its own mutex (taken last), which JavaScript drains with
 * relay_drain after a byte on the notify socket (a socketpair it watches) says it is not empty.
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
int sched_getaffinity(int, usize, void *);
int pthread_setaffinity_np(usize, usize, const void *);

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
  i64 bytes_in, bytes_out; /* read from the client, from the upstream: told to JavaScript at E_CLOSED (metrics) */
};
struct lst { int fd, used; u32 gen; i64 paused_until; };

#define MAX_SHARDS 8

struct shard {
  char mutex[64] __attribute__((aligned(16)));
  int index, ep, wakefd;
  struct conn *conns;
  u32 nconns, cap_conns, free_hint;
  u32 connecting; /* connections in state 1 */
  u32 waiting; /* connections in state 0: JavaScript owes them a connect or a close */
  i64 next_deadline; /* no deadline (connect attempt, or JavaScript's grace) ends before this; 0: none */
  u32 gen_counter;
  char *iobuf;
  int cpu; /* the CPU its thread is to be pinned to, or -1 */
  int pinned; /* 1: it is */
};

static struct shard shards[MAX_SHARDS];
static int nshards;
static int notify_js = -1, notify_c = -1;
static char qmutex[64] __attribute__((aligned(16)));
static struct event *queue;
static u32 qlen, qcap;
/* listeners: watched and accepted by shard 0, guarded by its mutex */
static struct lst lsts[MAX_LISTENERS];
static int paused_count; /* listeners not accepting for a while */
static u32 listener_gen = 1;
static u32 next_shard; /* round robin among shards with as few connections */
static i64 js_grace_ms = 60000; /* relay_set_js_grace */

static i64 now_ms(void) {
  i64 ts[2];
  clock_gettime(CLOCK_MONOTONIC, ts);
  return ts[0] * 1000 + ts[1] / 1000000;
}

/* `slot` is the shard's own; JavaScript gets it as local * nshards + shard. */
/* counts: NULL, or E_CLOSED's two byte totals, written where an accept's address goes */
static void push(struct shard *sh, u32 type, u32 slot, u32 gen, i32 value, u32 listener, u32 port, const char *addr, const i64 *counts) {
  pthread_mutex_lock(qmutex);
  if (qlen == qcap) {
    u32 ncap = qcap ? qcap * 2 : 256;
    struct event *q = realloc(queue, (usize)ncap * sizeof(struct event));
    if (!q) { pthread_mutex_unlock(qmutex); return; } /* out of memory: nothing better to do than drop */
    queue = q;
    qcap = ncap;
  }
  struct event *e = &queue[qlen++];
  memset(e, 0, sizeof *e);
  e->type = type; e->slot = slot * (u32)nshards + (u32)sh->index; e->gen = gen; e->value = value; e->listener = listener; e->port = port;
  if (addr) { int i = 0; while (addr[i] && i < 55) { e->addr[i] = addr[i]; i++; } }
  if (counts) memcpy(e->addr, counts, 2 * sizeof(i64));
  if (qlen == 1) { char b = 1; write(notify_c, &b, 1); }
  pthread_mutex_unlock(qmutex);
}

static void setmask(struct shard *sh, struct leg *l, u32 mask, u32 kind, u32 slot, u32 gen) {
  if (l->fd < 0) return;
  if (mask == 0) {
    if (l->registered) epoll_ctl(sh->ep, EPOLL_CTL_DEL, l->fd, 0);
    l->registered = 0;
    l->mask = 0;
    return;
  }
  if (l->registered && l->mask == mask) return;
  struct ev e; memset(&e, 0, sizeof e);
  e.events = mask; e.lo = slot; e.hi = TAG(kind, gen);
  epoll_ctl(sh->ep, l->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, l->fd, &e);
  l->registered = 1;
  l->mask = mask;
}

static void close_conn(struct shard *sh, u32 slot, int abort) {
  struct conn *c = &sh->conns[slot];
  if (!c->used) return;
  if (abort && c->c.fd >= 0) { i32 lg[2] = {1, 0}; setsockopt(c->c.fd, SOL_SOCKET, SO_LINGER, lg, 8); }
  if (c->c.fd >= 0) close(c->c.fd);
  if (c->u.fd >= 0) close(c->u.fd);
  if (c->state == 1 && sh->connecting > 0) sh->connecting--;
  if (c->state == 0 && sh->waiting > 0) sh->waiting--;
  free(c->c2u.buf);
  free(c->u2c.buf);
  u32 gen = c->gen, listener = c->listener;
  i64 counts[2] = { c->bytes_in, c->bytes_out };
  memset(c, 0, sizeof *c);
  c->c.fd = c->u.fd = -1;
  if (slot < sh->free_hint) sh->free_hint = slot;
  sh->nconns--;
  push(sh, E_CLOSED, slot, gen, 0, listener, 0, 0, counts);
}

static int alloc_conn(struct shard *sh) {
  if (sh->nconns >= MAX_CONNS) return -1;
  if (sh->nconns == sh->cap_conns) {
    u32 ncap = sh->cap_conns ? sh->cap_conns * 2 : 1024;
    struct conn *n = realloc(sh->conns, (usize)ncap * sizeof(struct conn));
    if (!n) return -1;
    memset(n + sh->cap_conns, 0, (usize)(ncap - sh->cap_conns) * sizeof(struct conn));
    for (u32 i = sh->cap_conns; i < ncap; i++) n[i].c.fd = n[i].u.fd = -1;
    sh->conns = n;
    sh->cap_conns = ncap;
  }
  for (u32 i = sh->free_hint; i < sh->cap_conns; i++)
    if (!sh->conns[i].used) { sh->free_hint = i + 1; sh->nconns++; return (int)i; }
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
static void wait_for_js(struct shard *sh, struct conn *c) {
  c->state = 0;
  c->deadline = now_ms() + js_grace_ms;
  if (!sh->next_deadline || c->deadline < sh->next_deadline) sh->next_deadline = c->deadline;
  sh->waiting++;
}

static void wake(struct shard *sh) { u32 one[2] = {1, 0}; write(sh->wakefd, one, 8); }

/* The shard a new connection goes to: the one with the fewest, taking turns among equals. Counts of
   other shards are read without their lock: a stale one only makes the choice less even. */
static struct shard *pick_shard(void) {
  struct shard *best = 0;
  for (int k = 0; k < nshards; k++) {
    struct shard *sh = &shards[(next_shard + (u32)k) % (u32)nshards];
    if (!best || sh->nconns < best->nconns) best = sh;
  }
  next_shard = (u32)(best->index + 1) % (u32)nshards;
  return best;
}

/* Shard 0's loop, holding its mutex. */
static void do_accept(u32 li) {
  struct shard *s0 = &shards[0];
  for (;;) {
    unsigned char sa[28]; u32 salen = 28;
    int fd = accept4(lsts[li].fd, sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        /* out of descriptors or memory: stop accepting for a while rather than spin on a full queue */
        epoll_ctl(s0->ep, EPOLL_CTL_DEL, lsts[li].fd, 0);
        lsts[li].paused_until = now_ms() + 100;
        paused_count++;
      }
      return; /* EAGAIN, or a connection that died in the queue */
    }
    nodelay(fd);
    struct shard *sh = pick_shard();
    if (sh != s0) pthread_mutex_lock(sh->mutex);
    int slot = alloc_conn(sh);
    if (slot < 0) {
      if (sh != s0) pthread_mutex_unlock(sh->mutex);
      close(fd);
      continue;
    }
    struct conn *c = &sh->conns[slot];
    i64 before = sh->next_deadline;
    c->used = 1; c->state = 0; c->gen = sh->gen_counter++ & 0x3fffffff; c->listener = li;
    wait_for_js(sh, c);
    c->c.fd = fd; c->u.fd = -1;
    char text[56]; text[0] = 0;
    if (sa[0] == AF_INET) inet_ntop(AF_INET, sa + 4, text, 56);
    else inet_ntop(AF_INET6, sa + 8, text, 56);
    u32 port = ((u32)sa[2] << 8) | sa[3];
    push(sh, E_ACCEPTED, (u32)slot, c->gen, 0, li, port, text, 0);
    /* its loop may be waiting with no deadline: the grace for JavaScript's answer must end its wait */
    if (sh != s0 && sh->next_deadline != before) wake(sh);
    if (sh != s0) pthread_mutex_unlock(sh->mutex);
  }
}

/* The relay proper. Returns 0 when the connection was closed. */
static int pump(struct shard *sh, u32 slot, int from_client);
static int flush(struct shard *sh, u32 slot, int to_upstream);

static void update(struct shard *sh, u32 slot) {
  struct conn *c = &sh->conns[slot];
  /* read a side only when the other holds nothing of it; write-watch a side only when something waits for it */
  u32 cm = 0, um = 0;
  if (!c->c.eof && c->c2u.len == 0) cm |= EPOLLIN | EPOLLRDHUP;
  if (!c->u.eof && c->u2c.len == 0) um |= EPOLLIN | EPOLLRDHUP;
  if (c->u2c.len) cm |= EPOLLOUT;
  if (c->c2u.len) um |= EPOLLOUT;
  setmask(sh, &c->c, cm, KIND_CLIENT, slot, c->gen);
  setmask(sh, &c->u, um, KIND_UPSTREAM, slot, c->gen);
  if (c->c.eof && c->u.eof && c->c2u.len == 0 && c->u2c.len == 0) close_conn(sh, slot, 0);
}

static int pump(struct shard *sh, u32 slot, int from_client) {
  struct conn *c = &sh->conns[slot];
  char *iobuf = sh->iobuf;
  struct leg *src = from_client ? &c->c : &c->u, *dst = from_client ? &c->u : &c->c;
  struct dir *d = from_client ? &c->c2u : &c->u2c;
  if (src->eof || d->len) return 1;
  isize n = recv(src->fd, iobuf, CHUNK, MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return 1;
    close_conn(sh, slot, 0);
    return 0;
  }
  if (n == 0) {
    src->eof = 1;
    if (!dst->shut) { shutdown(dst->fd, SHUT_WR); dst->shut = 1; }
    return 1;
  }
  if (from_client) c->bytes_in += n; else c->bytes_out += n;
  isize s = send(dst->fd, iobuf, (usize)n, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (s < 0) {
    if (errno != EAGAIN && errno != EINTR) { close_conn(sh, slot, 0); return 0; }
    s = 0;
  }
  if (s < n) {
    d->buf = malloc((usize)(n - s));
    if (!d->buf) { close_conn(sh, slot, 0); return 0; }
    memcpy(d->buf, iobuf + s, (usize)(n - s));
    d->off = 0; d->len = (u32)(n - s);
  }
  return 1;
}

static int flush(struct shard *sh, u32 slot, int to_upstream) {
  struct conn *c = &sh->conns[slot];
  struct dir *d = to_upstream ? &c->c2u : &c->u2c;
  struct leg *dst = to_upstream ? &c->u : &c->c;
  if (!d->len) return 1;
  isize s = send(dst->fd, d->buf + d->off, d->len, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (s < 0) {
    if (errno == EAGAIN || errno == EINTR) return 1;
    close_conn(sh, slot, 0);
    return 0;
  }
  d->off += (u32)s; d->len -= (u32)s;
  if (d->len == 0) { free(d->buf); d->buf = 0; d->off = 0; }
  /* No FIN to pass on here: the side these bytes came from is not read while they wait, so its end
     is seen (and passed on, in pump) only after they are out. */
  return 1;
}

static void upstream_ready(struct shard *sh, u32 slot) {
  struct conn *c = &sh->conns[slot];
  int err = 0; u32 len = 4;
  if (getsockopt(c->u.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  sh->connecting--;
  if (err) {
    setmask(sh, &c->u, 0, KIND_UPSTREAM, slot, c->gen);
    close(c->u.fd);
    c->u.fd = -1;
    wait_for_js(sh, c);
    push(sh, E_FAILED, slot, c->gen, c->attempt, c->listener, (u32)err, 0, 0);
    return;
  }
  c->state = 2;
  push(sh, E_CONNECTED, slot, c->gen, c->attempt, c->listener, 0, 0, 0);
  update(sh, slot);
}

static void expire(struct shard *sh, i64 now) {
  i64 next = 0;
  for (u32 i = 0; i < sh->cap_conns && sh->connecting + sh->waiting > 0; i++) {
    struct conn *c = &sh->conns[i];
    if (!c->used || c->state == 2) continue;
    if (c->deadline > now) {
      if (!next || c->deadline < next) next = c->deadline;
      continue;
    }
    if (c->state == 0) { close_conn(sh, i, 1); continue; }
    sh->connecting--;
    setmask(sh, &c->u, 0, KIND_UPSTREAM, i, c->gen);
    close(c->u.fd);
    c->u.fd = -1;
    wait_for_js(sh, c);
    if (!next || c->deadline < next) next = c->deadline;
    push(sh, E_FAILED, i, c->gen, c->attempt, c->listener, ETIMEDOUT, 0, 0);
  }
  sh->next_deadline = next;
}

static void *loop(void *arg) {
  struct shard *sh = arg;
  struct ev evs[256];
  for (;;) {
    int timeout = -1;
    pthread_mutex_lock(sh->mutex);
    i64 now = now_ms(), next = now + 1000;
    int pending_timer = 0;
    for (int i = 0; sh->index == 0 && paused_count > 0 && i < MAX_LISTENERS; i++)
      if (lsts[i].used && lsts[i].paused_until) {
        if (lsts[i].paused_until <= now) {
          struct ev e; memset(&e, 0, sizeof e);
          e.events = EPOLLIN; e.lo = (u32)i; e.hi = TAG(KIND_LISTENER, lsts[i].gen);
          epoll_ctl(sh->ep, EPOLL_CTL_ADD, lsts[i].fd, &e);
          lsts[i].paused_until = 0;
          paused_count--;
        } else {
          pending_timer = 1;
          if (lsts[i].paused_until < next) next = lsts[i].paused_until;
        }
      }
    if (sh->connecting + sh->waiting > 0 && sh->next_deadline) {
      pending_timer = 1;
      if (sh->next_deadline < next) next = sh->next_deadline;
    }
    if (pending_timer) timeout = next > now ? (int)(next - now) : 0;
    pthread_mutex_unlock(sh->mutex);
    int n = epoll_wait(sh->ep, evs, 256, timeout);
    pthread_mutex_lock(sh->mutex);
    for (int i = 0; i < n; i++) {
      u32 slot = evs[i].lo, kind = evs[i].hi & 3, gen = evs[i].hi >> 2, m = evs[i].events;
      if (kind == KIND_WAKE) { u32 b[2]; read(sh->wakefd, b, 8); continue; }
      if (kind == KIND_LISTENER) {
        if (sh->index == 0 && slot < MAX_LISTENERS && lsts[slot].used && lsts[slot].gen == gen) do_accept(slot);
        continue;
      }
      if (slot >= sh->cap_conns) continue;
      struct conn *c = &sh->conns[slot];
      if (!c->used || c->gen != gen) continue; /* closed since epoll_wait returned */
      int up = kind == KIND_UPSTREAM;
      if (c->state == 1) {
        if (up) upstream_ready(sh, slot);
        continue;
      }
      if (c->state != 2) {
        if (m & (EPOLLERR | EPOLLHUP)) close_conn(sh, slot, 0);
        continue;
      }
      if (m & EPOLLERR) { close_conn(sh, slot, 0); continue; }
      if (m & EPOLLOUT) { if (!flush(sh, slot, up)) continue; }
      if (m & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) { if (!pump(sh, slot, !up)) continue; }
      if (sh->conns[slot].used && sh->conns[slot].gen == gen) update(sh, slot);
    }
    if (sh->connecting + sh->waiting == 0) sh->next_deadline = 0;
    else if (now_ms() >= sh->next_deadline) expire(sh, now_ms());
    pthread_mutex_unlock(sh->mutex);
  }
  return 0;
}

/* ---- called from JavaScript ---- */

static int started;

/* A slot from JavaScript: its shard (locked on return) and the shard's own slot; null when it is none. */
static struct shard *lock_slot(i32 slot_, u32 *local) {
  if (slot_ < 0 || !started) return 0;
  u32 slot = (u32)slot_;
  struct shard *sh = &shards[slot % (u32)nshards];
  *local = slot / (u32)nshards;
  pthread_mutex_lock(sh->mutex);
  return sh;
}

/* Starts the threads once (`threads` shards, 1 to MAX_SHARDS); returns the fd JavaScript watches, or
   -errno. pin: put thread k on the k-th CPU this process may run on, if it may run on as many CPUs as
   there are threads (else none is pinned). */
int relay_start(int threads, int pin) {
  if (started) return notify_js;
  if (threads < 1) threads = 1;
  if (threads > MAX_SHARDS) threads = MAX_SHARDS;
  int cpus[MAX_SHARDS], ncpus = 0;
  unsigned char allowed[128];
  if (pin && sched_getaffinity(0, sizeof allowed, allowed) == 0)
    for (int i = 0; i < 1024 && ncpus < threads; i++)
      if (allowed[i / 8] & (1 << (i % 8))) cpus[ncpus++] = i;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
  notify_js = sv[0];
  notify_c = sv[1];
  for (int k = 0; k < threads; k++) {
    struct shard *sh = &shards[k];
    sh->index = k;
    sh->gen_counter = 1;
    sh->cpu = ncpus == threads ? cpus[k] : -1;
    sh->ep = epoll_create1(EPOLL_CLOEXEC);
    if (sh->ep < 0) return -errno;
    sh->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (sh->wakefd < 0) return -errno;
    sh->iobuf = malloc(CHUNK);
    if (!sh->iobuf) return -ENOMEM;
    struct ev e; memset(&e, 0, sizeof e);
    e.events = EPOLLIN; e.lo = 0; e.hi = TAG(KIND_WAKE, 0);
    epoll_ctl(sh->ep, EPOLL_CTL_ADD, sh->wakefd, &e);
  }
  nshards = threads;
  for (int k = 0; k < threads; k++) {
    usize t;
    if (pthread_create(&t, 0, loop, &shards[k]) != 0) {
      if (k == 0) return -EINVAL;
      nshards = k; /* fewer threads than asked: the shards that run take every connection */
      break;
    }
    if (shards[k].cpu >= 0) {
      unsigned char mask[128]; memset(mask, 0, sizeof mask);
      mask[shards[k].cpu / 8] = (unsigned char)(1 << (shards[k].cpu % 8));
      shards[k].pinned = pthread_setaffinity_np(t, sizeof mask, mask) == 0;
    }
    pthread_detach(t);
  }
  started = 1;
  return notify_js;
}

int relay_threads(void) { return nshards; }

/* Threads pinned to a CPU of their own (0 when not asked, or when there are fewer CPUs than threads). */
int relay_pinned(void) {
  int n = 0;
  for (int k = 0; k < nshards; k++) n += shards[k].pinned;
  return n;
}

/* Binds and listens; returns the listener's slot (≥ 0) or -errno. */
int relay_listen(const char *addr, int port) {
  if (!started) return -EINVAL;
  unsigned char sa[28];
  u32 len = make_addr(addr, port, sa);
  if (!len) return -EINVAL;
  int fd = socket(sa[0], SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4);
  if (bind(fd, sa, len) < 0 || listen(fd, 511) < 0) { int e = errno; close(fd); return -e; }
  struct shard *s0 = &shards[0];
  pthread_mutex_lock(s0->mutex);
  int li = -1;
  for (int i = 0; i < MAX_LISTENERS; i++) if (!lsts[i].used) { li = i; break; }
  if (li < 0) { pthread_mutex_unlock(s0->mutex); close(fd); return -ENOMEM; }
  lsts[li].used = 1; lsts[li].fd = fd; lsts[li].paused_until = 0; lsts[li].gen = listener_gen++ & 0x3fffffff;
  struct ev e; memset(&e, 0, sizeof e);
  e.events = EPOLLIN; e.lo = (u32)li; e.hi = TAG(KIND_LISTENER, lsts[li].gen);
  epoll_ctl(s0->ep, EPOLL_CTL_ADD, fd, &e);
  pthread_mutex_unlock(s0->mutex);
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
  if (li < 0 || li >= MAX_LISTENERS || !started) return -EINVAL;
  for (int k = 0; k < nshards; k++) pthread_mutex_lock(shards[k].mutex);
  if (lsts[li].used) {
    if (lsts[li].paused_until) paused_count--;
    lsts[li].paused_until = 0;
    close(lsts[li].fd);
    lsts[li].used = 0;
    for (int k = 0; k < nshards; k++) {
      struct shard *sh = &shards[k];
      for (u32 i = 0; i < sh->cap_conns; i++) if (sh->conns[i].used && sh->conns[i].listener == (u32)li) close_conn(sh, i, 0);
    }
  }
  for (int k = nshards - 1; k >= 0; k--) pthread_mutex_unlock(shards[k].mutex);
  return 0;
}

/* Connects a waiting connection to a backend (dropping an earlier attempt's socket); 0, or -errno
   when the attempt failed at once (E_FAILED is not sent then), or 1 when the connection is gone. */
int relay_connect(i32 slot_, i32 gen_, const char *addr, int port, int attempt, int timeout_ms) {
  u32 gen = (u32)gen_, slot;
  unsigned char sa[28];
  u32 len = make_addr(addr, port, sa);
  if (!len) return -EINVAL;
  struct shard *sh = lock_slot(slot_, &slot);
  if (!sh) return 1;
  if (slot >= sh->cap_conns || !sh->conns[slot].used || sh->conns[slot].gen != gen || sh->conns[slot].state == 2) { pthread_mutex_unlock(sh->mutex); return 1; }
  struct conn *c = &sh->conns[slot];
  if (c->u.fd >= 0) {
    setmask(sh, &c->u, 0, KIND_UPSTREAM, slot, gen);
    close(c->u.fd);
    c->u.fd = -1;
    if (c->state == 1) { sh->connecting--; c->state = 0; sh->waiting++; }
  }
  int fd = socket(sa[0], SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { int e = errno; pthread_mutex_unlock(sh->mutex); return -e; }
  nodelay(fd);
  if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) { int e = errno; close(fd); pthread_mutex_unlock(sh->mutex); return -e; }
  c->u.fd = fd; c->u.registered = 0; c->u.mask = 0; c->u.eof = 0; c->u.shut = 0;
  sh->waiting--;
  c->state = 1;
  c->attempt = attempt;
  c->deadline = now_ms() + timeout_ms;
  if (!sh->next_deadline || c->deadline < sh->next_deadline) sh->next_deadline = c->deadline;
  sh->connecting++;
  setmask(sh, &c->u, EPOLLOUT, KIND_UPSTREAM, slot, gen);
  pthread_mutex_unlock(sh->mutex);
  wake(sh); /* the loop's wait must now end by this deadline */
  return 0;
}

/* Closes a connection (abort: with a reset); E_CLOSED follows. */
int relay_close(i32 slot_, i32 gen_, int abort) {
  u32 gen = (u32)gen_, slot;
  struct shard *sh = lock_slot(slot_, &slot);
  if (!sh) return 0;
  if (slot < sh->cap_conns && sh->conns[slot].used && sh->conns[slot].gen == gen) close_conn(sh, slot, abort);
  pthread_mutex_unlock(sh->mutex);
  return 0;
}

/* Copies up to `max` queued events into `out`; returns how many. */
int relay_drain(struct event *out, int max) {
  pthread_mutex_lock(qmutex);
  int n = (int)qlen < max ? (int)qlen : max;
  memcpy(out, queue, (usize)n * sizeof(struct event));
  if ((u32)n < qlen) {
    for (u32 i = (u32)n; i < qlen; i++) queue[i - n] = queue[i];
  }
  qlen -= (u32)n;
  pthread_mutex_unlock(qmutex);
  return n;
}

/* For tests: how long a connection may wait for JavaScript's answer. */
int relay_set_js_grace(int ms) {
  for (int k = 0; k < nshards; k++) pthread_mutex_lock(shards[k].mutex);
  js_grace_ms = ms;
  for (int k = nshards - 1; k >= 0; k--) pthread_mutex_unlock(shards[k].mutex);
  return 0;
}

int relay_event_size(void) { return (int)sizeof(struct event); }

/* Open connections in every shard; with `shard` ≥ 0, in that one only. */
int relay_connections(int shard) {
  int n = 0;
  for (int k = 0; k < nshards; k++) {
    if (shard >= 0 && k != shard) continue;
    pthread_mutex_lock(shards[k].mutex);
    n += (int)shards[k].nconns;
    pthread_mutex_unlock(shards[k].mutex);
  }
  return n;
}
