#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::explain::{OwnedRequest, parse_raw};

fn request(method: &str, host: &str, target: &str, headers: &str, body: &str) -> OwnedRequest {
    let raw = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer ya29.token\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    parse_raw(raw.as_bytes()).unwrap()
}

fn call(method: &str, host: &str, target: &str) -> Call {
    call_with(method, host, target, "", "")
}

fn call_with(method: &str, host: &str, target: &str, headers: &str, body: &str) -> Call {
    let req = request(method, host, target, headers, body);
    match classify(&req.view()) {
        Classification::Known(call) => *call,
        Classification::Unknown(u) => panic!("{method} {host}{target}: unknown: {}", u.reason),
    }
}

fn unknown(method: &str, host: &str, target: &str, headers: &str, body: &str) -> String {
    let req = request(method, host, target, headers, body);
    match classify(&req.view()) {
        Classification::Unknown(u) => {
            assert_eq!(u.cloud, Cloud::Gcp);
            u.reason
        }
        Classification::Known(call) => panic!("expected unknown, got {}", call.operation),
    }
}

fn names(call: &Call) -> Vec<&'static str> {
    call.actions.iter().map(|a| a.name).collect()
}

const JSON: &str = "Content-Type: application/json\r\n";

#[test]
fn privileged_methods_have_the_right_method_and_permission() {
    let cases: &[(&str, &str, &str, &str, &str, &str)] = &[
        (
            "POST",
            "cloudresourcemanager.googleapis.com",
            "/v1/projects/p1:setIamPolicy",
            "cloudresourcemanager:v1",
            "cloudresourcemanager.projects.setIamPolicy",
            "resourcemanager.projects.setIamPolicy",
        ),
        (
            "POST",
            "cloudresourcemanager.googleapis.com",
            "/v3/projects/p1:setIamPolicy",
            "cloudresourcemanager:v3",
            "cloudresourcemanager.projects.setIamPolicy",
            "resourcemanager.projects.setIamPolicy",
        ),
        (
            "PUT",
            "storage.googleapis.com",
            "/storage/v1/b/b1/iam",
            "storage:v1",
            "storage.buckets.setIamPolicy",
            "storage.buckets.setIamPolicy",
        ),
        (
            "POST",
            "iam.googleapis.com",
            "/v1/projects/p1/serviceAccounts/sa@p1.iam.gserviceaccount.com/keys",
            "iam:v1",
            "iam.projects.serviceAccounts.keys.create",
            "iam.serviceAccountKeys.create",
        ),
        (
            "POST",
            "iam.googleapis.com",
            "/v1/projects/p1/serviceAccounts/sa@p1.iam.gserviceaccount.com:setIamPolicy",
            "iam:v1",
            "iam.projects.serviceAccounts.setIamPolicy",
            "iam.serviceAccounts.setIamPolicy",
        ),
        (
            "DELETE",
            "cloudresourcemanager.googleapis.com",
            "/v1/projects/p1",
            "cloudresourcemanager:v1",
            "cloudresourcemanager.projects.delete",
            "resourcemanager.projects.delete",
        ),
        (
            "DELETE",
            "cloudresourcemanager.googleapis.com",
            "/v3/projects/p1",
            "cloudresourcemanager:v3",
            "cloudresourcemanager.projects.delete",
            "resourcemanager.projects.delete",
        ),
        (
            "DELETE",
            "storage.googleapis.com",
            "/storage/v1/b/b1",
            "storage:v1",
            "storage.buckets.delete",
            "storage.buckets.delete",
        ),
        (
            "DELETE",
            "storage.googleapis.com",
            "/storage/v1/b/b1/o/dir%2Ff.txt",
            "storage:v1",
            "storage.objects.delete",
            "storage.objects.delete",
        ),
        (
            "POST",
            "bigquery.googleapis.com",
            "/bigquery/v2/projects/p1/jobs",
            "bigquery:v2",
            "bigquery.jobs.insert",
            "bigquery.jobs.create",
        ),
        (
            "POST",
            "sqladmin.googleapis.com",
            "/v1/projects/p1/instances/db1/export",
            "sqladmin:v1",
            "sql.instances.export",
            "cloudsql.instances.export",
        ),
        (
            "POST",
            "sqladmin.googleapis.com",
            "/sql/v1beta4/projects/p1/instances/db1/export",
            "sqladmin:v1beta4",
            "sql.instances.export",
            "cloudsql.instances.export",
        ),
        (
            "POST",
            "firestore.googleapis.com",
            "/v1/projects/p1/databases/(default):exportDocuments",
            "firestore:v1",
            "firestore.projects.databases.exportDocuments",
            "datastore.databases.export",
        ),
        (
            "DELETE",
            "compute.googleapis.com",
            "/compute/v1/projects/p1/zones/us-central1-a/instances/vm1",
            "compute:v1",
            "compute.instances.delete",
            "compute.instances.delete",
        ),
        (
            "POST",
            "cloudkms.googleapis.com",
            "/v1/projects/p1/locations/global/keyRings/k/cryptoKeys/c/cryptoKeyVersions/3:destroy",
            "cloudkms:v1",
            "cloudkms.projects.locations.keyRings.cryptoKeys.cryptoKeyVersions.destroy",
            "cloudkms.cryptoKeyVersions.destroy",
        ),
        (
            "POST",
            "pubsub.googleapis.com",
            "/v1/projects/p1/topics/t1:setIamPolicy",
            "pubsub:v1",
            "pubsub.projects.topics.setIamPolicy",
            "pubsub.topics.setIamPolicy",
        ),
        (
            "POST",
            "storagetransfer.googleapis.com",
            "/v1/transferJobs",
            "storagetransfer:v1",
            "storagetransfer.transferJobs.create",
            "storagetransfer.jobs.create",
        ),
        (
            "POST",
            "compute.googleapis.com",
            "/compute/v1/projects/p1/global/snapshots/s1/setIamPolicy",
            "compute:v1",
            "compute.snapshots.setIamPolicy",
            "compute.snapshots.setIamPolicy",
        ),
        (
            "POST",
            "compute.googleapis.com",
            "/compute/v1/projects/p1/global/images/i1/setIamPolicy",
            "compute:v1",
            "compute.images.setIamPolicy",
            "compute.images.setIamPolicy",
        ),
    ];
    for (method, host, path, api, operation, permission) in cases {
        let c = call_with(method, host, path, JSON, "{}");
        assert_eq!((c.api, c.operation), (*api, *operation), "{method} {path}");
        assert_eq!(names(&c), [*permission], "{operation}");
        assert_eq!(c.cloud, Cloud::Gcp);
        assert_eq!(c.partition, "googleapis.com");
        assert_eq!(c.protocol, "rest");
    }
}

