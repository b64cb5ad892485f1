// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Following an etcd store (store_watch.h): snapshot, then watch, in a
 * thread of its own.
 *
 * Why a thread and not curl multi in xdnatd's loop: the watch is one
 * long-lived streaming response and the snapshot one request that can
 * take a while on a large prefix or a slow member; in a thread neither
 * can delay an RSIP reply or a control request, and the loop sees only an
 * eventfd and a queue.  The thread has its own HTTP connection (the
 * store's handle belongs to the loop): a copy of the store's libcurl handle
 * (its TLS settings), on the store's endpoints in turn.
 *
 * The gateway streams one JSON object per line:
 *   {"result":{"header":{...},"created":true}}
 *   {"result":{"header":{"revision":"N"},"events":[{"type":"DELETE"?,"kv":{...}}]}}
 *   {"result":{"canceled":true,"compact_revision":"C"}}   (compacted past us)
 * Every events message becomes one batch (its events carry consecutive
 * revisions, in order); a canceled watch or a broken stream makes the
 * thread read a fresh snapshot and watch from its revision + 1.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include "store_etcd_int.h"
#include "store_watch.h"

#define W_SUBS_MAX 8

struct xd_watch {
	pthread_t th;
	bool started;
	pthread_mutex_t mu;
	int efd;
	/* queue (under mu) */
	struct xd_watch_batch *q;
	size_t nq, capq;
	uint64_t snapshots, breaks;
	int sock;                   /* the watch's socket, shut down to stop it */
	volatile bool stop;
	/* the thread's own */
	char ep[ET_MAX_EP][200];    /* the store's endpoints; ep[cur] in use */
	unsigned n_ep, cur;
	char prefix[128];
	char *subs[W_SUBS_MAX];
	unsigned nsubs;
	CURL *curl;
	struct curl_slist *hdrs;
	char *buf;                  /* a response (snapshot) or the partial line (watch) */
	size_t len, cap;
	int64_t rev;                /* what the queue brings a reader to */
	char cancel[64];            /* why the watch stream ended, if it said */
	bool failed;                /* a message could not be queued: resync */
};

int64_t xd_store_etcd_last_rev(struct xd_store *st)
{
	return st && !strcmp(st->ops->name, "etcd") ? ET(st)->last_rev : 0;
}

/* ------------------------------------------------------------- helpers */

static void batch_free(struct xd_watch_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->ev[i].key);
		free(b->ev[i].val);
	}
	free(b->ev);
	memset(b, 0, sizeof(*b));
}

void xd_watch_batches_free(struct xd_watch_batch *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		batch_free(&b[i]);
	free(b);
}

static int batch_add(struct xd_watch_batch *b, size_t *cap, char *key, char *val)
{
	if (b->n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct xd_watch_ev *e = realloc(b->ev, c * sizeof(*e));

		if (!e)
			return -ENOMEM;
		b->ev = e;
		*cap = c;
	}
	b->ev[b->n].key = key;
	b->ev[b->n].val = val;
	b->n++;
	return 0;
}

/* Hand @b (consumed) to the reader. */
static int queue(struct xd_watch *w, struct xd_watch_batch *b)
{
	uint64_t one = 1;
	int rc = 0;

	pthread_mutex_lock(&w->mu);
	if (w->nq == w->capq) {
		size_t c = w->capq ? w->capq * 2 : 16;
		struct xd_watch_batch *q = realloc(w->q, c * sizeof(*q));

		if (q) {
			w->q = q;
			w->capq = c;
		}
	}
	if (w->nq < w->capq)
		w->q[w->nq++] = *b;
	else
		rc = -ENOMEM;
	pthread_mutex_unlock(&w->mu);
	if (rc)
		batch_free(b);
	else if (write(w->efd, &one, sizeof(one)) != sizeof(one))
		rc = -errno;
	memset(b, 0, sizeof(*b));
	return rc;
}

/* The key below the prefix, if it is one we follow (malloc'ed), else NULL. */
static char *kept(struct xd_watch *w, const char *b64key, bool *ours)
{
	char *k = et_unb64(b64key, NULL), *sub;
	size_t pl = strlen(w->prefix);

	*ours = false;
	if (!k || strncmp(k, w->prefix, pl)) {
		free(k);
		return NULL;
	}
	for (unsigned i = 0; i < w->nsubs && !*ours; i++)
		*ours = !strncmp(k + pl, w->subs[i], strlen(w->subs[i]));
	sub = *ours ? strdup(k + pl) : NULL;
	free(k);
	return sub;
}

/* ------------------------------------------------------------- HTTP */

