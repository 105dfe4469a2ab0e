#!/usr/bin/env python3
"""Build a corpus of real Google API requests, one per method of every discovery document.

Why: Airlock classifies Google API calls (API + discovery method id) from nothing but the
raw HTTP request it intercepts. The only trustworthy ground truth for "what does a request
for method X look like on the wire" is a real client. This script drives
google-api-python-client itself -- its discovery-document parser, parameter validation
(required parameters, ``pattern`` checks), URI-template expansion, JSON model, media
upload and batch code -- with real google-auth credentials (an OAuth access token applied
by google-auth-httplib2's ``AuthorizedHttp``), but hands the final request to a capturing
``http`` object instead of a socket. Nothing ever touches the network (sockets are
disabled while the script runs).

What: for every discovery document the package ships
(``googleapiclient/discovery_cache/documents/*.json``; the directory is read, not the
stale ``index.json``) it builds the service offline with ``build_from_document`` and, for
every method, synthesises the smallest valid arguments (required parameters, path
parameters with plausible values that match their ``pattern`` -- and, where a loose
pattern allows a value of the wrong shape, the shape ``flatPath`` spells --, ``body={}``
where the method takes a request body), calls ``.execute()`` and writes the captured request as one
JSON line in the format ``airlock explain --jsonl`` reads:

    {"method": "DELETE", "url": "https://storage.googleapis.com/storage/v1/b/my-bucket",
     "headers": {...}, "body_b64": "",
     "expect": {"api": "storage:v1", "service": "storage",
                "operation": "storage.buckets.delete", "protocol": "rest",
                "form": "rest", "root": "https://storage.googleapis.com/",
                "template": "/storage/v1/b/{bucket}", "patterns": {}}}

``expect.form`` says which variant a line is; ``template`` (the URL path template as the
client expanded it, ``{+x}`` spanning slashes) with ``patterns`` (the discovery ``pattern``
of each templated parameter) and ``root`` (the document's ``rootUrl``) let a test prove
two methods wire-identical instead of taking it on trust.

Variants, as extra lines after the plain REST line of each method (``form``):
- ``regional`` / ``locational``: the document's ``endpoints`` (``<api>.<region>.rep.
  googleapis.com``, ``<location>-<api>.googleapis.com``), via ``client_options``
  ``api_endpoint``; the first endpoint of each kind, for up to VARIANT_SAMPLE methods
  per document (spread over the method list) plus every privileged method.
- ``mtls``: ``mtlsRootUrl`` (``*.mtls.googleapis.com``), same sample.
- ``global-params``: the first GLOBAL_SAMPLE of that sample with the standard query
  parameters (``fields``, ``prettyPrint=false``, ``quotaUser``).
- ``long-uri``: up to LONG_URI_SAMPLE GET methods of the sample with a ``fields`` mask so
  long that the URL passes the client's MAX_URI_LENGTH (2048): the client then sends a
  POST with ``x-http-method-override: GET`` and the query string as a form body.
- ``media-simple``, ``media-multipart``, ``resumable-start``, ``resumable-chunk``: every
  method with ``mediaUpload``; the chunk is the PUT google-api-python-client sends to the
  session URI (the ``Location`` the fake server answers: the start URL plus
  ``upload_id=``), as ``protocol: "media"``.
- ``download``: every method with ``supportsMediaDownload`` through its ``*_media()``
  method (``alt=media``).
- ``batch``: ``new_batch_http_request()`` (``multipart/mixed`` to the document's
  ``batchPath``) for a few mixed batches incl. privileged calls; ``expect.parts`` lists
  every inner call (``expect.operation`` is ``"batch"``: the outer request is no method).
- ``hand:...``: forms other clients send that this library does not, written by hand and
  labelled so: the ``/download/<servicePath>...?alt=media`` media-download service
  (``useMediaDownloadService``; the Go and gcloud clients) and gcloud storage's resumable
  uploads to ``/resumable/upload/storage/v1/...`` (start and chunk), see field notes 4;
  and a few methods (DELETE, PATCH) sent as ``POST`` with ``X-HTTP-Method-Override``
  (``hand:method-override``): Google's Java client does so for every method with
  ``MethodOverride.Builder.setOverrideAllMethods(true)`` ("when running behind a firewall
  that does not support certain verbs"; com.google.api.client.googleapis.MethodOverride),
  and Google's developer blog ("Making PATCH requests from App Engine", 2012) says most of
  its APIs honour the header.

Headers are exactly those the client hands to httplib2 (google-auth's ``authorization``
included); httplib2 itself adds ``Host`` (and a missing ``Content-Length``) when it sends,
so lines have no Host header: ``explain`` takes the host from the absolute URL.

Output is deterministic: a fixed access token (expiry in 2099, so google-auth never
refreshes), a pinned ``x-goog-api-client`` Python version, seeded MIME boundaries and
batch Content-IDs, no influence from GOOGLE_* environment variables, lines sorted by API,
method, form and URL (duplicates -- two files with one document id -- written once).

Not covered (listed in the stderr summary with the reason): documents without a
``rootUrl``; methods for which the client refuses every synthesised argument set.

Usage:
    python tests/gcp/make_corpus.py OUT.jsonl [--apis storage:v1,iam:v1,...]

Needs google-api-python-client==2.202.0 and google-auth (pinned in
tests/requirements.txt); no network access.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime
import json
import os
import random
import re
import socket
import sys
import time
import types
import uuid
from urllib.parse import urljoin, urlsplit

# Isolate from the caller's Google configuration before the libraries read anything: an
# mTLS or universe-domain setting would silently change the requests we generate.
for _var in [v for v in os.environ if v.startswith(("GOOGLE_", "CLOUDSDK_"))]:
    del os.environ[_var]
os.environ["GOOGLE_API_USE_MTLS_ENDPOINT"] = "never"
os.environ["GOOGLE_API_USE_CLIENT_CERTIFICATE"] = "false"


def _no_network(*_args, **_kwargs):
    raise RuntimeError("make_corpus.py must not touch the network")


# Every socket the script could open fails: the capture below is the only transport.
socket.socket.connect = _no_network  # type: ignore[method-assign]
socket.create_connection = _no_network  # type: ignore[assignment]
socket.getaddrinfo = _no_network  # type: ignore[assignment]

import google.oauth2.credentials  # noqa: E402
import google_auth_httplib2  # noqa: E402
import googleapiclient  # noqa: E402
import googleapiclient.discovery  # noqa: E402
import googleapiclient.http  # noqa: E402
import googleapiclient.model  # noqa: E402
import googleapiclient.version  # noqa: E402
import httplib2  # noqa: E402
from googleapiclient.discovery import (  # noqa: E402
    build_from_document,
    createMethod,
    fix_method_name,
    key2param,
)
from googleapiclient.http import MediaInMemoryUpload  # noqa: E402

try:  # Python >= 3.11 moved the regex parser; it is only a fallback for odd patterns.
    import re._constants as sre_constants
    import re._parser as sre_parse
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

CLIENT_VERSION = "2.202.0"
TOKEN = "ya29.airlock-corpus-access-token"
TOKEN_EXPIRY = datetime.datetime(2099, 1, 1)  # naive UTC, as google-auth wants it
PINNED_PY_VERSION = "3.12.3"
FIXED_UUID = uuid.UUID("00000000-0000-4000-8000-000000000000")
UPLOAD_ID = "AIRLOCK-CORPUS-UPLOAD-ID"
MEDIA = b"airlock corpus media\n"
VARIANT_SAMPLE = 8
GLOBAL_SAMPLE = 3
LONG_URI_SAMPLE = 2
GLOBAL_PARAMS = {"fields": "kind,nextPageToken", "prettyPrint": False, "quotaUser": "airlock-corpus"}
# A field mask long enough (> 2048 characters) to push the URL past MAX_URI_LENGTH.
LONG_FIELDS = "items(" + ",".join(f"field{i:04d}" for i in range(200)) + ")"
PROJECT = "my-project"
REGION = "us-central1"
ZONE = "us-central1-a"

# The privileged methods the classifier test checks exactly: every form is emitted for them.
PRIVILEGED = {
    "cloudresourcemanager.projects.setIamPolicy",
    "cloudresourcemanager.projects.delete",
    "storage.buckets.setIamPolicy",
    "storage.buckets.delete",
    "storage.objects.delete",
    "iam.projects.serviceAccounts.keys.create",
    "iam.projects.serviceAccounts.setIamPolicy",
    "bigquery.jobs.insert",
    "sql.instances.export",  # sqladmin:v1 and v1beta4 use `sql.` ids
    "firestore.projects.databases.exportDocuments",
    "compute.instances.delete",
    "cloudkms.projects.locations.keyRings.cryptoKeys.cryptoKeyVersions.destroy",
}

# Mixed batches: (document file stem, [method ids]); each becomes one batch request.
BATCHES = [
    ("storage.v1", ["storage.objects.list", "storage.objects.get", "storage.objects.delete"]),
    ("storage.v1", ["storage.buckets.get", "storage.buckets.setIamPolicy", "storage.buckets.delete"]),
    ("compute.v1", ["compute.instances.get", "compute.instances.list", "compute.instances.delete"]),
    ("bigquery.v2", ["bigquery.datasets.get", "bigquery.jobs.insert"]),
    ("cloudresourcemanager.v1", ["cloudresourcemanager.projects.get", "cloudresourcemanager.projects.setIamPolicy"]),
    ("iam.v1", ["iam.projects.serviceAccounts.get", "iam.projects.serviceAccounts.keys.create"]),
    ("drive.v3", ["drive.files.list", "drive.files.get"]),
]

# Hand-written: methods sent as POST + `X-HTTP-Method-Override` (document stem, method id).
METHOD_OVERRIDES = [
    ("storage.v1", "storage.buckets.delete"),
    ("storage.v1", "storage.buckets.patch"),
    ("storage.v1", "storage.objects.delete"),
    ("compute.v1", "compute.instances.delete"),
    ("cloudresourcemanager.v3", "cloudresourcemanager.projects.delete"),
]

# Plausible values for a collection segment (`projects/{x}`) or a parameter name.
NAMED_VALUES = {
    "project": PROJECT,
    "projects": PROJECT,
    "projectid": PROJECT,
    "location": REGION,
    "locations": REGION,
    "region": REGION,
    "regions": REGION,
    "zone": ZONE,
    "zones": ZONE,
    "bucket": "my-bucket",
    "buckets": "my-bucket",
    "object": "dir/file.txt",
    "organizations": "123456789012",
    "folders": "987654321098",
    "billingaccounts": "012345-6789AB-CDEF01",
    "serviceaccounts": "sa@my-project.iam.gserviceaccount.com",
    "datasetid": "my_dataset",
    "tableid": "my_table",
    "userid": "me",
    "customerid": "my_customer",
}


# --------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------


def pin_environment():
    """Freeze what would otherwise vary between machines and runs."""
    googleapiclient.model._PY_VERSION = PINNED_PY_VERSION
    googleapiclient.http.uuid = types.SimpleNamespace(uuid4=lambda: FIXED_UUID)
    # Method docstrings (pretty-printed schemas) never reach the wire and cost a third of
    # the run: the client gets empty ones.
    googleapiclient.discovery.Schemas.prettyPrintByName = lambda self, name: ""
    googleapiclient.discovery.Schemas.prettyPrintSchema = lambda self, schema: ""
    # The client sleeps between retries; it never retries here, but be sure.
    googleapiclient.http.time = types.SimpleNamespace(sleep=lambda _s: None, time=time.time)


def credentials():
    """A real google-auth OAuth credential holding a fixed, unexpired access token."""
    return google.oauth2.credentials.Credentials(token=TOKEN, expiry=TOKEN_EXPIRY)


# --------------------------------------------------------------------------------------
# The capturing transport
# --------------------------------------------------------------------------------------


class Captured:
    def __init__(self, uri, method, body, headers):
        self.uri = uri
        self.method = method
        if body is None:
            body = b""
        elif hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.body = bytes(body)
        self.headers = {str(k): str(v) for k, v in (headers or {}).items()}


class CaptureHttp:
    """An httplib2.Http stand-in: records every request and answers like Google would.

    A resumable-upload start gets `200` with a `Location` session URI (the start URL plus
    `upload_id=`), everything else `200 {}`; batch answers are not parsed by the corpus
    (the client's complaint about an empty batch answer is expected and ignored).
    """

    def __init__(self):
        self.requests: list[Captured] = []

    def request(self, uri, method="GET", body=None, headers=None, redirections=5,
                connection_type=None, **_kwargs):
        self.requests.append(Captured(uri, method, body, headers))
        headers = {"status": "200", "content-type": "application/json"}
        if "uploadType=resumable" in uri and "upload_id=" not in uri:
            headers["location"] = uri + "&upload_id=" + UPLOAD_ID
        return httplib2.Response(headers), b"{}"

    def close(self):
        pass


def authorized(capture):
    return google_auth_httplib2.AuthorizedHttp(credentials(), http=capture)


# --------------------------------------------------------------------------------------
# Argument synthesis
# --------------------------------------------------------------------------------------


def singular_value(collection: str) -> str:
    key = re.sub(r"[^a-z0-9]", "", collection.lower())
    if key in NAMED_VALUES:
        return NAMED_VALUES[key]
    if collection.endswith("ies") and len(collection) > 3:
        stem = collection[:-3] + "y"
    elif collection.endswith("s") and len(collection) > 1:
        stem = collection[:-1]
    else:
        stem = collection
    stem = re.sub(r"(?<!^)(?=[A-Z])", "-", stem).lower()
    stem = re.sub(r"[^a-z0-9-]+", "-", stem).strip("-") or "x"
    return f"my-{stem}"


def from_pattern_segments(pattern: str) -> str | None:
    """`^projects/[^/]+/locations/[^/]+$` → `projects/my-project/locations/us-central1`."""
    body = pattern
    if body.startswith("^"):
        body = body[1:]
    if body.endswith("$"):
        body = body[:-1]
    out = []
    generated = set()  # indexes in `out` of generated values (not a collection name)
    i = 0
    wildcards = {"[^/]+": "seg", "[^/]*": "seg", ".*": "rest", ".+": "rest", "[^/]+?": "seg"}
    while i < len(body):
        for token, kind in wildcards.items():
            if body.startswith(token, i):
                prev = "".join(out).rstrip("/").rsplit("/", 1)[-1]
                after_value = len(out) >= 2 and len(out) - 2 in generated
                if not out and kind == "seg":  # `^[^/]+/[^/]+/...`: any parent; say a project
                    out.append("projects")
                elif kind == "rest" and (not prev or after_value):
                    out.append("my-path")
                elif after_value:  # `documents/[^/]+/[^/]+`: a child collection
                    out.append("my-collection")
                else:
                    out.append(singular_value(prev))
                    generated.add(len(out) - 1)
                i += len(token)
                break
        else:
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                out.append(body[i + 1])
                i += 2
                continue
            if ch in "[](){}|*+?^$":
                return None
            out.append(ch)
            i += 1
    return "".join(out)


def from_regex(pattern: str) -> str | None:
    """A best-effort shortest string for any regex (fallback for unusual patterns)."""

    def gen(parsed, depth=0):
        if depth > 30:
            return ""
        out = []
        for op, av in parsed:
            if op is sre_constants.LITERAL:
                out.append(chr(av))
            elif op is sre_constants.IN:
                out.append(pick_in(av))
            elif op is sre_constants.ANY:
                out.append("x")
            elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
                lo, _hi, sub = av
                out.append(gen(sub, depth + 1) * max(lo, 1 if lo == 0 and depth == 0 else lo))
            elif op is sre_constants.SUBPATTERN:
                out.append(gen(av[-1], depth + 1))
            elif op is sre_constants.BRANCH:
                out.append(gen(av[1][0], depth + 1))
            elif op is sre_constants.CATEGORY:
                out.append("x")
        return "".join(out)

    def pick_in(items):
        negated = any(op is sre_constants.NEGATE for op, _ in items)
        for op, av in items:
            if op is sre_constants.LITERAL and not negated:
                return chr(av)
            if op is sre_constants.RANGE and not negated:
                lo, hi = av
                for c in "xa0":
                    if lo <= ord(c) <= hi:
                        return c
                return chr(lo)
            if op is sre_constants.CATEGORY and not negated:
                return "0" if av is sre_constants.CATEGORY_DIGIT else "x"
        return "x"

    try:
        return gen(sre_parse.parse(pattern))
    except Exception:  # noqa: BLE001 - best effort only
        return None


def pattern_value(name: str, pattern: str, context: str | None = None) -> str | None:
    makers = (
        lambda: NAMED_VALUES.get(re.sub(r"[^a-z0-9]", "", name.lower())),
        lambda: singular_value(context) if context else None,
        lambda: singular_value(name),
        lambda: from_pattern_segments(pattern),
        lambda: from_regex(pattern),
    )
    whole = pattern.lstrip("^").rstrip("$") or ".*"
    candidates = []
    for make in makers:
        cand = make()
        if cand is not None and re.fullmatch(whole, cand):
            return cand
        candidates.append(cand)
    # The client itself only checks `re.match` (a prefix): accept that as a last resort.
    for cand in candidates:
        if cand is not None and re.match(pattern, cand):
            return cand
    return None


def param_value(name: str, desc: dict, context: str | None = None):
    """The smallest plausible value for one parameter, or raise ValueError.

    `context` is the literal path segment before a path parameter (`projects` in
    `v1/projects/{resource}:setIamPolicy`): the value then names one of those.
    """
    if "enum" in desc:
        value = desc["enum"][0]
        # Some enums start with an *_UNSPECIFIED sentinel that servers reject: prefer a real one.
        real = [e for e in desc["enum"] if "UNSPECIFIED" not in e]
        value = real[0] if real else value
    elif "pattern" in desc:
        numeric = desc.get("type") in ("integer", "number") and re.match(desc["pattern"], "1")
        value = "1" if numeric else pattern_value(name, desc["pattern"], context)
        if value is None:
            raise ValueError(f"no value matches pattern {desc['pattern']!r} of {name}")
    else:
        kind = desc.get("type", "string")
        if kind in ("integer", "number"):
            value = "1"
        elif kind == "boolean":
            value = "true"
        elif desc.get("format") == "google-datetime":
            value = "2026-01-01T00:00:00Z"
        elif desc.get("format") == "google-fieldmask":
            value = "name"
        else:
            key = re.sub(r"[^a-z0-9]", "", name.lower())
            value = NAMED_VALUES.get(key) or singular_value(context or name)
            if desc.get("location") == "path" and "/" in value and key != "object":
                value = value.replace("/", "-")
    if desc.get("repeated"):
        return [value]
    return value


def flat_path_values(method_desc: dict) -> dict:
    """Values for the `{+x}` parameters of `path`, read back from `flatPath`.

    A reserved parameter's pattern is sometimes loose (compute's `parentResource`:
    `[a-z](?:[-a-zA-Z0-9/]{0,255}[a-zA-Z0-9])?`) while `flatPath` spells the real shape
    (`.../reservations/{reservationsId}/reservationBlocks/{reservationBlocksId}/...`): fill
    flatPath's one-segment variables, then match the result against `path`.
    """
    path, flat = method_desc["path"], method_desc.get("flatPath")
    if not flat or flat == path or "{+" not in path:
        return {}
    params = method_desc.get("parameters", {})

    def fill(match):
        name = match.group(1)
        before = re.search(r"([A-Za-z]+)/$", flat[: match.start()])
        context = before.group(1) if before else None
        if name in params and "{+" not in match.group(0):
            try:
                value = param_value(name, params[name], context)
            except ValueError:
                value = None
            if isinstance(value, str) and "/" not in value:
                return value
        return singular_value(context or re.sub(r"Id$", "", name))

    concrete = re.sub(r"\{\+?([^}]+)\}", fill, flat)
    names = []
    regex = ""
    last = 0
    for match in re.finditer(r"\{(\+?)([^}]+)\}", path):
        regex += re.escape(path[last : match.start()])
        regex += "(.+?)" if match.group(1) else "([^/]+)"
        names.append((match.group(2), bool(match.group(1))))
        last = match.end()
    regex += re.escape(path[last:])
    found = re.fullmatch(regex, concrete)
    if not found:
        return {}
    return {name: found.group(i + 1) for i, (name, reserved) in enumerate(names) if reserved}


def fits_flat_path(method_desc: dict, kwargs: dict) -> bool:
    """Whether `path` expanded with `kwargs` has the shape `flatPath` describes."""
    expanded = re.sub(
        r"\{\+?([^}]+)\}",
        lambda m: str(kwargs.get(key2param(m.group(1)), "x")),
        method_desc["path"],
    )
    shape = "".join(
        "[^/]+" if part.startswith("{") else re.escape(part)
        for part in re.split(r"(\{[^}]+\})", method_desc["flatPath"])
    )
    return re.fullmatch(shape, expanded) is not None


def method_kwargs(method_desc: dict, http_method: str) -> dict:
    kwargs = {}
    template = method_desc["path"]
    flat_values = flat_path_values(method_desc)
    for name, desc in sorted(method_desc.get("parameters", {}).items()):
        if desc.get("required") or desc.get("location") == "path":
            context = None
            found = re.search(r"([A-Za-z]+)/\{\+?" + re.escape(name) + r"\}", template)
            if desc.get("location") == "path" and found:
                context = found.group(1)
            kwargs[key2param(name)] = param_value(name, desc, context)
    # Where the values do not make a path of flatPath's shape, take `{+x}` from flatPath.
    if flat_values and not fits_flat_path(method_desc, kwargs):
        for name, value in flat_values.items():
            desc = method_desc["parameters"].get(name, {})
            if re.match(desc.get("pattern", ""), value):
                kwargs[key2param(name)] = value
    if "request" in method_desc and http_method in ("PUT", "POST", "PATCH"):
        kwargs["body"] = {}
    return kwargs


# --------------------------------------------------------------------------------------
# Walking a document
# --------------------------------------------------------------------------------------


def walk_methods(resource_desc, path=()):
    """(accessor path, method name, method description) for every method, depth first."""
    for name, desc in sorted(resource_desc.get("methods", {}).items()):
        yield path, name, desc
    for name, sub in sorted(resource_desc.get("resources", {}).items()):
        yield from walk_methods(sub, path + (name,))


def bound_method(service, path, name, resources=None):
    """The client's callable for one method.

    Where a document has a method and a nested resource of the same name, the client's
    attribute is the resource accessor; the method is then made with the client's own
    `createMethod`, exactly as the attribute would have been.
    """
    resources = {} if resources is None else resources
    target = service
    for depth, resource in enumerate(path):
        key = path[: depth + 1]
        if key not in resources:  # each accessor call builds every method anew: cache
            resources[key] = getattr(target, fix_method_name(resource))()
        target = resources[key]
    base = name[: -len("_media")] if name.endswith("_media") else name
    if base in target._resourceDesc.get("resources", {}):
        method_desc = target._resourceDesc["methods"][base]
        _, function = createMethod(name, method_desc, target._rootDesc, target._schema)
        return function.__get__(target, target.__class__)
    return getattr(target, fix_method_name(name))


def path_template(doc: dict, method_desc: dict, media: bool = False) -> str:
    """The URL path template the client expands (the raw `path`, joined like the client)."""
    base = urljoin(doc["rootUrl"], doc["servicePath"])
    if media:
        base = doc["rootUrl"] + "upload/" + doc["servicePath"]
    return urlsplit(urljoin(base, method_desc["path"])).path


def templated_patterns(doc: dict, method_desc: dict) -> dict:
    out = {}
    for name, desc in sorted(method_desc.get("parameters", {}).items()):
        if desc.get("location") == "path":
            out[name] = desc.get("pattern")
    return out


def build(text: str, capture, api_endpoint=None):
    """The client for one document (built from its JSON text: the client mutates the dict)."""
    options = {"api_endpoint": api_endpoint} if api_endpoint else None
    return build_from_document(text, http=authorized(capture), client_options=options)


def line_for(request: Captured, expect: dict) -> dict:
    return {
        "method": request.method,
        "url": request.uri,
        "headers": dict(sorted(request.headers.items())),
        "body_b64": base64.b64encode(request.body).decode("ascii"),
        "expect": expect,
    }


def seeded(key: str):
    """Seed Python's `random` (MIME boundaries) from a stable key."""
    random.seed(int.from_bytes(key.encode("utf-8")[:32].ljust(32, b"\0"), "big") % (2**63))


