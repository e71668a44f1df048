#!/usr/bin/env bash
# Installs what building, serving and testing Slipway need on Debian 12, then restores ONNX Runtime
# from NuGet. Idempotent: skips what is already there. Run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config git curl ca-certificates
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev libonnx-dev
  libboost-dev libcpp-httplib-dev libsimdjson-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev zlib1g-dev
  libsqlite3-dev libarchive-dev libhiredis-dev libssl-dev libicu-dev libgtest-dev libgmock-dev libbenchmark-dev clang-14 libclang-rt-14-dev
  python3 python3-torch python3-onnx python3-sklearn python3-numpy python3-grpcio python3-protobuf
  libtorch-dev libxgboost-dev python3-xgboost
  python3-pytest python3-requests python3-scipy prometheus nginx redis-server
)

# `setup.sh --bench` also installs what the benchmarks' baselines need.
if [ "${1:-}" = "--bench" ]; then
  PACKAGES+=(python3-fastapi python3-uvicorn)
fi

# The deployment checks (tests/deploy) render manifests with kubectl and validate them with npm
# packages; any kubectl or Node.js already installed will do.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
command -v kubectl >/dev/null 2>&1 || PACKAGES+=(kubernetes-client)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

ORT_DIR=third_party/onnxruntime/packages/microsoft.ml.onnxruntime/1.31.1
if [ -z "${ONNXRUNTIME_ROOT:-}" ] && [ ! -f "$ORT_DIR/runtimes/linux-x64/native/libonnxruntime.so" ]; then
  if ! command -v dotnet >/dev/null 2>&1; then
    echo "setup: ONNX Runtime is restored with the dotnet client; install the .NET SDK or pass ONNXRUNTIME_ROOT=" >&2
    exit 1
  fi
  echo "setup: restoring Microsoft.ML.OnnxRuntime from NuGet"
  DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 dotnet restore third_party/onnxruntime/onnxruntime.csproj
fi
echo "setup: ok"
