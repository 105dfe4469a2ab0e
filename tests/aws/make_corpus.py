#!/usr/bin/env python3
"""Build a corpus of real AWS API requests, one per operation of every botocore service.

Why: Airlock classifies AWS API calls (service + operation) from nothing but the raw HTTP
request it intercepts. The only trustworthy ground truth for "what does a request for
operation X of service Y look like on the wire" is the SDK itself. This script drives
botocore -- its own parameter validation, serializers, endpoint rules, host prefixes, S3
addressing, checksum handlers and SigV4/bearer signers -- exactly as a real client does,
but captures every request at the last moment (the ``before-send`` event) instead of
sending it. Nothing ever touches the network.

What: for each service (newest API version) and each operation it synthesises the
smallest plausible input (all required members, recursively; enum values, patterns and
length/range bounds respected where cheap), calls ``client.<operation>(**params)``,
captures the final ``AWSPreparedRequest`` and writes it as one JSON line:

    {"method": "POST", "url": "https://...", "headers": {...}, "body_b64": "...",
     "expect": {"service": "elbv2", "operation": "DescribeLoadBalancers",
                "protocol": "query"}}

S3 lines also carry the ``bucket`` and ``key`` of their input in ``expect``: the host and
path must be read back to exactly those.

After them come *variants* (``"variant"`` in ``expect``), the same operations as other
clients configure them:

- ``accelerate`` / ``accelerate-dualstack``: every S3 operation botocore sends to a
  Transfer Acceleration host with ``s3={'use_accelerate_endpoint': True}`` (and
  ``use_dualstack_endpoint=True``); operations botocore keeps off those hosts are left out.
- ``gzip``: every operation with ``requestcompression`` in its model (CloudWatch
  PutMetricData), sent with ``request_min_compression_size_bytes=1`` so the body is always
  gzip-compressed, once per wire protocol the model lists (botocore itself picks JSON;
  other SDKs send CBOR or query), by restricting the model to that one protocol.
- ``twin``: proof material for operations that are the same request on the wire (RDS,
  DocumentDB and Neptune; deprecated S3 names; APIs sharing a host and path). Operations
  whose requests share a wire key (host + target, host + Action + Version, host + CBOR
  path, or host + method + request-URI template) are serialized with each other's input
  -- as given, then translated member by member through where each travels on the wire
  (URI label by position, header and query by name, body by wire name) -- by a client
  without client-side parameter validation, so that a required *body* member the other
  model lacks does not stop it (the service reads which operation it is from the target,
  Action or path, not from the body). A required member that travels in the URI, query
  or headers must be present: those decide the operation (S3's UploadPart is PutObject's
  path plus ``partNumber`` and ``uploadId``). Where botocore then produces the *same* request
  (method, URL, headers and body; the signature aside), that request is emitted again
  labelled as the other operation, with ``"twin_of": "service:Operation"``. A classifier
  answering either is then provably not wrong: no byte of the request could tell them
  apart.

``--presigned N`` additionally emits, for a few GET-able operations (EC2
DescribeInstances, S3 GetObject and ListObjectsV2 -- signed both SigV2 and SigV4 --, STS
GetCallerIdentity), N presigned-URL GET lines each (expiring after 15, 30, ... minutes),
with ``"presigned": true`` in ``expect``. They follow the per-operation lines.

Output is deterministic: fixed credentials, a fixed clock (2026-01-01T00:00:00Z), fixed
UUIDs (idempotency tokens, amz-sdk-invocation-id), a pinned User-Agent platform, a fixed
PYTHONHASHSEED (the script re-executes itself), no influence from ~/.aws or AWS_*
environment variables, botocore's pure-Python signers even if awscrt is installed, and
lines sorted by service then operation.

Headers are botocore's prepared-request headers exactly; there is no Host header (the
HTTP client derives it from the URL), except in presigned lines.

Not covered (listed in the stderr summary): operations with bidirectional event-stream
input, for which botocore generates no client method, and SigV4a-only operations
(cloudfront-keyvaluestore), which need awscrt -- deliberately hidden, see above.

Usage:
    python tests/aws/make_corpus.py OUT.jsonl [--services s3,iam,...] [--presigned N]

Needs botocore==1.44.5 (pip install botocore==1.44.5); no network access.
"""

from __future__ import annotations

import argparse
import base64
import collections
import copy
import datetime
import functools
import gzip
import json
import os
import re
import sys
import time
import types
import uuid
import warnings
from urllib.parse import urlsplit

# Isolate from the caller's AWS configuration *before* botocore reads anything: a stray
# AWS_REGION, AWS_ENDPOINT_URL, AWS_USE_FIPS_ENDPOINT, AWS_BEARER_TOKEN_*, profile or
# retry mode would silently change the requests we generate.
for _var in [v for v in os.environ if v.startswith("AWS_")]:
    del os.environ[_var]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
# Hide awscrt if installed: with it botocore switches to CRT signers (different headers,
# randomised SigV4a signatures, SigV4a preferred by some services), so the corpus would
# depend on whether it happens to be installed. Without it botocore uses pure Python.
sys.modules["awscrt"] = None  # type: ignore[assignment]

import botocore  # noqa: E402
import botocore.auth  # noqa: E402
import botocore.compat  # noqa: E402
import botocore.compress  # noqa: E402
import botocore.endpoint  # noqa: E402
import botocore.handlers  # noqa: E402
import botocore.session  # noqa: E402
import botocore.signers  # noqa: E402
import botocore.utils  # noqa: E402
from botocore.awsrequest import AWSResponse  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.tokens import FrozenAuthToken  # noqa: E402
from botocore.useragent import UserAgentString  # noqa: E402
from botocore.utils import is_json_value_header  # noqa: E402

