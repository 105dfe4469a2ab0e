#![allow(clippy::unwrap_used, clippy::expect_used)]

use prost::Message as _;
use prost_reflect::{DynamicMessage, Value};
use serde_json::json;

use super::*;

/// A request message built from JSON (proto3 mapping), framed as gRPC sends it.
fn framed(input: &str, message: serde_json::Value) -> Vec<u8> {
    let desc = catalog()
        .unwrap()
        .methods
        .values()
        .find(|m| m.line.input == input)
        .unwrap();
    let msg = DynamicMessage::deserialize(desc.input.clone(), message).unwrap();
    frame(&msg.encode_to_vec())
}

fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

const PUBLISH: &str = "/google.pubsub.v1.Publisher/Publish";

#[test]
fn the_catalog_loads_and_covers_every_pubsub_method() {
    let catalog = Catalog::load().unwrap();
    assert!(catalog.method_count() >= 150, "{}", catalog.method_count());
    for service in ["Publisher", "Subscriber", "SchemaService"] {
        let count = catalog
            .methods
            .keys()
            .filter(|p| p.starts_with(&format!("/google.pubsub.v1.{service}/")))
            .count();
        assert!(count >= 5, "{service}: {count} methods");
    }
    for path in [
        "/google.firestore.v1.Firestore/Commit",
        "/google.firestore.admin.v1.FirestoreAdmin/DeleteDatabase",
        "/google.cloud.bigquery.storage.v1.BigQueryRead/CreateReadSession",
        "/google.cloud.bigquery.storage.v1.BigQueryWrite/AppendRows",
    ] {
        assert!(catalog.methods.contains_key(path), "{path}");
    }
}

#[test]
fn publish_is_classified_with_its_topic_data_and_permission() {
    let data = vec![0xA5u8; 1024];
    let body = framed(
        "google.pubsub.v1.PublishRequest",
        json!({
            "topic": "projects/acme-prod/topics/orders",
            "messages": [{
                "data": base64_encode(&data),
                "attributes": {"origin": "projects/elsewhere/topics/not-a-resource"},
            }],
        }),
    );
    let call = classify(PUBLISH, &body).unwrap();
    assert_eq!(call.method_id, "pubsub.projects.topics.publish");
    assert_eq!(call.api, "pubsub:v1");
    assert_eq!(call.host, "pubsub.googleapis.com");
    assert_eq!(call.permissions, ["pubsub.topics.publish"]);
    assert!(call.rest_twin);
    assert!(!call.client_streaming && !call.server_streaming);
    assert_eq!(call.params["topic"], "projects/acme-prod/topics/orders");
    assert_eq!(call.params["messages"][0]["data"], base64_encode(&data));
    assert_eq!(
        call.params["messages"][0]["attributes"]["origin"],
        "projects/elsewhere/topics/not-a-resource"
    );
    // Attributes are the publisher's data, not resources.
    assert_eq!(call.resource_names, ["projects/acme-prod/topics/orders"]);
    assert_eq!(call.project(), Some("acme-prod"));
    assert_eq!(call.location(), None);
}

#[test]
fn only_the_first_message_is_decoded() {
    let mut body = framed(
        "google.pubsub.v1.PublishRequest",
        json!({"topic": "projects/p/topics/first"}),
    );
    body.extend(framed(
        "google.pubsub.v1.PublishRequest",
        json!({"topic": "projects/p/topics/second"}),
    ));
    let call = classify(PUBLISH, &body).unwrap();
    assert_eq!(call.params["topic"], "projects/p/topics/first");
}

#[test]
fn streaming_pull_has_its_own_id_and_names_its_subscription() {
    let body = framed(
        "google.pubsub.v1.StreamingPullRequest",
        json!({"subscription": "projects/p/subscriptions/s", "streamAckDeadlineSeconds": 60}),
    );
    let call = classify("/google.pubsub.v1.Subscriber/StreamingPull", &body).unwrap();
    assert_eq!(call.method_id, "pubsub.Subscriber.StreamingPull");
    assert!(!call.rest_twin);
    assert!(call.client_streaming && call.server_streaming);
    assert_eq!(call.resource_names, ["projects/p/subscriptions/s"]);
    assert_eq!(call.params["streamAckDeadlineSeconds"], 60);
}

#[test]
fn nested_and_repeated_resource_fields_are_found() {
    let body = framed(
        "google.pubsub.v1.Subscription",
        json!({
            "name": "projects/p/subscriptions/s",
            "topic": "projects/p/topics/t",
            "deadLetterPolicy": {"deadLetterTopic": "projects/other/topics/dead"},
            "labels": {"team": "projects/x"},
        }),
    );
    let call = classify("/google.pubsub.v1.Subscriber/CreateSubscription", &body).unwrap();
    assert_eq!(call.method_id, "pubsub.projects.subscriptions.create");
    assert_eq!(
        call.resource_names,
        [
            "projects/p/subscriptions/s",
            "projects/p/topics/t",
            "projects/other/topics/dead"
        ]
    );
    assert_eq!(call.projects, ["p", "other"]);

    let body = framed(
        "google.firestore.v1.BatchGetDocumentsRequest",
        json!({
            "database": "projects/p/databases/(default)",
            "documents": ["projects/p/databases/(default)/documents/users/a",
                          "projects/p/databases/(default)/documents/users/b"],
        }),
    );
    let call = classify("/google.firestore.v1.Firestore/BatchGetDocuments", &body).unwrap();
    assert_eq!(
        call.method_id,
        "firestore.projects.databases.documents.batchGet"
    );
    assert!(call.server_streaming);
    assert_eq!(call.resource_names.len(), 3);
}