static size_t on_body(char *p, size_t sz, size_t nm, void *arg);

static curl_socket_t on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct xd_watch *w = arg;
	curl_socket_t fd;

	(void)purpose;
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	pthread_mutex_lock(&w->mu);
	w->sock = fd;
	pthread_mutex_unlock(&w->mu);
	return fd;
}

static int on_close(void *arg, curl_socket_t fd)
{
	struct xd_watch *w = arg;

	pthread_mutex_lock(&w->mu);
	if (w->sock == fd)
		w->sock = -1;
	pthread_mutex_unlock(&w->mu);
	return close(fd);
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	return ((struct xd_watch *)arg)->stop;
}

/* The keys of [@from, end of prefix) as the body of a POST. */
static json_object *range_req(struct xd_watch *w)
{
	char end[sizeof(w->prefix)];
	json_object *o = json_object_new_object();
	char *k = et_b64(w->prefix, strlen(w->prefix)), *e;
	size_t n = strlen(w->prefix);

	memcpy(end, w->prefix, n + 1);
	end[n - 1]++;              /* the prefix ends in '/' */
	e = et_b64(end, n);
	if (!o || !k || !e) {
		json_object_put(o);
		o = NULL;
	} else {
		o = et_with(et_with(o, "key", json_object_new_string(k)), "range_end",
			    json_object_new_string(e));
	}
	free(k);
	free(e);
	return o;
}

static CURLcode post(struct xd_watch *w, const char *path, json_object *req, bool stream, long *status)
{
	char url[sizeof(w->ep[0]) + 32];
	CURLcode cc;

	snprintf(url, sizeof(url), "%s%s", w->ep[w->cur], path);
	w->len = 0;
	curl_easy_setopt(w->curl, CURLOPT_URL, url);
	curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS,
			 json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
	/* a snapshot gets 30 s; a watch stream has no end */
	curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, stream ? 0L : 30000L);
	curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->curl, CURLOPT_PRIVATE, stream ? (char *)"s" : (char *)"r");
	cc = curl_easy_perform(w->curl);
	*status = 0;
	curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, status);
	return cc;
}

static int grow(struct xd_watch *w, size_t need)
{
	if (need <= w->cap)
		return 0;
	size_t c = need * 2;
	char *b = realloc(w->buf, c);

	if (!b)
		return -ENOMEM;
	w->buf = b;
	w->cap = c;
	return 0;
}

/* One line of the watch stream. */
static int on_line(struct xd_watch *w, const char *line)
{
	json_object *o = json_tokener_parse(line), *r = et_jobj(o, "result"), *evs, *e;
	struct xd_watch_batch b = { 0 };
	size_t cap = 0;
	int rc = 0;

	if (!r) {
		/* {"error": ...}: the stream is over */
		json_object *m = et_jobj(et_jobj(o, "error"), "message");

		snprintf(w->cancel, sizeof(w->cancel), "watch error: %.40s",
			 m ? json_object_get_string(m) : "unparsable message");
		json_object_put(o);
		return -EPROTO;
	}
	if (et_jget(r, "compact_revision") > 0 || json_object_get_boolean(et_jobj(r, "canceled"))) {
		snprintf(w->cancel, sizeof(w->cancel), "compacted at %lld",
			 (long long)et_jget(r, "compact_revision"));
		json_object_put(o);
		return -ESTALE;
	}
	evs = et_jobj(r, "events");
	for (size_t i = 0; !rc && evs && i < json_object_array_length(evs); i++) {
		json_object *kv, *t, *k, *v;
		bool del, ours;
		char *key, *val = NULL;

		e = json_object_array_get_idx(evs, i);
		kv = et_jobj(e, "kv");
		t = et_jobj(e, "type");
		del = t && !strcmp(json_object_get_string(t), "DELETE");
		if (!kv || !(k = et_jobj(kv, "key")))
			continue;
		key = kept(w, json_object_get_string(k), &ours);
		if (!ours)
			continue;
		if (!key || (!del && !(val = (v = et_jobj(kv, "value")) ? et_unb64(json_object_get_string(v), NULL)
								     : strdup("")))) {
			free(key);
			rc = -ENOMEM;
			break;
		}
		rc = batch_add(&b, &cap, key, val);
		if (rc) {
			free(key);
			free(val);
		}
		if (et_jget(kv, "mod_revision") > w->rev)
			w->rev = et_jget(kv, "mod_revision");
	}
	if (evs && !rc) {
		int64_t hr = et_jget(et_jobj(r, "header"), "revision");

		b.rev = w->rev > hr ? w->rev : hr;
		w->rev = b.rev;
		rc = b.n ? queue(w, &b) : 0;
	}
	batch_free(&b);
	json_object_put(o);
	if (rc)
		w->failed = true;
	return rc;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *arg)
{
	struct xd_watch *w = arg;
	size_t n = sz * nm;
	char *pv = NULL;

	curl_easy_getinfo(w->curl, CURLINFO_PRIVATE, &pv);
	if (w->stop || grow(w, w->len + n + 1))
		return 0;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	w->buf[w->len] = 0;
	if (!pv || *pv != 's')
		return n;             /* a whole response, parsed when complete */
	for (;;) {
		char *nl = memchr(w->buf, '\n', w->len);
		size_t used;

		if (!nl)
			break;
		*nl = 0;
		used = (size_t)(nl - w->buf) + 1;
		if (nl > w->buf && on_line(w, w->buf))
			return 0;         /* ends the transfer */
		memmove(w->buf, w->buf + used, w->len - used + 1);
		w->len -= used;
	}
	return n;
}