def sample(items, k):
    if len(items) <= k:
        return list(items)
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


class Corpus:
    def __init__(self):
        self.lines: list[dict] = []
        self.skipped: list[tuple[str, str, str]] = []
        self.apis = 0
        self.methods = 0
        self.forms = collections.Counter()
        self.texts: dict[str, str] = {}
        self.services: dict[tuple[str, str | None], tuple[object, CaptureHttp, dict]] = {}

    def service(self, doc, api_endpoint=None):
        """One client per document and endpoint, with its capture emptied for a new call."""
        key = (doc["id"], api_endpoint)
        if key not in self.services:
            capture = CaptureHttp()
            service = build(self.texts[doc["id"]], capture, api_endpoint)
            self.services[key] = (service, capture, {})
        service, capture, resources = self.services[key]
        capture.requests.clear()
        return service, capture, resources

    def add(self, request, expect):
        self.lines.append(line_for(request, expect))
        self.forms[expect["form"]] += 1

    def run_one(self, doc, path, name, desc, form, api_endpoint=None, media=None,
                download=False, extra=None):
        """Call one method; add its captured request(s). False if the client refused."""
        service, capture, resources = self.service(doc, api_endpoint)
        try:
            kwargs = method_kwargs(desc, desc["httpMethod"])
            kwargs.update(extra or {})
            method_name = name + "_media" if download else name
            if media is not None:
                kind, upload = media
                kwargs["media_body"] = upload
                if kind == "simple":
                    kwargs.pop("body", None)
                elif kind == "multipart":
                    kwargs["body"] = {}
            seeded(f"{doc['id']} {desc['id']} {form}")
            bound_method(service, path, method_name, resources)(**kwargs).execute()
        except Exception as e:  # noqa: BLE001 - every refusal is reported
            if not capture.requests:
                self.skipped.append((doc["id"], desc["id"], f"{form}: {type(e).__name__}: {e}"))
                return False
        is_media = media is not None
        expect = {
            "api": doc["id"],
            "service": doc["name"],
            "operation": desc["id"],
            "protocol": "media" if (is_media or download) else "rest",
            "form": form,
            "root": doc["rootUrl"],
            "http_method": desc["httpMethod"],
            "template": path_template(doc, desc, media=is_media),
            "patterns": templated_patterns(doc, desc),
        }
        if media is not None and media[0] == "resumable":
            start, *chunks = capture.requests
            self.add(start, dict(expect, form="resumable-start"))
            for chunk in chunks:
                self.add(chunk, dict(expect, form="resumable-chunk"))
        else:
            for request in capture.requests:
                self.add(request, expect)
        return True

    def run_document(self, doc, only_ids=None):
        self.apis += 1
        methods = list(walk_methods(doc))
        if only_ids is not None:
            methods = [m for m in methods if m[2]["id"] in only_ids]
        ok_methods = []
        for path, name, desc in methods:
            self.methods += 1
            if self.run_one(doc, path, name, desc, "rest"):
                ok_methods.append((path, name, desc))
        # Host forms: a spread sample of methods plus every privileged one.
        chosen = sample(ok_methods, VARIANT_SAMPLE)
        chosen += [m for m in ok_methods if m[2]["id"] in PRIVILEGED and m not in chosen]
        service_path = doc["servicePath"]
        endpoints = sorted(doc.get("endpoints", []), key=lambda e: e["endpointUrl"])
        hosts = []
        for kind in ("regional", "locational"):
            for e in endpoints:
                url = e["endpointUrl"]
                if (kind == "regional") == (".rep.googleapis.com" in url):
                    hosts.append((kind, urljoin(url, service_path)))
                    break
        if "mtlsRootUrl" in doc:
            hosts.append(("mtls", urljoin(doc["mtlsRootUrl"], service_path)))
        for form, endpoint in hosts:
            for path, name, desc in chosen:
                self.run_one(doc, path, name, desc, form, api_endpoint=endpoint)
        # The standard query parameters every method takes (`fields`, `prettyPrint`,
        # `quotaUser`), and a GET whose URL would pass MAX_URI_LENGTH: the client then
        # sends it as a POST with `x-http-method-override: GET` and the query as a form body.
        globals_ = {key2param(k): v for k, v in GLOBAL_PARAMS.items() if k in doc.get("parameters", {})}
        for path, name, desc in chosen[:GLOBAL_SAMPLE]:
            self.run_one(doc, path, name, desc, "global-params", extra=globals_)
        if "fields" in doc.get("parameters", {}):
            gets = [m for m in chosen if m[2]["httpMethod"] == "GET"][:LONG_URI_SAMPLE]
            for path, name, desc in gets:
                self.run_one(doc, path, name, desc, "long-uri", extra={"fields": LONG_FIELDS})
        # Media uploads and downloads: every method that has them.
        for path, name, desc in ok_methods:
            if "mediaUpload" in desc:
                # multipart/related carries the request body: only where there is one.
                kinds = ("simple", "multipart", "resumable") if "request" in desc else (
                    "simple", "resumable")
                for kind in kinds:
                    upload = MediaInMemoryUpload(MEDIA, mimetype="text/plain",
                                                 resumable=kind == "resumable")
                    form = {"simple": "media-simple", "multipart": "media-multipart",
                            "resumable": "resumable"}[kind]
                    self.run_one(doc, path, name, desc, form, media=(kind, upload))
            if desc.get("supportsMediaDownload"):
                self.run_one(doc, path, name, desc, "download", download=True)
                if desc.get("useMediaDownloadService"):
                    self.hand_download_service(doc, path, name, desc)

    def hand_download_service(self, doc, path, name, desc):
        """hand: the `/download/<servicePath>` media-download service (Go, gcloud)."""
        service, capture, resources = self.service(doc)
        bound_method(service, path, name + "_media", resources)(**method_kwargs(desc, "GET")).execute()
        (request,) = capture.requests
        parts = urlsplit(request.uri)
        request.uri = f"{parts.scheme}://{parts.netloc}/download{parts.path}?{parts.query}"
        self.add(request, {
            "api": doc["id"], "service": doc["name"], "operation": desc["id"],
            "protocol": "media", "form": "hand:download-service", "root": doc["rootUrl"],
            "http_method": desc["httpMethod"],
            "template": "/download" + path_template(doc, desc),
            "patterns": templated_patterns(doc, desc),
        })

    def hand_method_override(self, doc, method_id):
        """hand: the method sent as a POST with `X-HTTP-Method-Override`, as Google's Java
        client does with MethodOverride's override-all-methods (see the module docstring)."""
        by_id = {d["id"]: (p, n, d) for p, n, d in walk_methods(doc)}
        path, name, desc = by_id[method_id]
        service, capture, resources = self.service(doc)
        bound_method(service, path, name, resources)(
            **method_kwargs(desc, desc["httpMethod"])).execute()
        (request,) = capture.requests
        request.headers["x-http-method-override"] = request.method
        request.method = "POST"
        self.add(request, {
            "api": doc["id"], "service": doc["name"], "operation": desc["id"],
            "protocol": "rest", "form": "hand:method-override", "root": doc["rootUrl"],
            "http_method": desc["httpMethod"], "template": path_template(doc, desc),
            "patterns": templated_patterns(doc, desc),
        })

    def run_batch(self, doc, method_ids):
        service, capture, resources = self.service(doc)
        by_id = {d["id"]: (p, n, d) for p, n, d in walk_methods(doc)}
        batch = service.new_batch_http_request()
        parts = []
        for i, method_id in enumerate(method_ids):
            path, name, desc = by_id[method_id]
            batch.add(bound_method(service, path, name, resources)(**method_kwargs(desc, desc["httpMethod"])),
                      request_id=str(i + 1))
            parts.append({"api": doc["id"], "operation": method_id})
        seeded(f"batch {doc['id']} {' '.join(method_ids)}")
        try:
            batch.execute()
        except Exception:  # noqa: BLE001 - the empty `{}` answer is no multipart reply
            pass
        (request,) = capture.requests
        self.add(request, {
            "api": doc["id"], "service": doc["name"], "operation": "batch",
            "protocol": "batch", "form": "batch", "root": doc["rootUrl"],
            "http_method": "POST", "template": urlsplit(doc["rootUrl"] + doc.get("batchPath", "batch")).path,
            "patterns": {}, "parts": parts,
        })

    def hand_gcloud_resumable(self, storage_doc):
        """hand: gcloud storage's resumable upload (`/resumable/upload/storage/v1/...`)."""
        desc = storage_doc["resources"]["objects"]["methods"]["insert"]
        base = "https://storage.googleapis.com/resumable/upload/storage/v1/b/my-bucket/o"
        common = {
            "accept": "application/json",
            "accept-encoding": "gzip, deflate",
            "authorization": f"Bearer {TOKEN}",
            "user-agent": "google-cloud-sdk gcloud/528.0.0 command/gcloud.storage.cp",
        }
        start = Captured(
            f"{base}?alt=json&name=dir%2Ffile.txt&uploadType=resumable",
            "POST",
            b'{"name": "dir/file.txt"}',
            dict(common, **{"content-type": "application/json",
                            "x-upload-content-type": "text/plain",
                            "x-upload-content-length": str(len(MEDIA))}),
        )
        chunk = Captured(
            f"{base}?alt=json&name=dir%2Ffile.txt&uploadType=resumable&upload_id={UPLOAD_ID}",
            "PUT",
            MEDIA,
            dict(common, **{"content-range": f"bytes 0-{len(MEDIA) - 1}/{len(MEDIA)}",
                            "content-type": "text/plain"}),
        )
        for request, form in ((start, "hand:gcloud-resumable-start"),
                              (chunk, "hand:gcloud-resumable-chunk")):
            self.add(request, {
                "api": storage_doc["id"], "service": "storage", "operation": desc["id"],
                "protocol": "media", "form": form, "root": storage_doc["rootUrl"],
                "http_method": "POST",
                "template": "/resumable/upload/storage/v1/b/{bucket}/o",
                "patterns": templated_patterns(storage_doc, desc),
            })