try:  # Python >= 3.11 moved the regex parser; it is only used for best-effort values.
    import re._constants as sre_constants
    import re._parser as sre_parse
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
BEARER_TOKEN = "example-bearer-token"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
FIXED_NOW = datetime.datetime(2026, 1, 1, 0, 0, 0, tzinfo=datetime.timezone.utc)
FIXED_UUID = uuid.UUID("00000000-0000-4000-8000-000000000000")
EXAMPLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/example"
MAX_DEPTH = 24  # bound for recursive input shapes

# A fixed platform description, so the User-Agent header does not depend on the machine.
PINNED_USER_AGENT = dict(
    platform_name="Linux",
    platform_version="6.8.0",
    platform_machine="x86_64",
    python_version="3.12.3",
    python_implementation="CPython",
    execution_env=None,
    crt_version=None,
)


# --------------------------------------------------------------------------------------
# Determinism: clock, UUIDs, User-Agent, tokens
# --------------------------------------------------------------------------------------


def _fixed_current_datetime(remove_tzinfo=True):
    return FIXED_NOW.replace(tzinfo=None) if remove_tzinfo else FIXED_NOW


def pin_clock_and_uuids():
    """Freeze every clock and UUID source botocore uses while building a request."""
    # get_current_datetime is imported by name into several modules.
    modules = (botocore.compat, botocore.auth, botocore.signers, botocore.endpoint, botocore.utils)
    for module in modules:
        if hasattr(module, "get_current_datetime"):
            module.get_current_datetime = _fixed_current_datetime
    # SigV2 (sdb, importexport) and the legacy S3 signer read time/email.utils directly.
    epoch = FIXED_NOW.timestamp()
    botocore.auth.time = types.SimpleNamespace(
        time=lambda: epoch,
        gmtime=lambda *a: time.gmtime(epoch),
        strftime=time.strftime,
    )
    botocore.auth.formatdate = lambda timeval=None, localtime=False, usegmt=False: (
        "Thu, 01 Jan 2026 00:00:00 GMT"
    )
    # Idempotency tokens (handlers) and amz-sdk-invocation-id (endpoint).
    fixed_uuid_module = types.SimpleNamespace(uuid4=lambda: FIXED_UUID, UUID=uuid.UUID)
    botocore.handlers.uuid = fixed_uuid_module
    botocore.endpoint.uuid = fixed_uuid_module
    # Request compression stamps the gzip header with the current time.
    botocore.compress.gzip_compress = functools.partial(gzip.compress, mtime=0)


class StaticTokenProvider:
    """Session-level bearer token for the few bearer-auth services (e.g. codecatalyst).

    Returns nothing for per-signing-name lookups, so SigV4 services stay SigV4."""

    def load_token(self, **kwargs):
        if kwargs.get("signing_name") is not None:
            return None
        return FrozenAuthToken(BEARER_TOKEN)


def make_session():
    session = botocore.session.get_session()
    session.register_component("user_agent_creator", UserAgentString(**PINNED_USER_AGENT))
    session.register_component("token_provider", StaticTokenProvider())
    return session


# --------------------------------------------------------------------------------------
# Input synthesis
# --------------------------------------------------------------------------------------

# Values tried, in order, when a string member has a `pattern` the name-based guess misses.
GENERIC_STRING_CANDIDATES = [
    "example",
    "example-id",
    "Example",
    "example.com",
    "1",
    ACCOUNT_ID,
    EXAMPLE_ARN,
    "us-east-1",
    str(FIXED_UUID),
    "user@example.com",
    "https://example.com",
    "2026-01-01T00:00:00Z",
    "2026-01-01",
    "i-1234567890abcdef0",
    "amzn-example-bucket",
    "s3://amzn-example-bucket/path/to/object.txt",
    "/example",
    "example/example",
    "a",
    "A",
    "0",
]

# ARNs that endpoint rules parse, where neither the member name nor a pattern says
# which ARN namespace and resource type they need.
ARN_OVERRIDES = {
    ("cloudfront-keyvaluestore", "KvsARN"): (
        f"arn:aws:cloudfront::{ACCOUNT_ID}:key-value-store/00000000-0000-4000-8000-000000000000"
    ),
}

# Preference order when picking a character for a regex character class.
PREFERRED_CHARS = (
    "exampl"
    "bcdfghijknoqrstuvwyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_.:/@+=, "
)

# Placeholders the synthesiser leaves for unbounded "anything" runs (.*, \S+, [^/]+),
# filled in afterwards according to where they ended up (see _fill_placeholders).
ANY_OPTIONAL = "\x00"
ANY_REQUIRED = "\x01"

_CATEGORY_RE = {
    sre_constants.CATEGORY_DIGIT: r"\d",
    sre_constants.CATEGORY_NOT_DIGIT: r"\D",
    sre_constants.CATEGORY_SPACE: r"\s",
    sre_constants.CATEGORY_NOT_SPACE: r"\S",
    sre_constants.CATEGORY_WORD: r"\w",
    sre_constants.CATEGORY_NOT_WORD: r"\W",
}
_REPEATS = tuple(
    getattr(sre_constants, name)
    for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
    if hasattr(sre_constants, name)
)

