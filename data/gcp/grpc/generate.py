#!/usr/bin/env python3
"""Generate Airlock's gRPC catalogue for Google APIs: a protobuf descriptor set and one
line per gRPC method with its REST twin's discovery method id and IAM permissions.

Sources (Python packages pinned in data/gcp/grpc/requirements.txt, npm packages pinned
in NPM_PACKAGES below; each tarball's sha512 is checked against the integrity npm reports
and recorded in SOURCES.json):

* ``.proto`` files, laid out under their import paths in a temporary include tree, first
  source wins (a later source only fills gaps; every file a later source ships that an
  earlier one already supplied is compared and any difference reported in SOURCES.json):
    1. grpcio-tools (PyPI): its bundled ``google/protobuf/*.proto`` well-known types;
    2. googleapis-common-protos (PyPI): ``google/api``, ``google/rpc``, ``google/type``,
       ``google/cloud``, ``google/longrunning`` (the wheel names the last one
       ``operations_proto.proto``; it is laid out under its import path
       ``google/longrunning/operations.proto``);
    3. grpc-google-iam-v1 (PyPI): ``google/iam/v1``;
    4. npm tarballs (``npm pack``): ``package/build/protos/google/**.proto`` of
       @google-cloud/pubsub, @google-cloud/firestore, @google-cloud/bigquery-storage,
       @google-cloud/bigtable, then ``package/google/**.proto`` of google-proto-files
       (googleapis' protos: the source of Spanner and Datastore);
    5. google-cloud-pubsub (PyPI): ``google/cloud/pubsub_v1/proto/{pubsub,schema}.proto``
       (laid out as ``google/pubsub/v1/``), last because they are stale: see
       PYPI_FALLBACK_DISTRIBUTIONS.
  Files are found through ``importlib.metadata`` (the installed distributions' file
  lists), never through hard-coded site-packages paths.
* Compiler: grpcio-tools' bundled protoc (``grpc_tools.protoc``), run with
  ``--include_imports`` and without ``--include_source_info``.
* Discovery documents: google-api-python-client's
  ``googleapiclient/discovery_cache/documents/<api>.<version>.json``.
* IAM permissions: ``gcp/map.json`` of iann0036/iam-dataset (MIT), read from a git
  checkout or mirror given with ``--iam-dataset DIR`` (its HEAD commit is recorded).
* ``permission-overrides.json`` beside this script: hand-maintained permissions for
  gRPC methods that have no REST twin (so no iam-dataset entry), each with its source.

Which gRPC services: every service defined in TOP_LEVEL_FILES (Pub/Sub Publisher,
Subscriber and SchemaService; Firestore and Firestore Admin; BigQuery Storage Read and
Write; Bigtable data and both admin services; Spanner data, database admin and instance
admin; Datastore and Datastore Admin).

How a gRPC method gets its ``method_id`` (the discovery id of its REST twin):
  1. The discovery document is the one whose ``rootUrl`` host is the service's
     ``google.api.default_host`` and whose version is the proto package's version
     (``google.pubsub.v1`` -> v1). No such document: the API has no REST catalogue here.
  2. Each HTTP binding of the method (``google.api.http`` and its
     ``additional_bindings``) is reduced to ``VERB /glob`` where a path variable is
     replaced by its segment pattern (``{topic=projects/*/topics/*}`` ->
     ``projects/*/topics/*``, ``{name}`` -> ``*``). Each discovery method is reduced the
     same way twice: from ``servicePath + path`` with every ``{+var}``/``{var}`` replaced
     by its parameter's ``pattern`` regex turned into a glob (``[^/]+`` -> ``*``, ``.*``
     -> ``**``), and from ``servicePath + flatPath`` (``{x}`` -> ``*``). A binding's
     method id is the discovery method whose reduction equals the binding's; more than
     one candidate is a generation error (resolve it in AMBIGUITY_RESOLUTIONS).
  3. If every binding that matched names the same id, that is ``method_id``. Bindings
     that name different ids (Firestore ``ListDocuments`` is ``documents.list`` or
     ``documents.listDocuments`` depending on ``parent``) keep their own id and the line
     says ``"binding_dependent": true``: the classifier picks the binding whose path
     variables match the request's fields.
  4. A method with no REST twin (no binding matched, no binding at all, or no discovery
     document) gets its own id ``<api name>.<Service>.<Method>``, e.g.
     ``pubsub.Subscriber.StreamingPull``, ``bigquerystorage.BigQueryWrite.AppendRows``
     (capitalised segments, so it never collides with a discovery id), and
     ``"rest_twin": false``.
  5. Google's IAM mixin (``google.iam.v1.IAMPolicy``) as the Pub/Sub client calls it: see
     IAM_MIXIN; one binding per Pub/Sub discovery method of that name, by resource.

Outputs (next to this script; deterministic, lines sorted by ``path``):
* ``descriptors.binpb``  FileDescriptorSet (binary, imports included, no source info).
* ``methods.jsonl``      one line per gRPC method (see README.md).
* ``SOURCES.json``       versions, commit, integrity hashes, totals, per-file sources.

Run from the repository root (npm must be on PATH):
    python3 -m venv /tmp/venv-grpc-gen \\
      && /tmp/venv-grpc-gen/bin/pip install -r data/gcp/grpc/requirements.txt \\
      && /tmp/venv-grpc-gen/bin/python data/gcp/grpc/generate.py --iam-dataset <iam-dataset git dir>
"""

