#!/usr/bin/env python3
"""The gRPC corpus: every Pub/Sub method (Publisher, Subscriber, SchemaService), called by
the real google-cloud-pubsub client against a local gRPC server that records what arrives.

    make_grpc_corpus.py OUT.jsonl

The server is grpcio with one generic handler for every method, on 127.0.0.1 (an
insecure channel: the client is pointed at it with PUBSUB_EMULATOR_HOST, its documented
emulator switch, which also makes it send no credentials). For each method it records
the first call: the gRPC path, the request metadata, and the first request message's raw
bytes, re-framed with gRPC's 5-byte prefix (flag 0, big-endian length). grpcio hands a
handler the message after unframing, so the prefix is rebuilt; the client sends
uncompressed messages, so flag 0 is what was on the wire. The client's IAM calls
(google.iam.v1.IAMPolicy, on topics, subscriptions, snapshots and schemas) are recorded
each, since their REST twin depends on the resource. Every unary call is answered
with an empty message (all fields default), Publish with one message id per message, and
StreamingPull's stream is closed after its first request.

Each output line:
    {"method": "POST", "url": "https://pubsub.googleapis.com/google.pubsub.v1.Publisher/Publish",
     "headers": {"content-type": "application/grpc", "te": "trailers", ...},
     "body_b64": "<framed bytes>",
     "expect": {"api": "pubsub:v1", "operation": "pubsub.projects.topics.publish", "protocol": "grpc"}}

The expected operation ids are written by hand below from the Pub/Sub discovery document
(pubsub.v1), not read from Airlock's generated table, so the corpus checks that table. The
script fails unless every method of the three services (as the client's own gRPC
transports name them) was captured.
"""

import base64
import json
import os
import struct
import sys
import threading
import time
from concurrent import futures

import grpc

PROJECT = "airlock-test"
TOPIC = f"projects/{PROJECT}/topics/orders"
SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/orders-worker"
SNAPSHOT = f"projects/{PROJECT}/snapshots/before-replay"
SCHEMA = f"projects/{PROJECT}/schemas/order"
# 1 KiB of message data, checked byte for byte by tests/gcp_grpc.rs.
DATA = bytes(range(256)) * 4

# gRPC method -> the discovery id of its REST twin (pubsub.v1), or Airlock's own id for
# methods without one.
EXPECTED = {
    "/google.pubsub.v1.Publisher/CreateTopic": "pubsub.projects.topics.create",
    "/google.pubsub.v1.Publisher/UpdateTopic": "pubsub.projects.topics.patch",
    "/google.pubsub.v1.Publisher/Publish": "pubsub.projects.topics.publish",
    "/google.pubsub.v1.Publisher/GetTopic": "pubsub.projects.topics.get",
    "/google.pubsub.v1.Publisher/ListTopics": "pubsub.projects.topics.list",
    "/google.pubsub.v1.Publisher/ListTopicSubscriptions": "pubsub.projects.topics.subscriptions.list",
    "/google.pubsub.v1.Publisher/ListTopicSnapshots": "pubsub.projects.topics.snapshots.list",
    "/google.pubsub.v1.Publisher/DeleteTopic": "pubsub.projects.topics.delete",
    "/google.pubsub.v1.Publisher/DetachSubscription": "pubsub.projects.subscriptions.detach",
    "/google.pubsub.v1.Subscriber/CreateSubscription": "pubsub.projects.subscriptions.create",
    "/google.pubsub.v1.Subscriber/GetSubscription": "pubsub.projects.subscriptions.get",
    "/google.pubsub.v1.Subscriber/UpdateSubscription": "pubsub.projects.subscriptions.patch",
    "/google.pubsub.v1.Subscriber/ListSubscriptions": "pubsub.projects.subscriptions.list",
    "/google.pubsub.v1.Subscriber/DeleteSubscription": "pubsub.projects.subscriptions.delete",
    "/google.pubsub.v1.Subscriber/ModifyAckDeadline": "pubsub.projects.subscriptions.modifyAckDeadline",
    "/google.pubsub.v1.Subscriber/Acknowledge": "pubsub.projects.subscriptions.acknowledge",
    "/google.pubsub.v1.Subscriber/Pull": "pubsub.projects.subscriptions.pull",
    "/google.pubsub.v1.Subscriber/StreamingPull": "pubsub.Subscriber.StreamingPull",
    "/google.pubsub.v1.Subscriber/ModifyPushConfig": "pubsub.projects.subscriptions.modifyPushConfig",
    "/google.pubsub.v1.Subscriber/GetSnapshot": "pubsub.projects.snapshots.get",
    "/google.pubsub.v1.Subscriber/ListSnapshots": "pubsub.projects.snapshots.list",
    "/google.pubsub.v1.Subscriber/CreateSnapshot": "pubsub.projects.snapshots.create",
    "/google.pubsub.v1.Subscriber/UpdateSnapshot": "pubsub.projects.snapshots.patch",
    "/google.pubsub.v1.Subscriber/DeleteSnapshot": "pubsub.projects.snapshots.delete",
    "/google.pubsub.v1.Subscriber/Seek": "pubsub.projects.subscriptions.seek",
    "/google.pubsub.v1.SchemaService/CreateSchema": "pubsub.projects.schemas.create",
    "/google.pubsub.v1.SchemaService/GetSchema": "pubsub.projects.schemas.get",
    "/google.pubsub.v1.SchemaService/ListSchemas": "pubsub.projects.schemas.list",
    "/google.pubsub.v1.SchemaService/ListSchemaRevisions": "pubsub.projects.schemas.listRevisions",
    "/google.pubsub.v1.SchemaService/CommitSchema": "pubsub.projects.schemas.commit",
    "/google.pubsub.v1.SchemaService/RollbackSchema": "pubsub.projects.schemas.rollback",
    "/google.pubsub.v1.SchemaService/DeleteSchemaRevision": "pubsub.projects.schemas.deleteRevision",
    "/google.pubsub.v1.SchemaService/DeleteSchema": "pubsub.projects.schemas.delete",
    "/google.pubsub.v1.SchemaService/ValidateSchema": "pubsub.projects.schemas.validate",
    "/google.pubsub.v1.SchemaService/ValidateMessage": "pubsub.projects.schemas.validateMessage",
}


