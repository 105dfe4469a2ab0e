#!/usr/bin/env python3
"""Generate Airlock's Google Cloud API catalogue from discovery documents and iam-dataset.

Sources:

* Discovery documents shipped by google-api-python-client (version pinned in
  data/gcp/requirements.txt): every ``googleapiclient/discovery_cache/documents/*.json``
  file, located through ``importlib`` (the installed package's path). The package's
  ``index.json`` is stale (it lists only part of the documents), so the directory itself
  is read. A few documents are shipped twice under two file names (``admin.directory_v1``
  and ``admin.directoryv1``); one per discovery ``id`` is kept: the highest ``revision``,
  then the first file name in sorted order.
* Permissions per method: iam-dataset (https://github.com/iann0036/iam-dataset, MIT
  licence, "work in progress"), file ``gcp/map.json``, imported as data (facts) from a
  local copy whose commit is recorded in SOURCES.json. Pass its path with
  ``--iam-map PATH --iam-commit SHA`` (the copy is not committed here; the MIT notice is
  kept in ``data/gcp/README.md`` and SOURCES.json). ``iam.permissions.none`` (iam-dataset's
  marker for "no permission needed") is dropped; entries iam-dataset flags ``lowConfidence``
  (387, from its REST-reference crawl) are kept: they name the permission Google's
  reference pages state, and reviewers are better served by them than by nothing. Permissions that iam-dataset marks with a
  ``condition`` of the form ``{"bodyPathExists": "$.a.b[].c"}`` are kept apart as
  conditional: the classifier adds them only when the JSON request body has that path.
* ``data/gcp/permission-overrides.json``, reviewed by hand: ``{"<method id>":
  {"permissions": [...], "when_body": {"<permission>": "$.json.path"}, "source": "<url>"}}``.
  An override replaces iam-dataset's entry for that method id. Every key must name a
  method id that some discovery document defines, or the script fails.

Method ids are shared by the versions of an API (``cloudresourcemanager.projects.setIamPolicy``
is the id in v1 and v3); permissions are keyed by method id, so every version gets them.
Where no permission is known a method gets ``perms: []`` (reported in the totals, never
guessed).

Access level per permission (``permissions.jsonl``), derived from the permission's name
``<service>.<resource>.<verb>``, first rule that applies:

1. "Permissions management":
   - any ``*.setIamPolicy`` verb;
   - service-account keys: ``iam.serviceAccountKeys.*`` other than get/list;
   - impersonation grants: ``iam.serviceAccounts.{actAs, getAccessToken, getOpenIdToken,
     implicitDelegation, signBlob, signJwt}``;
   - role and binding changes: create/update/delete/undelete on any ``<service>.roles``
     resource (``iam.roles.create``), and any write on IAM's policy resources
     ``iam.denypolicies``, ``iam.policybindings``, ``iam.principalaccessboundarypolicies``,
     ``iam.policies`` (policy bindings on projects are ``*.setIamPolicy``, above).
2. "Read": verbs ``get*`` (get, getIamPolicy, getData, …), ``read*``, ``view*``,
   ``access`` (Secret Manager versions) and ``testIamPermissions``.
3. "List": verbs ``list*``, ``search*`` and ``aggregatedList``.
4. "Write": everything else (create, update, delete, export, …).

Outputs, next to this script; ``*.jsonl`` files hold one JSON object per line with sorted
keys and compact separators:

* ``SOURCES.json``      pretty JSON: package versions, the iam-dataset commit, totals.
* ``apis.jsonl``        one line per discovery document, sorted by ``id``: id, name,
  version, root (rootUrl host), mtls (mtlsRootUrl host), service_path, batch_path,
  endpoints (``[[host, location], …]`` from ``endpoints``).
* ``methods.jsonl``     one line per method, sorted by (api, id): api, id, http, path,
  flat (flatPath, only where it differs from path), query (names of query parameters,
  method-level), perms, when_body (conditional permissions), upload (``{"simple": path,
  "resumable": path}`` from mediaUpload), download (supportsMediaDownload),
  download_service (useMediaDownloadService), deprecated.
* ``permissions.jsonl`` one line per permission named by some method, sorted: name, access.

Run from the repository root (iam-dataset copied locally first, e.g. with ``git show
<commit>:gcp/map.json > /tmp/gcpmap.json``):
    python3 -m venv /tmp/venv-gcpgen && /tmp/venv-gcpgen/bin/pip install -r data/gcp/requirements.txt \
        && /tmp/venv-gcpgen/bin/python data/gcp/generate.py --iam-map /tmp/gcpmap.json --iam-commit <sha>
"""