import argparse
import base64
import hashlib
import importlib.metadata
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

OUTPUT_DIR = Path(__file__).resolve().parent
OVERRIDES_PATH = OUTPUT_DIR / "permission-overrides.json"

# npm packages that ship .proto files (Apache-2.0): name, version, and the directory of
# the tarball that is the proto include root. Earlier packages win over later ones.
NPM_PACKAGES = [
    ("@google-cloud/pubsub", "6.3.2", "package/build/protos/"),
    ("@google-cloud/firestore", "9.4.1", "package/build/protos/"),
    ("@google-cloud/bigquery-storage", "5.1.2", "package/build/protos/"),
    ("@google-cloud/bigtable", "7.2.0", "package/build/protos/"),
    # Spanner's and Datastore's client packages ship no .proto files (Spanner a bundled
    # JSON, Datastore one unrelated file); google-proto-files carries googleapis' protos.
    # Last, so it only fills gaps.
    ("google-proto-files", "6.0.1", "package/"),
]

# PyPI distributions that ship .proto files, in priority order: (distribution, rename).
# rename maps a path inside the wheel to the import path the protos use.
PYPI_PROTO_DISTRIBUTIONS = [
    ("grpcio-tools", {"grpc_tools/_proto/": ""}),
    ("googleapis-common-protos", {"google/longrunning/operations_proto.proto": "google/longrunning/operations.proto"}),
    ("grpc-google-iam-v1", {}),
]

# Consulted after the npm packages, so it only fills gaps: the google-cloud-pubsub wheel's
# protos are years older than its generated code (schema.proto has 6 of SchemaService's 10
# methods; pubsub.proto lacks ingestion settings), so @google-cloud/pubsub supplies them.
# Its differing copies are listed in SOURCES.json "shadowed_files".
PYPI_FALLBACK_DISTRIBUTIONS = [
    ("google-cloud-pubsub", {"google/cloud/pubsub_v1/proto/": "google/pubsub/v1/"}),
]

TOP_LEVEL_FILES = [
    "google/pubsub/v1/pubsub.proto",
    "google/pubsub/v1/schema.proto",
    "google/firestore/v1/firestore.proto",
    "google/firestore/admin/v1/firestore_admin.proto",
    "google/cloud/bigquery/storage/v1/storage.proto",
    "google/bigtable/v2/bigtable.proto",
    "google/bigtable/admin/v2/bigtable_instance_admin.proto",
    "google/bigtable/admin/v2/bigtable_table_admin.proto",
    "google/spanner/v1/spanner.proto",
    "google/spanner/admin/database/v1/spanner_database_admin.proto",
    "google/spanner/admin/instance/v1/spanner_instance_admin.proto",
    "google/datastore/v1/datastore.proto",
    "google/datastore/admin/v1/datastore_admin.proto",
]

# Google's IAM mixin service, which some clients call at the API's own host (the Pub/Sub
# client: google/pubsub_v1/services/*/transports/grpc.py calls
# /google.iam.v1.IAMPolicy/{Set,Get}IamPolicy and TestIamPermissions at pubsub.googleapis.com).
# Its REST twin depends on the resource, so its line lists one binding per discovery method
# named `<...>.<setIamPolicy|getIamPolicy|testIamPermissions>` whose path is
# `{+resource}:<verb>`, with that method's `resource` pattern; the classifier picks by the
# request's `resource`. Only one host may be listed while classify() does not see the host.
IAM_MIXIN = {"file": "google/iam/v1/iam_policy.proto", "service": "google.iam.v1.IAMPolicy",
             "host": "pubsub.googleapis.com", "version": "v1"}