# The IAM mixin (google.iam.v1.IAMPolicy), which the client calls at pubsub.googleapis.com:
# (method, resource collection) -> the REST twin.
IAM_PREFIX = "/google.iam.v1.IAMPolicy/"
EXPECTED_IAM = {
    ("SetIamPolicy", "topics"): "pubsub.projects.topics.setIamPolicy",
    ("GetIamPolicy", "topics"): "pubsub.projects.topics.getIamPolicy",
    ("TestIamPermissions", "topics"): "pubsub.projects.topics.testIamPermissions",
    ("SetIamPolicy", "subscriptions"): "pubsub.projects.subscriptions.setIamPolicy",
    ("GetIamPolicy", "snapshots"): "pubsub.projects.snapshots.getIamPolicy",
    ("TestIamPermissions", "schemas"): "pubsub.projects.schemas.testIamPermissions",
}


class Recorder(grpc.GenericRpcHandler):
    """Answers every method; records the first request of each."""

    def __init__(self):
        self.calls = {}
        self.iam_calls = []
        self.lock = threading.Lock()

    def record(self, method, context, raw):
        with self.lock:
            call = {"metadata": list(context.invocation_metadata()), "raw": raw}
            if method.startswith(IAM_PREFIX):
                # One line per IAM call: which REST method it is depends on the resource.
                self.iam_calls.append((method, call))
            elif method not in self.calls:
                self.calls[method] = call

    def service(self, handler_call_details):
        method = handler_call_details.method
        if method == "/google.pubsub.v1.Subscriber/StreamingPull":
            def stream(requests, context):
                for raw in requests:
                    self.record(method, context, raw)
                    # Close the stream once its opening request is in: the test needs
                    # only that one.
                    context.abort(grpc.StatusCode.UNAVAILABLE, "corpus recorder: stream closed")
                return iter(())

            return grpc.stream_stream_rpc_method_handler(stream)

        def unary(raw, context):
            self.record(method, context, raw)
            if method == "/google.pubsub.v1.Publisher/Publish":
                from google.pubsub_v1.types import PublishRequest, PublishResponse

                count = len(PublishRequest.deserialize(raw).messages)
                return PublishResponse.serialize(PublishResponse(message_ids=[str(i) for i in range(count)]))
            return b""

        return grpc.unary_unary_rpc_method_handler(unary)