import argparse
import importlib.metadata
import importlib.resources
import json
import re
import sys
from pathlib import Path

OUTPUT_DIR = Path(__file__).resolve().parent
OVERRIDES_PATH = OUTPUT_DIR / "permission-overrides.json"
IAM_DATASET = "https://github.com/iann0036/iam-dataset"

IMPERSONATION = {
    "iam.serviceAccounts.actAs",
    "iam.serviceAccounts.getAccessToken",
    "iam.serviceAccounts.getOpenIdToken",
    "iam.serviceAccounts.implicitDelegation",
    "iam.serviceAccounts.signBlob",
    "iam.serviceAccounts.signJwt",
}
IAM_POLICY_RESOURCES = {
    "iam.denypolicies",
    "iam.policybindings",
    "iam.principalaccessboundarypolicies",
    "iam.policies",
}
ROLE_WRITES = {"create", "update", "delete", "undelete"}
FEDERATION_RESOURCES = {
    "iam.workloadIdentityPools",
    "iam.workloadIdentityPoolProviders",
    "iam.workloadIdentityPoolProviderKeys",
    "iam.workforcePools",
    "iam.workforcePoolProviders",
    "iam.workforcePoolProviderKeys",
}
CONDITION_PATH = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_]*(\[\])?)+$")


def access_level(permission: str) -> str:
    parts = permission.split(".")
    verb = parts[-1]
    resource = ".".join(parts[:-1])
    reads = verb.startswith(("get", "read", "view")) or verb in ("access", "testIamPermissions")
    lists = verb.startswith(("list", "search")) or verb == "aggregatedList"
    if verb == "setIamPolicy" or permission in IMPERSONATION:
        return "Permissions management"
    if resource == "iam.serviceAccountKeys" and not (reads or lists):
        return "Permissions management"
    if len(parts) >= 3 and parts[-2] == "roles" and verb in ROLE_WRITES:
        return "Permissions management"
    if resource in IAM_POLICY_RESOURCES and not (reads or lists):
        return "Permissions management"
    # Pools and providers let identities from outside Google act as service accounts.
    if resource in FEDERATION_RESOURCES and not (reads or lists):
        return "Permissions management"
    if reads:
        return "Read"
    if lists:
        return "List"
    return "Write"


def host_of(url):
    if not url:
        return None
    return url.split("/")[2].lower()


def load_documents():
    base = importlib.resources.files("googleapiclient") / "discovery_cache" / "documents"
    docs = {}
    for entry in sorted(base.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".json") or entry.name == "index.json":
            continue
        doc = json.loads(entry.read_text(encoding="utf-8"))
        if doc.get("kind") != "discovery#restDescription":
            continue
        kept = docs.get(doc["id"])
        if kept is None or doc.get("revision", "") > kept.get("revision", ""):
            docs[doc["id"]] = doc
    return docs


def walk_methods(node):
    for method in node.get("methods", {}).values():
        yield method
    for child in node.get("resources", {}).values():
        yield from walk_methods(child)


# iam-dataset spells a few permissions with their service host in front
# (`iam.googleapis.com-workloadIdentityPools.create`, `alloydb.googleapis.com/alloydb.clusters.export`)
# and lists prose (`No permissions required.`): normalised to IAM's spelling, or dropped.
PERMISSION = re.compile(r"^[a-z][a-z0-9]*(\.[A-Za-z][A-Za-z0-9]*){2,}$")


def normalise_permission(name):
    if "googleapis.com-" in name:
        service, rest = name.split(".googleapis.com-", 1)
        name = f"{service}.{rest}"
    elif ".googleapis.com/" in name:
        name = name.split(".googleapis.com/", 1)[1]
    return name if PERMISSION.match(name) else None


