/*
 * The process shim in C: the same contract as shim.ts (read that file and files.ts first), in a
 * process of a few hundred KiB instead of a re-executed Bun runtime of ~50 MiB.
 *
 *   shoal-shim <task-dir> [--report-fd=N]
 *   shoal-shim --launcher
 *
 * reads <task-dir>/spec.json, writes shim.json (its pid and /proc start time), starts the program
 * (spec.argv, else spec.command) in a session and process group of its own with stdout/stderr piped
 * to it, writes child.json, timestamps each output line into output.log (one JSON object a line,
 * rotated past spec.logMaxBytes into output.log.1), forwards SIGTERM/INT/QUIT/USR1/USR2 to the
 * group, and when the program ends kills what is left of its group and of its cgroups, writes
 * exit.json atomically, appends a line to shim.log and exits. Every file has the same name, shape
 * and meaning as the JavaScript shim's, so either kind of daemon re-attaches to either kind of shim.
 *
 * With --report-fd=N the shim writes "S <task-dir>\n" to fd N once the program started (child.json
 * written) or could not start (exit.json written), then closes it.
 *
 * --launcher starts shims for the daemon without the daemon forking (launcher.ts says why): it
 * reads task directories from stdin, one a line, and for each forks and execs itself as
 * `shoal-shim <task-dir> --report-fd=3` in a session of its own, fd 3 being the launcher's stdout;
 * when a shim exits the launcher writes "X <task-dir>\n" there. Lines of at most PIPE_BUF bytes are
 * written whole, so the shims' and the launcher's lines never mix. At the end of stdin (the daemon
 * closed it, or died) the launcher exits; its shims run on, adopted by init, as shims the daemon
 * spawned itself would.
 *
 * Built by native-shim.ts with the host's C compiler; no dependency beyond libc.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LAUNCH_FAILED_EXIT 125
#define MAX_LINE 16384
#define LAST_ERR 500

extern char **environ;

static const char *task_dir;
static int report_fd = -1;

/* ------------------------------------------------------------------ small helpers */

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) { fputs("shoal-shim: out of memory\n", stderr); _exit(3); }
  return p;
}

static char *xstrdup(const char *s) { size_t n = strlen(s) + 1; char *p = xmalloc(n); memcpy(p, s, n); return p; }

static char *fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *s = NULL;
  if (vasprintf(&s, f, ap) < 0) { fputs("shoal-shim: out of memory\n", stderr); _exit(3); }
  va_end(ap);
  return s;
}

static char *task_file(const char *name) { return fmt("%s/%s", task_dir, name); }

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = xmalloc(cap + 1);
  for (;;) {
    if (n == cap) { cap *= 2; char *b = realloc(buf, cap + 1); if (!b) { free(buf); close(fd); return NULL; } buf = b; }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { free(buf); close(fd); return NULL; }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

/* A growable byte string. */
typedef struct { char *p; size_t n, cap; } Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { fputs("shoal-shim: out of memory\n", stderr); _exit(3); }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}
static void buf_puts(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

/*
 * A JSON string of `s`, as JSON.stringify writes it from a TextDecoder's reading of the same bytes:
 * bytes that are not well-formed UTF-8 become U+FFFD, control characters are escaped.
 */
static void json_string(Buf *b, const unsigned char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  buf_put(b, "\"", 1);
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      if (c == '"') buf_put(b, "\\\"", 2);
      else if (c == '\\') buf_put(b, "\\\\", 2);
      else if (c == '\n') buf_put(b, "\\n", 2);
      else if (c == '\r') buf_put(b, "\\r", 2);
      else if (c == '\t') buf_put(b, "\\t", 2);
      else if (c == '\b') buf_put(b, "\\b", 2);
      else if (c == '\f') buf_put(b, "\\f", 2);
      else if (c < 0x20) { char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]}; buf_put(b, e, 6); }
      else buf_put(b, (const char *)&c, 1);
      i++;
      continue;
    }
    /* The length of a well-formed sequence starting here (Unicode table 3-7), or 0. */
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    size_t ok = 0;
    if (len) {
      ok = 1;
      for (size_t k = 1; k < len; k++) {
        unsigned char d = i + k < n ? s[i + k] : 0;
        unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (d < l || d > h) break;
        ok++;
      }
    }
    if (len && ok == len) { buf_put(b, (const char *)s + i, len); i += len; }
    else { buf_put(b, "\xEF\xBF\xBD", 3); i += ok ? ok : 1; } /* a maximal bad prefix is one U+FFFD */
  }
  buf_put(b, "\"", 1);
}