#[test]
fn set_iam_policy_is_permissions_management_with_full_resource_names() {
    let c = call_with(
        "POST",
        "pubsub.googleapis.com",
        "/v1/projects/p1/topics/t1:setIamPolicy",
        JSON,
        r#"{"policy":{}}"#,
    );
    assert_eq!(c.service, "pubsub");
    assert_eq!(c.actions[0].access, "Permissions management");
    assert_eq!(
        c.resources,
        ["//pubsub.googleapis.com/projects/p1/topics/t1"]
    );
    assert_eq!(c.account.as_deref(), Some("p1"));
    assert_eq!(c.params["resource"], "projects/p1/topics/t1");
    assert_eq!(c.params["body"]["policy"], serde_json::json!({}));

    let c = call("PUT", "storage.googleapis.com", "/storage/v1/b/b1/iam");
    assert_eq!(
        c.resources,
        ["//storage.googleapis.com/projects/_/buckets/b1"]
    );
    let c = call(
        "DELETE",
        "storage.googleapis.com",
        "/storage/v1/b/b1/o/dir%2Ff.txt",
    );
    assert_eq!(
        c.resources,
        ["//storage.googleapis.com/projects/_/buckets/b1/objects/dir/f.txt"]
    );
    assert_eq!(c.params["object"], "dir/f.txt");
    let c = call(
        "POST",
        "compute.googleapis.com",
        "/compute/v1/projects/p1/global/images/i1/setIamPolicy",
    );
    assert_eq!(
        c.resources,
        ["//compute.googleapis.com/projects/p1/global/images/i1"]
    );
}

