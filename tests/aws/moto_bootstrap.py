#!/usr/bin/env python3
"""Seed a moto server (started with INITIAL_NO_AUTH_ACTION_COUNT=K) for Airlock's tests.

Usage:
    python tests/aws/moto_bootstrap.py MOTO_URL   # makes exactly K unauthenticated calls
    python tests/aws/moto_bootstrap.py --count    # prints K

Start moto with the same K, e.g.
    INITIAL_NO_AUTH_ACTION_COUNT=$(python tests/aws/moto_bootstrap.py --count) \
        python tests/aws/moto_server.py --host 127.0.0.1 --port 5000 &
    python tests/aws/moto_bootstrap.py http://127.0.0.1:5000

It creates the IAM user `airlock` (Airlock's base credentials: an access key and an
inline allow-everything policy, so it may sts:AssumeRole) and the role `agent-role`
(trusted by that user and the account root; inline policy allowing `*`), then prints one
JSON line: {"access_key_id", "secret_access_key", "role_arn", "account"}.
After these K calls moto enforces SigV4 auth and IAM policies on every request.

moto quirk: a trust policy's AWS principal is matched by exact ARN (the account root
does not cover the user), so the user's ARN is listed explicitly; and a statement whose
principal does not match counts as a Deny, so all principals share one statement.
"""

import json
import sys

import boto3

# The number of setup calls below. Keep equal to the calls made in bootstrap().
K = 5

ACCOUNT = "123456789012"  # moto's default account id
USER = "airlock"
ROLE = "agent-role"

ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {
                    "AWS": [f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:user/{USER}"]
                },
                # Real AWS needs TagSession / SetSourceIdentity for Tags / SourceIdentity.
                "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
            }
        ],
    }
)


def bootstrap(url: str) -> dict:
    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIABOOTSTRAPDUMMY00",
        aws_secret_access_key="bootstrap-dummy-secret",
    )
    calls = 0
    iam.create_user(UserName=USER)
    calls += 1
    key = iam.create_access_key(UserName=USER)["AccessKey"]
    calls += 1
    iam.put_user_policy(UserName=USER, PolicyName="allow-all", PolicyDocument=ALLOW_ALL)
    calls += 1
    role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=TRUST)["Role"]
    calls += 1
    iam.put_role_policy(RoleName=ROLE, PolicyName="allow-all", PolicyDocument=ALLOW_ALL)
    calls += 1
    assert calls == K, (calls, K)
    return {
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
        "role_arn": role["Arn"],
        "account": role["Arn"].split(":")[4],
    }


def main() -> int:
    args = sys.argv[1:]
    if args == ["--count"]:
        print(K)
        return 0
    if len(args) != 1 or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(bootstrap(args[0].rstrip("/"))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