# Java/ECMAScript Unicode classes as (rough) Python character-class contents.
_UNICODE_CLASSES = {
    "L": "a-zA-Z\u00c0-\u024f", "Lu": "A-Z", "Ll": "a-z", "Alpha": "a-zA-Z",
    "IsAlphabetic": "a-zA-Z\u00c0-\u024f", "IsLetter": "a-zA-Z\u00c0-\u024f",
    "N": "0-9", "Nd": "0-9", "Digit": "0-9", "IsDigit": "0-9", "Alnum": "a-zA-Z0-9",
    "Z": " \u00a0\u2000-\u200a", "Zs": " \u00a0", "Space": " \t\n\r\f\v",
    "M": "\u0300-\u036f", "Mn": "\u0300-\u036f",
    "P": "!-/:-@\\[-`{-~", "Punct": "!-/:-@\\[-`{-~", "S": "$+<=>^`|~",
    "Cc": "\x00-\x1f\x7f", "Cntrl": "\x00-\x1f\x7f", "C": "\x00-\x1f\x7f",
    "Print": "\x20-\x7e", "Graph": "\x21-\x7e", "ASCII": "\x00-\x7f",
}


def _translate_pattern(pattern):
    """Rewrite a Smithy (Java/ECMAScript) pattern into a Python regex, roughly."""
    out = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            unicode_class = re.match(r"\\([pP])\{(\w+)\}", pattern[i:])
            hex_escape = re.match(r"\\x\{([0-9a-fA-F]+)\}", pattern[i:])
            if unicode_class:
                negated = unicode_class.group(1) == "P"
                body = _UNICODE_CLASSES.get(unicode_class.group(2), "\\w")
                if in_class:
                    out.append("\\W" if negated else body)
                else:
                    out.append(f"[{'^' if negated else ''}{body}]")
                i += unicode_class.end()
                continue
            if hex_escape:
                out.append(f"\\U{int(hex_escape.group(1), 16):08x}")
                i += hex_escape.end()
                continue
            if nxt == "z":
                out.append("\\Z")
            elif in_class and nxt in "wdsWDS" and pattern[i + 2 : i + 3] == "-":
                out.append(f"\\{nxt}\\-")  # Java reads [\w-_] as "\w, '-', '_'"
                i += 3
                continue
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class and out and out[-1] not in ("[", "[^"):
            in_class = False
        elif ch == "^" and in_class and out and out[-1] == "[":
            out[-1] = "[^"
            i += 1
            continue
        out.append(ch)
        i += 1
    text = "".join(out)
    # UTF-16 surrogate-pair ranges mean "any astral character" in Java.
    text = re.sub(r"\\uD800\\uDC00-\\uDBFF\\uDFFF", r"\\U00010000-\\U0010FFFF", text, flags=re.I)
    text = re.sub(r"\$\{\d+(,\d*)?\}", "$", text)  # "...$" followed by a stray length
    if "(?i)" in text:  # Java allows inline flags anywhere; Python only at the start
        text = "(?i)" + text.replace("(?i)", "")
    return text


