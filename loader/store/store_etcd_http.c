// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd backend's transport (store_etcd_int.h): etcd v3 through its
 * JSON gateway, over libcurl with json-c.  The key-value layer and the
 * transaction buffer above it are in store_etcd_kv.c.
 *
 * Why the JSON gateway and not gRPC: Debian 12 ships no gRPC C client for
 * etcd's API (grpc's C core is packaged, but not etcd's generated stubs or a
 * C protobuf runtime for them), whereas the gateway (POST /v3/kv/range, put,
 * deleterange, txn; keys and values base64) is documented and stable in
 * etcd 3.4 and needs only an HTTP client (libcurl, on every distribution)
 * and a JSON parser (json-c).  One HTTP/1.1 keep-alive connection per handle.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include "store_etcd_int.h"

char *et_b64(const char *s, size_t n)
{
	char *o = malloc(4 * ((n + 2) / 3) + 1);

	if (o)
		EVP_EncodeBlock((unsigned char *)o, (const unsigned char *)s, (int)n);
	return o;
}

/* Decode into a NUL-terminated buffer (*len bytes before the NUL). */
char *et_unb64(const char *s, size_t *len)
{
	size_t n = strlen(s);
	char *o = malloc(3 * (n / 4) + 1);
	int l;

	if (!o)
		return NULL;
	l = EVP_DecodeBlock((unsigned char *)o, (const unsigned char *)s, (int)n);
	if (l < 0) {
		free(o);
		return NULL;
	}
	if (n >= 1 && s[n - 1] == '=')
		l--;
	if (n >= 2 && s[n - 2] == '=')
		l--;
	o[l] = 0;
	if (len)
		*len = (size_t)l;
	return o;
}

static size_t on_data(char *p, size_t sz, size_t nm, void *arg)
{
	struct et *q = arg;
	size_t n = sz * nm;

	if (q->rlen + n + 1 > q->rcap) {
		size_t cap = (q->rlen + n + 1) * 2;
		char *r = realloc(q->resp, cap);

		if (!r)
			return 0;
		q->resp = r;
		q->rcap = cap;
	}
	memcpy(q->resp + q->rlen, p, n);
	q->rlen += n;
	q->resp[q->rlen] = 0;
	return n;
}