#[test]
fn region_project_and_idempotency_come_from_the_request() {
    let c = call(
        "DELETE",
        "compute.googleapis.com",
        "/compute/v1/projects/p1/zones/us-central1-a/instances/vm1?requestId=5f0c",
    );
    assert_eq!(c.region.as_deref(), Some("us-central1-a"));
    assert_eq!(c.account.as_deref(), Some("p1"));
    assert_eq!(c.idempotency_params, ["requestId"]);
    assert_eq!(
        c.resources,
        ["//compute.googleapis.com/projects/p1/zones/us-central1-a/instances/vm1"]
    );
    let c = call("GET", "storage.googleapis.com", "/storage/v1/b?project=p2");
    assert_eq!(
        (c.operation, c.account.as_deref()),
        ("storage.buckets.list", Some("p2"))
    );
    assert_eq!(c.actions[0].access, "List");
    // A regional host pins the location when the path does not name one.
    let c = call(
        "GET",
        "artifactregistry.asia-east1.rep.googleapis.com",
        "/v1/projects/p1/locations/asia-east1/repositories",
    );
    assert_eq!(c.region.as_deref(), Some("asia-east1"));
    let c = call(
        "GET",
        "pubsub.europe-west1.rep.googleapis.com",
        "/v1/projects/p1/topics/t1",
    );
    assert_eq!(c.region.as_deref(), Some("europe-west1"));
}

#[test]
fn every_host_form_reaches_the_same_method() {
    for host in [
        "storage.googleapis.com",
        "storage.mtls.googleapis.com",
        "www.googleapis.com",
    ] {
        let c = call("DELETE", host, "/storage/v1/b/b1");
        assert_eq!(c.operation, "storage.buckets.delete", "{host}");
    }
    let c = call(
        "POST",
        "us-central1-aiplatform.googleapis.com",
        "/v1/projects/p1/locations/us-central1/endpoints/e1:predict",
    );
    assert_eq!(
        c.operation,
        "aiplatform.projects.locations.endpoints.predict"
    );
    assert_eq!(c.region.as_deref(), Some("us-central1"));
    let reason = unknown(
        "GET",
        "storage.sandbox.googleapis.com",
        "/storage/v1/b/b1",
        "",
        "",
    );
    assert!(reason.contains("not a Google API host"), "{reason}");
}

#[test]
fn the_most_specific_template_wins() {
    // `v2/{+name}` is shared; the flat paths tell projects from the generic form.
    let c = call(
        "GET",
        "logging.googleapis.com",
        "/v2/projects/p1/exclusions/e1",
    );
    assert_eq!(c.operation, "logging.projects.exclusions.get");
    assert_eq!(c.params["name"], "projects/p1/exclusions/e1");
    // `{operationsId}:wait` beats `{operationsId}` (both would take `o1:wait`).
    let c = call(
        "POST",
        "run.googleapis.com",
        "/v2/projects/p1/locations/l1/operations/o1:wait",
    );
    assert_eq!(c.operation, "run.projects.locations.operations.wait");
    assert_eq!(
        c.resources,
        ["//run.googleapis.com/projects/p1/locations/l1/operations/o1"]
    );
    let c = call(
        "DELETE",
        "run.googleapis.com",
        "/v2/projects/p1/locations/l1/operations/o1",
    );
    assert_eq!(c.operation, "run.projects.locations.operations.delete");
    // compute:preview serves the same paths as compute:v1; v1 wins.
    let c = call(
        "GET",
        "compute.googleapis.com",
        "/compute/v1/projects/p1/zones/z1/instances/vm1",
    );
    assert_eq!(c.api, "compute:v1");
    // Versions sharing a host are told apart by the path.
    let c = call(
        "GET",
        "aiplatform.googleapis.com",
        "/v1beta1/projects/p1/locations/l1/datasets/d1",
    );
    assert_eq!(c.api, "aiplatform:v1beta1");
}

