/*
 * The process shim in C: the same contract as shim.ts (read that file and files.ts first), in a
 * process of a few hundred KiB instead of a re-executed Bun runtime of ~50 MiB.
 *
 *   shoal-shim <task-dir> [--report-fd=N]     one task
 *   shoal-shim --launcher                     a supervisor of many tasks (launcher.ts)
 *
 * For each task it reads <task-dir>/spec.json, writes shim.json (its pid and /proc start time),
 * starts the program (spec.argv, else spec.command) in a session and process group of its own with
 * stdout/stderr piped to it, writes child.json, timestamps each output line into output.log (one
 * JSON object a line, rotated past spec.logMaxBytes into output.log.1), and when the program ends
 * kills what is left of its group and of its cgroups, appends a line to shim.log and writes
 * exit.json atomically, last. Every file has the same name, shape and meaning as the JavaScript
 * shim's, so either kind of daemon re-attaches to either kind of shim.
 *
 * One task: it forwards SIGTERM/INT/QUIT/USR1/USR2 to the program's group, and exits once the task
 * has ended. With --report-fd=N it writes "S <task-dir>\n" to fd N once the program started
 * (child.json written) or could not (exit.json written), then closes it.
 *
 * --launcher: task directories come on stdin, one a line; each is started and supervised as
 * above, all in this one process (an epoll loop: no task's end or output waits on another's).
 * shim.json names this process and says `"shared":true`. On stdout it writes "S <task-dir>\n" once
 * a program started (or could not) and "X <task-dir>\n" once its supervision is over (exit.json
 * written, or the spec was unreadable), never blocking: lines queue while the daemon does not read.
 * Signals to it are ignored (it cannot tell which task one would be for). At the end of stdin (the
 * daemon closed it, retired this supervisor, or died) it takes no more tasks and exits once the
 * last one it has ended; its tasks run on meanwhile, as a per-task shim's would.
 *
 * Built by native-shim.ts with the host's C compiler; no dependency beyond libc.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
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

static void j_free(J *j) {
  if (!j) return;
  for (int i = 0; i < j->count; i++) { j_free(j->items[i]); if (j->keys) free(j->keys[i]); }
  free(j->items);
  free(j->keys);
  free(j->str);
  free(j);
}

/* ------------------------------------------------------------------ tasks */

typedef struct Task Task;

typedef struct {
  int fd;        /* the pipe, or -1 at EOF */
  char stream;   /* 'o' or 'e' */
  char *line;    /* the line so far: grows to MAX_LINE, allocated on first output */
  size_t len, cap;
  Task *task;
} Pipe;

enum { RUNNING, KILL_GROUP, KILL_CGROUP, DRAIN };

struct Task {
  char *dir;
  J *spec;
  J *cg;              /* spec.cgroup, or NULL */
  const char *netns;  /* spec.netns, or NULL */
  int launch_steps;   /* spec.argv or spec.cgroupProcs: a 125 exit may be a launch step's */
  pid_t child;
  int status, done, phase, rounds, said_started;
  long long next_at, deadline;
  Pipe pipes[2];
  int log_fd;
  long long log_bytes, log_max;
  char last_err[LAST_ERR + 1];
  Task *next;
};

static Task *tasks;
static int task_count;
static int supervisor;      /* --launcher: many tasks, told by stdin, reported on stdout */
static int report_fd = -1;  /* one task (--report-fd=N): "S <dir>" once started */
static int ep = -1, sig_fd = -1;
static char *own_record;    /* shim.json's text: this process's pid and start time (the same for every task) */

static char *task_file(Task *t, const char *name) { return fmt("%s/%s", t->dir, name); }