#[test]
fn locations_come_from_resource_names() {
    let body = framed(
        "google.firestore.admin.v1.DeleteBackupRequest",
        json!({"name": "projects/p/locations/europe-west1/backups/b1"}),
    );
    let call = classify(
        "/google.firestore.admin.v1.FirestoreAdmin/DeleteBackup",
        &body,
    )
    .unwrap();
    assert_eq!(
        call.method_id,
        "firestore.projects.locations.backups.delete"
    );
    assert_eq!(call.project(), Some("p"));
    assert_eq!(call.location(), Some("europe-west1"));
}

#[test]
fn bigquery_storage_read_session_names_its_table() {
    let body = framed(
        "google.cloud.bigquery.storage.v1.CreateReadSessionRequest",
        json!({
            "parent": "projects/billing-proj",
            "readSession": {"table": "projects/data-proj/datasets/sales/tables/orders", "dataFormat": "AVRO"},
            "maxStreamCount": 1,
        }),
    );
    let call = classify(
        "/google.cloud.bigquery.storage.v1.BigQueryRead/CreateReadSession",
        &body,
    )
    .unwrap();
    assert_eq!(
        call.method_id,
        "bigquerystorage.BigQueryRead.CreateReadSession"
    );
    assert_eq!(call.api, "bigquerystorage:v1");
    assert_eq!(
        call.resource_names,
        [
            "projects/billing-proj",
            "projects/data-proj/datasets/sales/tables/orders"
        ]
    );
    assert_eq!(call.projects, ["billing-proj", "data-proj"]);
    assert_eq!(call.params["readSession"]["dataFormat"], "AVRO");
}

#[test]
fn a_method_with_two_rest_twins_is_told_apart_by_its_binding() {
    let path = "/google.firestore.v1.Firestore/ListDocuments";
    let root = framed(
        "google.firestore.v1.ListDocumentsRequest",
        json!({"parent": "projects/p/databases/d/documents", "collectionId": "users"}),
    );
    assert_eq!(
        classify(path, &root).unwrap().method_id,
        "firestore.projects.databases.documents.listDocuments"
    );
    let nested = framed(
        "google.firestore.v1.ListDocumentsRequest",
        json!({"parent": "projects/p/databases/d/documents/users/alice", "collectionId": "orders"}),
    );
    assert_eq!(
        classify(path, &nested).unwrap().method_id,
        "firestore.projects.databases.documents.list"
    );
    // A resource no binding accepts: an explicit unknown, not the first binding's id.
    let odd = framed(
        "google.firestore.v1.ListDocumentsRequest",
        json!({"parent": "projects/p/somewhere-else", "collectionId": "x"}),
    );
    let error = classify(path, &odd).unwrap_err();
    assert!(
        error.contains("match none of the method's HTTP bindings"),
        "{error}"
    );
}

#[test]
fn the_iam_mixin_is_classified_by_its_resource() {
    let path = "/google.iam.v1.IAMPolicy/SetIamPolicy";
    let on = |resource: &str| {
        framed(
            "google.iam.v1.SetIamPolicyRequest",
            json!({"resource": resource, "policy": {"bindings": [{"role": "roles/pubsub.admin", "members": ["allUsers"]}]}}),
        )
    };
    let call = classify(path, &on("projects/p/topics/t")).unwrap();
    assert_eq!(call.method_id, "pubsub.projects.topics.setIamPolicy");
    assert_eq!(call.permissions, ["pubsub.topics.setIamPolicy"]);
    assert_eq!(call.resource_names, ["projects/p/topics/t"]);
    assert_eq!(
        call.params["policy"]["bindings"][0]["members"][0],
        "allUsers"
    );
    let call = classify(path, &on("projects/p/subscriptions/s")).unwrap();
    assert_eq!(call.method_id, "pubsub.projects.subscriptions.setIamPolicy");
    // Another API's resource (the table only knows the mixin at pubsub.googleapis.com).
    let error = classify(path, &on("projects/p/instances/i/databases/d")).unwrap_err();
    assert!(
        error.contains("match none of the method's HTTP bindings"),
        "{error}"
    );
}