# (grpc path, binding index) -> discovery id, for bindings two discovery methods match.
AMBIGUITY_RESOLUTIONS = {}

HTTP_VERBS = ("get", "put", "post", "delete", "patch")


class GenerationError(Exception):
    """Inconsistent inputs; the script exits non-zero."""


def log(message=""):
    print(message, file=sys.stderr)


# --------------------------------------------------------------------------- include tree


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class IncludeTree:
    """Import path -> (bytes, source label); the first source of a path wins."""

    def __init__(self):
        self.files = {}
        self.shadowed = []  # (path, later source, earlier source) where the bytes differ

    def add(self, import_path, data, source):
        if import_path in self.files:
            earlier_data, earlier_source = self.files[import_path]
            if earlier_data != data:
                self.shadowed.append({"path": import_path, "kept": earlier_source, "ignored": source})
            return
        self.files[import_path] = (data, source)

    def write(self, root):
        for import_path, (data, _) in self.files.items():
            target = root / import_path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def add_pypi_protos(tree, versions, distributions):
    for distribution_name, renames in distributions:
        distribution = importlib.metadata.distribution(distribution_name)
        versions[distribution_name] = distribution.version
        count = 0
        for file in sorted(distribution.files or [], key=str):
            name = str(file).replace("\\", "/")
            if not name.endswith(".proto"):
                continue
            import_path = name
            for prefix, replacement in renames.items():
                if name == prefix or (prefix.endswith("/") and name.startswith(prefix)):
                    import_path = replacement + name[len(prefix):] if prefix.endswith("/") else replacement
            if "/" not in import_path or not import_path.startswith("google/"):
                continue  # test or tool protos outside the google/ tree
            tree.add(import_path, Path(file.locate()).read_bytes(), f"pypi:{distribution_name}=={distribution.version}")
            count += 1
        if count == 0:
            raise GenerationError(f"{distribution_name} ships no .proto files")


def npm_pack(name, version, workdir):
    """Run `npm pack` and return (tarball path, integrity) as npm reports them."""
    output = subprocess.run(
        ["npm", "pack", "--json", "--silent", f"{name}@{version}"],
        cwd=workdir, check=True, capture_output=True, text=True,
    ).stdout
    info = json.loads(output)[0]
    tarball = workdir / info["filename"]
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if info.get("integrity") != f"sha512-{digest}":
        raise GenerationError(f"{name}@{version}: tarball does not match npm's integrity {info.get('integrity')}")
    return tarball, info["integrity"]


def add_npm_protos(tree, workdir, versions):
    for name, version, prefix in NPM_PACKAGES:
        tarball, integrity = npm_pack(name, version, workdir)
        versions[name] = {"version": version, "integrity": integrity}
        count = 0
        # Read in archive order: random access into a gzip stream re-inflates from the start.
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive:
                if not (member.isfile() and member.name.startswith(prefix) and member.name.endswith(".proto")):
                    continue
                import_path = member.name[len(prefix):]
                if not import_path.startswith("google/"):
                    continue  # bundle/test protos of the client library itself
                data = archive.extractfile(member).read()
                tree.add(import_path, data, f"npm:{name}@{version}")
                count += 1
        if count == 0:
            raise GenerationError(f"{name}@{version} ships no .proto files")


def compile_descriptor_set(include_root, out_path):
    from grpc_tools import protoc

    args = [
        "grpc_tools.protoc",
        f"-I{include_root}",
        "--include_imports",
        f"--descriptor_set_out={out_path}",
        *TOP_LEVEL_FILES,
    ]
    if protoc.main(args) != 0:
        raise GenerationError("protoc failed (see the messages above)")


# --------------------------------------------------------------------------- HTTP rules and discovery


def template_glob(template):
    """`/v1/{topic=projects/*/topics/*}:publish` -> (`/v1/projects/*/topics/*:publish`, vars)."""
    variables = []

    def replace(match):
        field, _, pattern = match.group(1).partition("=")
        variables.append({"field": field, "pattern": pattern or "*"})
        return pattern or "*"

    glob = re.sub(r"\{([^}]*)\}", replace, template)
    return glob, variables


def regex_glob(regex):
    """A discovery parameter pattern as a glob, or None if it is not a plain path pattern."""
    if not (regex.startswith("^") and regex.endswith("$")):
        return None
    body = regex[1:-1].replace("[^/]+", "*").replace(".*", "**").replace(".+", "**")
    if re.search(r"[\\\[\]()?+|{}^$.]", body):
        return None
    return body