/* Write a file so that readers see either nothing or all of it (owner-only, as files.ts does). */
static void write_atomic(Task *t, const char *name, const char *text) {
  char *file = task_file(t, name);
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

static char *pid_record(pid_t pid, int shared) {
  char *st = start_time(pid);
  char *text = fmt("{\"pid\":%d,\"startTime\":\"%s\"%s}\n", (int)pid, st, shared ? ",\"shared\":true" : "");
  free(st);
  return text;
}

/*
 * shim.json: the same text for every task of this process. A supervisor links the file it wrote
 * for an earlier task into the next task's directory (a link appears whole, as a rename does) instead
 * of writing a new one: creating a file is the costly part, and on a file system without a journal
 * more so the more files were deleted lately (docs/design.md).
 */
static char *record_file;

static void write_record(Task *t) {
  char *file = task_file(t, "shim.json");
  if (record_file && link(record_file, file) == 0) { free(file); return; }
  write_atomic(t, "shim.json", own_record);
  if (supervisor) { free(record_file); record_file = file; }
  else free(file);
}

/* ------------------------------------------------------------------ reports to the daemon */

/*
 * The supervisor's stdout is the daemon's pipe. It is never written blocking: a daemon that is busy
 * (or stopped reading) must not hold up every task's output. Lines wait here until it can take
 * them; a full queue or a daemon gone drops them (the daemon then polls the task files, as it does
 * for tasks it re-attached to).
 */
static Buf outq;
static size_t outq_at;
static int out_gone;
#define OUTQ_MAX (4 << 20)

static void flush_reports(void) {
  while (!out_gone && outq_at < outq.n) {
    ssize_t w = write(1, outq.p + outq_at, outq.n - outq_at);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) break;
    if (w <= 0) { out_gone = 1; break; }
    outq_at += (size_t)w;
  }
  if (outq_at == outq.n || out_gone) { outq.n = 0; outq_at = 0; }
  if (ep >= 0 && !out_gone) {
    struct epoll_event e = {.events = outq.n ? EPOLLOUT : 0, .data.ptr = &outq};
    epoll_ctl(ep, EPOLL_CTL_MOD, 1, &e);
  }
}

static void say(const char *kind, const char *dir) {
  if (out_gone) return;
  if (outq.n - outq_at > OUTQ_MAX) return;
  buf_puts(&outq, kind);
  buf_puts(&outq, " ");
  buf_puts(&outq, dir);
  buf_puts(&outq, "\n");
  flush_reports();
}

/* Starting is over (the program runs, or exit.json says why not): tell whoever waits. */
static void report_started(Task *t) {
  if (t->said_started) return;
  t->said_started = 1;
  if (supervisor) { say("S", t->dir); return; }
  if (report_fd < 0) return;
  char *line = fmt("S %s\n", t->dir);
  write_all(report_fd, line, strlen(line));
  free(line);
  close(report_fd);
  report_fd = -1;
}