/* The followed keys at one revision, queued as a snapshot batch. */
static int snapshot(struct xd_watch *w, const char *why)
{
	json_object *req = range_req(w), *ans = NULL, *kvs;
	struct xd_watch_batch b = { .snapshot = true };
	size_t cap = 0;
	long status;
	CURLcode cc;
	int rc = 0;

	if (!req)
		return -ENOMEM;
	cc = post(w, "/v3/kv/range", req, false, &status);
	json_object_put(req);
	if (cc != CURLE_OK || status != 200 || !(ans = json_tokener_parse(w->buf ? w->buf : "")))
		return -EIO;
	b.rev = et_jget(et_jobj(ans, "header"), "revision");
	kvs = et_jobj(ans, "kvs");
	for (size_t i = 0; !rc && kvs && i < json_object_array_length(kvs); i++) {
		json_object *e = json_object_array_get_idx(kvs, i), *k = et_jobj(e, "key"), *v = et_jobj(e, "value");
		bool ours;
		char *key = k ? kept(w, json_object_get_string(k), &ours) : NULL, *val;

		if (!key)
			continue;
		val = v ? et_unb64(json_object_get_string(v), NULL) : strdup("");
		rc = val ? batch_add(&b, &cap, key, val) : -ENOMEM;
		if (rc) {
			free(key);
			free(val);
		}
	}
	json_object_put(ans);
	if (rc || b.rev <= 0) {
		batch_free(&b);
		return rc ? rc : -EIO;
	}
	snprintf(b.why, sizeof(b.why), "%s", why);
	w->rev = b.rev;
	pthread_mutex_lock(&w->mu);
	w->snapshots++;
	pthread_mutex_unlock(&w->mu);
	return queue(w, &b);
}

/* Watch from w->rev + 1 until the stream ends; why it ended in @why. */
static void watch(struct xd_watch *w, char *why, size_t len)
{
	json_object *req = range_req(w), *cr = json_object_new_object();
	char start[24];
	long status;
	CURLcode cc;

	snprintf(start, sizeof(start), "%lld", (long long)w->rev + 1);
	req = et_with(req, "start_revision", json_object_new_string(start));
	if (!cr) {
		json_object_put(req);
		req = NULL;
	}
	if (!req || et_jadd(cr, "create_request", req)) {   /* req consumed either way */
		json_object_put(cr);
		snprintf(why, len, "out of memory");
		return;
	}
	w->cancel[0] = 0;
	w->failed = false;
	cc = post(w, "/v3/watch", cr, true, &status);
	json_object_put(cr);
	if (w->cancel[0])
		snprintf(why, len, "%s", w->cancel);
	else if (w->failed)
		snprintf(why, len, "events lost (out of memory)");
	else
		snprintf(why, len, "disconnect: %.40s", cc != CURLE_OK ? curl_easy_strerror(cc) :
			 status != 200 ? "HTTP error" : "stream ended");
	pthread_mutex_lock(&w->mu);
	w->breaks++;
	pthread_mutex_unlock(&w->mu);
}

static void nap(struct xd_watch *w, unsigned ms)
{
	for (unsigned t = 0; t < ms && !w->stop; t += 50)
		usleep(50 * 1000);
}

