#!/usr/bin/env python3
"""Self-test of the moto upstream used by Airlock's tests (no Airlock involved).

    .venv/bin/python tests/aws/moto_selftest.py [--port N]

Starts tests/aws/moto_server.py with INITIAL_NO_AUTH_ACTION_COUNT=K on 127.0.0.1, seeds it
with tests/aws/moto_bootstrap.py, then checks with boto3 (and the `aws` CLI, if it is
next to this python) that with auth on:
  * the base keys can sts:AssumeRole into agent-role (SourceIdentity, Tags);
  * the ASIA session credentials work for s3/iam/dynamodb/sqs/kms/ec2/lambda, sent both
    to endpoint_url=moto and to the REAL AWS hostnames (TCP to moto, Host header kept,
    plain HTTP), including virtual-hosted S3 and account-ID DynamoDB endpoints;
  * a wrong secret is rejected; SigV4 presigned S3 URLs work and tampering fails.
Prints one line per check and 'N passed, N failed'; exits 1 on any failure.

`via_moto(client, moto_url)` is reusable: it makes a botocore client that resolves and
signs for the real AWS endpoint send its requests to moto instead, keeping Host.
"""

import http.client
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import boto3
import botocore
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
REGION = "us-east-1"


class _Body(io.BytesIO):
    def stream(self, amt=1024, decode_content=None):
        while chunk := self.read(amt):
            yield chunk


def via_moto(client, moto_url):
    """Send the client's requests to moto over plain HTTP, keeping the real Host header."""
    addr = urlsplit(moto_url)

    def before_send(request, **_):
        url = urlsplit(request.url)
        body = request.body.read() if hasattr(request.body, "read") else request.body
        headers = dict(request.headers.items())
        headers["Host"] = url.netloc
        te = headers.get("Transfer-Encoding", b"")
        chunked = b"chunked" in (te if isinstance(te, bytes) else te.encode())  # S3 aws-chunked
        conn = http.client.HTTPConnection(addr.hostname, addr.port, timeout=30)
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        conn.request(request.method, target, body=iter([body]) if chunked else body,
                     headers=headers, encode_chunked=chunked)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return AWSResponse(request.url, resp.status, HTTPHeaders.from_pairs(resp.getheaders()), _Body(data))

    client.meta.events.register_first("before-send", before_send)
    return client


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def ok(self, name, cond, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if cond else 'FAIL'} {name}" + (f"  [{str(detail)[:150]}]" if detail else ""), flush=True)

    def call(self, name, fn):
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001
            return self.ok(name, False, f"{type(e).__name__}: {e}")
        self.ok(name, True, out)

    def rejected(self, name, fn, want=("SignatureDoesNotMatch", "AuthFailure")):
        try:
            fn()
        except botocore.exceptions.ClientError as e:
            code = e.response["Error"].get("Code", "")
            # moto answers auth errors of JSON services as XML: botocore sees code "403".
            return self.ok(name, code in want or any(w in str(e) for w in want), code)
        except Exception as e:  # noqa: BLE001
            return self.ok(name, False, f"{type(e).__name__}: {e}")
        self.ok(name, False, "accepted")


def http_get(url, method="GET", data=None, headers=None):
    req = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def tamper(url):
    return re.sub(r"(X-Amz-Signature=)(.)", lambda m: m.group(1) + ("1" if m.group(2) == "0" else "0"), url)