/* Live (non-zombie) members of process group `pgid`. */
static int group_members(pid_t pgid) {
  if (kill(-pgid, 0) != 0 && errno == ESRCH) return 0; /* nothing left at all: no need to look */
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

static void rotate(Task *t) {
  char *log = task_file(t, "output.log"), *prev = task_file(t, "output.log.1");
  close(t->log_fd);
  rename(log, prev);
  t->log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  t->log_bytes = 0;
  free(log);
  free(prev);
}

static void emit(Task *t, char stream, const char *line, size_t n) {
  if (stream == 'e') {
    /* The last non-blank stderr line: the reason a launch step gives when it fails. */
    size_t a = 0, z = n;
    while (a < z && isspace((unsigned char)line[a])) a++;
    while (z > a && isspace((unsigned char)line[z - 1])) z--;
    if (z > a) {
      size_t k = z - a > LAST_ERR ? LAST_ERR : z - a;
      memcpy(t->last_err, line + a, k);
      t->last_err[k] = 0;
    }
  }
  Buf b = {0};
  char head[64];
  snprintf(head, sizeof head, "{\"t\":%lld,\"s\":\"%c\",\"l\":", now_ms(), stream);
  buf_puts(&b, head);
  json_string(&b, (const unsigned char *)line, n);
  buf_puts(&b, "}\n");
  if (t->log_fd >= 0) {
    if (t->log_bytes + (long long)b.n > t->log_max && t->log_bytes > 0) rotate(t);
    write_all(t->log_fd, b.p, b.n);
    t->log_bytes += (long long)b.n;
  }
  free(b.p);
}

static void line_add(Pipe *p, char c) {
  if (p->len == p->cap) {
    p->cap = p->cap ? p->cap * 4 : 256;
    if (p->cap > MAX_LINE) p->cap = MAX_LINE;
    p->line = realloc(p->line, p->cap);
    if (!p->line) { fputs("shoal-shim: out of memory\n", stderr); _exit(3); }
  }
  p->line[p->len++] = c;
}

/* Take what the pipe has; false once it has ended. */
static int pump(Pipe *p) {
  char buf[65536];
  Task *t = p->task;
  ssize_t r = read(p->fd, buf, sizeof buf);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
  if (r <= 0) {
    if (p->len) emit(t, p->stream, p->line, p->len);
    p->len = 0;
    close(p->fd); /* leaves the epoll set with it */
    p->fd = -1;
    free(p->line);
    p->line = NULL;
    p->cap = 0;
    return 0;
  }
  for (ssize_t i = 0; i < r; i++) {
    if (buf[i] == '\n') {
      size_t k = p->len;
      if (k > 0 && p->line[k - 1] == '\r') k--;
      emit(t, p->stream, p->line, k);
      p->len = 0;
      continue;
    }
    if (p->len == MAX_LINE) {
      /* A long line is cut; where the next byte continues a character, before that character. */
      size_t cut = MAX_LINE;
      if (((unsigned char)buf[i] & 0xC0) == 0x80) {
        size_t s = MAX_LINE - 1;
        while (s > MAX_LINE - 4 && ((unsigned char)p->line[s] & 0xC0) == 0x80) s--;
        if ((unsigned char)p->line[s] >= 0xC0) cut = s;
      }
      emit(t, p->stream, p->line, cut);
      memmove(p->line, p->line + cut, MAX_LINE - cut);
      p->len = MAX_LINE - cut;
    }
    line_add(p, buf[i]);
  }
  return 1;
}

/* ------------------------------------------------------------------ ending a task */

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

static int cgroup_exists(J *cg) {
  J *dirs = get(cg, "dirs");
  if (!dirs || dirs->type != J_ARR) return 0;
  for (int i = 0; i < dirs->count; i++) if (dirs->items[i]->type == J_STR && !access(dirs->items[i]->str, F_OK)) return 1;
  return 0;
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

static void free_task(Task *t) {
  for (Task **p = &tasks; *p; p = &(*p)->next) if (*p == t) { *p = t->next; task_count--; break; }
  for (int i = 0; i < 2; i++) { if (t->pipes[i].fd >= 0) close(t->pipes[i].fd); free(t->pipes[i].line); }
  if (t->log_fd >= 0) close(t->log_fd);
  j_free(t->spec);
  free(t->dir);
  free(t);
}

/* exit.json, the report, a line in shim.log; then the task is forgotten. */
static void finish(Task *t, int exit_code, const char *signal, const char *message, int start_error, int oom) {
  if (t->log_fd >= 0) { close(t->log_fd); t->log_fd = -1; }
  long long now = now_ms();
  Buf b = {0};
  char num[64];
  snprintf(num, sizeof num, "{\"exitCode\":%d,", exit_code);
  buf_puts(&b, num);
  if (signal) { buf_puts(&b, "\"signal\":"); json_string(&b, (const unsigned char *)signal, strlen(signal)); buf_puts(&b, ","); }
  buf_puts(&b, "\"message\":");
  json_string(&b, (const unsigned char *)message, strlen(message));
  if (start_error) { buf_puts(&b, ",\"startError\":"); json_string(&b, (const unsigned char *)message, strlen(message)); }
  if (oom) buf_puts(&b, ",\"oomKilled\":true");
  snprintf(num, sizeof num, ",\"time\":%lld}\n", now);
  buf_puts(&b, num);
  char *log = task_file(t, "shim.log");
  int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    char *line = fmt("%s.%03dZ %s\n", when, (int)(now % 1000), message);
    write_all(fd, line, strlen(line));
    free(line);
    close(fd);
  }
  free(log);
  /* exit.json last: once it is there, a reader may take the task as ended and remove its directory. */
  write_atomic(t, "exit.json", b.p);
  free(b.p);
  report_started(t);
  if (supervisor) say("X", t->dir);
  free_task(t);
}

/* The program ended and everything of it is gone (or the waits ran out): record how it ended. */
static void complete(Task *t) {
  int st = t->status;
  int signaled = WIFSIGNALED(st);
  int sig = signaled ? WTERMSIG(st) : 0;
  const char *sig_name = signaled ? signal_name(sig) : NULL;
  int code = signaled ? 128 + sig : WIFEXITED(st) ? WEXITSTATUS(st) : 255;
  if (t->netns && !signaled) {
    char *mark = task_file(t, "launched");
    int launched = !access(mark, F_OK);
    free(mark);
    if (!launched) {
      /* It ended before the launch got inside the namespace: the program never ran. */
      char *reason = t->last_err[0] ? xstrdup(t->last_err) : fmt("the launch exited with code %d", code);
      char *m = fmt("cannot run the task in network namespace %s: %s", t->netns, reason);
      finish(t, LAUNCH_FAILED_EXIT, NULL, m, 1, 0);
      free(m);
      free(reason);
      return;
    }
  }
  char *message = signaled ? (sig_name ? fmt("killed by %s", sig_name) : fmt("killed by signal %d", sig)) : fmt("exit code %d", code);
  if (code == LAUNCH_FAILED_EXIT && t->launch_steps) { char *m = fmt("%s (a launch step failed: see the task log)", message); free(message); message = m; }
  /* The OOM killer may have hit the program or one of its children: either way the limit was hit. */
  int oom = t->cg && t->cg->type == J_OBJ && code != 0 && oom_kills(t->cg) > 0;
  if (oom) { char *m = fmt("out of memory (Resources.Limits.MemoryBytes reached): %s", message); free(message); message = m; }
  finish(t, code, sig_name, message, 0, oom);
  free(message);
}

/*
 * After the program's end, in steps that never block the other tasks: what is left in its group
 * is killed (as a container's PID 1 would take it along), then whatever left the group
 * (setsid, double-forked daemons) in the task's cgroups, then output still buffered in the pipes
 * is read to the end (unless something outside the task holds them open). Each step is bounded.
 */
static void drain(Task *t, long long now) {
  t->phase = DRAIN;
  t->deadline = now + 2000;
  t->next_at = t->deadline;
}

static void advance(Task *t, long long now) {
  if (!t->done || (t->phase != DRAIN && now < t->next_at)) return;
  if (t->phase == KILL_GROUP) {
    kill(-t->child, SIGKILL);
    if (group_members(t->child) > 0 && ++t->rounds < 100) { t->next_at = now + 20; return; }
    if (t->cg && cgroup_exists(t->cg)) { t->phase = KILL_CGROUP; t->deadline = now + 5000; }
    else drain(t, now);
  }
  if (t->phase == KILL_CGROUP) {
    if (cgroup_kill_round(t->cg) > 0 && now < t->deadline) { t->next_at = now + 10; return; }
    drain(t, now);
  }
  if ((t->pipes[0].fd >= 0 || t->pipes[1].fd >= 0) && now < t->deadline) return;
  complete(t);
}

static void child_ended(pid_t pid, int status) {
  for (Task *t = tasks; t; t = t->next) {
    if (t->child != pid || t->done) continue;
    t->done = 1;
    t->status = status;
    t->phase = KILL_GROUP;
    t->rounds = 0;
    t->next_at = 0;
    return;
  }
}

/* ------------------------------------------------------------------ starting a task */

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

/* A line in the task's shim.log when there is no task to finish (its spec could not be read). */
static void note(const char *dir, const char *message) {
  char *log = fmt("%s/shim.log", dir);
  int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) { char *line = fmt("shoal-shim: %s\n", message); write_all(fd, line, strlen(line)); free(line); close(fd); }
  free(log);
  if (!supervisor) fprintf(stderr, "shoal-shim: %s\n", message);
}