#[test]
fn media_uploads_downloads_and_resumable_sessions() {
    let host = "storage.googleapis.com";
    let c = call_with(
        "POST",
        host,
        "/upload/storage/v1/b/b1/o?uploadType=media&name=a%2Fb.txt",
        "Content-Type: text/plain\r\n",
        "hello",
    );
    assert_eq!(
        (c.operation, c.protocol),
        ("storage.objects.insert", "media")
    );
    assert_eq!(
        c.resources,
        ["//storage.googleapis.com/projects/_/buckets/b1/objects/a/b.txt"]
    );
    assert_eq!(names(&c), ["storage.objects.create"]);

    // Multipart: the object name is in the JSON metadata part.
    let body = "--BOUND\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{\"name\":\"m.txt\"}\r\n--BOUND\r\nContent-Type: text/plain\r\n\r\nhello\r\n--BOUND--\r\n";
    let c = call_with(
        "POST",
        host,
        "/upload/storage/v1/b/b1/o?uploadType=multipart",
        "Content-Type: multipart/related; boundary=BOUND\r\n",
        body,
    );
    assert_eq!(c.params["body"]["name"], "m.txt");
    assert_eq!(
        c.resources,
        ["//storage.googleapis.com/projects/_/buckets/b1/objects/m.txt"]
    );

    // Resumable: the session start (gcloud's path and the client library's), then a
    // chunk PUT to the session URI.
    let c = call(
        "POST",
        host,
        "/resumable/upload/storage/v1/b/b1/o?uploadType=resumable&name=big.bin",
    );
    assert_eq!(
        (c.operation, c.protocol),
        ("storage.objects.insert", "media")
    );
    let c = call(
        "POST",
        host,
        "/upload/storage/v1/b/b1/o?uploadType=resumable&name=big.bin",
    );
    assert_eq!(c.operation, "storage.objects.insert");
    let c = call_with(
        "PUT",
        host,
        "/upload/storage/v1/b/b1/o?uploadType=resumable&name=big.bin&upload_id=ADPycdt",
        "Content-Range: bytes 0-4/5\r\n",
        "hello",
    );
    assert_eq!(
        (c.operation, c.protocol),
        ("storage.objects.insert", "media")
    );
    // The session id authorizes the upload on its own: never copied into params.
    assert!(c.params.get("upload_id").is_none(), "{}", c.params);

    let reason = unknown("POST", host, "/upload/storage/v1/b/b1/o?name=x", "", "");
    assert!(reason.contains("uploadType"), "{reason}");

    // Downloads: `alt=media` on the method path, and the download service path.
    let c = call("GET", host, "/storage/v1/b/b1/o/a.txt?alt=media");
    assert_eq!((c.operation, c.protocol), ("storage.objects.get", "media"));
    assert_eq!(c.actions[0].access, "Read");
    let c = call("GET", host, "/download/storage/v1/b/b1/o/a.txt?alt=media");
    assert_eq!((c.operation, c.protocol), ("storage.objects.get", "media"));
    let c = call("GET", host, "/storage/v1/b/b1/o/a.txt");
    assert_eq!((c.operation, c.protocol), ("storage.objects.get", "rest"));
    // A method without media download does not serve alt=media.
    let reason = unknown("GET", host, "/storage/v1/b/b1?alt=media", "", "");
    assert!(reason.contains("alt=media"), "{reason}");
}

fn batch_body(parts: &[&str]) -> String {
    let mut body = String::new();
    for (i, part) in parts.iter().enumerate() {
        body.push_str(&format!(
            "--batch_xyz\r\nContent-Type: application/http\r\nContent-ID: <{i}>\r\n\r\n{part}\r\n"
        ));
    }
    body.push_str("--batch_xyz--\r\n");
    body
}

const MIXED: &str = "Content-Type: multipart/mixed; boundary=batch_xyz\r\n";

