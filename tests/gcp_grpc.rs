//! The gRPC classifier against the real google-cloud-pubsub client: every method of
//! Publisher, Subscriber and SchemaService, as the client framed it on the wire to a local
//! grpcio server (tests/gcp/make_grpc_corpus.py), classifies to the method id the corpus
//! expects (written by hand from the discovery document, not read from Airlock's table),
//! with its parameters decoded.
//!
//!     cargo test --test gcp_grpc
//!
//! Needs the test Python (`bash tests/run.sh` installs tests/requirements.txt into .venv;
//! or point AIRLOCK_TEST_PYTHON at a Python with google-cloud-pubsub).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use airlock::cloud::gcp::grpc;
use base64::Engine as _;
use serde_json::Value;

const PUBSUB_VERSION: &str = "2.44.0";

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("AIRLOCK_TEST_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no test Python: run `bash tests/run.sh`, which installs the pinned test tools into .venv"
    );
    venv
}

/// The corpus, generated once per google-cloud-pubsub version and script into target/.
fn corpus() -> Vec<Value> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Keyed by the client's version and the script's content, so an edited script reruns.
    let script = std::fs::read(root.join("tests/gcp/make_grpc_corpus.py")).unwrap();
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&script, &mut hasher);
    let key = std::hash::Hasher::finish(&hasher);
    let out = root.join(format!(
        "target/gcp-grpc-corpus-pubsub-{PUBSUB_VERSION}-{key:016x}.jsonl"
    ));
    if !out.exists() {
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        let status = Command::new(python())
            .arg(root.join("tests/gcp/make_grpc_corpus.py"))
            .arg(&tmp)
            .status()
            .expect("run make_grpc_corpus.py");
        assert!(status.success(), "make_grpc_corpus.py failed");
        std::fs::rename(&tmp, &out).expect("rename corpus");
    }
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn body(line: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(line["body_b64"].as_str().unwrap())
        .unwrap()
}

fn grpc_path(line: &Value) -> &str {
    line["url"]
        .as_str()
        .unwrap()
        .strip_prefix("https://pubsub.googleapis.com")
        .unwrap()
}

#[test]
fn every_pubsub_method_classifies_to_its_expected_id() {
    let corpus = corpus();
    let mut services = BTreeSet::new();
    let mut failures = Vec::new();
    for line in &corpus {
        assert_eq!(line["headers"]["content-type"], "application/grpc");
        assert_eq!(line["expect"]["protocol"], "grpc");
        let path = grpc_path(line);
        services.insert(path.split('/').nth(1).unwrap().to_string());
        match grpc::classify(path, &body(line)) {
            Ok(call) => {
                if call.method_id != line["expect"]["operation"]
                    || call.api != line["expect"]["api"]
                {
                    failures.push(format!(
                        "{path}: {} ({}), expected {} ({})",
                        call.method_id,
                        call.api,
                        line["expect"]["operation"],
                        line["expect"]["api"]
                    ));
                }
                // Every Pub/Sub request names what it acts on, in project airlock-test.
                if call.project() != Some("airlock-test") {
                    failures.push(format!(
                        "{path}: project {:?} from {:?}",
                        call.project(),
                        call.resource_names
                    ));
                }
            }
            Err(e) => failures.push(format!("{path}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        [
            "google.iam.v1.IAMPolicy",
            "google.pubsub.v1.Publisher",
            "google.pubsub.v1.SchemaService",
            "google.pubsub.v1.Subscriber"
        ]
    );
    // 35 Pub/Sub methods, and 6 IAM calls on topics, subscriptions, snapshots and schemas.
    assert!(
        corpus.len() >= 41,
        "the corpus has only {} requests",
        corpus.len()
    );
}

#[test]
fn iam_calls_are_told_apart_by_their_resource() {
    let corpus = corpus();
    let iam: Vec<grpc::GrpcCall> = corpus
        .iter()
        .filter(|l| grpc_path(l).starts_with("/google.iam.v1.IAMPolicy/"))
        .map(|l| grpc::classify(grpc_path(l), &body(l)).unwrap())
        .collect();
    let set_on_topic = iam
        .iter()
        .find(|c| c.method_id == "pubsub.projects.topics.setIamPolicy")
        .expect("topic setIamPolicy");
    assert_eq!(set_on_topic.permissions, ["pubsub.topics.setIamPolicy"]);
    assert_eq!(
        set_on_topic.resource_names,
        ["projects/airlock-test/topics/orders"]
    );
    assert_eq!(
        set_on_topic.params["policy"]["bindings"][0]["members"][0],
        "serviceAccount:ci@airlock-test.iam.gserviceaccount.com"
    );
    let set_on_subscription = iam
        .iter()
        .find(|c| c.method_id == "pubsub.projects.subscriptions.setIamPolicy")
        .expect("subscription setIamPolicy");
    assert_eq!(
        set_on_subscription.params["policy"]["bindings"][0]["members"][0],
        "allUsers"
    );
}

fn call_for(corpus: &[Value], method: &str) -> grpc::GrpcCall {
    let line = corpus
        .iter()
        .find(|l| grpc_path(l).ends_with(method))
        .unwrap_or_else(|| panic!("{method} not in the corpus"));
    grpc::classify(grpc_path(line), &body(line)).unwrap()
}

#[test]
fn publish_carries_its_topic_data_and_attributes() {
    let corpus = corpus();
    let call = call_for(&corpus, ".Publisher/Publish");
    assert_eq!(call.params["topic"], "projects/airlock-test/topics/orders");
    let data: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    assert_eq!(
        call.params["messages"][0]["data"],
        base64::engine::general_purpose::STANDARD.encode(&data)
    );
    assert_eq!(
        call.params["messages"][0]["attributes"]["origin"],
        "airlock-corpus"
    );
    assert_eq!(call.resource_names, ["projects/airlock-test/topics/orders"]);
    assert_eq!(call.permissions, ["pubsub.topics.publish"]);
}

#[test]
fn streaming_pull_and_subscriptions_show_what_they_touch() {
    let corpus = corpus();
    let pull = call_for(&corpus, ".Subscriber/StreamingPull");
    assert!(pull.client_streaming && pull.server_streaming && !pull.rest_twin);
    assert_eq!(
        pull.params["subscription"],
        "projects/airlock-test/subscriptions/orders-worker"
    );
    assert_eq!(pull.permissions, ["pubsub.subscriptions.consume"]);

    let create = call_for(&corpus, ".Subscriber/CreateSubscription");
    assert_eq!(create.params["ackDeadlineSeconds"], 30);
    assert_eq!(
        create.resource_names,
        [
            "projects/airlock-test/subscriptions/orders-worker",
            "projects/airlock-test/topics/orders",
            "projects/airlock-test/topics/orders-dead",
        ]
    );

    let ack = call_for(&corpus, ".Subscriber/Acknowledge");
    assert_eq!(ack.params["ackIds"], serde_json::json!(["ack-1", "ack-2"]));

    let seek = call_for(&corpus, ".Subscriber/Seek");
    assert_eq!(
        seek.params["snapshot"],
        "projects/airlock-test/snapshots/before-replay"
    );

    let schema = call_for(&corpus, ".SchemaService/CreateSchema");
    assert_eq!(schema.params["schemaId"], "order");
    assert_eq!(schema.params["schema"]["type"], "AVRO");
}
