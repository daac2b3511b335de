#!/usr/bin/env python3
"""Wharf's own OCI Distribution checks, on top of the official conformance suite.

The official suite (opencontainers/distribution-spec, conformance/; run by
conformance/official.sh) covers the four workflows of the spec.  This runner
checks only what it does not: response headers and bodies the suite never
looks at, content read back byte for byte, error codes, paging by Link, tag
and blob deletion that must really happen, and a few places where Wharf is
stricter than the spec.  conformance/README.md lists every check and why the
official suite does not cover it.

Works against any registry.  Standard library only.  Configuration comes from
the same environment variables as the official suite; see conformance/README.md.
With OCI_USERNAME/OCI_PASSWORD it sends no credentials until challenged, then
follows the Docker token flow, and checks that it did.

Output: one line per test, `PASS name` or `FAIL name: reason`, then a final
line `N passed, M failed`.  Exit status is 1 when any test failed, 2 when the
configuration is unusable.
"""

import base64
import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.parse

# --------------------------------------------------------------------------
# Media types and other constants
# --------------------------------------------------------------------------

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_EMPTY = "application/vnd.oci.empty.v1+json"
MT_OCTET = "application/octet-stream"

ACCEPT_MANIFESTS = ", ".join([
    MT_MANIFEST,
    MT_INDEX,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])

EMPTY_BLOB = b"{}"

# artifact types used by the referrers tests
AT_SBOM = "application/vnd.wharf.conformance.sbom.v1+json"
AT_SIGNATURE = "application/vnd.wharf.conformance.signature.v1+json"
AT_BUNDLE = "application/vnd.wharf.conformance.bundle.v1+json"
AT_ORPHAN = "application/vnd.wharf.conformance.orphan.v1+json"
MT_DATA = "application/vnd.wharf.conformance.data.v1"

REDIRECTS = (301, 302, 303, 307, 308)
TIMEOUT = 120


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------