#[test]
fn batch_parts_are_classified_one_by_one() {
    let body = batch_body(&[
        "DELETE /storage/v1/b/b1/o/a.txt HTTP/1.1\r\n",
        "PATCH /storage/v1/b/b1/o/b.txt HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"metadata\":{\"k\":\"v\"}}",
        "DELETE /storage/v1/b/b1/o/c.txt HTTP/1.1\r\n",
    ]);
    let c = call_with(
        "POST",
        "storage.googleapis.com",
        "/batch/storage/v1",
        MIXED,
        &body,
    );
    assert_eq!(
        (c.operation, c.protocol, c.service, c.api),
        ("batch", "batch", "storage", "storage:v1")
    );
    assert_eq!(c.parts.len(), 3);
    assert_eq!(c.parts[0].operation, "storage.objects.delete");
    assert_eq!(c.parts[1].operation, "storage.objects.patch");
    assert_eq!(c.parts[1].params["body"]["metadata"]["k"], "v");
    // Actions are the union without repeats; resources likewise.
    let mut want: Vec<&str> = c.parts.iter().flat_map(names).collect();
    want.sort_unstable();
    want.dedup();
    let mut got = names(&c);
    got.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(
        names(&c)
            .iter()
            .filter(|n| **n == "storage.objects.delete")
            .count(),
        1
    );
    assert_eq!(c.resources.len(), 3);

    // The generic `/batch` path on an API host.
    let body = batch_body(&[
        "POST /v1/projects/p1/topics/t1:setIamPolicy HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{}",
    ]);
    let c = call_with("POST", "pubsub.googleapis.com", "/batch", MIXED, &body);
    assert_eq!((c.service, c.api), ("pubsub", "pubsub:v1"));
    assert_eq!(names(&c), ["pubsub.topics.setIamPolicy"]);
    assert_eq!(c.account.as_deref(), Some("p1"));
}

#[test]
fn a_boundary_only_counts_at_the_start_of_a_line() {
    let body = batch_body(&[
        "PATCH /storage/v1/b/b1/o/a.txt HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"metadata\":{\"note\":\"x--batch_xyz\"}}",
    ]);
    let c = call_with(
        "POST",
        "storage.googleapis.com",
        "/batch/storage/v1",
        MIXED,
        &body,
    );
    assert_eq!(c.parts.len(), 1);
    assert_eq!(
        c.parts[0].params["body"]["metadata"]["note"],
        "x--batch_xyz"
    );
}

#[test]
fn a_batch_with_one_unknown_part_is_unknown() {
    let body = batch_body(&[
        "DELETE /storage/v1/b/b1/o/a.txt HTTP/1.1\r\n",
        "GET /storage/v1/nothing/here HTTP/1.1\r\n",
    ]);
    let reason = unknown(
        "POST",
        "storage.googleapis.com",
        "/batch/storage/v1",
        MIXED,
        &body,
    );
    assert!(reason.starts_with("batch part 2:"), "{reason}");

    let body = batch_body(&["GET https://evil.example.com/storage/v1/b/b1 HTTP/1.1\r\n"]);
    let reason = unknown(
        "POST",
        "storage.googleapis.com",
        "/batch/storage/v1",
        MIXED,
        &body,
    );
    assert!(reason.contains("not the batch's host"), "{reason}");

    let reason = unknown(
        "POST",
        "storage.googleapis.com",
        "/batch/storage/v1",
        JSON,
        "{}",
    );
    assert!(reason.contains("multipart/mixed"), "{reason}");
    let reason = unknown(
        "POST",
        "storage.googleapis.com",
        "/batch/storage/v1",
        MIXED,
        "--batch_xyz\r\nContent-Type: application/http\r\n\r\nGET /storage/v1/b/b1 HTTP/1.1\r\n",
    );
    assert!(reason.contains("closing delimiter"), "{reason}");
    let reason = unknown(
        "POST",
        "storage.googleapis.com",
        "/batch/storage/v1",
        MIXED,
        "--batch_xyz--\r\n",
    );
    assert!(reason.contains("no parts"), "{reason}");

    let many: Vec<&str> = vec!["GET /storage/v1/b/b1 HTTP/1.1\r\n"; batch::MAX_PARTS + 1];
    let reason = unknown(
        "POST",
        "storage.googleapis.com",
        "/batch/storage/v1",
        MIXED,
        &batch_body(&many),
    );
    assert!(reason.contains("more than 1000 parts"), "{reason}");
    let exactly: Vec<&str> = vec!["GET /storage/v1/b/b1 HTTP/1.1\r\n"; batch::MAX_PARTS];
    let c = call_with(
        "POST",
        "storage.googleapis.com",
        "/batch/storage/v1",
        MIXED,
        &batch_body(&exactly),
    );
    assert_eq!(c.parts.len(), batch::MAX_PARTS);
}

