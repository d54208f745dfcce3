# Shared by tests/demo.sh and tests/test.sh (sourced).
# Builds the release library and exposes it as libmemkind.so.0 in $MEMKIND_RS_LIBDIR.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
export MEMKIND_RS_LIBDIR="$CARGO_TARGET_DIR/memkind-lib"

build_library() {
  (cd "$repo" && cargo build --release -p memkind)
  mkdir -p "$MEMKIND_RS_LIBDIR"
  ln -sf "$CARGO_TARGET_DIR/release/libmemkind.so" "$MEMKIND_RS_LIBDIR/libmemkind.so.0"
  ln -sf "$CARGO_TARGET_DIR/release/libmemkind.so" "$MEMKIND_RS_LIBDIR/libmemkind.so"
  # memkind.pc for `pkg-config --cflags --libs memkind` (PKG_CONFIG_PATH=$MEMKIND_RS_LIBDIR/pkgconfig)
  mkdir -p "$MEMKIND_RS_LIBDIR/pkgconfig"
  sed -e "s|@PREFIX@|$MEMKIND_RS_LIBDIR|" -e "s|@LIBDIR@|$MEMKIND_RS_LIBDIR|" \
      -e "s|@INCLUDEDIR@|$repo/alloc/include|" "$repo/alloc/include/memkind.pc.in" \
      >"$MEMKIND_RS_LIBDIR/pkgconfig/memkind.pc"
}

# Reserve at least $1 2 MiB hugepages until the calling script exits (restores the old count).
reserve_hugepages() {
  local want=$1 f=/proc/sys/vm/nr_hugepages
  [[ -w $f ]] || { echo "note: not root, no hugepages reserved (HUGETLB kinds show as unavailable)"; return 0; }
  local old; old=$(cat "$f")
  if ((old < want)); then
    echo "$want" >"$f"
    trap "echo $old > $f" EXIT
  fi
}