def _compile_aws_pattern(pattern):
    """Compiled Python version of a Smithy pattern, or None if it cannot be translated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return re.compile(_translate_pattern(pattern))
        except (re.error, RecursionError, OverflowError):
            return None


def _class_allows(items, ch):
    """Whether a parsed regex character class (sre IN items) accepts ch."""
    negate = False
    hit = False
    for op, arg in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            hit |= ord(ch) == arg
        elif op is sre_constants.RANGE:
            hit |= arg[0] <= ord(ch) <= arg[1]
        elif op is sre_constants.CATEGORY:
            hit |= bool(re.fullmatch(_CATEGORY_RE.get(arg, "(?!)"), ch))
    return hit != negate


def _is_wildcard(sub):
    """Whether a repeated sub-pattern means "anything": ., [^x], \\S."""
    if len(sub) != 1:
        return False
    op, arg = sub[0]
    if op is sre_constants.ANY or op is sre_constants.NOT_LITERAL:
        return True
    if op is sre_constants.IN:
        negated = bool(arg) and arg[0][0] is sre_constants.NEGATE
        not_space = list(arg) == [(sre_constants.CATEGORY, sre_constants.CATEGORY_NOT_SPACE)]
        return negated or not_space
    return False


def _single_char_predicate(sub):
    """For a repeated single-character sub-pattern, a predicate on characters, or None."""
    if len(sub) != 1:
        return None
    op, arg = sub[0]
    if op is sre_constants.IN:
        return lambda ch: _class_allows(arg, ch)
    if op is sre_constants.LITERAL:
        return lambda ch: ord(ch) == arg
    return None


def _synthesise(parsed, budget=256):
    """A short string matching a parsed regex: first branch, minimal repeats (>= 1)."""
    out = []
    for op, arg in parsed:
        if sum(map(len, out)) > budget:
            break
        if op is sre_constants.LITERAL:
            out.append(chr(arg))
        elif op is sre_constants.NOT_LITERAL:
            out.append(next(c for c in PREFERRED_CHARS if ord(c) != arg))
        elif op is sre_constants.ANY:
            out.append("e")
        elif op is sre_constants.IN:
            out.append(next((c for c in PREFERRED_CHARS if _class_allows(arg, c)), "e"))
        elif op in _REPEATS:
            out.append(_synthesise_repeat(*arg, budget=budget))
        elif op is sre_constants.SUBPATTERN:
            out.append(_synthesise(arg[-1], budget))
        elif op is sre_constants.BRANCH:
            out.append(_synthesise(arg[1][0], budget))
        # AT (anchors), lookarounds, GROUPREF etc. contribute nothing.
    return "".join(out)


def _synthesise_repeat(low, high, sub, budget):
    """Wildcard runs become placeholders; class runs admitting "example" become it."""
    unbounded = high is sre_constants.MAXREPEAT
    if _is_wildcard(sub) and unbounded:
        return ANY_OPTIONAL if low == 0 else ANY_REQUIRED
    allows = _single_char_predicate(sub)
    word = "example"
    if allows and low <= len(word) and (unbounded or high >= len(word)):
        if all(allows(ch) for ch in word):
            return word
    count = max(low, 1)
    if not unbounded:
        count = min(count, high)
    return _synthesise(sub, budget) * min(count, budget)


def _fill_placeholders(text, arn_aware, force=False):
    """Fill wildcard placeholders; for ARNs, give each field a value of its kind
    (with force, even replace what the pattern produced for region and account)."""
    plain = text.replace(ANY_OPTIONAL, "").replace(ANY_REQUIRED, "example")
    if not (arn_aware and text.startswith("arn:")):
        return plain
    fields = plain.split(":", 5)
    raw_fields = text.split(":", 5)
    if len(fields) != len(raw_fields):
        return plain
    # arn : partition : service : region : account : resource
    defaults = [None, "aws", "example", REGION, ACCOUNT_ID, "example"]
    for index in range(1, min(len(fields), 5)):
        bare = raw_fields[index].replace(ANY_OPTIONAL, "").replace(ANY_REQUIRED, "")
        if index == 1:
            fields[index] = bare or "aws"  # "aws.*" -> "aws"
        elif index == 3 and raw_fields[index] and (force or bare == "" or bare.isalnum()):
            fields[index] = REGION
        elif index == 4 and raw_fields[index] and (force or bare == "" or bare.isdigit()):
            fields[index] = ACCOUNT_ID
        elif bare == "" and raw_fields[index]:
            fields[index] = defaults[index]
    return ":".join(fields)


def strings_from_pattern(pattern):
    """Best-effort strings matching an AWS pattern (most plausible first); may be empty."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = sre_parse.parse(_translate_pattern(pattern))
        text = _synthesise(parsed)
    except Exception:  # noqa: BLE001 - any parser hiccup just means "no suggestion"
        return []
    return [
        _fill_placeholders(text, arn_aware=True, force=True),
        _fill_placeholders(text, arn_aware=True),
        _fill_placeholders(text, arn_aware=False),
    ]