static void watch_pipe(Pipe *p) {
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = p};
  epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &e);
}

/*
 * Read <dir>/spec.json and start its program. False when the spec cannot be read (nothing is
 * written but a note in shim.log: the daemon takes a shim that leaves no trace for one that died).
 */
static int start_task(char *dir) {
  char *spec_file = fmt("%s/spec.json", dir);
  size_t spec_len = 0;
  char *spec_text = read_file(spec_file, &spec_len);
  Reader rd = {spec_text, spec_text ? spec_text + spec_len : NULL};
  J *spec = spec_text ? parse_value(&rd, 0) : NULL;
  free(spec_text);
  char **command = spec ? str_array(get(spec, "command")) : NULL;
  const char *problem = NULL;
  char **cgroup_procs = NULL, **run = NULL;
  J *argv_j = NULL, *cgroup_procs_j = NULL;
  if (!spec || spec->type != J_OBJ || !command || !command[0]) problem = "no readable";
  else {
    argv_j = get(spec, "argv");
    /* The task's cgroups, joined between fork and exec: what launch.ts's `sh` step does for the JavaScript shim, without a program more to start. */
    cgroup_procs_j = get(spec, "cgroupProcs");
    cgroup_procs = cgroup_procs_j ? str_array(cgroup_procs_j) : NULL;
    run = argv_j ? str_array(argv_j) : command;
    if (cgroup_procs_j && !cgroup_procs) problem = "cgroupProcs is not a list of strings in";
    else if (!run || !run[0]) problem = "argv is not a list of strings in";
  }
  if (problem) {
    char *m = fmt("%s %s", problem, spec_file);
    note(dir, m);
    free(m);
    free(spec_file);
    free(command);
    free(cgroup_procs);
    if (argv_j) free(run);
    j_free(spec);
    if (supervisor) say("X", dir);
    free(dir);
    return 0;
  }
  free(spec_file);

  Task *t = xmalloc(sizeof *t);
  memset(t, 0, sizeof *t);
  t->dir = dir;
  t->spec = spec;
  t->pipes[0] = (Pipe){.fd = -1, .stream = 'o', .task = t};
  t->pipes[1] = (Pipe){.fd = -1, .stream = 'e', .task = t};
  t->log_fd = -1;
  t->child = -1;
  t->next = tasks;
  tasks = t;
  task_count++;
  J *cg = get(spec, "cgroup");
  t->cg = cg && cg->type == J_OBJ ? cg : NULL;
  t->netns = get_str(spec, "netns");
  t->launch_steps = argv_j || cgroup_procs;
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
  const char *wd = get_str(spec, "dir");
  J *uid_j = get(spec, "uid"), *gid_j = get(spec, "gid"), *max_j = get(spec, "logMaxBytes");
  t->log_max = max_j && max_j->type == J_NUM ? (long long)max_j->num : 16LL << 20;
  int uid = uid_j && uid_j->type == J_NUM ? (int)uid_j->num : -1;
  int gid = gid_j && gid_j->type == J_NUM ? (int)gid_j->num : -1;
  char **freed[] = {envp, cgroup_procs, argv_j ? run : NULL, command};

  write_record(t);
  char *log = task_file(t, "output.log");
  t->log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  struct stat st;
  t->log_bytes = t->log_fd >= 0 && !fstat(t->log_fd, &st) ? (long long)st.st_size : 0;
  free(log);

  char *failure = NULL;
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  /* Behind launch steps a missing program would only show as an exit code: look first. */
  if (argv_j && !findable(command[0], env_path ? env_path : "", wd ? wd : "/")) {
    failure = fmt("ProcessSpec.Command: cannot start \"%s\": not found or not executable", command[0]);
  } else if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
    failure = fmt("ProcessSpec.Command: cannot start \"%s\": %s", command[0], strerror(errno));
    for (int i = 0; i < 2; i++) { if (out[i] >= 0) close(out[i]); if (err[i] >= 0) close(err[i]); }
  } else {
    /*
     * vfork: the child borrows this process's memory until it execs, so no page tables are copied
     * for it (on the bench host's VM a fork and exec cost ~2.5 ms of CPU, a vfork and exec ~1.7).
     * What the child does before exec touches only its own kernel state (signal dispositions, fds,
     * session, cgroups, credentials), its stack and `exec_err`, which the parent reads once the
     * child has exec'd or exited. `environ` is set for execvp and put back below. Credentials are
     * changed with raw system calls: glibc's wrappers may signal other threads.
     */
    volatile int exec_err = 0;
    char **parent_environ = environ;
    pid_t child = vfork();
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
          const char *why = strerror(errno);
          const char *parts[] = {"shoal: cannot join cgroup ", cgroup_procs[i], ": ", why, "\n"};
          for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) write_all(2, parts[k], strlen(parts[k]));
          _exit(LAUNCH_FAILED_EXIT);
        }
        close(fd);
      }
      int e = 0;
      if (wd && chdir(wd) != 0) e = errno;
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
      exec_err = e ? e : EINVAL;
      _exit(127);
    }
    environ = parent_environ;
    int e = child < 0 ? errno : exec_err;
    close(out[1]);
    close(err[1]);
    if (e) {
      if (child > 0) waitpid(child, NULL, 0);
      close(out[0]);
      close(err[0]);
      failure = fmt("ProcessSpec.Command: cannot start \"%s\": %s", command[0], strerror(e));
    } else {
      t->child = child;
      t->pipes[0].fd = out[0];
      t->pipes[1].fd = err[0];
    }
  }
  for (size_t i = 0; i < sizeof freed / sizeof *freed; i++) {
    if (freed[i] == envp) for (int k = 0; envp[k]; k++) free(envp[k]);
    free(freed[i]);
  }
  if (failure) {
    finish(t, 127, NULL, failure, 1, 0);
    free(failure);
    return 1;
  }
  char *rec = pid_record(t->child, 0);
  write_atomic(t, "child.json", rec);
  free(rec);
  report_started(t);
  for (int i = 0; i < 2; i++) {
    fcntl(t->pipes[i].fd, F_SETFL, O_NONBLOCK);
    watch_pipe(&t->pipes[i]);
  }
  return 1;
}