/* ------------------------------------------------------------------ a small JSON reader (spec.json) */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
typedef struct J {
  int type;
  double num;
  char *str;
  struct J **items;
  char **keys;
  int count;
} J;

typedef struct { const char *p, *end; } Reader;

static void skip_ws(Reader *r) { while (r->p < r->end && isspace((unsigned char)*r->p)) r->p++; }

static void put_utf8(Buf *b, unsigned cp) {
  char o[4];
  if (cp < 0x80) { o[0] = (char)cp; buf_put(b, o, 1); }
  else if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); buf_put(b, o, 2); }
  else if (cp < 0x10000) { o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 63)); o[2] = (char)(0x80 | (cp & 63)); buf_put(b, o, 3); }
  else { o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 63)); o[2] = (char)(0x80 | (cp >> 6 & 63)); o[3] = (char)(0x80 | (cp & 63)); buf_put(b, o, 4); }
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

static char *parse_string(Reader *r) {
  if (r->p >= r->end || *r->p != '"') return NULL;
  r->p++;
  Buf b = {0};
  buf_put(&b, "", 0);
  while (r->p < r->end && *r->p != '"') {
    if (*r->p != '\\') { buf_put(&b, r->p, 1); r->p++; continue; }
    if (++r->p >= r->end) break;
    char e = *r->p++;
    switch (e) {
      case 'n': buf_put(&b, "\n", 1); break;
      case 't': buf_put(&b, "\t", 1); break;
      case 'r': buf_put(&b, "\r", 1); break;
      case 'b': buf_put(&b, "\b", 1); break;
      case 'f': buf_put(&b, "\f", 1); break;
      case 'u': {
        unsigned cp;
        if (r->end - r->p < 4 || hex4(r->p, &cp)) { free(b.p); return NULL; }
        r->p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u') {
          unsigned lo;
          if (!hex4(r->p + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) { cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00); r->p += 6; }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        put_utf8(&b, cp);
        break;
      }
      default: buf_put(&b, &e, 1); break; /* \" \\ \/ */
    }
  }
  if (r->p >= r->end) { free(b.p); return NULL; }
  r->p++;
  return b.p;
}

static J *parse_value(Reader *r, int depth) {
  skip_ws(r);
  if (r->p >= r->end || depth > 32) return NULL;
  J *j = xmalloc(sizeof *j);
  memset(j, 0, sizeof *j);
  char c = *r->p;
  if (c == '"') {
    j->type = J_STR;
    if (!(j->str = parse_string(r))) return NULL;
  } else if (c == '{' || c == '[') {
    int obj = c == '{';
    j->type = obj ? J_OBJ : J_ARR;
    r->p++;
    int cap = 0;
    for (;;) {
      skip_ws(r);
      if (r->p < r->end && *r->p == (obj ? '}' : ']')) { r->p++; break; }
      if (j->count) {
        if (r->p >= r->end || *r->p != ',') return NULL;
        r->p++;
        skip_ws(r);
      }
      char *key = NULL;
      if (obj) {
        if (!(key = parse_string(r))) return NULL;
        skip_ws(r);
        if (r->p >= r->end || *r->p != ':') return NULL;
        r->p++;
      }
      J *v = parse_value(r, depth + 1);
      if (!v) return NULL;
      if (j->count == cap) {
        cap = cap ? cap * 2 : 8;
        j->items = realloc(j->items, sizeof(J *) * (size_t)cap);
        j->keys = realloc(j->keys, sizeof(char *) * (size_t)cap);
        if (!j->items || !j->keys) return NULL;
      }
      j->items[j->count] = v;
      j->keys[j->count] = key;
      j->count++;
    }
  } else if (!strncmp(r->p, "true", 4)) { j->type = J_BOOL; j->num = 1; r->p += 4; }
  else if (!strncmp(r->p, "false", 5)) { j->type = J_BOOL; r->p += 5; }
  else if (!strncmp(r->p, "null", 4)) { j->type = J_NULL; r->p += 4; }
  else {
    char *e;
    j->type = J_NUM;
    j->num = strtod(r->p, &e);
    if (e == r->p) return NULL;
    r->p = e;
  }
  return j;
}