def drive(address):
    """Call every Pub/Sub method once through the real client."""
    os.environ["PUBSUB_EMULATOR_HOST"] = address
    from google.api_core import retry as retries
    from google.cloud import pubsub_v1
    from google.protobuf import field_mask_pb2
    from google.pubsub_v1 import SchemaServiceClient
    from google.pubsub_v1.types import Encoding, Schema, Snapshot, Subscription, Topic

    no_retry = retries.Retry(initial=0.01, maximum=0.01, timeout=0.1, predicate=lambda e: False)

    publisher = pubsub_v1.PublisherClient()
    publisher.create_topic(request={"name": TOPIC, "labels": {"team": "payments"}})
    publisher.update_topic(request={
        "topic": Topic(name=TOPIC, labels={"team": "billing"}),
        "update_mask": field_mask_pb2.FieldMask(paths=["labels"]),
    })
    publisher.publish(TOPIC, DATA, origin="airlock-corpus").result(timeout=30)
    publisher.get_topic(request={"topic": TOPIC})
    list(publisher.list_topics(request={"project": f"projects/{PROJECT}"}))
    list(publisher.list_topic_subscriptions(request={"topic": TOPIC}))
    list(publisher.list_topic_snapshots(request={"topic": TOPIC}))
    publisher.detach_subscription(request={"subscription": SUBSCRIPTION})
    publisher.set_iam_policy(request={
        "resource": TOPIC,
        "policy": {"bindings": [{"role": "roles/pubsub.publisher", "members": ["serviceAccount:ci@airlock-test.iam.gserviceaccount.com"]}]},
    })
    publisher.get_iam_policy(request={"resource": TOPIC})
    publisher.test_iam_permissions(request={"resource": TOPIC, "permissions": ["pubsub.topics.publish"]})
    publisher.delete_topic(request={"topic": TOPIC})

    subscriber = pubsub_v1.SubscriberClient()
    subscriber.create_subscription(request={
        "name": SUBSCRIPTION,
        "topic": TOPIC,
        "ack_deadline_seconds": 30,
        "dead_letter_policy": {"dead_letter_topic": f"projects/{PROJECT}/topics/orders-dead", "max_delivery_attempts": 5},
    })
    subscriber.get_subscription(request={"subscription": SUBSCRIPTION})
    subscriber.update_subscription(request={
        "subscription": Subscription(name=SUBSCRIPTION, ack_deadline_seconds=60),
        "update_mask": field_mask_pb2.FieldMask(paths=["ack_deadline_seconds"]),
    })
    list(subscriber.list_subscriptions(request={"project": f"projects/{PROJECT}"}))
    subscriber.modify_ack_deadline(request={"subscription": SUBSCRIPTION, "ack_ids": ["ack-1"], "ack_deadline_seconds": 10})
    subscriber.acknowledge(request={"subscription": SUBSCRIPTION, "ack_ids": ["ack-1", "ack-2"]})
    subscriber.pull(request={"subscription": SUBSCRIPTION, "max_messages": 10}, retry=no_retry)
    subscriber.modify_push_config(request={
        "subscription": SUBSCRIPTION,
        "push_config": {"push_endpoint": "https://example.com/push"},
    })
    subscriber.get_snapshot(request={"snapshot": SNAPSHOT})
    list(subscriber.list_snapshots(request={"project": f"projects/{PROJECT}"}))
    subscriber.create_snapshot(request={"name": SNAPSHOT, "subscription": SUBSCRIPTION})
    subscriber.update_snapshot(request={
        "snapshot": Snapshot(name=SNAPSHOT, labels={"why": "replay"}),
        "update_mask": field_mask_pb2.FieldMask(paths=["labels"]),
    })
    subscriber.seek(request={"subscription": SUBSCRIPTION, "snapshot": SNAPSHOT})
    subscriber.delete_snapshot(request={"snapshot": SNAPSHOT})
    subscriber.set_iam_policy(request={
        "resource": SUBSCRIPTION,
        "policy": {"bindings": [{"role": "roles/pubsub.subscriber", "members": ["allUsers"]}]},
    })
    subscriber.get_iam_policy(request={"resource": SNAPSHOT})

    # StreamingPull: the streaming subscriber opens the stream; the recorder closes it.
    future = subscriber.subscribe(SUBSCRIPTION, callback=lambda message: message.ack())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "/google.pubsub.v1.Subscriber/StreamingPull" not in RECORDER.calls:
        time.sleep(0.05)
    future.cancel()
    try:
        future.result(timeout=10)
    except Exception:  # noqa: BLE001 - cancelled or closed by the recorder: expected
        pass
    subscriber.delete_subscription(request={"subscription": SUBSCRIPTION})

    schemas = SchemaServiceClient()
    definition = '{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}'
    schemas.create_schema(request={
        "parent": f"projects/{PROJECT}",
        "schema": Schema(type_=Schema.Type.AVRO, definition=definition),
        "schema_id": "order",
    })
    schemas.get_schema(request={"name": SCHEMA})
    list(schemas.list_schemas(request={"parent": f"projects/{PROJECT}"}))
    list(schemas.list_schema_revisions(request={"name": SCHEMA}))
    schemas.commit_schema(request={"name": SCHEMA, "schema": Schema(name=SCHEMA, type_=Schema.Type.AVRO, definition=definition)})
    schemas.rollback_schema(request={"name": SCHEMA, "revision_id": "rev-1"})
    schemas.delete_schema_revision(request={"name": f"{SCHEMA}@rev-2"})
    schemas.validate_schema(request={"parent": f"projects/{PROJECT}", "schema": Schema(type_=Schema.Type.AVRO, definition=definition)})
    schemas.validate_message(request={
        "parent": f"projects/{PROJECT}",
        "name": SCHEMA,
        "message": b'{"id":"42"}',
        "encoding": Encoding.JSON,
    })
    schemas.test_iam_permissions(request={"resource": SCHEMA, "permissions": ["pubsub.schemas.get"]})
    schemas.delete_schema(request={"name": SCHEMA})


