#!/usr/bin/env python3
"""google-api-python-client batches as an Airlock agent sends them (tests/gcp_e2e.rs).
The environment is exactly what `airlock agents add` printed: Application Default
Credentials (an `authorized_user` file Airlock's token endpoint refreshes), HTTPS_PROXY =
Airlock (httplib2 honours it only with PySocks installed), HTTPLIB2_CA_CERTS = Airlock's CA.
The Cloud Storage client is built from the library's bundled discovery document.

    batch_client.py setup BUCKET        create BUCKET and one object in it (plain calls)
    batch_client.py reads BUCKET        one batch: buckets.get + objects.list
    batch_client.py privileged BUCKET   one batch: buckets.get + objects.list +
                                        buckets.setIamPolicy (allUsers objectViewer)

Prints one JSON line on stdout: for a batch that ran, each part's result or error status;
for a batch refused as a whole, its HTTP status and body.
"""

import json
import os
import sys

import google.auth
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaInMemoryUpload


def client():
    credentials, _ = google.auth.default()
    return build("storage", "v1", credentials=credentials, static_discovery=True)


def setup(storage, bucket, project):
    storage.buckets().insert(project=project, body={"name": bucket}).execute()
    storage.objects().insert(
        bucket=bucket,
        name="batch/one.txt",
        media_body=MediaInMemoryUpload(b"one\n", mimetype="text/plain"),
    ).execute()
    return {"created": bucket}


def batch(storage, bucket, privileged):
    results = {}

    def callback(request_id, response, exception):
        if exception is not None:
            results[request_id] = {
                "error": getattr(getattr(exception, "resp", None), "status", None),
                "message": str(exception),
            }
        else:
            results[request_id] = response

    b = storage.new_batch_http_request(callback=callback)
    b.add(storage.buckets().get(bucket=bucket), request_id="get")
    b.add(storage.objects().list(bucket=bucket), request_id="list")
    if privileged:
        policy = {
            "bindings": [
                {"role": "roles/storage.objectViewer", "members": ["allUsers"]}
            ]
        }
        b.add(
            storage.buckets().setIamPolicy(bucket=bucket, body=policy),
            request_id="setIamPolicy",
        )
    # What came back for the batch request itself, whatever the library makes of it.
    http = storage._http
    send = http.request
    answers = []

    def request(*args, **kwargs):
        resp, content = send(*args, **kwargs)
        answers.append({"status": resp.status, "content_type": resp.get("content-type")})
        return resp, content

    http.request = request
    try:
        b.execute()
    except TypeError as e:
        # gcp-storage-emulator answers a batch's parts without the `Content-ID` Google
        # echoes, which the library cannot match to its calls (`_header_to_id(None)`).
        # Only that is tolerated: the batch itself was answered 200.
        if not answers or answers[-1]["status"] != 200 or "subscriptable" not in str(e):
            raise
        return {"status": 200, "parts": None, "unmatched_parts": str(e), "answers": answers}
    except HttpError as e:
        content = e.content.decode("utf-8", "replace") if e.content else ""
        return {
            "status": e.resp.status,
            "content": content,
            "reason": e._get_reason(),
            "parts_run": results,
            "answers": answers,
        }
    return {"status": 200, "parts": results, "answers": answers}


def main():
    mode, bucket = sys.argv[1], sys.argv[2]
    storage = client()
    if mode == "setup":
        out = setup(storage, bucket, os.environ["GOOGLE_CLOUD_PROJECT"])
    elif mode == "reads":
        out = batch(storage, bucket, privileged=False)
    elif mode == "privileged":
        out = batch(storage, bucket, privileged=True)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