static J *get(J *obj, const char *key) {
  if (!obj || obj->type != J_OBJ) return NULL;
  for (int i = 0; i < obj->count; i++) if (!strcmp(obj->keys[i], key)) return obj->items[i];
  return NULL;
}
static const char *get_str(J *obj, const char *key) { J *v = get(obj, key); return v && v->type == J_STR ? v->str : NULL; }

/* A NULL-terminated array of the strings of a JSON array; NULL when it is not one. */
static char **str_array(J *a) {
  if (!a || a->type != J_ARR) return NULL;
  char **out = xmalloc(sizeof(char *) * ((size_t)a->count + 1));
  for (int i = 0; i < a->count; i++) {
    if (a->items[i]->type != J_STR) return NULL;
    out[i] = a->items[i]->str;
  }
  out[a->count] = NULL;
  return out;
}

/* ------------------------------------------------------------------ task files */

/* Write a file so that readers see either nothing or all of it (owner-only, as files.ts does). */
static void write_atomic(const char *name, const char *text) {
  char *file = task_file(name);
  char *tmp = fmt("%s.tmp%d", file, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    write_all(fd, text, strlen(text));
    close(fd);
    if (rename(tmp, file) != 0) unlink(tmp);
  }
  free(tmp);
  free(file);
}

/* Field 22 of /proc/<pid>/stat (start time in clock ticks), as text; "" when unreadable. */
static char *start_time(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  char *text = read_file(path, NULL);
  if (!text) return xstrdup("");
  char *p = strrchr(text, ')');
  char *out = xstrdup("");
  if (p) {
    p += 2; /* field 3 onwards */
    for (int f = 3; f < 22 && p; f++) { p = strchr(p, ' '); if (p) p++; }
    if (p) { size_t n = strcspn(p, " \n"); free(out); out = xmalloc(n + 1); memcpy(out, p, n); out[n] = 0; }
  }
  free(text);
  return out;
}

static void write_pid_record(const char *name, pid_t pid) {
  char *st = start_time(pid);
  char *text = fmt("{\"pid\":%d,\"startTime\":\"%s\"}\n", (int)pid, st);
  write_atomic(name, text);
  free(text);
  free(st);
}

/* Tell whoever started this shim (the launcher's reader, the daemon) that starting is over. */
static void report_started(void) {
  if (report_fd < 0) return;
  char *line = fmt("S %s\n", task_dir);
  write_all(report_fd, line, strlen(line));
  free(line);
  close(report_fd);
  report_fd = -1;
}

/* Live (non-zombie) members of process group `pgid`. */
static int group_members(pid_t pgid) {
  DIR *d = opendir("/proc");
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  char path[300];
  while ((e = readdir(d))) {
    if (!isdigit((unsigned char)e->d_name[0])) continue;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    char *text = read_file(path, NULL);
    if (!text) continue;
    char *p = strrchr(text, ')');
    char state = 0;
    long pgrp = -1;
    if (p && sscanf(p + 2, "%c %*d %ld", &state, &pgrp) == 2 && pgrp == pgid && state != 'Z' && state != 'X') n++;
    free(text);
  }
  closedir(d);
  return n;
}

/* ------------------------------------------------------------------ output */

typedef struct {
  int fd;          /* the pipe, or -1 at EOF */
  char stream;     /* 'o' or 'e' */
  char line[MAX_LINE];
  size_t len;
} Pipe;

static int log_fd = -1;
static long long log_bytes, log_max;
static char last_err[LAST_ERR + 1];

static void rotate(void) {
  char *log = task_file("output.log"), *prev = task_file("output.log.1");
  close(log_fd);
  rename(log, prev);
  log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  log_bytes = 0;
  free(log);
  free(prev);
}