def service_checks(t, tag, mk, creds, bad, account, direct):
    """The brief's service list with session credentials; mk(service, creds, **kw) -> client."""
    sfx = tag.replace("/", "-")
    s3 = mk("s3", creds, config=Config(s3={"addressing_style": "virtual"}))
    t.call(f"{tag} s3 create-bucket", lambda: s3.create_bucket(Bucket=f"b-{sfx}") and None)
    t.call(f"{tag} s3 put-object", lambda: s3.put_object(Bucket=f"b-{sfx}", Key="d/x y.txt", Body=b"hello")["ETag"])
    t.ok(f"{tag} s3 get-object", s3.get_object(Bucket=f"b-{sfx}", Key="d/x y.txt")["Body"].read() == b"hello")
    t.rejected(f"{tag} s3 wrong secret", lambda: mk("s3", bad).get_object(Bucket=f"b-{sfx}", Key="d/x y.txt"))
    s3p = mk("s3", creds, config=Config(s3={"addressing_style": "path"}))
    t.call(f"{tag} s3 path-style list", lambda: [o["Key"] for o in s3p.list_objects_v2(Bucket=f"b-{sfx}")["Contents"]])
    t.call(f"{tag} iam create-role", lambda: mk("iam", creds).create_role(
        RoleName=f"r-{sfx}", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))["Role"]["Arn"])
    ddb = mk("dynamodb", dict(creds, aws_account_id=account))  # account-ID endpoint when not direct
    t.call(f"{tag} dynamodb create-table", lambda: ddb.create_table(
        TableName=f"t-{sfx}", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])["TableDescription"]["TableArn"])
    t.rejected(f"{tag} dynamodb wrong secret", lambda: mk("dynamodb", bad).list_tables())
    sqs = mk("sqs", creds)
    q = sqs.create_queue(QueueName=f"q-{sfx}")["QueueUrl"]
    sqs.send_message(QueueUrl=q, MessageBody="m1")
    t.ok(f"{tag} sqs create/send/receive", sqs.receive_message(QueueUrl=q)["Messages"][0]["Body"] == "m1", q)
    kms = mk("kms", creds)
    t.call(f"{tag} kms create-key/encrypt", lambda: len(kms.encrypt(
        KeyId=kms.create_key()["KeyMetadata"]["KeyId"], Plaintext=b"secret")["CiphertextBlob"]))
    t.call(f"{tag} ec2 describe-instances", lambda: mk("ec2", creds).describe_instances()["Reservations"])
    t.rejected(f"{tag} ec2 wrong secret", lambda: mk("ec2", bad).describe_instances())
    t.call(f"{tag} lambda list-functions", lambda: mk("lambda", creds).list_functions()["Functions"])
    t.call(f"{tag} lambda list-functions MaxItems", lambda: mk("lambda", creds).list_functions(MaxItems=5)["Functions"])
    t.rejected(f"{tag} lambda wrong secret", lambda: mk("lambda", bad).list_functions())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else free_port()
    moto = f"http://127.0.0.1:{port}"
    py = sys.executable
    k = subprocess.check_output([py, os.path.join(HERE, "moto_bootstrap.py"), "--count"], text=True).strip()
    log = open(f"/tmp/moto-selftest-{port}.log", "w")
    server = subprocess.Popen([py, os.path.join(HERE, "moto_server.py"), "--host", "127.0.0.1", "--port", str(port)],
                              env=dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=k), stdout=log, stderr=log)
    t = Checks()
    try:
        for _ in range(100):  # readiness via /moto-api/, which does not use up the K free calls
            try:
                urllib.request.urlopen(f"{moto}/moto-api/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        boot = json.loads(subprocess.check_output([py, os.path.join(HERE, "moto_bootstrap.py"), moto], text=True))
        print(f"K={k} bootstrap: {boot}")
        base = dict(aws_access_key_id=boot["access_key_id"], aws_secret_access_key=boot["secret_access_key"])

        def direct(svc, creds, **kw):
            creds = {k2: v for k2, v in creds.items() if k2 != "aws_account_id"}
            return boto3.client(svc, endpoint_url=moto, region_name=REGION, **creds, **kw)

        def real_host(svc, creds, **kw):
            return via_moto(boto3.client(svc, region_name=REGION, **creds, **kw), moto)

        t.rejected("call K+1 with dummy key is authenticated", lambda: direct("iam", {
            "aws_access_key_id": "AKIADUMMYDUMMYDUMMY0", "aws_secret_access_key": "x"}).list_users(),
            want=("InvalidClientTokenId",))
        for tag, mk in (("direct", direct), ("real-host", real_host)):
            sts = mk("sts", base)
            t.ok(f"{tag} base keys identity", sts.get_caller_identity()["Arn"].endswith(":user/airlock"))
            t.rejected(f"{tag} base keys wrong secret", lambda: mk("sts", dict(base, aws_secret_access_key="x" * 40)).get_caller_identity())
            r = sts.assume_role(RoleArn=boot["role_arn"], RoleSessionName=f"s-{tag}", SourceIdentity="agent-7",
                                Tags=[{"Key": "agent", "Value": "a7"}], DurationSeconds=900)
            c = r["Credentials"]
            t.ok(f"{tag} assume-role -> ASIA", c["AccessKeyId"].startswith("ASIA"), r["AssumedRoleUser"]["Arn"])
            creds = dict(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                         aws_session_token=c["SessionToken"])
            bad = dict(creds, aws_secret_access_key="Z" + creds["aws_secret_access_key"][1:])
            t.rejected(f"{tag} session token altered", lambda: mk("sts", dict(creds, aws_session_token="bogus")).get_caller_identity(),
                       want=("InvalidClientTokenId",))
            service_checks(t, tag, mk, creds, bad, boot["account"], tag == "direct")

        # Presigned SigV4 URLs (moto fault 2), fetched with urllib straight from moto.
        s3 = direct("s3", base, config=Config(signature_version="s3v4"))
        s3.create_bucket(Bucket="presign-bkt")
        s3.put_object(Bucket="presign-bkt", Key="k/a b+c.txt", Body=b"presigned-body")
        url = s3.generate_presigned_url("get_object", Params={"Bucket": "presign-bkt", "Key": "k/a b+c.txt"}, ExpiresIn=300)
        t.ok("presigned GET", http_get(url) == (200, b"presigned-body"))
        st, body = http_get(tamper(url))
        t.ok("presigned GET, signature tampered -> 403", st == 403 and b"SignatureDoesNotMatch" in body, st)
        st, body = http_get(url.replace("a%20b", "a%20c"))
        t.ok("presigned GET, key changed -> 403", st == 403 and b"SignatureDoesNotMatch" in body, st)
        put = s3.generate_presigned_url("put_object", Params={"Bucket": "presign-bkt", "Key": "up"}, ExpiresIn=300)
        st, _ = http_get(put, "PUT", b"up-body", {"Content-Type": "application/octet-stream"})
        t.ok("presigned PUT", st == 200 and s3.get_object(Bucket="presign-bkt", Key="up")["Body"].read() == b"up-body", st)
        sv = boto3.client("s3", region_name=REGION, config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}), **base)
        vurl = sv.generate_presigned_url("get_object", Params={"Bucket": "presign-bkt", "Key": "k/a b+c.txt"}, ExpiresIn=300)
        u = urlsplit(vurl)
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", f"{u.path}?{u.query}", headers={"Host": u.netloc})
        resp = conn.getresponse()
        t.ok(f"presigned GET, real host {u.netloc}", (resp.status, resp.read()) == (200, b"presigned-body"))

        aws = os.path.join(os.path.dirname(sys.executable), "aws")
        if shutil.which(aws):
            env = dict(os.environ, AWS_ACCESS_KEY_ID=base["aws_access_key_id"], AWS_SECRET_ACCESS_KEY=base["aws_secret_access_key"],
                       AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
            env.pop("AWS_SESSION_TOKEN", None)
            for args in (["sts", "get-caller-identity"], ["lambda", "list-functions"], ["s3", "ls", "s3://presign-bkt"]):
                p = subprocess.run([aws, "--endpoint-url", moto, *args], env=env, capture_output=True, text=True)
                t.ok("aws " + " ".join(args), p.returncode == 0, (p.stdout or p.stderr).strip().replace("\n", " "))
        else:
            print("SKIP aws CLI checks (no aws next to this python)")
    finally:
        server.terminate()
        server.wait(10)
    print(f"{t.passed} passed, {t.failed} failed")
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
