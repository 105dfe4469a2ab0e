#!/usr/bin/env python3
"""moto's server (as `python -m moto.server`) with two auth bugs of moto 5.2.5 fixed.

Usage: python tests/aws/moto_server.py [--exit-on-stdin-eof] --host 127.0.0.1 --port 5000 [moto.server args]
--exit-on-stdin-eof: exit when stdin closes (tests hold it open; the server dies with them).
Auth is on after INITIAL_NO_AUTH_ACTION_COUNT requests (see moto_bootstrap.py).

With auth on, moto recomputes each request's SigV4 signature in
moto.iam.access_control.IAMRequestBase. Two faults there, patched below; the patched
code still recomputes and compares the signature, so a wrong one is still rejected:

1. Body-less requests (GET/DELETE of rest-json services, e.g. `lambda list-functions`,
   or any request with only a query string) always got SignatureDoesNotMatch: the
   payload hash was computed over `self._body or self._data`, and with an empty body
   `_data` is the parsed query string -- or, with no query string either, the request
   *headers* -- url-encoded as if they were the body. `_data` is only the body for
   form-encoded (query protocol) POSTs, whose body werkzeug has already consumed into
   request.form; use it only then, else the real (possibly empty) body.
2. Presigned (SigV4 query-string) URLs answered 500: the code reads the credential
   scope, signature and date from the Authorization / X-Amz-Date headers only (KeyError),
   and the session token from the X-Amz-Security-Token header only. Take them from the
   X-Amz-* query parameters instead and verify the signature the way presigning
   computes it (query string without X-Amz-Signature; S3: UNSIGNED-PAYLOAD).
   Like moto's header auth, X-Amz-Expires / clock skew are NOT checked.
"""

import sys
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import S3SigV4QueryAuth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from moto.iam import access_control as ac
from werkzeug.datastructures import Headers


def _query(path):
    return parse_qsl(urlsplit(path).query, keep_blank_values=True)


_orig_init = ac.IAMRequestBase.__init__


def _init(self, account_id, method, path, data, body, headers, action):
    # Fault 2: a SigV4 presigned URL carries its auth in the query; present it to moto
    # as the equivalent Authorization / X-Amz-Security-Token headers (on a copy).
    q = dict(_query(path))
    self._presigned = "Authorization" not in headers and q.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256"
    if self._presigned:
        headers = Headers(list(headers.items()))
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={q.get('X-Amz-Credential', '')}, "
            f"SignedHeaders={q.get('X-Amz-SignedHeaders', '')}, "
            f"Signature={q.get('X-Amz-Signature', '')}"
        )
        if "X-Amz-Security-Token" in q:
            headers["X-Amz-Security-Token"] = q["X-Amz-Security-Token"]
        self._query_date = q.get("X-Amz-Date", "")
    _orig_init(self, account_id, method, path, data, body, headers, action)


def _create_aws_request(self):
    signed = self._get_string_between("SignedHeaders=", ",", self._headers["Authorization"]).split(";")
    headers = self._create_headers_for_aws_request(signed, self._headers)
    # Fault 1: only a form-encoded body is held in _data; otherwise hash the raw body.
    form = self._headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
    body = self._body or (self._data if form else b"")
    if self._presigned:
        # Fault 2: canonical query = every parameter but X-Amz-Signature, re-encoded.
        split = urlsplit(self._path)
        params = [(k, v) for k, v in _query(self._path) if k != "X-Amz-Signature"]
        request = AWSRequest(method=self._method, url=split.path, data=body, headers=headers, params=params)
        request.context["timestamp"] = self._query_date
    else:
        request = AWSRequest(method=self._method, url=self._path, data=body, headers=headers)
        request.context["timestamp"] = headers["X-Amz-Date"]
    return request


_orig_create_auth = {cls: cls._create_auth for cls in (ac.IAMRequest, ac.S3IAMRequest)}


def _auth_factory(cls, query_auth_cls):
    def _create_auth(self, credentials):
        if self._presigned:  # Fault 2: presigned signature (S3: unsigned payload, raw path)
            return query_auth_cls(credentials, self._service, self._region)
        return _orig_create_auth[cls](self, credentials)

    return _create_auth


ac.IAMRequestBase.__init__ = _init
ac.IAMRequestBase._create_aws_request = _create_aws_request
ac.IAMRequest._create_auth = _auth_factory(ac.IAMRequest, SigV4QueryAuth)
ac.S3IAMRequest._create_auth = _auth_factory(ac.S3IAMRequest, S3SigV4QueryAuth)

if __name__ == "__main__":
    import os
    import threading

    from moto.server import main

    args = sys.argv[1:]
    if "--exit-on-stdin-eof" in args:
        args.remove("--exit-on-stdin-eof")
        threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    main(args)
