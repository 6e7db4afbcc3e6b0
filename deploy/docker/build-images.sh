#!/usr/bin/env bash
# Builds the images docker-compose.yml runs, without pulling anything: each is
# FROM scratch with a root filesystem assembled here from the build machine.
#
#   sparkify-lake  submit, scheduler and executor (stripped), curl for health checks
#   sparkify-s3    Python with moto (an S3 API server) and boto3 (the input loader)
#
# both tagged $SPARKIFY_IMAGE_TAG (default latest), the tag docker-compose.yml runs.
#
#   deploy/docker/build-images.sh                  release binaries (cargo build --release)
#   PROFILE=debug deploy/docker/build-images.sh    debug binaries (cargo build)
#   BIN_DIR=dir deploy/docker/build-images.sh      binaries already built in dir: no cargo
#
# An image is rebuilt only when its root filesystem or Dockerfile changed: the
# label sparkify.inputs holds their hash. moto is installed from PyPI once and
# kept in $SPARKIFY_IMAGE_CACHE (default ~/.cache/sparkify-images).
set -euo pipefail
cd "$(dirname "$0")/../.."
profile="${PROFILE:-release}"
tag="${SPARKIFY_IMAGE_TAG:-latest}"
cache="${SPARKIFY_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sparkify-images}"
moto_requirements=('moto[s3]>=5.2.5' 'flask' 'flask-cors')
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The base every image shares: users, name resolution, CA certificates, /tmp,
# and /var/lib/sparkify (the Dockerfiles give it to the sparkify user).
base_rootfs() {
  local rootfs="$1"
  install -d -m 1777 "$rootfs/tmp"
  install -d "$rootfs/var/lib/sparkify/work" "$rootfs/var/lib/sparkify/events"
  install -D -m 644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0::/:/sbin/nologin\nsparkify:x:10001:10001::/var/lib/sparkify:/sbin/nologin\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nsparkify:x:10001:\n' > "$rootfs/etc/group"
  printf 'hosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
}

# Copies every shared library the programs and libraries in a rootfs load
# into it, at the path the dynamic loader looks for it.
copy_libraries() {
  local rootfs="$1"
  find "$rootfs" -type f \( -name '*.so' -o -name '*.so.*' -o -perm -u+x \) -print0 |
    { xargs -0 -r ldd 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } /^[ \t]+\// { print $1 }' |
    sort -u | while read -r lib; do
      [ -e "$rootfs$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$rootfs$lib"
    done
}

# Builds image $1 from folder $2 (rootfs/ and Dockerfile) unless an image of
# that name already holds the same inputs; the image it replaces is removed.
build_image() {
  local image="$1" dir="$2" inputs current previous
  inputs="$( (tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir" -cf - . | sha256sum) | cut -c1-64)"
  current="$(docker image inspect -f '{{index .Config.Labels "sparkify.inputs"}}' "$image" 2>/dev/null || true)"
  if [ "$current" = "$inputs" ]; then
    echo "$image is up to date"
    return
  fi
  echo "building $image"
  previous="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
  docker build --quiet --label "sparkify.inputs=$inputs" -t "$image" "$dir" 2> >(grep -v -i 'deprecated\|buildx\|^\s*$' >&2) >/dev/null
  if [ -n "$previous" ]; then
    docker image rm "$previous" >/dev/null 2>&1 || true
  fi
}

if [ -n "${BIN_DIR:-}" ]; then
  bin_dir="$BIN_DIR"
elif [ "$profile" = release ]; then
  cargo build --release --workspace --bins
  bin_dir="${CARGO_TARGET_DIR:-target}/release"
else
  cargo build --workspace --bins
  bin_dir="${CARGO_TARGET_DIR:-target}/$profile"
fi

lake="$work/lake"
base_rootfs "$lake/rootfs"
install -d "$lake/rootfs/usr/local/bin"
for binary in submit scheduler executor; do
  # Symbols stay (panics still name functions); debug information goes.
  strip --strip-debug -o "$lake/rootfs/usr/local/bin/$binary" "$bin_dir/$binary"
done
install -D "$(command -v curl)" "$lake/rootfs/usr/bin/curl"
copy_libraries "$lake/rootfs"
cp deploy/docker/Dockerfile "$lake/Dockerfile"
build_image "sparkify-lake:$tag" "$lake"

s3="$work/s3"
python="$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')"
prefix="$(python3 -c 'import sys; print(sys.base_prefix)')"
version="$(python3 -c 'import sys; print(f"{sys.version_info.major}.{sys.version_info.minor}")')"
moto="$cache/moto-py$version"
if [ "$(cat "$moto.installed" 2>/dev/null)" != "${moto_requirements[*]}" ]; then
  echo "installing ${moto_requirements[*]} into $moto"
  rm -rf "$moto" "$moto.installed"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts \
    --target "$moto" "${moto_requirements[@]}"
  echo "${moto_requirements[*]}" > "$moto.installed"
fi
base_rootfs "$s3/rootfs"
install -D "$python" "$s3/rootfs$python"
install -d "$s3/rootfs/usr/local/bin" "$s3/rootfs$prefix/lib" "$s3/rootfs/opt"
ln -s "$python" "$s3/rootfs/usr/local/bin/python3"
# The standard library, without its tests, IDE, Tk, static library and pip's wheels.
tar -C "$prefix/lib" --exclude="python$version/site-packages" --exclude="python$version/test" \
  --exclude="python$version/config-*" --exclude="python$version/idlelib" \
  --exclude="python$version/tkinter" --exclude="python$version/turtledemo" \
  --exclude="python$version/ensurepip" --exclude="python$version/lib2to3" \
  -cf - "python$version" | tar -C "$s3/rootfs$prefix/lib" -xf -
cp -a "$moto" "$s3/rootfs/opt/moto"
rm -rf "$s3/rootfs/opt/moto/bin"
copy_libraries "$s3/rootfs"
cp deploy/docker/Dockerfile.s3 "$s3/Dockerfile"
build_image "sparkify-s3:$tag" "$s3"

docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^sparkify-(lake|s3):$tag "