def env_true(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


ROOT_URL = os.environ.get("OCI_ROOT_URL", "").strip().rstrip("/")
NAMESPACE = os.environ.get("OCI_NAMESPACE", "").strip().strip("/")
CROSSMOUNT_NAMESPACE = os.environ.get("OCI_CROSSMOUNT_NAMESPACE", "").strip().strip("/")
USERNAME = os.environ.get("OCI_USERNAME", "")
PASSWORD = os.environ.get("OCI_PASSWORD", "")
DEBUG = env_true("OCI_DEBUG")

# unique per run, so reruns against the same registry never collide
RUN = "%x%s" % (int(time.time()), os.urandom(2).hex())


# --------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------

class Failure(Exception):
    """A check failed; the message is the reason printed after FAIL."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def preview(data, limit=300):
    if not data:
        return "<empty>"
    text = data[:limit].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else "." for c in text)
    return text + ("..." if len(data) > limit else "")


def add_query(url, params):
    """Append query parameters to a URL that may already have a query."""
    if not params:
        return url
    sep = "&" if urllib.parse.urlsplit(url).query else "?"
    return url + sep + urllib.parse.urlencode(params)


def media_type(resp):
    value = resp.header("Content-Type") or ""
    return value.split(";")[0].strip()


# --------------------------------------------------------------------------
# HTTP client with registry auth
# --------------------------------------------------------------------------

class Response:
    def __init__(self, method, url, status, headers, body):
        self.method = method
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name)

    @property
    def path(self):
        parts = urllib.parse.urlsplit(self.url)
        return parts.path + ("?" + parts.query if parts.query else "")

    def describe(self):
        return "%s %s -> %d" % (self.method, self.path, self.status)

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as err:
            raise Failure("%s: body is not JSON (%s): %s"
                          % (self.describe(), err, preview(self.body)))

    def location(self):
        """The Location header, resolved (it may be relative or absolute)."""
        value = self.header("Location")
        check(value, "%s: no Location header" % self.describe())
        return urllib.parse.urljoin(self.url, value)


def debug(direction, line):
    if DEBUG:
        print("%s %s" % (direction, line), file=sys.stderr)


def parse_challenges(values):
    """Return the parameters of the first Bearer challenge, or None."""
    for value in values or []:
        match = re.match(r"\s*Bearer\s+(.*)", value, re.IGNORECASE)
        if match:
            return dict((k.lower(), v) for k, v in
                        re.findall(r'(\w+)="([^"]*)"', match.group(1)))
    return None


class Client:
    """Sends no credentials until the registry asks for them.  On a 401 with
    `WWW-Authenticate: Bearer realm=...` it gets a token from the realm (with
    Basic credentials when it has them) and retries with it, like docker; on
    a 401 with a Basic challenge it retries with Basic credentials.  Tokens
    that worked are reused for the same repository and access."""

    def __init__(self, root, username, password):
        self.root = root
        self.root_netloc = urllib.parse.urlsplit(root).netloc
        self.basic = None
        if username or password:
            raw = ("%s:%s" % (username, password)).encode()
            self.basic = "Basic " + base64.b64encode(raw).decode()
        self.use_basic = False  # the registry challenged with Basic
        self.tokens = {}   # scope string -> bearer token
        self.hints = {}    # (read|write, repository, mount sources) -> token that worked
        # what the auth checks look at
        self.challenges = 0       # 401s from the registry with a Bearer challenge
        self.realms = set()       # realms of those challenges
        self.token_fetches = 0    # token requests to a realm answered with a token
        self.bearer_accepted = 0  # registry requests with a Bearer token not answered 401
        self.basic_sent = 0       # registry requests that carried Basic credentials

    # -- public API -------------------------------------------------------

    def url(self, target, query=None):
        if not target.startswith(("http://", "https://")):
            target = self.root + target
        return add_query(target, query)

    def request(self, method, target, headers=None, body=None, query=None,
                follow_redirects=True, anonymous=False):
        """Send a request; body is bytes, or a list of bytes to send with
        Transfer-Encoding: chunked.  GET/HEAD redirects are followed.
        anonymous=True sends it as is, without answering an auth challenge."""
        url = self.url(target, query)
        headers = dict(headers or {})
        for _ in range(6):
            if anonymous:
                resp = self._send(method, url, headers, body)
            else:
                resp = self._with_auth(method, url, headers, body)
            location = resp.header("Location")
            if (follow_redirects and method in ("GET", "HEAD")
                    and resp.status in REDIRECTS and location):
                url = urllib.parse.urljoin(url, location)
                continue
            return resp
        return resp

    def get(self, target, **kw):
        return self.request("GET", target, **kw)

    def head(self, target, **kw):
        return self.request("HEAD", target, **kw)

    # -- auth -------------------------------------------------------------

    @staticmethod
    def _hint_key(method, url):
        parts = urllib.parse.urlsplit(url)
        match = re.match(r"/v2/(.+?)/(manifests|blobs|tags|referrers)/", parts.path)
        repo = match.group(1) if match else parts.path
        # a mount needs access to its source repository too
        sources = tuple(v for k, v in urllib.parse.parse_qsl(parts.query) if k == "from")
        return ("read" if method in ("GET", "HEAD") else "write", repo, sources)

    def _with_auth(self, method, url, headers, body):
        ours = urllib.parse.urlsplit(url).netloc == self.root_netloc
        if not ours or any(k.lower() == "authorization" for k in headers):
            return self._send(method, url, headers, body)
        key = self._hint_key(method, url)
        sent = dict(headers)
        token = self.hints.get(key)
        if token:
            sent["Authorization"] = "Bearer " + token
        elif self.use_basic:
            sent["Authorization"] = self.basic
        resp = self._send_counted(method, url, sent, body)
        if resp.status != 401:
            return resp
        values = resp.headers.get_all("WWW-Authenticate") or []
        challenge = parse_challenges(values)
        if challenge and "realm" in challenge:
            self.challenges += 1
            self.realms.add(challenge["realm"])
            scope = challenge.get("scope", "")
            token = self.tokens.get(scope)
            if token is None or sent.get("Authorization") == "Bearer " + token:
                token = self._fetch_token(challenge)
                if token is None:
                    return resp
                self.tokens[scope] = token
            sent["Authorization"] = "Bearer " + token
            resp = self._send_counted(method, url, sent, body)
            if resp.status != 401:
                self.hints[key] = token
            return resp
        basic = any(v.strip().lower().startswith("basic") for v in values)
        if basic and self.basic and sent.get("Authorization") != self.basic:
            self.use_basic = True
            sent["Authorization"] = self.basic
            return self._send_counted(method, url, sent, body)
        return resp

    def _send_counted(self, method, url, headers, body):
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            self.basic_sent += 1
        resp = self._send(method, url, headers, body)
        if auth.startswith("Bearer ") and resp.status != 401:
            self.bearer_accepted += 1
        return resp

    def _fetch_token(self, challenge):
        """GET the realm of a Bearer challenge; the token, or None."""
        query = []
        if challenge.get("service"):
            query.append(("service", challenge["service"]))
        for scope in challenge.get("scope", "").split():
            query.append(("scope", scope))
        url = add_query(challenge["realm"], query)
        headers = {"Authorization": self.basic} if self.basic else {}
        try:
            resp = self._send("GET", url, headers, None)
        except OSError as err:
            debug("!!", "token request failed: %s" % err)
            return None
        if resp.status != 200:
            return None
        try:
            doc = json.loads(resp.body)
        except ValueError:
            return None
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if token:
            self.token_fetches += 1
        return token

    # -- transport --------------------------------------------------------

    def _send(self, method, url, headers, body):
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(netloc, timeout=TIMEOUT)
        else:
            conn = http.client.HTTPConnection(netloc, timeout=TIMEOUT)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        if DEBUG:
            debug(">>", "%s %s" % (method, url))
            for name, value in headers.items():
                if name.lower() == "authorization":
                    value = value.split(" ")[0] + " <redacted>"
                debug(">>", "%s: %s" % (name, value))
            if isinstance(body, list):
                debug(">>", "[chunked body, %d bytes]" % sum(map(len, body)))
            elif body:
                debug(">>", "[body, %d bytes] %s" % (len(body), preview(body, 200)))
        try:
            if isinstance(body, list):
                conn.request(method, target, body=iter(body), headers=headers)
            else:
                conn.request(method, target, body=body, headers=headers)
            raw = conn.getresponse()
            data = raw.read()
        finally:
            conn.close()
        if DEBUG:
            debug("<<", "%d %s" % (raw.status, raw.reason))
            for name, value in raw.headers.items():
                debug("<<", "%s: %s" % (name, value))
            if data:
                debug("<<", "[body, %d bytes] %s" % (len(data), preview(data, 500)))
        return Response(method, url, raw.status, raw.headers, data)


CLIENT = Client(ROOT_URL, USERNAME, PASSWORD)


# --------------------------------------------------------------------------
# Assertions on responses
# --------------------------------------------------------------------------

def expect_status(resp, *statuses):
    if resp.status not in statuses:
        expected = " or ".join(str(s) for s in statuses)
        extra = ""
        if resp.status >= 400 and resp.body:
            extra = ": " + preview(resp.body, 200)
        raise Failure("%s, expected %s%s" % (resp.describe(), expected, extra))


def error_codes(resp):
    """Validate the OCI error body format and return its error codes."""
    doc = resp.json()
    errors = doc.get("errors") if isinstance(doc, dict) else None
    check(isinstance(errors, list) and errors,
          "%s: error body has no non-empty 'errors' list: %s"
          % (resp.describe(), preview(resp.body)))
    codes = []
    for err in errors:
        check(isinstance(err, dict), "%s: error entry is not an object" % resp.describe())
        code = err.get("code")
        check(isinstance(code, str) and re.fullmatch(r"[A-Z_]+", code),
              "%s: error code %r is not uppercase letters and underscores"
              % (resp.describe(), code))
        check("message" not in err or isinstance(err["message"], str),
              "%s: error message is not a string" % resp.describe())
        codes.append(code)
    return codes


def expect_error(resp, status, *codes):
    """Expect an error status and a JSON error body with one of the codes."""
    expect_status(resp, status)
    got = error_codes(resp)
    check(any(c in codes for c in got),
          "%s: error codes %s, expected %s" % (resp.describe(), got, " or ".join(codes)))


def expect_digest_header(resp, digest):
    value = resp.header("Docker-Content-Digest")
    check(value, "%s: no Docker-Content-Digest header" % resp.describe())
    check(value == digest, "%s: Docker-Content-Digest is %s, expected %s"
          % (resp.describe(), value, digest))


def expect_range(resp, end):
    value = resp.header("Range")
    check(value is not None, "%s: no Range header" % resp.describe())
    check(value == "0-%d" % end, "%s: Range is %r, expected '0-%d'"
          % (resp.describe(), value, end))


def next_link(resp):
    """The rel="next" target of a Link header, resolved, or None."""
    for value in resp.headers.get_all("Link") or []:
        for part in value.split(","):
            match = re.match(r"\s*<([^>]*)>\s*;(.*)", part)
            if match and re.search(r'rel\s*=\s*"?next"?', match.group(2)):
                return urllib.parse.urljoin(resp.url, match.group(1))
    return None


def is_sorted(names):
    return names == sorted(names) or names == sorted(names, key=str.lower)


# --------------------------------------------------------------------------
# Content: blobs, images, artifacts
# --------------------------------------------------------------------------

def descriptor(mt, data, **extra):
    desc = {"mediaType": mt, "digest": sha256(data), "size": len(data)}
    desc.update(extra)
    return desc


class Manifest:
    """Manifest bytes plus the blobs it needs pushed first."""

    def __init__(self, doc, blobs=()):
        self.doc = doc
        # indented, not compact: a registry that re-serializes the JSON
        # instead of storing the bytes as pushed changes the digest
        self.bytes = (json.dumps(doc, indent=3) + "\n").encode()
        self.digest = sha256(self.bytes)
        self.media_type = doc["mediaType"]
        self.blobs = list(blobs)

    def descriptor(self, **extra):
        return descriptor(self.media_type, self.bytes, **extra)


def make_image(label, layer_size=2048):
    """A small image: a random layer and a config describing it."""
    layer = os.urandom(layer_size)
    config = canonical({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"org.wharf.conformance": label}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
    })
    doc = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": descriptor(MT_CONFIG, config),
        "layers": [descriptor(MT_LAYER, layer)],
        "annotations": {"org.wharf.conformance.run": RUN, "org.wharf.conformance.label": label},
    }
    return Manifest(doc, [config, layer])


def make_artifact(subject, name, artifact_type=None, config_type=MT_EMPTY):
    """An artifact manifest with a subject: empty config, one data layer."""
    data = ("%s %s %s" % (name, RUN, os.urandom(8).hex())).encode()
    doc = {"schemaVersion": 2, "mediaType": MT_MANIFEST}
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["config"] = descriptor(config_type, EMPTY_BLOB)
    doc["layers"] = [descriptor(MT_DATA, data)]
    doc["subject"] = subject
    doc["annotations"] = {"org.wharf.conformance.name": name,
                          "org.wharf.conformance.run": RUN}
    return Manifest(doc, [EMPTY_BLOB, data])


def make_index(manifests, **fields):
    doc = {"schemaVersion": 2, "mediaType": MT_INDEX}
    if "artifactType" in fields:
        doc["artifactType"] = fields.pop("artifactType")
    doc["manifests"] = manifests
    doc.update(fields)
    return Manifest(doc)


def push_blob(repo, data):
    """POST + monolithic PUT; raises Failure unless the registry says 201."""
    resp = CLIENT.request("POST", "/v2/%s/blobs/uploads/" % repo)
    expect_status(resp, 202)
    resp = CLIENT.request("PUT", resp.location(), body=data,
                          query={"digest": sha256(data)},
                          headers={"Content-Type": MT_OCTET})
    expect_status(resp, 201)
    return sha256(data)


def put_manifest(repo, reference, manifest, query=None):
    return CLIENT.request("PUT", "/v2/%s/manifests/%s" % (repo, reference),
                          body=manifest.bytes, query=query,
                          headers={"Content-Type": manifest.media_type})


def push_manifest(repo, reference, manifest):
    """Push the manifest's blobs, then the manifest; expects 201."""
    for blob in manifest.blobs:
        push_blob(repo, blob)
    resp = put_manifest(repo, reference, manifest)
    expect_status(resp, 201)
    return resp


def get_manifest(repo, reference, method="GET"):
    return CLIENT.request(method, "/v2/%s/manifests/%s" % (repo, reference),
                          headers={"Accept": ACCEPT_MANIFESTS})


def check_manifest(resp, manifest, head=False):
    """What a client pulling a manifest relies on."""
    expect_status(resp, 200)
    expect_digest_header(resp, manifest.digest)
    check(media_type(resp) == manifest.media_type,
          "%s: Content-Type is %r, expected %r"
          % (resp.describe(), resp.header("Content-Type"), manifest.media_type))
    if head:
        length = resp.header("Content-Length")
        check(length is not None and length.isdigit()
              and int(length) == len(manifest.bytes),
              "%s: Content-Length is %r, expected %d"
              % (resp.describe(), length, len(manifest.bytes)))
    else:
        check(sha256(resp.body) == manifest.digest,
              "%s: body hashes to %s, expected %s"
              % (resp.describe(), sha256(resp.body), manifest.digest))


def check_blob(resp, data):
    expect_status(resp, 200)
    check(sha256(resp.body) == sha256(data), "%s: body hashes to %s, expected %s"
          % (resp.describe(), sha256(resp.body), sha256(data)))


def get_tags(repo, query=None):
    resp = CLIENT.get("/v2/%s/tags/list" % repo, query=query)
    expect_status(resp, 200)
    doc = resp.json()
    check(isinstance(doc, dict), "%s: body is not an object" % resp.describe())
    tags = doc.get("tags") or []
    check(isinstance(tags, list) and all(isinstance(t, str) for t in tags),
          "%s: 'tags' is not a list of strings" % resp.describe())
    return resp, doc, tags


def get_referrers(repo, digest, query=None):
    resp = CLIENT.get("/v2/%s/referrers/%s" % (repo, digest), query=query)
    expect_status(resp, 200)
    check(media_type(resp) == MT_INDEX, "%s: Content-Type is %r, expected %r"
          % (resp.describe(), resp.header("Content-Type"), MT_INDEX))
    doc = resp.json()
    check(isinstance(doc, dict) and doc.get("schemaVersion") == 2,
          "%s: not an image index with schemaVersion 2: %s"
          % (resp.describe(), preview(resp.body)))
    check(doc.get("mediaType", MT_INDEX) == MT_INDEX,
          "%s: mediaType is %r" % (resp.describe(), doc.get("mediaType")))
    manifests = doc.get("manifests")
    check(isinstance(manifests, list), "%s: 'manifests' is not a list" % resp.describe())
    return resp, manifests


def unknown_digest():
    return sha256(os.urandom(32))


# --------------------------------------------------------------------------
# Test registry
# --------------------------------------------------------------------------

WORKFLOWS = [
    ("pull", "OCI_TEST_PULL"),
    ("push", "OCI_TEST_PUSH"),
    ("discovery", "OCI_TEST_CONTENT_DISCOVERY"),
    ("management", "OCI_TEST_CONTENT_MANAGEMENT"),
]
SETUPS = {}
TESTS = []


def setup(workflow):
    def register(fn):
        SETUPS[workflow] = fn
        return fn
    return register


def test(workflow, name):
    def register(fn):
        TESTS.append((workflow, "%s: %s" % (workflow, name), fn))
        return fn
    return register


class Context(dict):
    """Per-workflow state shared by its setup and tests, in order."""

    def __missing__(self, key):
        raise Failure("not run: needs %r from an earlier step, which failed" % key)


# Each test says in a comment what the official suite (v1.1.1 and main at
# af32c8c) does in the same area, and so why the test is here.

# ==========================================================================
# Pull
# ==========================================================================

@setup("pull")
def pull_setup(ctx):
    image = make_image("pull")
    other = make_image("pull-arm64")
    tag = "pull-%s" % RUN
    push_manifest(NAMESPACE, tag, image)
    push_manifest(NAMESPACE, other.digest, other)
    index = make_index([
        image.descriptor(platform={"architecture": "amd64", "os": "linux"}),
        other.descriptor(platform={"architecture": "arm64", "os": "linux"}),
    ])
    index_tag = "pull-index-%s" % RUN
    push_manifest(NAMESPACE, index_tag, index)
    ctx.update(image=image, tag=tag, index=index, index_tag=index_tag,
               layer=image.blobs[1])


# official: never requests the base endpoint
@test("pull", "GET /v2/ returns 200")
def pull_base(ctx):
    expect_status(CLIENT.get("/v2/"), 200)


# official: status only; Docker-Content-Digest checked only when present
@test("pull", "HEAD manifest by tag and by digest: Docker-Content-Digest, Content-Type, Content-Length")
def pull_head_manifest(ctx):
    image = ctx["image"]
    for reference in (ctx["tag"], image.digest):
        check_manifest(get_manifest(NAMESPACE, reference, "HEAD"), image, head=True)


# official: status only, never looks at the body (so pushed bytes stored
# verbatim, indented JSON included, are checked only here)
@test("pull", "GET manifest by tag and by digest returns the pushed bytes, type and digest")
def pull_get_manifest(ctx):
    image = ctx["image"]
    for reference in (ctx["tag"], image.digest):
        check_manifest(get_manifest(NAMESPACE, reference), image)


# official: pushes an index (as a referrer) but never pulls one
@test("pull", "GET and HEAD image index by tag and digest return it with the index media type")
def pull_index(ctx):
    index = ctx["index"]
    check_manifest(get_manifest(NAMESPACE, ctx["index_tag"]), index)
    check_manifest(get_manifest(NAMESPACE, index.digest, "HEAD"), index, head=True)


# official: status only
@test("pull", "HEAD blob returns Content-Length and Docker-Content-Digest")
def pull_head_blob(ctx):
    layer = ctx["layer"]
    resp = CLIENT.head("/v2/%s/blobs/%s" % (NAMESPACE, sha256(layer)))
    expect_status(resp, 200)
    length = resp.header("Content-Length")
    check(length == str(len(layer)), "%s: Content-Length is %r, expected %d"
          % (resp.describe(), length, len(layer)))
    expect_digest_header(resp, sha256(layer))


# official: status only, never compares a blob's bytes
@test("pull", "GET blob returns the blob's bytes and Docker-Content-Digest")
def pull_get_blob(ctx):
    layer = ctx["layer"]
    resp = CLIENT.get("/v2/%s/blobs/%s" % (NAMESPACE, sha256(layer)))
    check_blob(resp, layer)
    expect_digest_header(resp, sha256(layer))


# official: no Range requests (the spec: registries SHOULD support them)
@test("pull", "GET blob with Range returns 206 with the requested bytes")
def pull_get_blob_range(ctx):
    layer = ctx["layer"]
    start, end = 100, 611
    resp = CLIENT.get("/v2/%s/blobs/%s" % (NAMESPACE, sha256(layer)),
                      headers={"Range": "bytes=%d-%d" % (start, end)})
    expect_status(resp, 206)
    check(resp.body == layer[start:end + 1],
          "%s: got %d bytes that are not bytes %d-%d of the blob"
          % (resp.describe(), len(resp.body), start, end))
    content_range = resp.header("Content-Range")
    check(content_range in ("bytes %d-%d/%d" % (start, end, len(layer)),
                            "bytes %d-%d/*" % (start, end)),
          "%s: Content-Range is %r, expected 'bytes %d-%d/%d'"
          % (resp.describe(), content_range, start, end, len(layer)))


@test("pull", "GET blob with an open-ended Range (resume) returns 206 with the rest")
def pull_get_blob_range_open(ctx):
    layer = ctx["layer"]
    start = len(layer) - 700
    resp = CLIENT.get("/v2/%s/blobs/%s" % (NAMESPACE, sha256(layer)),
                      headers={"Range": "bytes=%d-" % start})
    expect_status(resp, 206)
    check(resp.body == layer[start:], "%s: got %d bytes that are not the last %d of the blob"
          % (resp.describe(), len(resp.body), len(layer) - start))
    content_range = resp.header("Content-Range")
    check(content_range == "bytes %d-%d/%d" % (start, len(layer) - 1, len(layer)),
          "%s: Content-Range is %r, expected 'bytes %d-%d/%d'"
          % (resp.describe(), content_range, start, len(layer) - 1, len(layer)))


# official: asks only for `.INVALID_MANIFEST_NAME` (not even a valid tag) and
# checks the status, not the error code
@test("pull", "missing manifest (valid tag, digest) returns 404 MANIFEST_UNKNOWN, HEAD 404")
def pull_unknown_manifest(ctx):
    for reference in ("nonexistent-%s" % RUN, unknown_digest()):
        expect_error(get_manifest(NAMESPACE, reference), 404, "MANIFEST_UNKNOWN")
        expect_status(get_manifest(NAMESPACE, reference, "HEAD"), 404)


# official: checks the status, not the error code
@test("pull", "GET unknown blob returns 404 BLOB_UNKNOWN")
def pull_get_unknown_blob(ctx):
    resp = CLIENT.get("/v2/%s/blobs/%s" % (NAMESPACE, unknown_digest()))
    expect_error(resp, 404, "BLOB_UNKNOWN")


# official: only ever uses the two repositories it is given
@test("pull", "GET manifest in an unknown repository returns 404")
def pull_unknown_repo(ctx):
    resp = get_manifest("%s/unknown-%s" % (NAMESPACE, RUN), "latest")
    expect_error(resp, 404, "NAME_UNKNOWN", "MANIFEST_UNKNOWN")


@test("pull", "invalid repository name returns 400 NAME_INVALID (or 404)")
def pull_invalid_name(ctx):
    resp = get_manifest("%s/Invalid_Name-%s" % (NAMESPACE, RUN), "latest")
    expect_status(resp, 400, 404)
    if resp.status == 400:
        expect_error(resp, 400, "NAME_INVALID")
    elif resp.body.strip().startswith(b"{"):
        error_codes(resp)


# ==========================================================================
# Push
# ==========================================================================

@setup("push")
def push_setup(ctx):
    image = make_image("push")
    for blob in image.blobs:
        push_blob(NAMESPACE, blob)
    mount_blob = os.urandom(1500)
    push_blob(CROSSMOUNT_NAMESPACE, mount_blob)
    ctx.update(image=image, mount_blob=mount_blob)


def start_upload(repo=None, headers=None):
    resp = CLIENT.request("POST", "/v2/%s/blobs/uploads/" % (repo or NAMESPACE),
                          headers=headers)
    expect_status(resp, 202)
    return resp, resp.location()


def patch_chunk(location, blob, start, end):
    """PATCH blob[start..end] (inclusive) with Content-Range."""
    return CLIENT.request("PATCH", location, body=blob[start:end + 1], headers={
        "Content-Type": MT_OCTET,
        "Content-Range": "%d-%d" % (start, end),
    })


# official: checks that the Location is there, never requests it
@test("push", "the blob Location returned by a completed upload is pullable")
def push_blob_location(ctx):
    _, location = start_upload()
    blob = os.urandom(3000)
    resp = CLIENT.request("PUT", location, body=blob, query={"digest": sha256(blob)},
                          headers={"Content-Type": MT_OCTET})
    expect_status(resp, 201)
    check_blob(CLIENT.get(resp.location()), blob)


# official: closes its chunked upload with an empty PUT and never reads the
# blob back; the spec lets the final chunk come with the closing PUT
@test("push", "chunked: final chunk sent with the closing PUT, the blob reads back whole")
def push_chunked_final_put(ctx):
    resp, location = start_upload(headers={"Content-Length": "0"})
    minimum = resp.header("OCI-Chunk-Min-Length")
    chunk = 1024
    if minimum and minimum.isdigit():
        chunk = max(chunk, int(minimum))
    blob = os.urandom(2 * chunk + chunk // 2 + 1)
    for start in (0, chunk):
        resp = patch_chunk(location, blob, start, start + chunk - 1)
        expect_status(resp, 202)
        location = resp.location()
    resp = CLIENT.request("PUT", location, body=blob[2 * chunk:],
                          query={"digest": sha256(blob)}, headers={
                              "Content-Type": MT_OCTET,
                              "Content-Range": "%d-%d" % (2 * chunk, len(blob) - 1),
                          })
    expect_status(resp, 201)
    resp.location()
    check_blob(CLIENT.get("/v2/%s/blobs/%s" % (NAMESPACE, sha256(blob))), blob)


# official: its streamed PATCH has a Content-Length; docker streams with
# Transfer-Encoding: chunked
@test("push", "streamed: PATCH with Transfer-Encoding: chunked, then PUT, stores the bytes")
def push_streamed_chunked_encoding(ctx):
    _, location = start_upload()
    parts = [os.urandom(700) for _ in range(5)]
    blob = b"".join(parts)
    resp = CLIENT.request("PATCH", location, body=parts,
                          headers={"Content-Type": MT_OCTET})
    expect_status(resp, 202)
    expect_range(resp, len(blob) - 1)
    resp = CLIENT.request("PUT", resp.location(), body=b"",
                          query={"digest": sha256(blob)})
    expect_status(resp, 201)
    check_blob(CLIENT.get("/v2/%s/blobs/%s" % (NAMESPACE, sha256(blob))), blob)


# official: never sends a wrong digest
@test("push", "PUT with a wrong digest returns 400 DIGEST_INVALID and stores nothing")
def push_wrong_digest(ctx):
    _, location = start_upload()
    blob, claimed = os.urandom(1000), unknown_digest()
    resp = CLIENT.request("PUT", location, body=blob, query={"digest": claimed},
                          headers={"Content-Type": MT_OCTET})
    expect_error(resp, 400, "DIGEST_INVALID")
    resp = CLIENT.head("/v2/%s/blobs/%s" % (NAMESPACE, claimed))
    check(resp.status == 404, "blob was stored under the wrong digest: %s" % resp.describe())


# official: never cancels an upload
@test("push", "cancel: DELETE upload returns 204, then status and PATCH return 404 BLOB_UPLOAD_UNKNOWN")
def push_cancel(ctx):
    _, location = start_upload()
    resp = patch_chunk(location, os.urandom(1000), 0, 999)
    expect_status(resp, 202)
    location = resp.location()
    expect_status(CLIENT.request("DELETE", location), 204)
    expect_error(CLIENT.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    # the cancelled session had 1000 bytes; this would be its next chunk
    resp = CLIENT.request("PATCH", location, body=os.urandom(1000),
                          headers={"Content-Type": MT_OCTET, "Content-Range": "1000-1999"})
    expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN")


@test("push", "POST upload to an invalid repository name returns 400 NAME_INVALID (or 404)")
def push_invalid_name(ctx):
    resp = CLIENT.request("POST", "/v2/%s/Invalid_Name-%s/blobs/uploads/" % (NAMESPACE, RUN))
    expect_status(resp, 400, 404)
    if resp.status == 400:
        expect_error(resp, 400, "NAME_INVALID")
    elif resp.body.strip().startswith(b"{"):
        error_codes(resp)


# official: accepts 201 or 202 for a mount of an existing blob, so a registry
# that never mounts passes it
@test("push", "mount: a blob of the source repository is mounted (201), readable in the target")
def push_mount(ctx):
    blob = ctx["mount_blob"]
    query = [("mount", sha256(blob)), ("from", CROSSMOUNT_NAMESPACE)]
    resp = CLIENT.request("POST", "/v2/%s/blobs/uploads/" % NAMESPACE, query=query)
    if resp.status == 202 and CLIENT.basic:
        # the usual cause with auth on: the challenge did not ask for pull on
        # the source repository, so the token cannot mount (distribution's
        # registry asks for repository:<from>:pull too; docker asks for it
        # unprompted, a client that follows the challenge does not)
        probe = CLIENT.request("POST", "/v2/%s/blobs/uploads/" % NAMESPACE, query=query,
                               anonymous=True)
        raise Failure("%s, expected 201: not mounted with a token got by following the "
                      "challenge, which was %s -> %d, WWW-Authenticate: %s (no "
                      "repository:%s:pull in its scope?)"
                      % (resp.describe(), probe.method, probe.status,
                         probe.header("WWW-Authenticate"), CROSSMOUNT_NAMESPACE))
    expect_status(resp, 201)
    resp.location()
    if resp.header("Docker-Content-Digest"):
        expect_digest_header(resp, sha256(blob))
    check_blob(CLIENT.get("/v2/%s/blobs/%s" % (NAMESPACE, sha256(blob))), blob)


# official: only checks the fallback's Location prefix, never uploads to it
@test("push", "mount: an unknown blob falls back to 202 with a usable upload session")
def push_mount_unknown(ctx):
    blob = os.urandom(1200)  # never pushed anywhere
    resp = CLIENT.request("POST", "/v2/%s/blobs/uploads/" % NAMESPACE, query=[
        ("mount", sha256(blob)), ("from", CROSSMOUNT_NAMESPACE)])
    expect_status(resp, 202)
    resp = CLIENT.request("PUT", resp.location(), body=blob,
                          query={"digest": sha256(blob)},
                          headers={"Content-Type": MT_OCTET})
    expect_status(resp, 201)


# official: every blob it pushes has content
@test("push", "zero-length blob uploads and reads back empty")
def push_empty_blob(ctx):
    _, location = start_upload()
    resp = CLIENT.request("PUT", location, body=b"", query={"digest": sha256(b"")},
                          headers={"Content-Type": MT_OCTET})
    expect_status(resp, 201)
    path = "/v2/%s/blobs/%s" % (NAMESPACE, sha256(b""))
    resp = CLIENT.head(path)
    expect_status(resp, 200)
    check(resp.header("Content-Length") == "0", "%s: Content-Length is %r, expected '0'"
          % (resp.describe(), resp.header("Content-Length")))
    check_blob(CLIENT.get(path), b"")


def variant(image, name):
    """The same image with another annotation: a new manifest digest."""
    doc = json.loads(image.bytes)
    doc["annotations"]["org.wharf.conformance.variant"] = name
    return Manifest(doc, image.blobs)


# official: checks 201 and that a Location is there; never the
# Docker-Content-Digest of a PUT, never requests the Location
@test("push", "manifest PUT returns Docker-Content-Digest, and its Location is pullable")
def push_manifest_location(ctx):
    image = ctx["image"]
    resp = put_manifest(NAMESPACE, "push-%s" % RUN, image)
    expect_status(resp, 201)
    expect_digest_header(resp, image.digest)
    location = resp.location()
    check_manifest(CLIENT.get(location, headers={"Accept": ACCEPT_MANIFESTS}), image)


# official: one tag per PUT
@test("push", "manifest PUT by digest with ?tag=a&tag=b makes both tags resolve")
def push_manifest_tags_query(ctx):
    manifest = variant(ctx["image"], "tag-query")
    tags = ["multi-%s-a" % RUN, "multi-%s-b" % RUN]
    resp = put_manifest(NAMESPACE, manifest.digest, manifest,
                        query=[("tag", t) for t in tags])
    expect_status(resp, 201)
    expect_digest_header(resp, manifest.digest)
    for tag in tags:
        check_manifest(get_manifest(NAMESPACE, tag), manifest)


# official: re-pushes the same manifest under its tags, never a different one
@test("push", "manifest PUT to an existing tag moves the tag to the new manifest")
def push_manifest_retag(ctx):
    first, second = variant(ctx["image"], "retag-1"), variant(ctx["image"], "retag-2")
    tag = "retag-%s" % RUN
    expect_status(put_manifest(NAMESPACE, tag, first), 201)
    expect_status(put_manifest(NAMESPACE, tag, second), 201)
    check_manifest(get_manifest(NAMESPACE, tag), second)
    check_manifest(get_manifest(NAMESPACE, first.digest), first)


# official: tags test0-3 (main also TEST0-3), emptylayer, tagtest0
@test("push", "valid unusual tags are accepted: leading underscore, dots, 128 chars")
def push_unusual_tags(ctx):
    manifest = variant(ctx["image"], "unusual-tags")
    tags = ["_Upper.Case_%s" % RUN, ("long-%s-" % RUN).ljust(128, "x")]
    for tag in tags:
        expect_status(put_manifest(NAMESPACE, tag, manifest), 201)
    for tag in tags:
        check_manifest(get_manifest(NAMESPACE, tag), manifest)


# official: only the repository names it is given
@test("push", "valid unusual repository names are accepted (a.b, a_b, a__b, a--b, deep paths)")
def push_unusual_name(ctx):
    image = ctx["image"]
    repo = "%s/deep/path/a.b_c__d--e/r%s" % (NAMESPACE, RUN)
    push_manifest(repo, "latest", image)
    check_manifest(get_manifest(repo, "latest"), image)
    check_blob(CLIENT.get("/v2/%s/blobs/%s" % (repo, sha256(image.blobs[1]))), image.blobs[1])


# official: never pushes an invalid manifest (the spec lets a registry accept
# one whose blobs are missing; Wharf rejects it)
@test("push", "manifest referencing a missing blob returns 400 MANIFEST_BLOB_UNKNOWN")
def push_manifest_missing_blob(ctx):
    image = ctx["image"]
    doc = json.loads(image.bytes)
    doc["layers"].append(descriptor(MT_LAYER, os.urandom(512)))  # never pushed
    resp = put_manifest(NAMESPACE, "missing-blob-%s" % RUN, Manifest(doc))
    expect_error(resp, 400, "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID")


@test("push", "manifest PUT by a digest that does not match the body returns 400")
def push_manifest_digest_mismatch(ctx):
    manifest = variant(ctx["image"], "mismatch")
    resp = put_manifest(NAMESPACE, unknown_digest(), manifest)
    expect_error(resp, 400, "DIGEST_INVALID", "MANIFEST_INVALID")


@test("push", "manifest that is not valid JSON returns 400 MANIFEST_INVALID")
def push_manifest_invalid(ctx):
    resp = CLIENT.request("PUT", "/v2/%s/manifests/invalid-%s" % (NAMESPACE, RUN),
                          body=b"{this is not json",
                          headers={"Content-Type": MT_MANIFEST})
    expect_error(resp, 400, "MANIFEST_INVALID")


# ==========================================================================
# Content discovery
# ==========================================================================

@setup("discovery")
def discovery_setup(ctx):
    image = make_image("discovery")
    # "-1", "-10", "-2" catch numeric instead of lexical sorting
    tags = ["disc-%s-%s" % (RUN, s) for s in ("1", "10", "2", "3", "a", "b")]
    for blob in image.blobs:
        push_blob(NAMESPACE, blob)
    for tag in tags:
        expect_status(put_manifest(NAMESPACE, tag, image), 201)
    # a second repository, so the catalog has something to page through
    push_manifest(CROSSMOUNT_NAMESPACE, "disc-%s" % RUN, make_image("catalog"))
    # referrers: artifactType set, artifactType from the config media type, an
    # index, and one whose subject does not exist (OCI-Subject on these PUTs
    # is the official suite's business)
    subject = make_image("referrers-subject")
    push_manifest(NAMESPACE, "subject-%s" % RUN, subject)
    sbom = make_artifact(subject.descriptor(), "sbom", artifact_type=AT_SBOM)
    signature = make_artifact(subject.descriptor(), "signature", config_type=AT_SIGNATURE)
    push_manifest(NAMESPACE, sbom.digest, sbom)
    push_manifest(NAMESPACE, signature.digest, signature)
    bundle = make_index([sbom.descriptor()], artifactType=AT_BUNDLE,
                        subject=subject.descriptor(),
                        annotations={"org.wharf.conformance.name": "bundle"})
    push_manifest(NAMESPACE, bundle.digest, bundle)
    ctx.update(tags=tags, subject=subject, referrers={
        sbom.digest: (sbom, AT_SBOM),
        signature.digest: (signature, AT_SIGNATURE),
        bundle.digest: (bundle, AT_BUNDLE),
    }, sbom=sbom)


def all_tags(ctx):
    """Every tag of the repository, in the order the paging tests expect:
    the registry's own order when it is lexical, else sorted."""
    resp, _, tags = get_tags(NAMESPACE)
    missing = [t for t in ctx["tags"] if t not in tags]
    check(not missing, "%s: tags missing from the list: %s" % (resp.describe(), missing))
    return tags if is_sorted(tags) else sorted(tags)


def get_tags_url(url):
    resp = CLIENT.get(url)
    expect_status(resp, 200)
    doc = resp.json()
    tags = (doc.get("tags") if isinstance(doc, dict) else None) or []
    return resp, doc, tags


def first_difference(got, expected):
    for i, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            return "position %d: %r vs %r" % (i, a, b)
    return "lengths %d vs %d" % (len(got), len(expected))


# official: status (main: also the order); never the name or whether every
# tag is there
@test("discovery", "tags list has the repository name and every tag exactly once")
def disc_tags(ctx):
    resp, doc, tags = get_tags(NAMESPACE)
    check(doc.get("name") == NAMESPACE, "%s: name is %r, expected %r"
          % (resp.describe(), doc.get("name"), NAMESPACE))
    missing = [t for t in ctx["tags"] if t not in tags]
    check(not missing, "%s: tags missing from the list: %s" % (resp.describe(), missing))
    check(len(set(tags)) == len(tags), "%s: duplicate tags" % resp.describe())


# official: counts the tags of ?n=, never looks for a Link header
@test("discovery", "tags list ?n=2 returns the first 2 tags and a Link rel=\"next\"")
def disc_tags_n(ctx):
    expected = all_tags(ctx)
    resp, _, tags = get_tags(NAMESPACE, {"n": 2})
    check(tags == expected[:2], "%s: got %s, expected the first two tags %s"
          % (resp.describe(), tags, expected[:2]))
    check(next_link(resp), "%s: no Link header with rel=\"next\" (headers: %s)"
          % (resp.describe(), resp.header("Link")))


@test("discovery", "tags list: following Link headers visits every tag once")
def disc_tags_link(ctx):
    expected = all_tags(ctx)
    seen, url = [], CLIENT.url("/v2/%s/tags/list" % NAMESPACE, {"n": 2})
    for _ in range(len(expected) + 2):
        resp, _, tags = get_tags_url(url)
        check(len(tags) <= 2, "%s: %d tags for n=2" % (resp.describe(), len(tags)))
        seen += tags
        url = next_link(resp)
        if not url:
            break
    check(seen == expected, "paging by Link gave %d tags, expected %d (first difference: %s)"
          % (len(seen), len(expected), first_difference(seen, expected)))


# official: one ?n=&last= page (main: the `last` tag is not in it)
@test("discovery", "tags list: paging with ?n=&last= visits every tag once; ?last= alone too")
def disc_tags_last(ctx):
    expected = all_tags(ctx)
    seen, last = [], None
    for _ in range(len(expected) + 2):
        query = {"n": 2}
        if last is not None:
            query["last"] = last
        resp, _, tags = get_tags(NAMESPACE, query)
        check(len(tags) <= 2, "%s: %d tags for n=2" % (resp.describe(), len(tags)))
        if not tags:
            break
        seen += tags
        last = tags[-1]
    check(seen == expected, "paging by last gave %d tags, expected %d (first difference: %s)"
          % (len(seen), len(expected), first_difference(seen, expected)))
    last = ctx["tags"][2]  # one of ours, in the middle
    rest = expected[expected.index(last) + 1:]
    resp, _, tags = get_tags(NAMESPACE, {"last": last})
    check(last not in tags, "%s: the 'last' tag itself is in the result" % resp.describe())
    check(tags == rest[:len(tags)] and tags,
          "%s: got %s, expected the tags after %r: %s"
          % (resp.describe(), tags[:5], last, rest[:5]))


@test("discovery", "tags list ?n=0 returns an empty list and no Link")
def disc_tags_zero(ctx):
    resp, _, tags = get_tags(NAMESPACE, {"n": 0})
    check(tags == [], "%s: got %d tags for n=0" % (resp.describe(), len(tags)))
    check(not resp.header("Link"), "%s: Link header present for n=0" % resp.describe())


@test("discovery", "tags list with n above the tag count returns every tag and no Link")
def disc_tags_big_n(ctx):
    expected = all_tags(ctx)
    resp, _, tags = get_tags(NAMESPACE, {"n": len(expected) + 10})
    check(tags == expected, "%s: got %d tags, expected all %d (first difference: %s)"
          % (resp.describe(), len(tags), len(expected), first_difference(tags, expected)))
    check(not next_link(resp), "%s: Link rel=\"next\" although nothing is left" % resp.describe())


@test("discovery", "tags list of an unknown repository returns 404 NAME_UNKNOWN")
def disc_tags_unknown(ctx):
    resp = CLIENT.get("/v2/%s/unknown-%s/tags/list" % (NAMESPACE, RUN))
    expect_error(resp, 404, "NAME_UNKNOWN")


# official: counts the referrers and compares their annotations; never their
# mediaType, size or artifactType (which for an artifact without artifactType
# is its config's media type)
@test("discovery", "referrers: exactly ours, each with mediaType, size, artifactType and annotations")
def disc_ref_descriptors(ctx):
    expected = ctx["referrers"]
    resp, manifests = get_referrers(NAMESPACE, ctx["subject"].digest)
    got = [d.get("digest") for d in manifests if isinstance(d, dict)]
    check(sorted(got) == sorted(expected),
          "%s: listed %s, expected exactly %s" % (resp.describe(), got, sorted(expected)))
    for desc in manifests:
        manifest, artifact_type = expected[desc["digest"]]
        where = "descriptor %s" % desc["digest"][:19]
        check(desc.get("mediaType") == manifest.media_type, "%s: mediaType %r, expected %r"
              % (where, desc.get("mediaType"), manifest.media_type))
        check(desc.get("size") == len(manifest.bytes), "%s: size %r, expected %d"
              % (where, desc.get("size"), len(manifest.bytes)))
        check(desc.get("artifactType") == artifact_type, "%s: artifactType %r, expected %r"
              % (where, desc.get("artifactType"), artifact_type))
        annotations = desc.get("annotations") or {}
        for key, value in manifest.doc.get("annotations", {}).items():
            check(annotations.get(key) == value, "%s: annotation %s is %r, expected %r"
                  % (where, key, annotations.get(key), value))


# official: accepts an unfiltered answer without OCI-Filters-Applied
@test("discovery", "referrers: ?artifactType= filters and sets OCI-Filters-Applied")
def disc_ref_filter(ctx):
    sbom = ctx["sbom"]
    resp, manifests = get_referrers(NAMESPACE, ctx["subject"].digest,
                                    {"artifactType": AT_SBOM})
    applied = [v.strip() for v in (resp.header("OCI-Filters-Applied") or "").split(",")]
    check("artifactType" in applied, "%s: OCI-Filters-Applied is %r, expected 'artifactType'"
          % (resp.describe(), resp.header("OCI-Filters-Applied")))
    got = [d.get("digest") for d in manifests]
    check(got == [sbom.digest], "%s: listed %s, expected only %s"
          % (resp.describe(), got, sbom.digest))


# official: one repository for referrers
@test("discovery", "referrers: another repository does not list this repository's referrers")
def disc_ref_scoped(ctx):
    ctx["referrers"]
    resp, manifests = get_referrers(CROSSMOUNT_NAMESPACE, ctx["subject"].digest)
    check(manifests == [], "%s: lists %s, which live in %s"
          % (resp.describe(), [d.get("digest") for d in manifests], NAMESPACE))


# official: no catalog (it is not part of the spec)
@test("discovery", "catalog ?n=1 returns one repository and a Link rel=\"next\"")
def disc_catalog_n(ctx):
    ctx["tags"]  # needs the setup's second repository
    resp = CLIENT.get("/v2/_catalog", query={"n": 1})
    expect_status(resp, 200)
    doc = resp.json()
    repos = doc.get("repositories") if isinstance(doc, dict) else None
    check(isinstance(repos, list) and len(repos) == 1,
          "%s: expected 'repositories' with 1 entry: %s" % (resp.describe(), preview(resp.body)))
    link = next_link(resp)
    check(link, "%s: no Link header with rel=\"next\"" % resp.describe())
    resp = CLIENT.get(link)
    expect_status(resp, 200)
    more = (resp.json() or {}).get("repositories") or []
    check(len(more) == 1 and more[0] > repos[0],
          "%s: next page %s does not follow %s" % (resp.describe(), more, repos))


@test("discovery", "catalog: paging by Link lists the test repositories, sorted")
def disc_catalog_all(ctx):
    ctx["tags"]
    repos, url = [], CLIENT.url("/v2/_catalog", {"n": 100})
    for _ in range(200):
        resp = CLIENT.get(url)
        expect_status(resp, 200)
        repos += (resp.json() or {}).get("repositories") or []
        url = next_link(resp)
        if not url:
            break
    for name in (NAMESPACE, CROSSMOUNT_NAMESPACE):
        check(name in repos, "catalog does not list %r" % name)
    check(is_sorted(repos), "catalog is not in lexical order")


# ==========================================================================
# Content management
# ==========================================================================

@setup("management")
def management_setup(ctx):
    kept = make_image("mgmt-kept")
    tags = ["mgmt-%s-a" % RUN, "mgmt-%s-b" % RUN]
    push_manifest(NAMESPACE, tags[0], kept)
    expect_status(put_manifest(NAMESPACE, tags[1], kept), 201)
    doomed = make_image("mgmt-doomed")
    doomed_tag = "mgmt-%s-doomed" % RUN
    push_manifest(NAMESPACE, doomed_tag, doomed)
    blob = os.urandom(1800)
    push_blob(NAMESPACE, blob)
    subject = make_image("mgmt-subject")
    push_manifest(NAMESPACE, subject.digest, subject)
    referrer = make_artifact(subject.descriptor(), "mgmt-referrer", artifact_type=AT_SBOM)
    push_manifest(NAMESPACE, referrer.digest, referrer)
    ctx.update(kept=kept, tags=tags, doomed=doomed, doomed_tag=doomed_tag,
               blob=blob, subject=subject, referrer=referrer)


# official: accepts 400/405 (tag deletion disabled), and only counts the tags
# afterwards
@test("management", "DELETE manifest by tag returns 202; only that tag is gone")
def mgmt_delete_tag(ctx):
    kept, tags = ctx["kept"], ctx["tags"]
    resp = CLIENT.request("DELETE", "/v2/%s/manifests/%s" % (NAMESPACE, tags[0]))
    expect_status(resp, 202)
    expect_error(get_manifest(NAMESPACE, tags[0]), 404, "MANIFEST_UNKNOWN")
    check_manifest(get_manifest(NAMESPACE, kept.digest), kept)
    check_manifest(get_manifest(NAMESPACE, tags[1]), kept)
    resp, _, listed = get_tags(NAMESPACE)
    check(tags[0] not in listed, "%s: deleted tag still listed" % resp.describe())
    check(tags[1] in listed, "%s: the other tag is no longer listed" % resp.describe())


# official: accepts 404 for the DELETE and 200 for the GET after it
@test("management", "DELETE manifest by digest returns 202; gone by digest and by its tag")
def mgmt_delete_digest(ctx):
    digest = ctx["doomed"].digest
    resp = CLIENT.request("DELETE", "/v2/%s/manifests/%s" % (NAMESPACE, digest))
    expect_status(resp, 202)
    expect_error(get_manifest(NAMESPACE, digest), 404, "MANIFEST_UNKNOWN")
    expect_status(get_manifest(NAMESPACE, digest, "HEAD"), 404)
    expect_status(get_manifest(NAMESPACE, ctx["doomed_tag"]), 404)
    resp, _, tags = get_tags(NAMESPACE)
    check(ctx["doomed_tag"] not in tags,
          "%s: the deleted manifest's tag is still listed" % resp.describe())


# official: accepts 404/405 for the DELETE; checks the GET status only
@test("management", "DELETE blob returns 202; then HEAD 404 and GET 404 BLOB_UNKNOWN")
def mgmt_delete_blob(ctx):
    path = "/v2/%s/blobs/%s" % (NAMESPACE, sha256(ctx["blob"]))
    expect_status(CLIENT.request("DELETE", path), 202)
    expect_status(CLIENT.head(path), 404)
    expect_error(CLIENT.get(path), 404, "BLOB_UNKNOWN")


# official: deletes only what it pushed
@test("management", "DELETE unknown manifest returns 404 MANIFEST_UNKNOWN")
def mgmt_delete_unknown_manifest(ctx):
    resp = CLIENT.request("DELETE", "/v2/%s/manifests/%s" % (NAMESPACE, unknown_digest()))
    expect_error(resp, 404, "MANIFEST_UNKNOWN")


@test("management", "DELETE unknown blob returns 404 BLOB_UNKNOWN")
def mgmt_delete_unknown_blob(ctx):
    resp = CLIENT.request("DELETE", "/v2/%s/blobs/%s" % (NAMESPACE, unknown_digest()))
    expect_error(resp, 404, "BLOB_UNKNOWN")


# official: deletes referrers in its teardown without looking at the list
@test("management", "deleted referrer disappears from the referrers list")
def mgmt_deleted_referrer(ctx):
    subject, referrer = ctx["subject"], ctx["referrer"]
    resp, manifests = get_referrers(NAMESPACE, subject.digest)
    check([d.get("digest") for d in manifests] == [referrer.digest],
          "%s: before delete, expected only %s" % (resp.describe(), referrer.digest))
    resp = CLIENT.request("DELETE", "/v2/%s/manifests/%s" % (NAMESPACE, referrer.digest))
    expect_status(resp, 202)
    resp, manifests = get_referrers(NAMESPACE, subject.digest)
    check(manifests == [], "%s: still lists %s after delete"
          % (resp.describe(), [d.get("digest") for d in manifests]))


# ==========================================================================
# Auth (only with OCI_USERNAME/OCI_PASSWORD): the Docker token flow
# ==========================================================================

def auth_challenge():
    """An unauthenticated request to /v2/ must be challenged for a token."""
    resp = CLIENT.request("GET", "/v2/", anonymous=True)
    expect_status(resp, 401)
    values = resp.headers.get_all("WWW-Authenticate") or []
    challenge = parse_challenges(values)
    check(challenge and challenge.get("realm"),
          "%s: no WWW-Authenticate: Bearer challenge with a realm (got %s)"
          % (resp.describe(), values))
    CLIENT.realms.add(challenge["realm"])
    token = CLIENT._fetch_token(challenge)
    check(token, "GET %s with the credentials gave no token" % challenge["realm"])
    resp = CLIENT.request("GET", "/v2/", anonymous=True,
                          headers={"Authorization": "Bearer " + token})
    expect_status(resp, 200)
    return "realm %s" % challenge["realm"]


def auth_flow_happened(before):
    """What the workflows did: challenged, tokens fetched, no Basic to /v2/."""
    challenges = CLIENT.challenges - before["challenges"]
    tokens = CLIENT.token_fetches - before["tokens"]
    bearer = CLIENT.bearer_accepted - before["bearer"]
    check(challenges > 0, "no request was answered 401 with a Bearer challenge")
    check(tokens > 0, "no token was fetched from the realm (%s)" % sorted(CLIENT.realms))
    check(bearer > 0, "no request with a Bearer token was accepted")
    check(CLIENT.basic_sent == 0, "%d requests to the registry carried Basic credentials "
          "(it challenged with Basic, not Bearer)" % CLIENT.basic_sent)
    return "%d challenges, %d tokens from %s, %d requests accepted with a token" % (
        challenges, tokens, ", ".join(sorted(CLIENT.realms)), bearer)


# ==========================================================================
# Runner
# ==========================================================================

def one_line(text):
    return " ".join(str(text).split())


def run_step(name, fn, *args):
    """Run one test; print its result line; return True when it passed.
    A test may return a short note, printed after its name."""
    try:
        note = fn(*args)
    except Failure as err:
        print("FAIL %s: %s" % (name, one_line(err)), flush=True)
        return False
    except Exception as err:  # a broken registry must not stop the run
        print("FAIL %s: %s: %s" % (name, type(err).__name__, one_line(err)), flush=True)
        return False
    print("PASS %s%s" % (name, " (%s)" % note if note else ""), flush=True)
    return True


def enabled_workflows():
    present = [var for _, var in WORKFLOWS if os.environ.get(var, "").strip()]
    if not present:
        return [name for name, _ in WORKFLOWS]
    return [name for name, var in WORKFLOWS if env_true(var)]


def main():
    global NAMESPACE, CROSSMOUNT_NAMESPACE
    if not ROOT_URL.startswith(("http://", "https://")):
        print("OCI_ROOT_URL must be set, e.g. http://127.0.0.1:5000", file=sys.stderr)
        return 2
    NAMESPACE = NAMESPACE or "conformance/test"
    CROSSMOUNT_NAMESPACE = CROSSMOUNT_NAMESPACE or NAMESPACE + "-crossmount"
    auth = CLIENT.basic is not None
    print("# Wharf's OCI checks beyond the official suite: %s namespace=%s crossmount=%s "
          "run=%s auth=%s" % (ROOT_URL, NAMESPACE, CROSSMOUNT_NAMESPACE, RUN,
                              "token flow" if auth else "none"), flush=True)

    workflows = enabled_workflows()
    if not workflows:
        print("# no workflow enabled: set one of %s to 1/true, or none of them"
              % ", ".join(var for _, var in WORKFLOWS), flush=True)
    results = []
    if auth:
        results.append(run_step("auth: GET /v2/ without credentials is challenged "
                                "(401, Bearer realm) and the realm's token is accepted",
                                auth_challenge))
    before = {"challenges": CLIENT.challenges, "tokens": CLIENT.token_fetches,
              "bearer": CLIENT.bearer_accepted}
    for workflow in workflows:
        ctx = Context()
        setup_ok = run_step("%s: setup" % workflow, SETUPS[workflow], ctx)
        results.append(setup_ok)
        for owner, name, fn in TESTS:
            if owner != workflow:
                continue
            if not setup_ok:
                print("FAIL %s: not run: setup failed" % name, flush=True)
                results.append(False)
                continue
            results.append(run_step(name, fn, ctx))
    if auth and workflows:
        results.append(run_step("auth: the workflows sent no credentials until challenged, "
                                "then used tokens from the realm", auth_flow_happened, before))
    passed = sum(results)
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