static void emit(char stream, const char *line, size_t n) {
  if (stream == 'e') {
    /* The last non-blank stderr line: the reason a launch step gives when it fails. */
    size_t a = 0, z = n;
    while (a < z && isspace((unsigned char)line[a])) a++;
    while (z > a && isspace((unsigned char)line[z - 1])) z--;
    if (z > a) {
      size_t k = z - a > LAST_ERR ? LAST_ERR : z - a;
      memcpy(last_err, line + a, k);
      last_err[k] = 0;
    }
  }
  Buf b = {0};
  char head[64];
  snprintf(head, sizeof head, "{\"t\":%lld,\"s\":\"%c\",\"l\":", now_ms(), stream);
  buf_puts(&b, head);
  json_string(&b, (const unsigned char *)line, n);
  buf_puts(&b, "}\n");
  if (log_fd >= 0) {
    if (log_bytes + (long long)b.n > log_max && log_bytes > 0) rotate();
    write_all(log_fd, b.p, b.n);
    log_bytes += (long long)b.n;
  }
  free(b.p);
}

static void emit_line(Pipe *p, size_t n) {
  size_t k = n;
  if (k > 0 && p->line[k - 1] == '\r') k--;
  emit(p->stream, p->line, k);
}

/* Take what the pipe has; false once it has ended. */
static int pump(Pipe *p) {
  char buf[65536];
  ssize_t r = read(p->fd, buf, sizeof buf);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
  if (r <= 0) {
    if (p->len) emit(p->stream, p->line, p->len);
    p->len = 0;
    close(p->fd);
    p->fd = -1;
    return 0;
  }
  for (ssize_t i = 0; i < r; i++) {
    if (buf[i] == '\n') { emit_line(p, p->len); p->len = 0; continue; }
    if (p->len == MAX_LINE) {
      /* A long line is cut; where the next byte continues a character, before that character. */
      size_t cut = MAX_LINE;
      if (((unsigned char)buf[i] & 0xC0) == 0x80) {
        size_t s = MAX_LINE - 1;
        while (s > MAX_LINE - 4 && ((unsigned char)p->line[s] & 0xC0) == 0x80) s--;
        if ((unsigned char)p->line[s] >= 0xC0) cut = s;
      }
      emit(p->stream, p->line, cut);
      memmove(p->line, p->line + cut, MAX_LINE - cut);
      p->len = MAX_LINE - cut;
    }
    p->line[p->len++] = buf[i];
  }
  return 1;
}

/* ------------------------------------------------------------------ the shim */

static Pipe pipes[2];
static int sig_fd = -1;
static pid_t child = -1;
static int child_status;
static int child_done;