#[test]
fn extract_jobs_also_need_table_export() {
    let extract = r#"{"configuration":{"extract":{"sourceTable":{"projectId":"p1","datasetId":"d","tableId":"t"},"destinationUris":["gs://b/x"]}}}"#;
    let c = call_with(
        "POST",
        "bigquery.googleapis.com",
        "/bigquery/v2/projects/p1/jobs",
        JSON,
        extract,
    );
    assert_eq!(
        names(&c),
        ["bigquery.jobs.create", "bigquery.tables.export"]
    );
    let query = r#"{"configuration":{"query":{"query":"SELECT 1"}}}"#;
    let c = call_with(
        "POST",
        "bigquery.googleapis.com",
        "/bigquery/v2/projects/p1/jobs",
        JSON,
        query,
    );
    assert_eq!(names(&c), ["bigquery.jobs.create"]);
    assert_eq!(c.account.as_deref(), Some("p1"));
}

#[test]
fn a_chunk_two_methods_could_have_started_is_ambiguous() {
    // captions.insert (POST) and captions.update (PUT) share one resumable upload path.
    let reason = unknown(
        "PUT",
        "youtube.googleapis.com",
        "/upload/youtube/v3/captions?part=snippet&uploadType=resumable&upload_id=U1",
        "",
        "",
    );
    assert!(reason.starts_with("ambiguous"), "{reason}");
    assert!(
        reason.contains("youtube.captions.insert") && reason.contains("youtube.captions.update"),
        "{reason}"
    );
    // Their session starts are told apart by the HTTP method.
    let c = call(
        "PUT",
        "youtube.googleapis.com",
        "/upload/youtube/v3/captions?part=snippet&uploadType=resumable",
    );
    assert_eq!(c.operation, "youtube.captions.update");
}

#[test]
fn the_method_override_header_is_the_method_google_runs() {
    let c = call_with(
        "POST",
        "cloudresourcemanager.googleapis.com",
        "/v3/projects/p1",
        "X-HTTP-Method-Override: DELETE\r\n",
        "",
    );
    assert_eq!(c.operation, "cloudresourcemanager.projects.delete");
    assert_eq!(names(&c), ["resourcemanager.projects.delete"]);
    // A long GET sent as a POST with the query in a form body.
    let c = call_with(
        "POST",
        "pubsub.googleapis.com",
        "/v1/projects/p1/topics?alt=json",
        "X-HTTP-Method-Override: GET\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        "pageSize=5&pageToken=abc",
    );
    assert_eq!(c.operation, "pubsub.projects.topics.list");
    assert_eq!(c.params["pageToken"], "abc");
    assert!(c.params.get("body").is_none());
    let reason = unknown(
        "GET",
        "pubsub.googleapis.com",
        "/v1/projects/p1/topics",
        "X-HTTP-Method-Override: DELETE\r\n",
        "",
    );
    assert!(reason.contains("Override"), "{reason}");
    let reason = unknown(
        "POST",
        "pubsub.googleapis.com",
        "/v1/projects/p1/topics",
        "X-HTTP-Method-Override: FROB\r\n",
        "",
    );
    assert!(reason.contains("Override"), "{reason}");
}

#[test]
fn what_is_not_understood_is_an_explicit_unknown() {
    let reason = unknown("GET", "example.com", "/storage/v1/b/b1", "", "");
    assert!(reason.contains("not a Google API host"), "{reason}");
    let reason = unknown(
        "GET",
        "storage.googleapis.com",
        "/storage/v1/nothing",
        "",
        "",
    );
    assert!(reason.contains("no method"), "{reason}");
    let reason = unknown(
        "PUT",
        "pubsub.googleapis.com",
        "/v1/projects/p1/topics/t1/nothing",
        "",
        "",
    );
    assert!(reason.contains("no method"), "{reason}");
    let reason = unknown(
        "POST",
        "pubsub.googleapis.com",
        "/google.pubsub.v1.Publisher/Publish",
        "Content-Type: application/grpc\r\n",
        "",
    );
    assert_eq!(reason, "the gRPC request body holds no message");
    let reason = unknown(
        "DELETE",
        "storage.googleapis.com",
        "/storage/v1/b/b1?bucket=b2",
        "",
        "",
    );
    assert!(reason.contains("repeats a path parameter"), "{reason}");
    let reason = unknown(
        "POST",
        "pubsub.googleapis.com",
        "/v1/projects/p1/topics/t1:publish",
        JSON,
        "{not json",
    );
    assert!(reason.contains("JSON body"), "{reason}");
}

