//! Control plane or data plane: whether an action manages a resource (a queue, table,
//! bucket, object, instance, key) or works on the items inside one (a queue's messages, a
//! table's items, a stream's records). Rules match it with `plane:`, so a security team can
//! hold back every deletion of a resource without stopping routine item traffic (an SQS
//! consumer deleting the messages it processed, a DynamoDB `DeleteItem`).
//!
//! Derived from the action's name, the same way for every service of a cloud:
//! - AWS `service:VerbNoun` (`sqs:DeleteMessage`; a leading `Batch` is dropped): data plane
//!   when the whole noun after the verb is one of [`AWS_ITEM_NOUNS`] (`DeleteMessageBatch`,
//!   `DeleteItem`, `PutRecords`, `PutEvents`; not `DeleteOpsItem` or `DeleteDocument`,
//!   whose nouns name resources).
//! - Google: permissions on [`GCP_ITEM_COLLECTIONS`] (`datastore.entities.delete`: Firestore
//!   documents and Datastore entities).
//!
//! Everything else is control plane, so a name Airlock cannot read is treated as the
//! stricter case. S3 objects are resources (they have ARNs and are deleted one by one, with
//! no container call that could bring them back), so `s3:DeleteObject` is control plane.

use serde::{Deserialize, Serialize};

/// Nouns of the items that live inside an AWS resource: what data-plane actions work on.
pub const AWS_ITEM_NOUNS: [&str; 11] = [
    "Item",
    "Items",
    "Message",
    "Messages",
    "MessageBatch",
    "Record",
    "Records",
    "Row",
    "Rows",
    "Event",
    "Events",
];

/// Google permission prefixes (`service.collection.`) of items inside a resource.
pub const GCP_ITEM_COLLECTIONS: [&str; 1] = ["datastore.entities."];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plane {
    Control,
    Data,
}

/// The plane of an action (`service:Action` for AWS, a permission for Google).
pub fn plane(action: &str) -> Plane {
    let data = match action.split_once(':') {
        Some((_, name)) => {
            let name = name.strip_prefix("Batch").unwrap_or(name);
            // The verb is the first capitalised word; the noun is all that follows.
            let verb_end = name
                .char_indices()
                .skip(1)
                .find(|(_, c)| c.is_ascii_uppercase())
                .map_or(name.len(), |(i, _)| i);
            AWS_ITEM_NOUNS.contains(&&name[verb_end..])
        }
        None => GCP_ITEM_COLLECTIONS.iter().any(|c| action.starts_with(c)),
    };
    if data { Plane::Data } else { Plane::Control }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_traffic_is_data_plane_and_resources_are_control_plane() {
        for action in [
            "sqs:DeleteMessage",
            "sqs:DeleteMessageBatch",
            "sqs:ReceiveMessage",
            "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem",
            "kinesis:PutRecords",
            "events:PutEvents",
            "datastore.entities.delete",
            "datastore.entities.update",
        ] {
            assert_eq!(plane(action), Plane::Data, "{action}");
        }
        for action in [
            "sqs:DeleteQueue",
            "sqs:PurgeQueue",
            "dynamodb:DeleteTable",
            "s3:DeleteObject",
            "s3:DeleteBucket",
            "ec2:TerminateInstances",
            "kms:ScheduleKeyDeletion",
            "events:DeleteEventBus",
            "storage.objects.delete",
            "storage.buckets.delete",
            "ssm:DeleteDocument",
            "ssm:DeleteOpsItem",
            "sqs:SetQueueAttributes",
            "servicediscovery:DeleteServiceAttributes",
            "dataplex.entities.delete",
            "discoveryengine.documents.purge",
            "pubsub.topics.delete",
            "cloudkms.cryptoKeyVersions.destroy",
            "odd",
            "svc:",
        ] {
            assert_eq!(plane(action), Plane::Control, "{action}");
        }
    }
}