def load_iam_map(path):
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out = {}
    for api in data["api"].values():
        for method_id, entry in api.get("methods", {}).items():
            perms, conditional = [], {}
            for p in entry.get("permissions", []):
                name = normalise_permission(p["name"])
                if name is None or name == "iam.permissions.none":
                    continue
                cond = p.get("condition")
                if cond:
                    body_path = cond.get("bodyPathExists")
                    if body_path and CONDITION_PATH.match(body_path):
                        conditional[name] = body_path
                    # Any other condition kind is not understood: the permission is
                    # listed unconditionally rather than dropped.
                    else:
                        perms.append(name)
                elif name not in perms:
                    perms.append(name)
            out[method_id] = (perms, conditional)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iam-map", required=True, help="local copy of iam-dataset gcp/map.json")
    parser.add_argument("--iam-commit", required=True, help="iam-dataset commit of that copy")
    args = parser.parse_args()

    docs = load_documents()
    iam = load_iam_map(args.iam_map)
    overrides = json.loads(OVERRIDES_PATH.read_text(encoding="utf-8"))

    apis, methods, seen_ids = [], [], set()
    for doc_id in sorted(docs):
        doc = docs[doc_id]
        endpoints = sorted(
            {(host_of(e["endpointUrl"]), e.get("location", "")) for e in doc.get("endpoints", [])}
        )
        apis.append(
            {
                "id": doc_id,
                "name": doc["name"],
                "version": doc["version"],
                "root": host_of(doc["rootUrl"]),
                "mtls": host_of(doc.get("mtlsRootUrl")),
                "service_path": doc.get("servicePath", ""),
                "batch_path": doc.get("batchPath", ""),
                "endpoints": [list(e) for e in endpoints],
            }
        )
        for m in walk_methods(doc):
            method_id = m["id"]
            seen_ids.add(method_id)
            if method_id in overrides:
                o = overrides[method_id]
                perms, conditional = list(o["permissions"]), dict(o.get("when_body", {}))
            else:
                perms, conditional = iam.get(method_id, ([], {}))
            row = {
                "api": doc_id,
                "id": method_id,
                "http": m["httpMethod"],
                "path": m["path"],
                "perms": perms,
            }
            flat = m.get("flatPath")
            if flat and flat != m["path"]:
                row["flat"] = flat
            query = sorted(
                n for n, p in m.get("parameters", {}).items() if p.get("location") == "query"
            )
            if query:
                row["query"] = query
            if conditional:
                row["when_body"] = conditional
            protocols = m.get("mediaUpload", {}).get("protocols", {})
            upload = {k: v["path"] for k, v in protocols.items() if "path" in v}
            if upload:
                row["upload"] = upload
            if m.get("supportsMediaDownload"):
                row["download"] = True
            if m.get("useMediaDownloadService"):
                row["download_service"] = True
            if m.get("deprecated"):
                row["deprecated"] = True
            methods.append(row)

    unknown = sorted(k for k in overrides if k not in seen_ids)
    if unknown:
        sys.exit(f"permission-overrides.json names unknown method ids: {unknown}")
    for key, o in overrides.items():
        if not o.get("source"):
            sys.exit(f"permission-overrides.json: {key} has no source")
        for p in list(o["permissions"]) + list(o.get("when_body", {})):
            if p.count(".") < 2:
                sys.exit(f"permission-overrides.json: {key}: `{p}` is not a permission name")
        for path in o.get("when_body", {}).values():
            if not CONDITION_PATH.match(path):
                sys.exit(f"permission-overrides.json: {key}: bad body path {path}")

    methods.sort(key=lambda r: (r["api"], r["id"]))
    permissions = sorted(
        {p for r in methods for p in r["perms"]} | {p for r in methods for p in r.get("when_body", {})}
    )

    def write_jsonl(name, rows):
        with open(OUTPUT_DIR / name, "w", encoding="utf-8", newline="\n") as f:
            for row in rows:
                f.write(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n")

    write_jsonl("apis.jsonl", apis)
    write_jsonl("methods.jsonl", methods)
    write_jsonl("permissions.jsonl", ({"name": p, "access": access_level(p)} for p in permissions))

    levels = {}
    for p in permissions:
        levels[access_level(p)] = levels.get(access_level(p), 0) + 1
    sources = {
        "generated_by": "data/gcp/generate.py",
        "google-api-python-client": importlib.metadata.version("google-api-python-client"),
        "discovery_documents": len(apis),
        "iam_dataset": {
            "repository": IAM_DATASET,
            "file": "gcp/map.json",
            "commit": args.iam_commit,
            "licence": "MIT, Copyright (c) 2021 Ian Mckay",
        },
        "methods": len(methods),
        "method_ids": len({r["id"] for r in methods}),
        "methods_with_permissions": sum(1 for r in methods if r["perms"]),
        "methods_without_permissions": sum(1 for r in methods if not r["perms"]),
        "permission_overrides": len(overrides),
        "permissions": len(permissions),
        "permissions_by_access": dict(sorted(levels.items())),
    }
    (OUTPUT_DIR / "SOURCES.json").write_text(json.dumps(sources, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(sources, indent=2))


if __name__ == "__main__":
    main()
