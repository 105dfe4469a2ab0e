"""Parse error responses the way botocore does, to prove SDKs read Airlock's errors.

Reads JSON Lines of {"protocol", "status", "headers", "body_b64"} on stdin; for each, runs
botocore's own response parser for that protocol (as the client would, with a real
operation's output shape) and prints {"code", "message"} as botocore extracted them.
"""

import base64
import json
import sys

import botocore.session
from botocore.parsers import create_parser

# One real operation per protocol: its output shape is what the client parses against.
OPERATIONS = {
    "query": ("iam", "AttachRolePolicy"),
    "ec2": ("ec2", "TerminateInstances"),
    "rest-xml": ("s3", "PutObject"),
    "json": ("dynamodb", "PutItem"),
    "rest-json": ("lambda", "Invoke"),
}


def cbor_operation(session):
    """Any operation of a service that speaks smithy-rpc-v2-cbor."""
    for name in session.get_available_services():
        model = session.get_service_model(name)
        if "smithy-rpc-v2-cbor" in model.metadata.get("protocols", []):
            return name, model.operation_names[0]
    raise SystemExit("no smithy-rpc-v2-cbor service in this botocore")


def main():
    session = botocore.session.get_session()
    operations = dict(OPERATIONS)
    operations["smithy-rpc-v2-cbor"] = cbor_operation(session)
    for line in sys.stdin:
        case = json.loads(line)
        protocol = case["protocol"]
        service, operation = operations[protocol]
        op_model = session.get_service_model(service).operation_model(operation)
        response = {
            "status_code": case["status"],
            "headers": case["headers"],
            "body": base64.b64decode(case["body_b64"]),
        }
        parsed = create_parser(protocol).parse(response, op_model.output_shape)
        error = parsed.get("Error", {})
        print(json.dumps({"code": error.get("Code"), "message": error.get("Message")}))


if __name__ == "__main__":
    main()