class InputBuilder:
    """Synthesises minimal, plausible, validation-passing input for one service."""

    def __init__(self, service_name, signing_name):
        self.service_name = service_name
        self.signing_name = signing_name
        self._pattern_cache = {}

    # -- entry point -------------------------------------------------------------------

    def build(self, operation_model):
        shape = operation_model.input_shape
        if shape is None:
            return {}
        params = self.structure(shape, (), 0)
        payload = shape.serialization.get("payload")
        if operation_model.has_streaming_input and payload and payload not in params:
            params[payload] = b"example"  # optional streaming body (e.g. S3 PutObject)
        for member in shape.members:
            override = ARN_OVERRIDES.get((self.service_name, member))
            if override and member in params:
                params[member] = override
        return params

    # -- per type ----------------------------------------------------------------------

    def value(self, shape, name, stack, depth):
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, stack, depth)
        if kind == "list":
            return self.list(shape, name, stack, depth)
        if kind == "map":
            return self.map(shape, name, stack, depth)
        if kind == "string":
            return self.string(shape, name)
        if kind in ("integer", "long"):
            return self.number(shape, 1)
        if kind in ("float", "double"):
            return float(self.number(shape, 1))
        if kind == "boolean":
            return True
        if kind == "timestamp":
            return FIXED_NOW
        if kind == "blob":
            return self.blob(shape)
        raise ValueError(f"unknown shape type {kind!r}")

    def structure(self, shape, stack, depth):
        if shape.is_document_type:
            return {"example": "value"}
        if shape.type_name == "structure" and shape.serialization.get("eventstream"):
            return self.event_stream(shape)
        stack = stack + (shape.name,)
        if shape.is_tagged_union:
            return self.union(shape, stack, depth)
        return {
            member: self.value(shape.members[member], member, stack, depth + 1)
            for member in shape.required_members
            if member in shape.members
        }

    def union(self, shape, stack, depth):
        """Exactly one member: the first whose shape does not recurse."""
        for member, member_shape in shape.members.items():
            if member_shape.name not in stack or depth > MAX_DEPTH:
                return {member: self.value(member_shape, member, stack, depth + 1)}
        member = next(iter(shape.members))
        return {member: self.value(shape.members[member], member, stack, depth + 1)}

    def list(self, shape, name, stack, depth):
        minimum = shape.metadata.get("min", 0)
        member = shape.member
        if minimum == 0 and (depth > MAX_DEPTH or member.name in stack):
            return []
        element = self.value(member, _singular(name), stack, depth + 1)
        return [element] * max(1, minimum)

    def map(self, shape, name, stack, depth):
        if shape.metadata.get("min", 0) == 0 and (depth > MAX_DEPTH or shape.value.name in stack):
            return {}
        key = self.string(shape.key, "key") if shape.key.type_name == "string" else "example"
        return {key: self.value(shape.value, "value", stack, depth + 1)}

    def number(self, shape, default):
        low = shape.metadata.get("min")
        high = shape.metadata.get("max")
        value = default
        if low is not None and value < low:
            value = low
        if high is not None and value > high:
            value = high
        return int(value)

    def blob(self, shape):
        data = b"example"
        low = shape.metadata.get("min", 0)
        if len(data) < low:
            data = data * (low // len(data) + 1)
        high = shape.metadata.get("max")
        return data[:high] if high is not None and high > 0 else data

    def event_stream(self, shape):
        """Input event streams: botocore serialises the payload as an opaque body."""
        return b"example"

    # -- strings -----------------------------------------------------------------------

    def string(self, shape, name):
        if shape.enum:
            return shape.enum[0]
        if shape.serialization.get("jsonvalue"):
            # JSON-valued headers take a Python value; elsewhere the JSON text itself.
            value = {"example": "value"}
            return value if is_json_value_header(shape) else json.dumps(value)
        low = shape.metadata.get("min", 0)
        high = shape.metadata.get("max")
        pattern = shape.metadata.get("pattern")
        guess = self.guess_by_name(name)
        compiled = self._compiled(pattern) if pattern else None
        if compiled is None:
            return _fit_length(guess, low, high)
        for candidate in self._candidates(guess, pattern):
            for fitted in _length_variants(candidate, low, high):
                if compiled.search(fitted):
                    return fitted
        return _fit_length(guess, low, high)

    def _candidates(self, guess, pattern):
        """Name-based guess, then stock values, then strings built from the pattern."""
        yield guess
        yield from GENERIC_STRING_CANDIDATES
        yield self.service_arn()
        yield from strings_from_pattern(pattern)

    def _compiled(self, pattern):
        if pattern not in self._pattern_cache:
            self._pattern_cache[pattern] = _compile_aws_pattern(pattern)
        return self._pattern_cache[pattern]

    def service_arn(self):
        return f"arn:aws:{self.signing_name}:{REGION}:{ACCOUNT_ID}:example/example-id"

    def guess_by_name(self, name):
        """A plausible value for a string member, judged by its name alone."""
        lowered = name.lower()
        if lowered in ("bucket", "bucketname") and self.service_name.startswith("s3"):
            return "amzn-example-bucket"
        if lowered == "key" and self.service_name == "s3":
            return "path/to/object.txt"
        if lowered.endswith("arn"):
            return EXAMPLE_ARN
        if lowered.endswith("accountid") or lowered in ("accountnumber", "awsaccountid"):
            return ACCOUNT_ID
        if lowered.endswith("id"):
            return "example-id"
        if lowered in ("region", "regionname"):
            return REGION
        if lowered.endswith("email") or lowered.endswith("emailaddress"):
            return "user@example.com"
        return "example"


def _singular(name):
    return name[:-1] if name.endswith("s") else name


def _fit_length(text, low, high, pad="x"):
    """Pad (with `pad`) or truncate text into [low, high]."""
    if len(text) < low:
        text = text + pad * (low - len(text))
    if high is not None and high > 0 and len(text) > high:
        text = text[:high]
    return text


def _length_variants(text, low, high):
    """text itself if its length fits, else padded/truncated versions of it."""
    if len(text) >= low and (high is None or len(text) <= high):
        return [text]
    variants = [_fit_length(text, low, high)]
    if text:
        variants.append(_fit_length(text, low, high, pad=text[-1]))
    return variants


# --------------------------------------------------------------------------------------
# Capturing requests
# --------------------------------------------------------------------------------------


class Captured(Exception):
    """Raised from before-send to stop botocore right before the network."""

    def __init__(self, request):
        super().__init__("captured")
        self.request = request


class _FakeRaw:
    def __init__(self, body):
        self._body = body

    def stream(self, **kwargs):
        yield self._body


def _fake_discovery_response(request):
    """Answer an endpoint-discovery call (Timestream) the way AWS does: with a cell
    endpoint, e.g. ingest.timestream... -> ingest-cell1.timestream..."""
    label, _, rest = urlsplit(request.url).hostname.partition(".")
    address = f"{label}-cell1.{rest}"
    body = json.dumps({"Endpoints": [{"Address": address, "CachePeriodInMinutes": 1440}]})
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(request.url, 200, headers, _FakeRaw(body.encode()))


class NotInClient(Exception):
    """botocore models the operation but its client does not offer it."""


class RequestCapturer:
    """Calls operations on one client and returns the request each would have sent.

    A ``before-send`` hook raises Captured with the final prepared request, so nothing
    is sent. Endpoint-discovery calls that botocore makes first on its own (Timestream)
    are answered with a fake response instead, so the real operation proceeds."""

    def __init__(self, client):
        self.client = client
        discovery = client.meta.service_model.endpoint_discovery_operation
        self.discovery_operation = discovery.name if discovery else None
        self.target = None
        client.meta.events.register("before-send", self._before_send)

    def _before_send(self, request, event_name, **kwargs):
        operation = event_name.rsplit(".", 1)[-1]
        if operation == self.discovery_operation and operation != self.target:
            return _fake_discovery_response(request)
        raise Captured(request)

    def capture(self, operation_name, params):
        method = getattr(self.client, botocore.xform_name(operation_name), None)
        if method is None:
            raise NotInClient(
                "no client method (botocore drops operations with bidirectional event streams)"
            )
        self.target = operation_name
        try:
            method(**params)
        except Captured as captured:
            return captured.request
        raise RuntimeError("operation returned without sending a request")


def body_bytes(body):
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else data
    return b"".join(body)


def header_dict(headers):
    out = {}
    for name, value in headers.items():
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        out[name] = value
    return out


def s3_target(service_name, params):
    """The bucket and key an S3 request is for, from its input: what a classifier must
    read back from the host and path."""
    if service_name != "s3":
        return {}
    return {
        field: params[member]
        for field, member in (("bucket", "Bucket"), ("key", "Key"))
        if isinstance(params.get(member), str)
    }


def request_record(request, expect):
    return {
        "method": request.method,
        "url": request.url,
        "headers": header_dict(request.headers),
        "body_b64": base64.b64encode(body_bytes(request.body)).decode("ascii"),
        "expect": expect,
    }


# --------------------------------------------------------------------------------------
# Driving operations
# --------------------------------------------------------------------------------------


def make_client(session, service_name, signature_version=None, **options):
    config = Config(parameter_validation=True, signature_version=signature_version, **options)
    return session.create_client(
        service_name,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=config,
    )


def _skip_reason(error):
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return f"{type(error).__name__}: {text}"[:300]


def corpus_for_service(session, service_name, skipped, kept=None):
    """Yield one record per operation of the service; append failures to skipped.

    With ``kept`` (a dict), also remember each operation's input, record and wire key
    there, for the twin proofs."""
    try:
        client = make_client(session, service_name)
    except Exception as error:  # noqa: BLE001 - reported per operation below
        model = session.get_service_model(service_name)
        for operation_name in sorted(model.operation_names):
            skipped.append((service_name, operation_name, _skip_reason(error)))
        return
    model = client.meta.service_model
    capturer = RequestCapturer(client)
    builder = InputBuilder(service_name, model.signing_name or model.endpoint_prefix)
    protocol = model.resolved_protocol
    for operation_name in sorted(model.operation_names):
        expect = {"service": service_name, "operation": operation_name, "protocol": protocol}
        try:
            params = builder.build(model.operation_model(operation_name))
            pristine = copy.deepcopy(params)
            expect.update(s3_target(service_name, params))
            request = capturer.capture(operation_name, params)
        except Exception as error:  # noqa: BLE001 - every failure is reported, not fatal
            skipped.append((service_name, operation_name, _skip_reason(error)))
            continue
        record = request_record(request, expect)
        if kept is not None:
            key = wire_key(record, model.operation_model(operation_name))
            kept[(service_name, operation_name)] = (pristine, record, key)
        yield record
    client.close()


# --------------------------------------------------------------------------------------
# Variants: accelerate hosts, gzip bodies, wire twins
# --------------------------------------------------------------------------------------

ACCELERATE_VARIANTS = [
    ("accelerate", {"s3": {"use_accelerate_endpoint": True}}),
    (
        "accelerate-dualstack",
        {"s3": {"use_accelerate_endpoint": True}, "use_dualstack_endpoint": True},
    ),
]


def accelerate_records(session, services, skipped):
    """S3 operations as botocore sends them to Transfer Acceleration hosts."""
    if "s3" not in services:
        return
    for variant, options in ACCELERATE_VARIANTS:
        client = make_client(session, "s3", **options)
        model = client.meta.service_model
        capturer = RequestCapturer(client)
        builder = InputBuilder("s3", model.signing_name)
        for operation_name in sorted(model.operation_names):
            try:
                params = builder.build(model.operation_model(operation_name))
                request = capturer.capture(operation_name, params)
            except Exception as error:  # noqa: BLE001 - reported, not fatal
                skipped.append((f"s3[{variant}]", operation_name, _skip_reason(error)))
                continue
            if "s3-accelerate" not in urlsplit(request.url).hostname:
                continue  # botocore does not accelerate this operation
            expect = {
                "service": "s3",
                "operation": operation_name,
                "protocol": model.resolved_protocol,
                "variant": variant,
                **s3_target("s3", params),
            }
            yield request_record(request, expect)
        client.close()


def _force_protocol(session, service_name, protocol):
    """Restrict the session's (cached) model of the service to one wire protocol: the
    client creator loads it with exactly these arguments, so it gets this copy."""
    loader = session.get_component("data_loader")
    model = loader.load_service_model(service_name, "service-2", api_version=None)
    model["metadata"]["protocols"] = [protocol]
    model["metadata"]["protocol"] = protocol


def gzip_records(services, skipped):
    """Operations with request compression, their bodies always gzip-compressed, once per
    wire protocol their model lists."""
    probe = make_session()
    for service_name in sorted(services):
        model = probe.get_service_model(service_name)
        operations = [
            name
            for name in sorted(model.operation_names)
            if model.operation_model(name).request_compression
        ]
        if not operations:
            continue
        protocols = model.metadata.get("protocols") or [model.metadata["protocol"]]
        for protocol in protocols:
            # A session of its own: the loaded model is changed in place (and cached).
            session = make_session()
            _force_protocol(session, service_name, protocol)
            client = make_client(session, service_name, request_min_compression_size_bytes=1)
            forced = client.meta.service_model
            capturer = RequestCapturer(client)
            builder = InputBuilder(service_name, forced.signing_name or forced.endpoint_prefix)
            for operation_name in operations:
                try:
                    params = builder.build(forced.operation_model(operation_name))
                    request = capturer.capture(operation_name, params)
                except Exception as error:  # noqa: BLE001 - reported, not fatal
                    skipped.append(
                        (f"{service_name}[gzip {protocol}]", operation_name, _skip_reason(error))
                    )
                    continue
                if "gzip" not in str(request.headers.get("Content-Encoding", "")):
                    skipped.append(
                        (f"{service_name}[gzip {protocol}]", operation_name, "not compressed")
                    )
                    continue
                expect = {
                    "service": service_name,
                    "operation": operation_name,
                    "protocol": forced.resolved_protocol,
                    "variant": "gzip",
                }
                yield request_record(request, expect)
            client.close()


def _template_shape(uri):
    """A request-URI template with its label names erased: `/tags/{Arn}` -> `/tags/{}`."""
    return re.sub(r"\{[^}]*?(\+?)\}", r"{\1}", uri)


def wire_key(record, operation_model):
    """What decides the operation on the wire; requests with different keys can never be
    the same request."""
    host = urlsplit(record["url"]).hostname
    headers = {name.lower(): value for name, value in record["headers"].items()}
    if "x-amz-target" in headers:
        return ("target", host, headers["x-amz-target"])
    if headers.get("smithy-protocol") == "rpc-v2-cbor":
        return ("cbor", host, urlsplit(record["url"]).path)
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        from urllib.parse import parse_qs

        form = parse_qs(base64.b64decode(record["body_b64"]).decode("utf-8", "replace"))
        if "Action" in form:
            return ("query", host, form["Action"][0], form.get("Version", [""])[0])
    http = operation_model.http
    return ("rest", host, http.get("method"), _template_shape(http.get("requestUri", "")))


def wire_form(record):
    """A request as the wire carries it, its signature aside (the rest of Authorization --
    algorithm, credential scope, signed headers -- is kept)."""
    headers = {name.lower(): value for name, value in record["headers"].items()}
    if "authorization" in headers:
        headers["authorization"] = re.sub(r"Signature=[0-9a-f]+", "Signature=", headers["authorization"])
    return (record["method"], record["url"], headers, record["body_b64"])


def _wire_places(operation_model):
    """Member name -> where it travels: ("uri", label position), (location, lower-cased
    name) for headers and query strings, ("body", wire name) otherwise."""
    shape = operation_model.input_shape
    if shape is None:
        return {}
    labels = [name for name in re.findall(r"\{([^}]+?)\+?\}", operation_model.http.get("requestUri", ""))]
    places = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", name)
        if location == "uri":
            places[name] = ("uri", labels.index(wire_name) if wire_name in labels else wire_name)
        elif location:
            places[name] = (location, wire_name.lower())
        else:
            places[name] = ("body", wire_name)
    return places


def _dispatch_members_present(operation_model, inputs):
    """Whether every required member that travels outside the body (URI, query string,
    headers) has a value: without them the request is another operation's."""
    shape = operation_model.input_shape
    if shape is None:
        return True
    return all(
        name in inputs
        for name in shape.required_members
        if shape.members[name].serialization.get("location")
    )


def _translate(params, source_model, target_model):
    """`params` of the source operation renamed to the target's members that travel in the
    same place on the wire; members with no counterpart are left out."""
    by_place = {place: name for name, place in _wire_places(source_model).items()}
    out = {}
    for name, place in _wire_places(target_model).items():
        source_name = by_place.get(place)
        if source_name is not None and source_name in params:
            out[name] = params[source_name]
    return out


def twin_records(session, kept, skipped):
    """For operations sharing a wire key, each serialized with the other's input: where
    botocore produces the identical request, that request labelled as the other one."""
    groups = collections.defaultdict(list)
    for (service_name, operation_name), (_, _, key) in kept.items():
        groups[key].append((service_name, operation_name))
    clients = {}

    def capturer_for(service_name):
        if service_name not in clients:
            client = session.create_client(
                service_name,
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
                config=Config(parameter_validation=False),
            )
            clients[service_name] = RequestCapturer(client)
        return clients[service_name]

    def model_of(service_name, operation_name):
        return capturer_for(service_name).client.meta.service_model.operation_model(operation_name)

    for key in sorted(groups, key=repr):
        members = sorted(groups[key])
        if len(members) < 2:
            continue
        for source in members:
            params, source_record, _ = kept[source]
            for target in members:
                if target == source:
                    continue
                service_name, operation_name = target
                capturer = capturer_for(service_name)
                expect = {
                    "service": service_name,
                    "operation": operation_name,
                    "protocol": capturer.client.meta.service_model.resolved_protocol,
                    "variant": "twin",
                    "twin_of": f"{source[0]}:{source[1]}",
                }
                translated = _translate(params, model_of(*source), model_of(*target))
                tries = [params] if translated == params else [params, translated]
                found = None
                for inputs in tries:
                    if not _dispatch_members_present(model_of(*target), inputs):
                        reason = "a required URI, query or header member has no value"
                        continue
                    try:
                        request = capturer.capture(operation_name, copy.deepcopy(inputs))
                    except Exception as error:  # noqa: BLE001 - not a twin, reported
                        reason = _skip_reason(error)
                        continue
                    record = request_record(request, expect)
                    if wire_form(record) == wire_form(source_record):
                        found = record
                        break
                    reason = "differs on the wire"
                if found is not None:
                    yield found
                else:
                    skipped.append(
                        (f"{service_name}[twin of {source[0]}:{source[1]}]", operation_name, reason)
                    )
    for capturer in clients.values():
        capturer.client.close()


# --------------------------------------------------------------------------------------
# Presigned URLs
# --------------------------------------------------------------------------------------

OBJECT = {"Bucket": "amzn-example-bucket", "Key": "path/to/object.txt"}

# (service, operation, params, HTTP method override, signature version override).
# Query-protocol operations are POSTs by default; presigned they become GETs with every
# parameter in the query string. S3 presigns with SigV2 unless told to use SigV4.
PRESIGNABLE = [
    ("ec2", "DescribeInstances", {}, "GET", None),
    ("s3", "GetObject", OBJECT, None, None),
    ("s3", "GetObject", OBJECT, None, "s3v4"),
    ("s3", "ListObjectsV2", {"Bucket": "amzn-example-bucket"}, None, None),
    ("s3", "ListObjectsV2", {"Bucket": "amzn-example-bucket"}, None, "s3v4"),
    ("sts", "GetCallerIdentity", {}, "GET", None),
]


def presigned_records(session, services, variants):
    """Yield `variants` presigned-URL GETs (expiring after 15, 30, ... minutes) for
    each presignable operation of the selected services."""
    for service_name, operation_name, params, http_method, signature in PRESIGNABLE:
        if service_name not in services:
            continue
        client = make_client(session, service_name, signature_version=signature)
        protocol = client.meta.service_model.resolved_protocol
        for index in range(variants):
            url = client.generate_presigned_url(
                botocore.xform_name(operation_name),
                Params=params,
                ExpiresIn=900 * (index + 1),
                HttpMethod=http_method,
            )
            yield {
                "method": "GET",
                "url": url,
                "headers": {"Host": urlsplit(url).netloc},
                "body_b64": "",
                "expect": {
                    "service": service_name,
                    "operation": operation_name,
                    "protocol": protocol,
                    "presigned": True,
                    **s3_target(service_name, params),
                },
            }


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output JSON Lines file")
    parser.add_argument("--services", help="comma-separated botocore service names (default: all)")
    parser.add_argument(
        "--presigned",
        type=int,
        default=0,
        metavar="N",
        help="also emit N presigned-URL variants for each of a few GET-able operations",
    )
    return parser.parse_args(argv)


def select_services(session, requested):
    available = sorted(session.get_available_services())
    if not requested:
        return available
    wanted = sorted({name.strip() for name in requested.split(",") if name.strip()})
    unknown = [name for name in wanted if name not in available]
    if unknown:
        sys.exit(f"make_corpus: unknown service(s): {', '.join(unknown)}")
    return wanted


def print_summary(stats, skipped, elapsed):
    """Counts, then skipped operations grouped by reason (the 50 commonest reasons)."""
    err = sys.stderr
    attempted = stats["written"] + len(skipped)
    share = 100.0 * stats["written"] / max(attempted, 1)
    print(f"services:   {stats['services']}", file=err)
    print(f"attempted:  {attempted} operations", file=err)
    print(f"written:    {stats['written']} operations ({share:.2f}%)", file=err)
    for protocol, count in sorted(stats["protocols"].items()):
        print(f"  {protocol:<20} {count}", file=err)
    for variant, count in sorted(stats["variants"].items()):
        print(f"variant:    {count} {variant} lines", file=err)
    if stats["presigned"]:
        print(f"presigned:  {stats['presigned']} extra lines", file=err)
    print(f"skipped:    {len(skipped)}", file=err)
    print(f"elapsed:    {elapsed:.1f}s", file=err)
    groups = collections.defaultdict(list)
    for service_name, operation_name, reason in skipped:
        groups[reason].append(f"{service_name}.{operation_name}")
    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    if ranked:
        print("skipped operations by reason:", file=err)
    for reason, operations in ranked[:50]:
        shown = ", ".join(operations[:20])
        more = f" (+{len(operations) - 20} more)" if len(operations) > 20 else ""
        print(f"  [{len(operations)}] {reason}\n      {shown}{more}", file=err)


def ensure_fixed_hash_seed():
    """botocore keeps some things in sets (e.g. the User-Agent "m/" feature ids), whose
    order follows the per-process string hash seed. Re-run ourselves with a fixed seed."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]])


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    pin_clock_and_uuids()
    session = make_session()
    services = select_services(session, args.services)
    skipped = []
    variant_skips = []
    stats = {"services": len(services), "written": 0, "presigned": 0}
    stats["protocols"] = collections.Counter()
    stats["variants"] = collections.Counter()
    kept = {}
    with open(args.out, "w", encoding="utf-8") as out:
        for service_name in services:
            for record in corpus_for_service(session, service_name, skipped, kept):
                out.write(json.dumps(record) + "\n")
                stats["written"] += 1
                stats["protocols"][record["expect"]["protocol"]] += 1
        variants = (
            accelerate_records(session, set(services), variant_skips),
            gzip_records(services, variant_skips),
            twin_records(session, kept, variant_skips),
        )
        for generated in variants:
            for record in generated:
                out.write(json.dumps(record) + "\n")
                stats["variants"][record["expect"]["variant"]] += 1
        if args.presigned > 0:
            for record in presigned_records(session, set(services), args.presigned):
                out.write(json.dumps(record) + "\n")
                stats["presigned"] += 1
    print_summary(stats, skipped, time.monotonic() - started)
    not_twins = sum(1 for service, _, _ in variant_skips if "[twin of " in service)
    print(f"twin tries that differ on the wire or fail validation: {not_twins}", file=sys.stderr)
    for service_name, operation_name, reason in variant_skips:
        if "[twin of " not in service_name:
            print(f"  variant not emitted: {service_name}.{operation_name}: {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    ensure_fixed_hash_seed()
    sys.exit(main())