#[test]
fn credentials_in_the_query_never_reach_params() {
    let c = call(
        "GET",
        "storage.googleapis.com",
        "/storage/v1/b/b1?access_token=ya29.secret&key=AIza&fields=name",
    );
    assert!(c.params.get("access_token").is_none());
    assert!(c.params.get("key").is_none());
    assert_eq!(c.params["fields"], "name");
}

#[test]
fn describe_matches_what_classify_says() {
    let described = describe(
        "storage",
        "storage.buckets.delete",
        serde_json::json!({"bucket": "b1"}),
        None,
        None,
    )
    .unwrap();
    let classified = call("DELETE", "storage.googleapis.com", "/storage/v1/b/b1");
    assert_eq!(described.actions, classified.actions);
    assert_eq!(described.resources, classified.resources);
    assert_eq!(described.api, "storage:v1");

    let d = describe(
        "pubsub:v1",
        "pubsub.projects.topics.setIamPolicy",
        serde_json::json!({"resource": "projects/p1/topics/t1"}),
        None,
        Some("p1"),
    )
    .unwrap();
    assert_eq!(
        d.resources,
        ["//pubsub.googleapis.com/projects/p1/topics/t1"]
    );
    assert_eq!(d.actions[0].access, "Permissions management");
    // Stable version preferred.
    let d = describe(
        "cloudresourcemanager",
        "cloudresourcemanager.projects.setIamPolicy",
        serde_json::json!({}),
        None,
        None,
    )
    .unwrap();
    assert_eq!(d.api, "cloudresourcemanager:v1");
    let d = describe(
        "bigquery",
        "bigquery.jobs.insert",
        serde_json::json!({"body": {"configuration": {"extract": {}}}}),
        None,
        None,
    )
    .unwrap();
    assert_eq!(
        names(&d),
        ["bigquery.jobs.create", "bigquery.tables.export"]
    );
    assert!(
        describe(
            "storage",
            "storage.nothing",
            serde_json::json!({}),
            None,
            None
        )
        .is_err()
    );
    assert!(
        describe(
            "pubsub",
            "storage.buckets.delete",
            serde_json::json!({}),
            None,
            None
        )
        .is_err()
    );
}

#[test]
fn permissions_lists_every_known_permission_with_its_level() {
    let all: Vec<Action> = permissions().collect();
    assert!(all.len() > 4000, "{}", all.len());
    assert!(
        all.iter()
            .any(|a| a.name == "iam.serviceAccountKeys.create"
                && a.access == "Permissions management")
    );
    assert!(all.iter().all(|a| a.access != "Unknown"));
}

#[test]
fn a_path_of_thousands_of_segments_is_unknown_not_slow() {
    let path = format!("/storage/v1/b/b1/o/{}", "x/".repeat(5000));
    let reason = unknown("GET", "storage.googleapis.com", &path, "", "");
    assert!(reason.contains("segments"), "{reason}");
}

#[test]
fn undeclared_query_parameters_name_no_project_and_no_resource() {
    // Cloud Storage paths never name a project: a `?project=` the method does not declare
    // must not move the call into another project (nor a `?sourceBucket=` add a resource).
    let req = request(
        "DELETE",
        "storage.googleapis.com",
        "/storage/v1/b/prod/o/x?project=sandbox-project&sourceBucket=other",
        "",
        "",
    );
    let Classification::Known(call) = classify(&req.view()) else {
        panic!("unknown")
    };
    assert_eq!(call.account, None);
    assert_eq!(
        call.resources,
        ["//storage.googleapis.com/projects/_/buckets/prod/objects/x"]
    );
    // A declared one does (buckets.list takes `project`).
    let req = request(
        "GET",
        "storage.googleapis.com",
        "/storage/v1/b?project=demo-project",
        "",
        "",
    );
    let Classification::Known(call) = classify(&req.view()) else {
        panic!("unknown")
    };
    assert_eq!(call.account.as_deref(), Some("demo-project"));
}