def discovery_methods(document):
    def walk(resource):
        for method in resource.get("methods", {}).values():
            yield method
        for child in resource.get("resources", {}).values():
            yield from walk(child)

    yield from walk(document)


def discovery_keys(document, method):
    """The `VERB /glob` forms a discovery method is known by."""
    keys = set()
    base = "/" + document.get("servicePath", "")
    verb = method["httpMethod"]
    parameters = method.get("parameters", {})
    failed = False

    def replace(match):
        nonlocal failed
        name = match.group(1).lstrip("+")
        pattern = parameters.get(name, {}).get("pattern")
        if pattern is None:
            return "*"
        glob = regex_glob(pattern)
        if glob is None:
            failed = True
            return "?"
        return glob

    from_path = re.sub(r"\{([^}]*)\}", replace, method["path"])
    if not failed:
        keys.add(f"{verb} {base}{from_path}")
    if "flatPath" in method:
        keys.add(f"{verb} {base}" + re.sub(r"\{[^}]*\}", "*", method["flatPath"]))
    return keys


def load_discovery_documents():
    distribution = importlib.metadata.distribution("google-api-python-client")
    documents = {}
    for file in distribution.files or []:
        name = str(file).replace("\\", "/")
        if name.startswith("googleapiclient/discovery_cache/documents/") and name.endswith(".json"):
            if name.endswith("/index.json"):
                continue
            document = json.loads(Path(file.locate()).read_text())
            host = re.sub(r"^https://|/$", "", document.get("rootUrl", ""))
            documents[(host, document["version"])] = document
    if not documents:
        raise GenerationError("google-api-python-client ships no discovery documents")
    return distribution.version, documents


def index_discovery(document):
    index = {}
    for method in discovery_methods(document):
        for key in discovery_keys(document, method):
            index.setdefault(key, set()).add(method["id"])
    return index


def http_bindings(rule):
    """[(verb, template, body)] for a google.api.HttpRule and its additional bindings."""
    bindings = []
    for current in [rule, *rule.additional_bindings]:
        kind = current.WhichOneof("pattern")
        if kind is None:
            continue
        if kind == "custom":
            verb, template = current.custom.kind.upper(), current.custom.path
        else:
            verb, template = kind.upper(), getattr(current, kind)
        bindings.append((verb, template, current.body))
    return bindings


# --------------------------------------------------------------------------- iam-dataset


