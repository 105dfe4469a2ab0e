#!/usr/bin/env python3
"""Real Google client libraries against a LocalGoogle (tests/support/google_front/), as an
agent would use them: Google's real host names, reached through a proxy from the
environment (`HTTPS_PROXY` for requests, `https_proxy` for gRPC), the test CA trusted
(`REQUESTS_CA_BUNDLE`, `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`), and an OAuth access token.

    front_clients.py storage BUCKET     google-cloud-storage (JSON API over HTTP/1.1)
    front_clients.py pubsub PROJECT     google-cloud-pubsub (gRPC, incl. StreamingPull)

The token is in AIRLOCK_FRONT_TOKEN. Every check is an assertion here; on success one JSON
line on stdout says what was seen, for the Rust test to check again.
"""

import hashlib
import io
import json
import os
import random
import sys
import threading
import time

from google.oauth2.credentials import Credentials

TOKEN = os.environ["AIRLOCK_FRONT_TOKEN"]


def credentials():
    # A bare access token: google-auth sends it as `Authorization: Bearer …` and, with no
    # expiry, never tries to refresh it.
    return Credentials(token=TOKEN)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def storage(bucket_name):
    from google.cloud import storage as gcs

    client = gcs.Client(project="airlock-test", credentials=credentials())
    bucket = client.create_bucket(bucket_name)
    assert bucket.name == bucket_name, bucket.name

    # Small: a multipart upload. Every byte value, CR LF included.
    small = bytes(range(256)) * 7 + b"\r\n\r\n--boundary--\r\n"
    blob = bucket.blob("dir/small.bin")
    blob.upload_from_string(small, content_type="application/octet-stream")
    assert blob.download_as_bytes() == small, "small object changed on the way"

    # Large: a resumable upload in 1 MiB chunks (size unknown up front: no multipart).
    rng = random.Random(7)
    large = rng.randbytes(5 * 1024 * 1024 + 123)
    blob = bucket.blob("dir/large.bin", chunk_size=1024 * 1024)
    blob.upload_from_file(io.BytesIO(large), content_type="application/octet-stream")
    blob.reload()
    assert blob.size == len(large), (blob.size, len(large))
    assert blob.media_link.startswith("https://storage.googleapis.com/"), blob.media_link

    whole = blob.download_as_bytes()  # checks the crc32c the service reports
    assert sha256(whole) == sha256(large), "large object changed on the way"
    start, end = 1_000_003, 3_500_000
    ranged = blob.download_as_bytes(start=start, end=end)  # end inclusive
    assert ranged == large[start : end + 1], (len(ranged), end + 1 - start)

    names = sorted(b.name for b in client.list_blobs(bucket_name, prefix="dir/"))
    assert names == ["dir/large.bin", "dir/small.bin"], names
    buckets = [b.name for b in client.list_buckets()]
    assert bucket_name in buckets, buckets

    print(
        json.dumps(
            {
                "names": names,
                "large_sha256": sha256(large),
                "ranged_len": len(ranged),
                "small_len": len(small),
            }
        )
    )


def pubsub(project):
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient(credentials=credentials())
    subscriber = pubsub_v1.SubscriberClient(credentials=credentials())
    suffix = str(os.getpid())
    topic = publisher.topic_path(project, "orders-" + suffix)
    subscription = subscriber.subscription_path(project, "orders-worker-" + suffix)
    audit = subscriber.subscription_path(project, "orders-audit-" + suffix)
    publisher.create_topic(name=topic)
    for name in (subscription, audit):
        subscriber.create_subscription(name=name, topic=topic, ack_deadline_seconds=60)

    sent = {}
    for i in range(3):
        data = bytes([i]) * 100 + b"order-%d" % i
        message_id = publisher.publish(topic, data, origin="front-test", n=str(i)).result(
            timeout=30
        )
        sent[message_id] = data

    # StreamingPull: the client streams its request and deadline extensions while the
    # emulator streams messages back; acks go out as Acknowledge calls.
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
    got_all = done.wait(timeout=60)
    future.cancel()  # flushes the pending acks before it returns
    future.result(timeout=30)
    assert got_all, "streaming pull delivered %d of %d" % (len(received), len(sent))
    assert {k: v[0] for k, v in received.items()} == sent, received
    assert all(v[1]["origin"] == "front-test" for v in received.values()), received

    # The acks took effect: releasing the leases (deadline 0) brings back nothing, where an
    # unacked message would be delivered again at once.
    subscriber.modify_ack_deadline(
        subscription=subscription, ack_ids=ack_ids, ack_deadline_seconds=0
    )
    leftover = subscriber.pull(
        subscription=subscription, max_messages=10, return_immediately=True
    )
    assert not leftover.received_messages, leftover

    # Unary Pull and Acknowledge, on a second subscription that saw no StreamingPull (the
    # emulator may hold messages published just after a StreamingPull was cancelled for
    # that dead stream until their ack deadline passes; seen without the front too).
    publisher.publish(topic, b"last").result(timeout=30)
    deadline = time.time() + 30
    messages = []
    while len(messages) < len(sent) + 1 and time.time() < deadline:
        messages += subscriber.pull(
            subscription=audit, max_messages=10, return_immediately=True
        ).received_messages
    pulled = sorted(m.message.data for m in messages)
    assert pulled == sorted(list(sent.values()) + [b"last"]), pulled
    subscriber.acknowledge(subscription=audit, ack_ids=[m.ack_id for m in messages])

    publisher.delete_topic(topic=topic)
    for name in (subscription, audit):
        subscriber.delete_subscription(subscription=name)
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