def service_methods():
    """Every method of the three services, as the client's own gRPC transports call them.

    (Not from the .proto files the wheel ships: those are stale, with 6 of SchemaService's
    10 methods.)
    """
    import re
    from importlib.resources import files

    methods = set()
    services = files("google.pubsub_v1") / "services"
    for service in ("publisher", "subscriber", "schema_service"):
        text = (services / service / "transports" / "grpc.py").read_text()
        methods.update(re.findall(r'"(/google\.pubsub\.v1\.\w+/\w+)"', text))
    methods = {m for m in methods if not m.startswith(IAM_PREFIX)}
    if len(methods) < 30:
        sys.exit(f"make_grpc_corpus.py: found only {len(methods)} methods in the client's transports")
    return methods


def iam_collection(method, raw):
    """`topics` for an IAM request whose resource is projects/p/topics/t."""
    from google.iam.v1 import iam_policy_pb2

    request = getattr(iam_policy_pb2, method.rsplit("/", 1)[1] + "Request").FromString(raw)
    return request.resource.split("/")[2]


RECORDER = Recorder()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_grpc_corpus.py OUT.jsonl")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), handlers=[RECORDER])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        drive(f"127.0.0.1:{port}")
    finally:
        server.stop(grace=None)

    methods = service_methods()
    missing = sorted(methods - set(RECORDER.calls))
    unexpected = sorted(set(EXPECTED) ^ methods)
    if missing or unexpected:
        sys.exit(f"make_grpc_corpus.py: not captured {missing}; EXPECTED differs from the services in {unexpected}")

    iam_seen = {(m.rsplit("/", 1)[1], iam_collection(m, c["raw"])) for m, c in RECORDER.iam_calls}
    if iam_seen != set(EXPECTED_IAM):
        sys.exit(f"make_grpc_corpus.py: IAM calls {sorted(iam_seen)} differ from EXPECTED_IAM")

    lines = [(m, RECORDER.calls[m], EXPECTED[m]) for m in sorted(RECORDER.calls)]
    for method, call in RECORDER.iam_calls:
        lines.append((method, call, EXPECTED_IAM[(method.rsplit("/", 1)[1], iam_collection(method, call["raw"]))]))
    with open(sys.argv[1], "w") as out:
        for method, call, operation in lines:
            raw = call["raw"]
            headers = {"content-type": "application/grpc", "te": "trailers"}
            for key, value in call["metadata"]:
                headers[key] = value if isinstance(value, str) else base64.b64encode(value).decode()
            line = {
                "method": "POST",
                "url": f"https://pubsub.googleapis.com{method}",
                "headers": headers,
                "body_b64": base64.b64encode(struct.pack(">BI", 0, len(raw)) + raw).decode(),
                "expect": {"api": "pubsub:v1", "operation": operation, "protocol": "grpc"},
            }
            out.write(json.dumps(line, sort_keys=True) + "\n")
    print(f"make_grpc_corpus.py: {len(RECORDER.calls)} methods and {len(RECORDER.iam_calls)} IAM calls captured", file=sys.stderr)


if __name__ == "__main__":
    main()