static const char *signal_name(int sig) {
  static const char *names[] = {
    [SIGHUP] = "SIGHUP", [SIGINT] = "SIGINT", [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL", [SIGTRAP] = "SIGTRAP",
    [SIGABRT] = "SIGABRT", [SIGBUS] = "SIGBUS", [SIGFPE] = "SIGFPE", [SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1",
    [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2", [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM",
    [SIGSTKFLT] = "SIGSTKFLT", [SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP",
    [SIGTTIN] = "SIGTTIN", [SIGTTOU] = "SIGTTOU", [SIGURG] = "SIGURG", [SIGXCPU] = "SIGXCPU", [SIGXFSZ] = "SIGXFSZ",
    [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH", [SIGIO] = "SIGIO", [SIGPWR] = "SIGPWR",
    [SIGSYS] = "SIGSYS",
  };
  return sig > 0 && sig < (int)(sizeof names / sizeof *names) && names[sig] ? names[sig] : NULL;
}

/*
 * Read output, forward stop signals and watch for the program's end, for up to `ms` (-1: until the
 * program ends); returns early once the program has ended and (`until_eof`) both pipes are done.
 */
static void serve(long ms, int until_eof) {
  long long deadline = ms < 0 ? -1 : now_ms() + ms;
  for (;;) {
    if (child_done && (!until_eof || (pipes[0].fd < 0 && pipes[1].fd < 0))) {
      if (ms < 0 || until_eof) return;
    }
    long wait = -1;
    if (deadline >= 0) {
      wait = (long)(deadline - now_ms());
      if (wait <= 0) return;
    }
    struct pollfd fds[3] = {{sig_fd, POLLIN, 0}, {pipes[0].fd, POLLIN, 0}, {pipes[1].fd, POLLIN, 0}};
    int r = poll(fds, 3, (int)wait);
    if (r < 0 && errno != EINTR) return;
    if (r <= 0) continue;
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        int sig = (int)si.ssi_signo;
        if (sig == SIGCHLD) {
          if (!child_done && waitpid(child, &child_status, WNOHANG) == child) child_done = 1;
        } else if (sig != SIGHUP && child > 0) {
          /* Someone signalling the shim means "stop the task": pass it on to the whole group. */
          kill(-child, sig);
        }
      }
    }
    for (int i = 0; i < 2; i++) if (fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) pump(&pipes[i]);
  }
}

static void finish(int exit_code, const char *signal, const char *message, int start_error, int oom) {
  if (log_fd >= 0) { close(log_fd); log_fd = -1; }
  long long t = now_ms();
  Buf b = {0};
  char num[64];
  snprintf(num, sizeof num, "{\"exitCode\":%d,", exit_code);
  buf_puts(&b, num);
  if (signal) { buf_puts(&b, "\"signal\":"); json_string(&b, (const unsigned char *)signal, strlen(signal)); buf_puts(&b, ","); }
  buf_puts(&b, "\"message\":");
  json_string(&b, (const unsigned char *)message, strlen(message));
  if (start_error) { buf_puts(&b, ",\"startError\":"); json_string(&b, (const unsigned char *)message, strlen(message)); }
  if (oom) buf_puts(&b, ",\"oomKilled\":true");
  snprintf(num, sizeof num, ",\"time\":%lld}\n", t);
  buf_puts(&b, num);
  write_atomic("exit.json", b.p);
  free(b.p);
  report_started();
  char *log = task_file("shim.log");
  int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    time_t secs = (time_t)(t / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    char *line = fmt("%s.%03dZ %s\n", when, (int)(t % 1000), message);
    write_all(fd, line, strlen(line));
    free(line);
    close(fd);
  }
  free(log);
}

/* Is `program` found and executable, as Bun.which(program, {PATH, cwd}) would say? */
static int findable(const char *program, const char *path, const char *dir) {
  struct stat st;
  if (strchr(program, '/')) {
    char *p = program[0] == '/' || !dir ? xstrdup(program) : fmt("%s/%s", dir, program);
    int ok = !stat(p, &st) && S_ISREG(st.st_mode) && !access(p, X_OK);
    free(p);
    return ok;
  }
  if (!path) return 0;
  char *copy = xstrdup(path), *save = NULL;
  int ok = 0;
  for (char *d = strtok_r(copy, ":", &save); d && !ok; d = strtok_r(NULL, ":", &save)) {
    char *p = fmt("%s/%s", d, program);
    ok = !stat(p, &st) && S_ISREG(st.st_mode) && !access(p, X_OK);
    free(p);
  }
  free(copy);
  return ok;
}

/* Each cgroup's cgroup.procs, read: how many processes are still in the task's cgroups. */
static int cgroup_kill_round(J *cg) {
  J *dirs = get(cg, "dirs");
  const char *unified = get_str(cg, "unified");
  int members = 0;
  if (!dirs || dirs->type != J_ARR) return 0;
  for (int i = 0; i < dirs->count; i++) {
    if (dirs->items[i]->type != J_STR) continue;
    char *f = fmt("%s/cgroup.procs", dirs->items[i]->str);
    char *text = read_file(f, NULL);
    free(f);
    if (!text) continue;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
      pid_t pid = (pid_t)atoi(line);
      if (pid <= 0) continue;
      members++;
      kill(pid, SIGKILL);
    }
    free(text);
  }
  if (members && unified) {
    char *f = fmt("%s/cgroup.kill", unified);
    int fd = open(f, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) { write_all(fd, "1", 1); close(fd); }
    free(f);
  }
  return members;
}

/* SIGKILL everything in the task's cgroups and wait until they are empty (bounded), as killCgroup() does. */
static void kill_cgroup(J *cg) {
  J *dirs = get(cg, "dirs");
  if (!dirs || dirs->type != J_ARR) return;
  int any = 0;
  for (int i = 0; i < dirs->count; i++) if (dirs->items[i]->type == J_STR && !access(dirs->items[i]->str, F_OK)) any = 1;
  if (!any) return;
  long long deadline = now_ms() + 5000;
  while (cgroup_kill_round(cg) > 0 && now_ms() < deadline) serve(10, 0);
}

static long long oom_kills(J *cg) {
  const char *mem = get_str(cg, "memory");
  if (!mem) return 0;
  const char *mode = get_str(cg, "mode");
  char *f = fmt("%s/%s", mem, mode && !strcmp(mode, "v2") ? "memory.events" : "memory.oom_control");
  char *text = read_file(f, NULL);
  free(f);
  long long n = 0;
  if (text) {
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
      if (!strncmp(line, "oom_kill ", 9)) n = atoll(line + 9);
    }
    free(text);
  }
  return n;
}

/* ------------------------------------------------------------------ the launcher */

typedef struct { pid_t pid; char *dir; } Launched;
static Launched *launched;
static size_t launched_n, launched_cap;

static void say(const char *kind, const char *dir) {
  char *line = fmt("%s %s\n", kind, dir);
  write_all(1, line, strlen(line)); /* EPIPE once the daemon is gone: nobody to tell */
  free(line);
}

/*
 * posix_spawn rather than fork: glibc's clones without copying the launcher's page tables (a
 * vfork), which on the bench host's VM saved a third of the ~3.5 ms of CPU a fork and exec cost.
 */
static void launch_one(const char *self, char *dir) {
  char *log = fmt("%s/shim.log", dir);
  char *args[] = {(char *)self, dir, "--report-fd=3", NULL};
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, pipe_sig;
  sigemptyset(&none);
  sigemptyset(&pipe_sig);
  sigaddset(&pipe_sig, SIGPIPE);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, 1, 3); /* the report pipe, kept across exec (first: fd 3 is taken) */
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_APPEND | O_CREAT, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_init(&at);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &pipe_sig);
  pid_t pid = -1;
  int err = posix_spawn(&pid, self, &fa, &at, args, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  free(log);
  if (err) {
    fprintf(stderr, "shoal-shim launcher: cannot start a shim for %s: %s\n", dir, strerror(err));
    say("X", dir);
    free(dir);
    return;
  }
  if (launched_n == launched_cap) {
    launched_cap = launched_cap ? launched_cap * 2 : 64;
    launched = realloc(launched, sizeof *launched * launched_cap);
    if (!launched) { fputs("shoal-shim: out of memory\n", stderr); _exit(3); }
  }
  launched[launched_n++] = (Launched){pid, dir};
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (size_t i = 0; i < launched_n; i++) {
      if (launched[i].pid != pid) continue;
      say("X", launched[i].dir);
      free(launched[i].dir);
      launched[i] = launched[--launched_n];
      break;
    }
  }
}