static void *run(void *arg)
{
	struct xd_watch *w = arg;
	char why[64] = "start";
	unsigned backoff = 100;

	while (!w->stop) {
		if (snapshot(w, why)) {
			/* this member does not answer: the next one; the reader
			 * keeps what it has meanwhile */
			w->cur = (w->cur + 1) % (w->n_ep ? w->n_ep : 1);
			nap(w, backoff);
			backoff = backoff < 2000 ? backoff * 2 : 2000;
			continue;
		}
		backoff = 100;
		watch(w, why, sizeof(why));
		if (!w->stop)
			nap(w, 100);
	}
	return NULL;
}

/* ------------------------------------------------------------- handle */

int xd_watch_fd(const struct xd_watch *w)
{
	return w->efd;
}

int xd_watch_take(struct xd_watch *w, struct xd_watch_batch **b, size_t *n)
{
	uint64_t v;

	if (read(w->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	pthread_mutex_lock(&w->mu);
	*b = w->q;
	*n = w->nq;
	w->q = NULL;
	w->nq = w->capq = 0;
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void xd_watch_stats(struct xd_watch *w, uint64_t *snapshots, uint64_t *breaks)
{
	pthread_mutex_lock(&w->mu);
	*snapshots = w->snapshots;
	*breaks = w->breaks;
	pthread_mutex_unlock(&w->mu);
}

void xd_watch_stop(struct xd_watch *w)
{
	if (!w)
		return;
	if (w->started) {
		w->stop = true;
		pthread_mutex_lock(&w->mu);
		if (w->sock >= 0)
			shutdown(w->sock, SHUT_RDWR);   /* the stream ends now */
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->th, NULL);
	}
	if (w->curl)
		curl_easy_cleanup(w->curl);
	curl_slist_free_all(w->hdrs);
	for (unsigned i = 0; i < w->nsubs; i++)
		free(w->subs[i]);
	xd_watch_batches_free(w->q, w->nq);
	free(w->buf);
	if (w->efd >= 0)
		close(w->efd);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

int xd_watch_start(struct xd_store *st, const char *const *subs, struct xd_watch **out, char *err,
		   size_t errlen)
{
	struct xd_watch *w;

	*out = NULL;
	if (!st || strcmp(st->ops->name, "etcd")) {
		snprintf(err, errlen, "only an etcd store can be watched");
		return -EINVAL;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&w->mu, NULL);
	w->sock = -1;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	/* the store's members, from the one it reached last */
	for (unsigned i = 0; i < ET(st)->n_ep && i < ET_MAX_EP; i++)
		snprintf(w->ep[w->n_ep++], sizeof(w->ep[0]), "%s", ET(st)->ep[i]);
	if (!w->n_ep)
		snprintf(w->ep[w->n_ep++], sizeof(w->ep[0]), "%s", ET(st)->url);
	w->cur = ET(st)->cur_ep < w->n_ep ? ET(st)->cur_ep : 0;
	snprintf(w->prefix, sizeof(w->prefix), "%s", ET(st)->prefix);
	for (; subs && subs[w->nsubs] && w->nsubs < W_SUBS_MAX; w->nsubs++)
		if (!(w->subs[w->nsubs] = strdup(subs[w->nsubs])))
			break;
	/* a copy of the store's handle: its TLS files and protocols */
	w->curl = ET(st)->curl ? curl_easy_duphandle(ET(st)->curl) : curl_easy_init();
	w->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (w->hdrs)
		w->hdrs = curl_slist_append(w->hdrs, "Expect:");
	if (w->efd < 0 || !w->curl || !w->hdrs || (subs && subs[w->nsubs])) {
		snprintf(err, errlen, "cannot set up the watch: %s", w->efd < 0 ? strerror(errno) :
			 "out of memory or too many key prefixes");
		xd_watch_stop(w);
		return -ENOMEM;
	}
	curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, w->hdrs);
	curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(w->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	/* a member that vanishes without a reset is noticed within ~15 s */
	curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPIDLE, 5L);
	curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPINTVL, 2L);
	curl_easy_setopt(w->curl, CURLOPT_OPENSOCKETFUNCTION, on_open);
	curl_easy_setopt(w->curl, CURLOPT_OPENSOCKETDATA, w);
	curl_easy_setopt(w->curl, CURLOPT_CLOSESOCKETFUNCTION, on_close);
	curl_easy_setopt(w->curl, CURLOPT_CLOSESOCKETDATA, w);
	curl_easy_setopt(w->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(w->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(w->curl, CURLOPT_XFERINFODATA, w);
	if ((errno = pthread_create(&w->th, NULL, run, w))) {
		snprintf(err, errlen, "cannot start the watch thread: %s", strerror(errno));
		xd_watch_stop(w);
		return -EAGAIN;
	}
	w->started = true;
	*out = w;
	return 0;
}