void et_endpoints_str(const struct et *q, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = 0;
	for (unsigned i = 0; i < q->n_ep && at < len; i++) {
		int n = snprintf(buf + at, len - at, "%s%s", i ? ", " : "", q->ep[i]);

		if (n < 0)
			break;
		at += (size_t)n;
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Was the request never sent (so another member may be tried even for a
 * write)?  A connection that could not be made, or TLS that failed. */
static bool not_sent(CURLcode cc)
{
	return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
	       cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_PEER_FAILED_VERIFICATION ||
	       cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_CACERT_BADFILE;
}

/* One attempt at member q->cur_ep within @budget_ms. */
static CURLcode attempt(struct et *q, const char *path, const char *body, int64_t budget_ms)
{
	char url[sizeof(q->ep[0]) + 32];
	long conn = q->timeout_ms / (q->n_ep ? q->n_ep : 1);

	if (conn < 100)
		conn = 100;
	if (conn > budget_ms)
		conn = (long)budget_ms;
	snprintf(q->url, sizeof(q->url), "%s", q->ep[q->cur_ep]);
	snprintf(url, sizeof(url), "%s%s", q->url, path);
	q->rlen = 0;
	if (curl_easy_setopt(q->curl, CURLOPT_URL, url) ||
	    curl_easy_setopt(q->curl, CURLOPT_POSTFIELDS, body) ||
	    curl_easy_setopt(q->curl, CURLOPT_CONNECTTIMEOUT_MS, conn) ||
	    curl_easy_setopt(q->curl, CURLOPT_TIMEOUT_MS, (long)budget_ms))
		return CURLE_BAD_FUNCTION_ARGUMENT;
	return curl_easy_perform(q->curl);
}

/* etcd's own refusals that mean "no quorum now": retried by the caller
 * later, never here (a write may have been proposed). */
static bool no_quorum(const char *msg)
{
	return strstr(msg, "no leader") || strstr(msg, "request timed out") ||
	       strstr(msg, "leader changed") || strstr(msg, "not capable");
}

/* Reads (range) are tried on every member until one answers; a write only
 * while no member has received it: after a timeout its outcome is unknown,
 * and the caller's next unit finds out from fresh reads. */
int et_post(struct et *q, const char *path, json_object *req, json_object **out)
{
	const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	bool idem = !strcmp(path, "/v3/kv/range");
	int64_t deadline = mono_ms() + q->timeout_ms;
	char eps[sizeof(q->ep)];
	CURLcode cc = CURLE_OK;
	long status = 0;
	unsigned tried;

	*out = NULL;
	for (tried = 0; tried < q->n_ep; tried++) {
		int64_t left = deadline - mono_ms();

		if (left <= 0) {
			cc = CURLE_OPERATION_TIMEDOUT;
			break;
		}
		cc = attempt(q, path, body, left);
		if (cc == CURLE_OK || !(not_sent(cc) || (idem && cc == CURLE_OPERATION_TIMEDOUT)))
			break;
		q->cur_ep = (q->cur_ep + 1) % q->n_ep;   /* the next member, from now on */
	}
	json_object_put(req);
	et_endpoints_str(q, eps, sizeof(eps));
	if (cc == CURLE_OPERATION_TIMEDOUT)
		return xd_store_fail(&q->base, -ETIMEDOUT, "etcd: no answer within %u ms from %s "
				     "(members down or no quorum)", q->timeout_ms, eps);
	if (cc != CURLE_OK)
		return xd_store_fail(&q->base, not_sent(cc) ? -EAGAIN : -EIO, "etcd %s: %s (members: %s)",
				     q->url, curl_easy_strerror(cc), eps);
	if (curl_easy_getinfo(q->curl, CURLINFO_RESPONSE_CODE, &status))
		status = 0;
	*out = q->rlen ? json_tokener_parse(q->resp) : NULL;
	if (status != 200 || !*out) {
		json_object *m = NULL;
		const char *msg = *out && (json_object_object_get_ex(*out, "message", &m) ||
					   json_object_object_get_ex(*out, "error", &m))
				  ? json_object_get_string(m) : "unparsable answer";
		int rc = no_quorum(msg) ? -EAGAIN : -EIO;

		xd_store_fail(&q->base, rc, "etcd %s%s: HTTP %ld: %s%s", q->url, path, status, msg,
			      rc == -EAGAIN ? " (no quorum: try again later)"
			      : strstr(msg, "too many operations")
			      ? " ([store] max-txn-ops is more than the members' --max-txn-ops: "
				"make them equal, docs/CLUSTER.md)" : "");
		json_object_put(*out);
		*out = NULL;
		return rc;
	}
	return 0;
}

int et_jadd(json_object *o, const char *key, json_object *val)
{
	if (!o || !val || json_object_object_add(o, key, val)) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

int et_jpush(json_object *a, json_object *val)
{
	if (!a || !val || json_object_array_add(a, val)) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

json_object *et_with(json_object *o, const char *key, json_object *val)
{
	if (et_jadd(o, key, val)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int et_add_b64(json_object *o, const char *field, const char *s, size_t n)
{
	char *e = et_b64(s, n);
	int rc;

	if (!e)
		return -ENOMEM;
	rc = et_jadd(o, field, json_object_new_string(e));
	free(e);
	return rc;
}

static int revision(struct et *q, int64_t *rev)
{
	json_object *req = json_object_new_object(), *ans, *h;
	int rc;

	*rev = -1;
	if (!req || et_add_b64(req, "key", q->prefix, strlen(q->prefix)) ||
	    et_jadd(req, "count_only", json_object_new_boolean(1))) {
		json_object_put(req);
		return xd_store_fail(&q->base, -ENOMEM, "out of memory");
	}
	if ((rc = et_post(q, "/v3/kv/range", req, &ans)))
		return rc;
	if (json_object_object_get_ex(ans, "header", &h))
		*rev = et_jget(h, "revision");
	json_object_put(ans);
	return *rev < 0 ? xd_store_fail(&q->base, -EIO, "etcd %s: no revision in the answer", q->url) : 0;
}

int64_t et_revision(struct et *q)
{
	int64_t rev;

	return revision(q, &rev) ? -1 : rev;
}

int et_connect(struct et *q)
{
	const struct xd_store_cfg *c = xd_store_config();

	if (!(q->curl = curl_easy_init()))
		return xd_store_fail(&q->base, -ENOMEM, "etcd: no curl handle");
	/* no "Expect: 100-continue" wait (1 s) before bodies over 1 KiB */
	q->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (q->hdrs)
		q->hdrs = curl_slist_append(q->hdrs, "Expect:");
	if (!q->hdrs)
		return xd_store_fail(&q->base, -ENOMEM, "out of memory");
	if (curl_easy_setopt(q->curl, CURLOPT_HTTPHEADER, q->hdrs) ||
	    curl_easy_setopt(q->curl, CURLOPT_WRITEFUNCTION, on_data) ||
	    curl_easy_setopt(q->curl, CURLOPT_WRITEDATA, q) ||
	    curl_easy_setopt(q->curl, CURLOPT_NOSIGNAL, 1L) ||
	    curl_easy_setopt(q->curl, CURLOPT_PROTOCOLS_STR, "http,https") ||
	    (c->cacert[0] && curl_easy_setopt(q->curl, CURLOPT_CAINFO, c->cacert)) ||
	    (c->cert[0] && curl_easy_setopt(q->curl, CURLOPT_SSLCERT, c->cert)) ||
	    (c->key[0] && curl_easy_setopt(q->curl, CURLOPT_SSLKEY, c->key)))
		return xd_store_fail(&q->base, -EINVAL, "etcd: libcurl refused an option (TLS support?)");
	{
		int64_t rev;

		return revision(q, &rev);
	}
}

void et_disconnect(struct et *q)
{
	et_unit_free(q);
	free(q->resp);
	if (q->curl)
		curl_easy_cleanup(q->curl);
	curl_slist_free_all(q->hdrs);
}
