#!/usr/bin/env bash
# Builds the project's images without pulling anything: each is FROM scratch
# with a root filesystem assembled here from the build machine.
#
#   deploy/docker/build-images.sh            sparkify-lake:latest (release binaries)
#   PROFILE=debug deploy/docker/build-images.sh
#   WITH_S3=1 deploy/docker/build-images.sh  also sparkify-s3:latest (moto, for tests)
set -euo pipefail
cd "$(dirname "$0")/../.."
profile="${PROFILE:-release}"
target_dir="${CARGO_TARGET_DIR:-target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Copies files and every shared library they load into a rootfs, keeping paths.
copy_with_libraries() {
  local rootfs="$1"; shift
  for file in "$@"; do
    install -D "$file" "$rootfs$file"
    ldd "$file" | grep -o '/[^ ]*' | while read -r lib; do
      install -D "$(readlink -f "$lib")" "$rootfs$lib"
    done
  done
}

# The base every image shares: a user, CA certificates, name resolution, /tmp.
base_rootfs() {
  local rootfs="$1"
  install -d -m 1777 "$rootfs/tmp"
  install -d -o 10001 -g 10001 "$rootfs/var/lib/sparkify"
  install -D /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0::/:/sbin/nologin\nsparkify:x:10001:10001::/var/lib/sparkify:/sbin/nologin\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nsparkify:x:10001:\n' > "$rootfs/etc/group"
  printf 'hosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
}

echo "building $profile binaries"
if [ "$profile" = release ]; then
  cargo build --release -p submit -p scheduler -p executor
else
  cargo build --workspace --bins
fi

lake="$work/lake"
base_rootfs "$lake/rootfs"
for binary in submit scheduler executor; do
  install -D "$target_dir/$profile/$binary" "$lake/rootfs/usr/local/bin/$binary"
done
copy_with_libraries "$lake/rootfs" "$lake"/rootfs/usr/local/bin/*
# copy_with_libraries copied the binaries to their own absolute path too; drop those.
rm -rf "${lake:?}/rootfs$lake"
cp deploy/docker/Dockerfile "$lake/"
docker build --quiet -t sparkify-lake:latest "$lake"

if [ "${WITH_S3:-0}" = 1 ]; then
  s3="$work/s3"
  python="$(readlink -f "$(command -v python3)")"
  prefix="$(python3 -c 'import sys; print(sys.base_prefix)')"
  version="$(python3 -c 'import sys; print(f"{sys.version_info.major}.{sys.version_info.minor}")')"
  base_rootfs "$s3/rootfs"
  copy_with_libraries "$s3/rootfs" "$python"
  ln -s "$python" "$s3/rootfs/usr/local/bin/python3"
  mkdir -p "$s3/rootfs$prefix/lib"
  tar -C "$prefix/lib" --exclude="python$version/site-packages" --exclude="python$version/test" \
      --exclude='__pycache__' -cf - "python$version" | tar -C "$s3/rootfs$prefix/lib" -xf -
  python3 -m pip install --quiet --no-compile --target "$s3/rootfs/opt/moto" 'moto[s3,server]>=5.2.5'
  cp deploy/docker/Dockerfile.s3 "$s3/Dockerfile"
  docker build --quiet -t sparkify-s3:latest "$s3"
fi
docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^sparkify-'