def load_iam_dataset(directory):
    directory = Path(directory)
    git = ["git", f"--git-dir={directory}"] if (directory / "HEAD").is_file() and not (directory / ".git").exists() else ["git", "-C", str(directory)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    date = subprocess.run([*git, "log", "-1", "--format=%cI", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    data = subprocess.run([*git, "show", "HEAD:gcp/map.json"], check=True, capture_output=True).stdout
    return {"commit": commit, "committed": date, "map_sha256": sha256(data)}, json.loads(data)["api"]


def permissions_for(iam_map, api_name, method_id):
    entry = iam_map.get(api_name, {}).get("methods", {}).get(method_id, {})
    return sorted({permission["name"] for permission in entry.get("permissions", [])})


# --------------------------------------------------------------------------- methods


def build_methods(descriptor_set, documents, iam_map, overrides):
    from google.api import annotations_pb2, client_pb2

    records = []
    unmatched_bindings = []
    indexes = {}
    for file in descriptor_set.file:
        if file.name not in TOP_LEVEL_FILES:
            continue
        version = file.package.rsplit(".", 1)[-1]
        for service in file.service:
            host = service.options.Extensions[client_pb2.default_host]
            if not host:
                raise GenerationError(f"{file.package}.{service.name} has no google.api.default_host")
            api_name = host.split(".", 1)[0]
            document = documents.get((host, version))
            if document is not None and id(document) not in indexes:
                indexes[id(document)] = index_discovery(document)
            index = indexes.get(id(document)) if document is not None else None
            api = document["id"] if document is not None else f"{api_name}:{version}"
            for method in service.method:
                path = f"/{file.package}.{service.name}/{method.name}"
                rule = method.options.Extensions[annotations_pb2.http]
                bindings = []
                for position, (verb, template, body) in enumerate(http_bindings(rule)):
                    glob, variables = template_glob(template)
                    candidates = sorted(index.get(f"{verb} {glob}", ())) if index is not None else []
                    if len(candidates) > 1:
                        resolved = AMBIGUITY_RESOLUTIONS.get((path, position))
                        if resolved not in candidates:
                            raise GenerationError(f"{path} binding {verb} {template} matches {candidates}")
                        candidates = [resolved]
                    if index is not None and not candidates:
                        unmatched_bindings.append(f"{path} {verb} {template}")
                    bindings.append({
                        "method": verb,
                        "path": template,
                        "body": body,
                        "variables": variables,
                        "method_id": candidates[0] if candidates else None,
                    })
                ids = sorted({b["method_id"] for b in bindings if b["method_id"]})
                record = {
                    "path": path,
                    "api": api,
                    "host": host,
                    "input": method.input_type.lstrip("."),
                    "output": method.output_type.lstrip("."),
                    "client_streaming": method.client_streaming,
                    "server_streaming": method.server_streaming,
                    "http": {k: bindings[0][k] for k in ("method", "path", "body")} if bindings else None,
                    "additional_bindings": [{k: b[k] for k in ("method", "path", "body")} for b in bindings[1:]],
                    "rest_twin": bool(ids),
                    "binding_dependent": len(ids) > 1,
                }
                if ids:
                    # The first binding that has a twin names the method; with several
                    # twins the classifier picks by binding (see "bindings").
                    record["method_id"] = next(b["method_id"] for b in bindings if b["method_id"])
                    record["permissions"] = permissions_for(iam_map, api.split(":")[0], record["method_id"])
                    record["permission_source"] = "iam-dataset" if record["permissions"] else "none"
                else:
                    record["method_id"] = f"{api_name}.{service.name}.{method.name}"
                    record["permissions"] = []
                    record["permission_source"] = "none"
                if path in overrides:
                    if not overrides[path].get("source"):
                        raise GenerationError(f"permission-overrides.json: {path} names no source")
                    record["permissions"] = sorted(overrides[path]["permissions"])
                    record["permission_source"] = "override"
                if record["binding_dependent"]:
                    record["bindings"] = [
                        {
                            "method": b["method"],
                            "path": b["path"],
                            "variables": b["variables"],
                            "method_id": b["method_id"],
                            "permissions": permissions_for(iam_map, api.split(":")[0], b["method_id"]) if b["method_id"] else [],
                        }
                        for b in bindings
                    ]
                records.append(record)
    unknown_overrides = sorted(set(overrides) - {r["path"] for r in records})
    if unknown_overrides:
        raise GenerationError(f"permission-overrides.json names unknown methods: {unknown_overrides}")
    records.sort(key=lambda r: r["path"])
    return records, sorted(unmatched_bindings)


def iam_mixin_records(descriptor_set, documents, iam_map):
    """One binding-dependent line per IAMPolicy method, for IAM_MIXIN's host."""
    document = documents.get((IAM_MIXIN["host"], IAM_MIXIN["version"]))
    if document is None:
        raise GenerationError(f"no discovery document for the IAM mixin host {IAM_MIXIN['host']}")
    file = next((f for f in descriptor_set.file if f.name == IAM_MIXIN["file"]), None)
    if file is None:
        raise GenerationError(f"{IAM_MIXIN['file']} is not in the descriptor set")
    service = next(s for s in file.service if f"{file.package}.{s.name}" == IAM_MIXIN["service"])
    api_name = IAM_MIXIN["host"].split(".", 1)[0]
    records = []
    for method in service.method:
        verb = method.name[0].lower() + method.name[1:]
        bindings = []
        for discovery in sorted(discovery_methods(document), key=lambda m: m["id"]):
            if not discovery["id"].endswith(f".{verb}") or not discovery["path"].endswith(f"{{+resource}}:{verb}"):
                continue
            pattern = regex_glob(discovery["parameters"]["resource"].get("pattern", ""))
            if pattern is None:
                raise GenerationError(f"{discovery['id']}: resource pattern is not a path pattern")
            bindings.append({
                "method": discovery["httpMethod"],
                "path": "/" + document.get("servicePath", "") + discovery["path"],
                "variables": [{"field": "resource", "pattern": pattern}],
                "method_id": discovery["id"],
                "permissions": permissions_for(iam_map, document["name"], discovery["id"]),
            })
        patterns = [b["variables"][0]["pattern"] for b in bindings]
        if not bindings or len(set(patterns)) != len(patterns):
            raise GenerationError(f"IAM mixin {method.name}: no or overlapping bindings {patterns}")
        records.append({
            "path": f"/{IAM_MIXIN['service']}/{method.name}",
            "api": document["id"],
            "host": IAM_MIXIN["host"],
            "input": method.input_type.lstrip("."),
            "output": method.output_type.lstrip("."),
            "client_streaming": method.client_streaming,
            "server_streaming": method.server_streaming,
            "http": None,
            "additional_bindings": [],
            "rest_twin": True,
            "binding_dependent": True,
            "iam_mixin": True,
            "method_id": f"{api_name}.IAMPolicy.{method.name}",
            "permissions": [],
            "permission_source": "by binding",
            "bindings": bindings,
        })
    return records


# --------------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iam-dataset", required=True, help="git checkout or bare mirror of iann0036/iam-dataset")
    args = parser.parse_args()

    # Import the google.api extensions before parsing, so the options parse them.
    from google.api import annotations_pb2, client_pb2  # noqa: F401
    from google.protobuf import descriptor_pb2

    versions = {}
    tree = IncludeTree()
    add_pypi_protos(tree, versions, PYPI_PROTO_DISTRIBUTIONS)
    with tempfile.TemporaryDirectory(prefix="airlock-grpc-") as tmp:
        tmp = Path(tmp)
        add_npm_protos(tree, tmp, versions)
        add_pypi_protos(tree, versions, PYPI_FALLBACK_DISTRIBUTIONS)
        include_root = tmp / "include"
        tree.write(include_root)
        raw_set = tmp / "descriptors.binpb"
        compile_descriptor_set(include_root, raw_set)
        data = raw_set.read_bytes()

    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(data)
    for file in descriptor_set.file:
        if file.HasField("source_code_info"):
            raise GenerationError(f"{file.name} carries source info")
    discovery_version, documents = load_discovery_documents()
    iam_source, iam_map = load_iam_dataset(args.iam_dataset)
    overrides = json.loads(OVERRIDES_PATH.read_text()) if OVERRIDES_PATH.exists() else {}
    overrides.pop("_comment", None)
    records, unmatched = build_methods(descriptor_set, documents, iam_map, overrides)
    records = sorted(records + iam_mixin_records(descriptor_set, documents, iam_map), key=lambda r: r["path"])
    if len({r["path"] for r in records}) != len(records):
        raise GenerationError("two lines for one gRPC path")

    (OUTPUT_DIR / "descriptors.binpb").write_bytes(data)
    with open(OUTPUT_DIR / "methods.jsonl", "w") as out:
        for record in records:
            out.write(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")

    used_files = sorted(file.name for file in descriptor_set.file)
    sources = {
        "generated_by": "data/gcp/grpc/generate.py",
        "compiler": f"grpcio-tools {importlib.metadata.version('grpcio-tools')} bundled protoc (grpc_tools.protoc), --include_imports, no source info",
        "packages": versions,
        "google-api-python-client": discovery_version,
        "protobuf": importlib.metadata.version("protobuf"),
        "iam-dataset": {"repository": "iann0036/iam-dataset", "path": "gcp/map.json", "licence": "MIT", **iam_source},
        "licences": {"npm packages": "Apache-2.0", "googleapis-common-protos": "Apache-2.0",
                     "google-cloud-pubsub": "Apache-2.0", "grpc-google-iam-v1": "Apache-2.0",
                     "grpcio-tools (protobuf well-known types)": "BSD-3-Clause"},
        "top_level_files": TOP_LEVEL_FILES,
        "descriptor_files": {name: tree.files[name][1] for name in used_files},
        "shadowed_files": sorted((s for s in tree.shadowed if s["path"] in used_files), key=lambda s: (s["path"], s["ignored"])),
        "descriptors_sha256": sha256(data),
        "descriptors_bytes": len(data),
        "methods": len(records),
        "methods_with_rest_twin": sum(1 for r in records if r["rest_twin"]),
        "methods_with_permissions": sum(1 for r in records if r["permissions"]),
        "unmatched_bindings": unmatched,
    }
    (OUTPUT_DIR / "SOURCES.json").write_text(json.dumps(sources, indent=2, sort_keys=True) + "\n")

    log(f"descriptors.binpb: {len(data)} bytes, {len(descriptor_set.file)} files")
    log(f"methods.jsonl: {len(records)} methods, {sources['methods_with_rest_twin']} with a REST twin, "
        f"{sources['methods_with_permissions']} with permissions")
    for line in unmatched:
        log(f"  no REST twin for binding: {line}")


if __name__ == "__main__":
    try:
        main()
    except GenerationError as error:
        log(f"generate.py: {error}")
        sys.exit(1)
