#!/usr/bin/env bash
# Test media the repository does not carry, fetched once into test-media/ (git-ignored): the street
# photo without people that the false-positive and busy-background tests use is OpenCV's
# examples/data/leuvenA.jpg, shipped in Debian's opencv-doc. Only that file is taken from the
# package (downloaded, not installed: 96 MB, ~3 s here) and its sha256 is checked. `npm test` runs
# this after scripts/setup.sh; a checkout that has the file costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

file=test-media/street.jpg
sha=b2977cdbd9fb3f94dadd6f76cf586d145676deb8a22b5f0f42149d21c058c09f
member=usr/share/doc/opencv-doc/examples/data/leuvenA.jpg
ok() { [ -f "$file" ] && echo "$sha  $file" | sha256sum --check --status; }
ok && exit 0

mkdir -p test-media
if [ -f "/$member" ]; then
  cp "/$member" "$file.part"
else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # apt-get download needs the package lists; a fresh machine may have none yet.
  if ! (cd "$tmp" && apt-get download -qq opencv-doc >/dev/null 2>&1); then
    sudo=(); [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    (cd "$tmp" && apt-get download -qq opencv-doc >/dev/null)
  fi
  dpkg-deb --fsys-tarfile "$tmp"/opencv-doc_*.deb | tar -xO "./$member" >"$file.part"
fi
mv "$file.part" "$file"
ok || { echo "test-media: $file does not have the expected sha256" >&2; rm -f "$file"; exit 1; }
echo "test-media: $file from Debian's opencv-doc" >&2