def documents_dir() -> str:
    return os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output JSONL file")
    parser.add_argument("--apis", help="comma-separated document ids (default: all)")
    args = parser.parse_args()
    if googleapiclient.version.__version__ != CLIENT_VERSION:
        sys.exit(f"need google-api-python-client=={CLIENT_VERSION}, have {googleapiclient.version.__version__}")
    wanted = set(args.apis.split(",")) if args.apis else None
    started = time.monotonic()
    pin_environment()
    import logging

    logging.disable(logging.CRITICAL)  # the client warns about auto-detected MIME types etc.

    corpus = Corpus()
    docs = {}
    no_root = []
    directory = documents_dir()
    for file in sorted(os.listdir(directory)):
        if not file.endswith(".json"):
            continue
        with open(os.path.join(directory, file), encoding="utf-8") as f:
            text = f.read()
        doc = json.loads(text)
        if "rootUrl" not in doc or "resources" not in doc and "methods" not in doc:
            no_root.append(file)
            continue
        if wanted is not None and doc["id"] not in wanted:
            continue
        docs[file[: -len(".json")]] = doc
        corpus.texts[doc["id"]] = text
        corpus.run_document(doc)
        corpus.services.clear()  # one document's clients at a time: memory stays flat
    for stem, method_ids in BATCHES:
        if stem in docs:
            corpus.run_batch(docs[stem], method_ids)
    if "storage.v1" in docs:
        corpus.hand_gcloud_resumable(docs["storage.v1"])
    for stem, method_id in METHOD_OVERRIDES:
        if stem in docs:
            corpus.hand_method_override(docs[stem], method_id)

    unique = {json.dumps(line, sort_keys=True): line for line in corpus.lines}
    lines = sorted(unique.values(), key=lambda l: (
        l["expect"]["api"], l["expect"]["operation"], l["expect"]["form"], l["url"], l["method"]))
    with open(args.out, "w", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n")

    print(f"make_corpus: google-api-python-client {googleapiclient.version.__version__}: "
          f"{corpus.apis} APIs, {corpus.methods} methods, {len(lines)} lines "
          f"({len(corpus.lines) - len(lines)} duplicates dropped) "
          f"in {time.monotonic() - started:.1f} s", file=sys.stderr)
    print("  forms: " + ", ".join(f"{k} {v}" for k, v in sorted(corpus.forms.items())),
          file=sys.stderr)
    if no_root:
        print(f"  not a discovery document (no rootUrl/resources): {', '.join(no_root)}",
              file=sys.stderr)
    reasons = collections.Counter(r.split(":")[0] + ":" + r.split(":")[1] for _, _, r in corpus.skipped)
    print(f"  skipped {len(corpus.skipped)} method calls: " +
          ", ".join(f"{k} {v}" for k, v in reasons.most_common()), file=sys.stderr)
    for api, method, reason in corpus.skipped:
        print(f"    {api} {method}: {reason}", file=sys.stderr)


if __name__ == "__main__":
    main()