#[test]
fn framing_errors_say_what_is_wrong() {
    let good = framed(
        "google.pubsub.v1.PublishRequest",
        json!({"topic": "projects/p/topics/t"}),
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "holds no message"),
        (good[..3].to_vec(), "ends inside the 5-byte message prefix"),
        (good[..good.len() - 1].to_vec(), "partial gRPC message"),
        ([&[1u8][..], &good[1..]].concat(), "compressed gRPC message"),
        ([&[7u8][..], &good[1..]].concat(), "compressed flag 0x07"),
        (
            [&[0u8][..], &(5u32 * 1024 * 1024).to_be_bytes()[..]].concat(),
            "over Airlock's limit",
        ),
    ];
    for (body, expected) in cases {
        let error = classify(PUBLISH, &body).unwrap_err();
        assert!(error.contains(expected), "{expected:?} not in {error:?}");
    }
    assert!(classify(PUBLISH, &good).is_ok());
}

#[test]
fn unknown_methods_and_undecodable_messages_are_refused() {
    let body = frame(&[]);
    let error = classify("/google.pubsub.v1.Publisher/Nope", &body).unwrap_err();
    assert!(
        error.contains("unknown gRPC method /google.pubsub.v1.Publisher/Nope"),
        "{error}"
    );
    let error = classify(&format!("/{}", "x".repeat(5000)), &body).unwrap_err();
    assert!(
        error.len() < 400,
        "the path is echoed whole: {} bytes",
        error.len()
    );

    // Field 1 (topic) as a varint where a string is expected.
    let error = classify(PUBLISH, &frame(&[0x08, 0x01])).unwrap_err();
    assert!(
        error.contains("does not decode as google.pubsub.v1.PublishRequest"),
        "{error}"
    );
}

#[test]
fn an_empty_message_is_a_valid_request() {
    let call = classify("/google.pubsub.v1.Publisher/ListTopics", &frame(&[])).unwrap();
    assert_eq!(call.method_id, "pubsub.projects.topics.list");
    assert_eq!(call.params, json!({}));
    assert!(call.resource_names.is_empty());
}

#[test]
fn datastore_names_its_project_by_id() {
    let body = framed(
        "google.datastore.v1.CommitRequest",
        json!({"projectId": "shop-prod", "databaseId": "orders", "mode": "NON_TRANSACTIONAL",
               "mutations": [{"delete": {"path": [{"kind": "Order", "name": "o-1"}]}}]}),
    );
    let call = classify("/google.datastore.v1.Datastore/Commit", &body).unwrap();
    assert_eq!(call.method_id, "datastore.projects.commit");
    assert_eq!(call.project(), Some("shop-prod"));
    assert_eq!(
        call.params["mutations"][0]["delete"]["path"][0]["kind"],
        "Order"
    );
}

proptest::proptest! {
    /// Whatever the body, classify answers (a call or a reason) and never panics.
    #[test]
    fn arbitrary_bodies_never_panic(
        payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        framed_payload in proptest::prelude::any::<bool>(),
        method in 0usize..4,
    ) {
        let path = [
            PUBLISH,
            "/google.firestore.v1.Firestore/ListDocuments",
            "/google.iam.v1.IAMPolicy/SetIamPolicy",
            "/google.cloud.bigquery.storage.v1.BigQueryWrite/AppendRows",
        ][method];
        let body = if framed_payload { frame(&payload) } else { payload };
        let _ = classify(path, &body);
    }
}

#[test]
fn glob_patterns_match_like_http_rules() {
    assert!(glob_matches("projects/*/topics/*", "projects/p/topics/t"));
    assert!(!glob_matches(
        "projects/*/topics/*",
        "projects/p/topics/t/x"
    ));
    assert!(!glob_matches("projects/*/topics/*", "projects//topics/t"));
    assert!(!glob_matches(
        "projects/*/topics/*",
        "projects/p/subscriptions/t"
    ));
    assert!(glob_matches(
        "projects/*/databases/*/documents/*/**",
        "projects/p/databases/d/documents/c/x/y/z"
    ));
    assert!(!glob_matches(
        "projects/*/databases/*/documents/*/**",
        "projects/p/databases/d/documents"
    ));
    assert!(glob_matches(
        "projects/*/databases/*/documents",
        "projects/p/databases/d/documents"
    ));
}

#[test]
fn bytes_survive_as_base64_and_values_are_typed() {
    // A Value with bytes set directly, to check the JSON mapping rather than our input.
    let desc = catalog().unwrap().methods[PUBLISH].input.clone();
    let mut message = DynamicMessage::new(desc.clone());
    message.set_field_by_name("topic", Value::String("projects/p/topics/t".into()));
    let pubsub_message = desc
        .get_field_by_name("messages")
        .unwrap()
        .kind()
        .as_message()
        .unwrap()
        .clone();
    let mut inner = DynamicMessage::new(pubsub_message);
    inner.set_field_by_name("data", Value::Bytes(b"hello".to_vec().into()));
    message.set_field_by_name("messages", Value::List(vec![Value::Message(inner)]));
    let call = classify(PUBLISH, &frame(&message.encode_to_vec())).unwrap();
    assert_eq!(call.params["messages"][0]["data"], "aGVsbG8=");
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
