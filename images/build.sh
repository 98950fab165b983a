#!/usr/bin/env bash
# Build the three images from the repository root (needs Docker; not run in this repo's CI).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
registry=${REGISTRY:-123456789012.dkr.ecr.us-east-1.amazonaws.com/kumohub}
tag=${TAG:-$(date +%Y.%m)}
cd "$repo"
docker build -f images/hub/Dockerfile -t "$registry/hub:$tag" .
docker build -f images/user/Dockerfile -t "$registry/user-cpu:$tag" .
docker build -f images/user/Dockerfile -t "$registry/user-gpu:$tag" \
  --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
  --build-arg LOCK=user-gpu.txt .
