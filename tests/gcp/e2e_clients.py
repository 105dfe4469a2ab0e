#!/usr/bin/env python3
"""Real Google client libraries as an Airlock agent runs them (tests/gcp_e2e.rs): the
environment is exactly what `airlock agents add` printed (GOOGLE_APPLICATION_CREDENTIALS =
an `authorized_user` file whose refresh token Airlock's own token endpoint exchanges,
HTTPS_PROXY/https_proxy = Airlock, the CA variables = Airlock's CA, GOOGLE_CLOUD_PROJECT).
Nothing here names a credential, a proxy or a CA: the libraries find them all through
Application Default Credentials and the environment, as an unmodified agent would.

    e2e_clients.py storage BUCKET     google-cloud-storage (JSON API over HTTP/1.1)
    e2e_clients.py pubsub SUFFIX      google-cloud-pubsub (gRPC, StreamingPull, acks)

Every check is an assertion here; on success one JSON line on stdout says what was seen,
for the Rust test to check again against what the local Google received.
"""

import base64
import hashlib
import io
import json
import os
import random
import sys
import threading
import time

import google.auth
import google_crc32c

MIB = 1024 * 1024


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def crc32c_b64(data):
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def adc():
    """The credentials and project the libraries will find on their own."""
    credentials, project = google.auth.default(
        scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    return credentials, project


def storage(bucket_name):
    from google.cloud import storage as gcs

    credentials, project = adc()
    kind = type(credentials).__module__ + "." + type(credentials).__name__
    assert kind == "google.oauth2.credentials.Credentials", kind
    assert credentials.refresh_token.startswith("airlock-rt."), "not an Airlock refresh token"
    assert project == os.environ["GOOGLE_CLOUD_PROJECT"], project

    # No credentials or project passed: the client finds them as an agent's would.
    client = gcs.Client()
    bucket = client.create_bucket(bucket_name)
    assert bucket.name == bucket_name, bucket.name
    token = client._credentials.token
    assert token and token.startswith("airlock-at."), "the token endpoint was not Airlock's"

    # Small: one multipart upload. Every byte value, CR LF and a boundary-like line.
    small = bytes(range(256)) * 9 + b"\r\n\r\n--boundary--\r\n"
    blob = bucket.blob("e2e/small.bin")
    blob.upload_from_string(small, content_type="application/octet-stream", checksum="md5")
    blob.reload()
    assert blob.size == len(small), blob.size
    assert blob.md5_hash == md5_b64(small), (blob.md5_hash, md5_b64(small))
    assert blob.crc32c == crc32c_b64(small), (blob.crc32c, crc32c_b64(small))
    # The reloaded blob downloads from its mediaLink (the object name percent-encoded).
    fetched = blob.download_as_bytes(checksum="md5")
    assert fetched == small, "small object changed"

    # Large: >= 50 MiB, resumable, in 8 MiB chunks; the library checks the crc32c the
    # service reports for the whole object against its own.
    large = random.Random(50).randbytes(50 * MIB + 4099)
    blob = bucket.blob("e2e/large.bin", chunk_size=8 * MIB)
    started = time.time()
    blob.upload_from_file(
        io.BytesIO(large),
        size=len(large),
        content_type="application/octet-stream",
        checksum="crc32c",
    )
    upload_seconds = time.time() - started
    blob.reload()
    assert blob.size == len(large), (blob.size, len(large))
    assert blob.md5_hash == md5_b64(large), (blob.md5_hash, md5_b64(large))
    assert blob.crc32c == crc32c_b64(large), (blob.crc32c, crc32c_b64(large))

    # Ranged downloads (end inclusive), across chunk boundaries, and the whole object
    # with the library's own hash check.
    ranges = [
        (0, 99),
        (8 * MIB - 5, 8 * MIB + 5),
        (17_000_003, 29_999_999),
        (len(large) - 10, len(large) - 1),
    ]
    reader = bucket.blob("e2e/large.bin")
    for start, end in ranges:
        part = reader.download_as_bytes(start=start, end=end)
        assert part == large[start : end + 1], ("range", start, end, len(part))
    started = time.time()
    whole = reader.download_as_bytes(checksum="crc32c")
    download_seconds = time.time() - started
    assert sha256(whole) == sha256(large), "large object changed on the way"

    names = sorted(b.name for b in client.list_blobs(bucket_name, prefix="e2e/"))
    assert names == ["e2e/large.bin", "e2e/small.bin"], names
    buckets = [b.name for b in client.list_buckets()]
    assert bucket_name in buckets, buckets

    print(
        json.dumps(
            {
                "names": names,
                "large_len": len(large),
                "large_sha256": sha256(large),
                "large_crc32c": crc32c_b64(large),
                "small_len": len(small),
                "ranges": len(ranges),
                "token_prefix": token.split(".")[0],
                "upload_seconds": round(upload_seconds, 2),
                "download_seconds": round(download_seconds, 2),
            }
        )
    )


def pubsub(suffix):
    from google.cloud import pubsub_v1

    credentials, project = adc()
    assert credentials.refresh_token.startswith("airlock-rt."), "not an Airlock refresh token"
    assert project, "no project from the environment"

    # No credentials passed: gRPC over https_proxy with ADC's token.
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(project, "e2e-orders-" + suffix)
    subscription = subscriber.subscription_path(project, "e2e-worker-" + suffix)
    audit = subscriber.subscription_path(project, "e2e-audit-" + suffix)
    publisher.create_topic(name=topic)
    for name in (subscription, audit):
        subscriber.create_subscription(name=name, topic=topic, ack_deadline_seconds=60)

    sent = {}
    for i in range(3):
        data = bytes([i]) * 100 + b"order-%d" % i
        message_id = publisher.publish(topic, data, origin="e2e", n=str(i)).result(timeout=60)
        sent[message_id] = data

    # StreamingPull: requests and deadline extensions stream up while messages stream
    # down; acks go out as Acknowledge calls (or on the stream).
    received = {}
    ack_ids = []
    done = threading.Event()
    lock = threading.Lock()

    def callback(message):
        with lock:
            received[message.message_id] = (message.data, dict(message.attributes))
            ack_ids.append(message.ack_id)
            message.ack()
            if len(received) == len(sent):
                done.set()

    future = subscriber.subscribe(subscription, callback=callback)
    got_all = done.wait(timeout=90)
    future.cancel()  # flushes the pending acks before it returns
    future.result(timeout=30)
    assert got_all, "streaming pull delivered %d of %d" % (len(received), len(sent))
    assert {k: v[0] for k, v in received.items()} == sent, received
    assert all(v[1]["origin"] == "e2e" for v in received.values()), received

    # The acks took effect: releasing the leases brings nothing back.
    subscriber.modify_ack_deadline(
        subscription=subscription, ack_ids=ack_ids, ack_deadline_seconds=0
    )
    leftover = subscriber.pull(
        subscription=subscription, max_messages=10, return_immediately=True
    )
    assert not leftover.received_messages, leftover

    # Unary Pull and Acknowledge on the second subscription.
    deadline = time.time() + 30
    messages = []
    while len(messages) < len(sent) and time.time() < deadline:
        messages += subscriber.pull(
            subscription=audit, max_messages=10, return_immediately=True
        ).received_messages
    pulled = sorted(m.message.data for m in messages)
    assert pulled == sorted(sent.values()), pulled
    subscriber.acknowledge(subscription=audit, ack_ids=[m.ack_id for m in messages])
    subscriber.close()
    print(
        json.dumps(
            {
                "topic": topic,
                "subscription": subscription,
                "streamed": len(received),
                "pulled": len(messages),
            }
        )
    )


if __name__ == "__main__":
    {"storage": storage, "pubsub": pubsub}[sys.argv[1]](sys.argv[2])