static int launcher(const char *self) {
  /* Only stdin and stdout are the daemon's to give the shims: nothing else this process inherited. */
  close_range(3, ~0U, 0);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  signal(SIGPIPE, SIG_IGN);
  Buf in = {0};
  for (;;) {
    struct pollfd fds[2] = {{0, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) { if (errno == EINTR) continue; return 1; }
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {}
      reap();
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char chunk[4096];
      ssize_t r = read(0, chunk, sizeof chunk);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return 0; /* the daemon is gone or done: the shims run on without us */
      buf_put(&in, chunk, (size_t)r);
      char *start = in.p, *nl;
      while ((nl = memchr(start, '\n', in.n - (size_t)(start - in.p)))) {
        *nl = 0;
        if (nl > start) launch_one(self, xstrdup(start));
        start = nl + 1;
      }
      size_t rest = in.n - (size_t)(start - in.p);
      memmove(in.p, start, rest);
      in.n = rest;
    }
  }
}

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "--launcher")) return launcher(argv[0]);
  if (argc == 3 && !strncmp(argv[2], "--report-fd=", 12)) {
    report_fd = atoi(argv[2] + 12);
    /* Never the program's: it is the daemon's pipe. */
    if (report_fd > 2) fcntl(report_fd, F_SETFD, FD_CLOEXEC);
    else report_fd = -1;
    argc = 2;
  }
  if (argc != 2 || !argv[1][0]) {
    fputs("usage: shoal-shim <task-dir> [--report-fd=N] | --launcher (internal: started by the process executor)\n", stderr);
    return 2;
  }
  task_dir = argv[1];
  char *spec_file = task_file("spec.json");
  size_t spec_len = 0;
  char *spec_text = read_file(spec_file, &spec_len);
  Reader rd = {spec_text, spec_text ? spec_text + spec_len : NULL};
  J *spec = spec_text ? parse_value(&rd, 0) : NULL;
  char **command = spec ? str_array(get(spec, "command")) : NULL;
  if (!spec || spec->type != J_OBJ || !command || !command[0]) {
    fprintf(stderr, "shoal-shim: no readable %s\n", spec_file);
    return 2;
  }
  J *argv_j = get(spec, "argv");
  /* The task's cgroups, joined between fork and exec: what launch.ts's `sh` step does for the JavaScript shim, without a program more to start. */
  J *cgroup_procs_j = get(spec, "cgroupProcs");
  char **cgroup_procs = cgroup_procs_j ? str_array(cgroup_procs_j) : NULL;
  if (cgroup_procs_j && !cgroup_procs) { fprintf(stderr, "shoal-shim: %s: cgroupProcs is not a list of strings\n", spec_file); return 2; }
  char **run = argv_j ? str_array(argv_j) : command;
  if (!run || !run[0]) { fprintf(stderr, "shoal-shim: %s: argv is not a list of strings\n", spec_file); return 2; }
  J *env_j = get(spec, "env");
  int env_n = env_j && env_j->type == J_OBJ ? env_j->count : 0;
  char **envp = xmalloc(sizeof(char *) * ((size_t)env_n + 1));
  int ei = 0;
  const char *env_path = NULL;
  for (int i = 0; i < env_n; i++) {
    if (env_j->items[i]->type != J_STR) continue;
    envp[ei++] = fmt("%s=%s", env_j->keys[i], env_j->items[i]->str);
    if (!strcmp(env_j->keys[i], "PATH")) env_path = env_j->items[i]->str;
  }
  envp[ei] = NULL;
  const char *dir = get_str(spec, "dir");
  J *uid_j = get(spec, "uid"), *gid_j = get(spec, "gid"), *max_j = get(spec, "logMaxBytes"), *cg = get(spec, "cgroup");
  const char *netns = get_str(spec, "netns");
  log_max = max_j && max_j->type == J_NUM ? (long long)max_j->num : 16LL << 20;

  write_pid_record("shim.json", getpid());

  char *log = task_file("output.log");
  log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  struct stat st;
  log_bytes = log_fd >= 0 && !fstat(log_fd, &st) ? (long long)st.st_size : 0;
  free(log);

  /* Behind launch steps a missing program would only show as an exit code: look first. */
  if (argv_j && !findable(command[0], env_path ? env_path : "", dir ? dir : "/")) {
    char *m = fmt("ProcessSpec.Command: cannot start \"%s\": not found or not executable", command[0]);
    finish(127, NULL, m, 1, 0);
    return 1;
  }

  sigset_t mask, old;
  sigemptyset(&mask);
  int forwarded[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGHUP, SIGCHLD};
  for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) sigaddset(&mask, forwarded[i]);
  sigprocmask(SIG_BLOCK, &mask, &old);
  sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  signal(SIGPIPE, SIG_IGN);

  int out[2], err[2], report[2];
  if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(report, O_CLOEXEC)) {
    char *m = fmt("ProcessSpec.Command: cannot start \"%s\": %s", command[0], strerror(errno));
    finish(127, NULL, m, 1, 0);
    return 1;
  }
  int uid = uid_j && uid_j->type == J_NUM ? (int)uid_j->num : -1;
  int gid = gid_j && gid_j->type == J_NUM ? (int)gid_j->num : -1;
  /*
   * vfork: the child borrows this process's memory until it execs, so no page tables are copied
   * for it (on the bench host's VM a fork and exec cost ~2.5 ms of CPU, a vfork and exec ~1.7).
   * What the child does before exec touches only its own kernel state (signal dispositions, fds,
   * session, cgroups, credentials) and stack; `environ` is set for execvp and put back below.
   * Credentials are changed with raw system calls: glibc's wrappers may signal other threads.
   */
  char **parent_environ = environ;
  child = vfork();
  if (child == 0) {
    /* The program: a session and process group of its own, default signal handling. */
    struct sigaction dfl = {0};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) { dup2(null, 0); if (null > 0) close(null); }
    dup2(out[1], 1);
    dup2(err[1], 2);
    /* First, so that everything the program ever forks is in them (as the sh step's exit code and message). */
    for (int i = 0; cgroup_procs && cgroup_procs[i]; i++) {
      int fd = open(cgroup_procs[i], O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, "0", 1) != 1) {
        dprintf(2, "shoal: cannot join cgroup %s: %s\n", cgroup_procs[i], strerror(errno));
        _exit(LAUNCH_FAILED_EXIT);
      }
      close(fd);
    }
    int e = 0;
    if (dir && chdir(dir) != 0) e = errno;
    if (!e && gid >= 0) {
      gid_t g = (gid_t)gid;
      if (syscall(SYS_setgroups, 1, &g) != 0 && errno != EPERM) e = errno;
      if (!e && syscall(SYS_setgid, g) != 0) e = errno;
    }
    if (!e && uid >= 0 && syscall(SYS_setuid, (uid_t)uid) != 0) e = errno;
    if (!e) {
      environ = envp; /* execvp looks the program up in the program's own PATH */
      execvp(run[0], run);
      e = errno;
    }
    write_all(report[1], (const char *)&e, sizeof e);
    _exit(127);
  }
  int fork_err = child < 0 ? errno : 0;
  environ = parent_environ;
  close(out[1]);
  close(err[1]);
  close(report[1]);
  int exec_err = fork_err;
  if (!fork_err) {
    ssize_t r;
    do r = read(report[0], &exec_err, sizeof exec_err); while (r < 0 && errno == EINTR);
    if (r != (ssize_t)sizeof exec_err) exec_err = 0;
  }
  close(report[0]);
  if (exec_err) {
    if (child > 0) waitpid(child, NULL, 0);
    char *m = fmt("ProcessSpec.Command: cannot start \"%s\": %s", command[0], strerror(exec_err));
    finish(127, NULL, m, 1, 0);
    return 1;
  }
  write_pid_record("child.json", child);
  report_started();
  pipes[0] = (Pipe){.fd = out[0], .stream = 'o'};
  pipes[1] = (Pipe){.fd = err[0], .stream = 'e'};
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  /* A SIGCHLD may have come before the signalfd was read: look once. */
  if (waitpid(child, &child_status, WNOHANG) == child) child_done = 1;
  serve(-1, 0);

  /* The program is gone: anything it left in its group goes too (as a container's PID 1 would). */
  kill(-child, SIGKILL);
  for (int i = 0; i < 100 && group_members(child) > 0; i++) { kill(-child, SIGKILL); serve(20, 0); }
  /* Whatever left the group (setsid, double-forked daemons) is still in the task's cgroup. */
  if (cg && cg->type == J_OBJ) kill_cgroup(cg);
  /* Output still buffered in the pipes is read to the end, unless something outside the group holds them open. */
  serve(2000, 1);

  int signaled = WIFSIGNALED(child_status);
  int sig = signaled ? WTERMSIG(child_status) : 0;
  const char *sig_name = signaled ? signal_name(sig) : NULL;
  int code = signaled ? 128 + sig : WIFEXITED(child_status) ? WEXITSTATUS(child_status) : 255;
  if (netns && !signaled) {
    char *mark = task_file("launched");
    int launched = !access(mark, F_OK);
    free(mark);
    if (!launched) {
      /* It ended before the launch got inside the namespace: the program never ran. */
      char *reason = last_err[0] ? xstrdup(last_err) : fmt("the launch exited with code %d", code);
      char *m = fmt("cannot run the task in network namespace %s: %s", netns, reason);
      finish(LAUNCH_FAILED_EXIT, NULL, m, 1, 0);
      return 0;
    }
  }
  char *message = signaled ? (sig_name ? fmt("killed by %s", sig_name) : fmt("killed by signal %d", sig)) : fmt("exit code %d", code);
  if (code == LAUNCH_FAILED_EXIT && (argv_j || cgroup_procs)) { char *m = fmt("%s (a launch step failed: see the task log)", message); free(message); message = m; }
  /* The OOM killer may have hit the program or one of its children: either way the limit was hit. */
  int oom = cg && cg->type == J_OBJ && code != 0 && oom_kills(cg) > 0;
  if (oom) { char *m = fmt("out of memory (Resources.Limits.MemoryBytes reached): %s", message); free(message); message = m; }
  finish(code, sig_name, message, 0, oom);
  return 0;
}