/* ------------------------------------------------------------------ the loop */

static int stdin_tag;

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) child_ended(pid, status);
}

/* Task directories from stdin, one a line. False at its end (the daemon closed it, or died). */
static int read_stdin(Buf *in) {
  char chunk[4096];
  ssize_t r = read(0, chunk, sizeof chunk);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
  if (r <= 0) return 0;
  buf_put(in, chunk, (size_t)r);
  char *start = in->p, *nl;
  while ((nl = memchr(start, '\n', in->n - (size_t)(start - in->p)))) {
    *nl = 0;
    if (nl > start) start_task(xstrdup(start));
    start = nl + 1;
  }
  size_t rest = in->n - (size_t)(start - in->p);
  memmove(in->p, start, rest);
  in->n = rest;
  return 1;
}

/*
 * Serve every task until none is left and (supervisor) stdin has ended: output to the logs,
 * programs' ends (SIGCHLD), the steps after an end, new tasks from stdin, reports to stdout.
 */
static int serve(int stdin_open) {
  Buf in = {0};
  struct epoll_event evs[64];
  for (;;) {
    if (!stdin_open && task_count == 0) { flush_reports(); return 0; }
    long long now = now_ms(), wake = -1;
    for (Task *t = tasks; t; t = t->next) if (t->done && (wake < 0 || t->next_at < wake)) wake = t->next_at;
    int timeout = wake < 0 ? -1 : wake <= now ? 0 : (int)(wake - now);
    int n = epoll_wait(ep, evs, 64, timeout);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; i++) {
      void *tag = evs[i].data.ptr;
      if (tag == &sig_fd) {
        struct signalfd_siginfo si;
        while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
          int sig = (int)si.ssi_signo;
          /*
           * One task's shim passes a stop signal on to its program's group (someone signalling the
           * shim means "stop the task"). A supervisor of many tasks cannot tell whose: it ignores
           * them, and the daemon signals the group it means itself.
           */
          if (sig != SIGCHLD && sig != SIGHUP && !supervisor && tasks && tasks->child > 0 && !tasks->done) kill(-tasks->child, sig);
        }
        reap();
      } else if (tag == &stdin_tag) {
        if (!read_stdin(&in)) {
          stdin_open = 0;
          epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
        }
      } else if (tag == &outq) {
        flush_reports();
      } else {
        Pipe *p = tag;
        if (p->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) pump(p);
      }
    }
    /* No reap here: SIGCHLD is blocked (setup) before the first child exists, so every end reaches the signalfd. */
    now = now_ms();
    for (Task *t = tasks, *next; t; t = next) { next = t->next; advance(t, now); }
  }
}

static void setup(void) {
  sigset_t mask;
  sigemptyset(&mask);
  int caught[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGHUP, SIGCHLD};
  for (size_t i = 0; i < sizeof caught / sizeof *caught; i++) sigaddset(&mask, caught[i]);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  signal(SIGPIPE, SIG_IGN);
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = &sig_fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, sig_fd, &e);
  /* Three descriptors a task (two pipes, its log): as many as the hard limit allows. */
  struct rlimit rl;
  if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
}

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "--launcher")) {
    /* Only stdin and stdout are the daemon's: nothing else this process inherited. */
    close_range(3, ~0U, 0);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0 && null != 2) { dup2(null, 2); close(null); } /* stderr: the programs get pipes of their own */
    supervisor = 1;
    setup();
    own_record = pid_record(getpid(), 1);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
    struct epoll_event in = {.events = EPOLLIN, .data.ptr = &stdin_tag};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &in);
    struct epoll_event out = {.events = 0, .data.ptr = &outq};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, 1, &out) != 0) out_gone = 1;
    return serve(1);
  }
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
  setup();
  own_record = pid_record(getpid(), 0);
  if (!start_task(xstrdup(argv[1]))) return 2;
  return serve(0);
}
