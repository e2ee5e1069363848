#!/usr/bin/env bash
# build_llama_cpp.sh: llama.cpp built from the sources vendored in PyPI's llama-cpp-python sdist,
# under build/llama-cpp/ (git-ignored), for benchmarks and test-data generation. Idempotent: each
# step (download, unpack, configure, build, pure-Python deps) is skipped when its output exists.
#
#   scripts/build_llama_cpp.sh             build what is missing, print where everything is
#   scripts/build_llama_cpp.sh --env       print only `export ...` lines, for: eval "$(scripts/build_llama_cpp.sh --env)"
#   LLAMA_CPP_PYTHON_VERSION=0.3.36 ...    pin the sdist (default: the latest on PyPI, at first download)
#   JOBS=2 ...                             build parallelism (default 2)
#
# What it makes:
#   build/llama-cpp/llama_cpp_python-VER/        the unpacked sdist (its vendor/llama.cpp is what is built)
#   build/llama-cpp/build/bin/                   llama-quantize llama-bench llama-batched-bench llama-server
#                                                llama-cli llama-simple, and libllama.so libggml*.so
#   build/llama-cpp/pydeps/                      pure-Python deps of the llama_cpp package missing from .venv
# The llama_cpp Python package is the sdist's llama_cpp/ folder (pure Python over ctypes), used in place:
#   PYTHONPATH=<sdist>:build/llama-cpp/pydeps  LLAMA_CPP_LIB_PATH=build/llama-cpp/build/bin
# (llama_cpp/llama_cpp.py reads LLAMA_CPP_LIB_PATH for the directory of libllama.so; libllama finds
# its libggml*.so through its RPATH.)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOP="$ROOT/build/llama-cpp"
BLD="$TOP/build"
BIN="$BLD/bin"
JOBS="${JOBS:-2}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
TARGETS=(llama-quantize llama-bench llama-batched-bench llama-server llama-cli llama-simple llama)
ENV_ONLY=0
[ "${1:-}" = --env ] && ENV_ONLY=1

say() { [ $ENV_ONLY = 1 ] && echo "build_llama_cpp: $*" >&2 || echo "build_llama_cpp: $*"; }

mkdir -p "$TOP"
exec 9>"$TOP/.lock"
flock 9   # one build at a time (benchmarks and test-data scripts may call this concurrently)

# 1. the sdist
tarball=""
if [ -n "${LLAMA_CPP_PYTHON_VERSION:-}" ]; then
    tarball="$TOP/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
else
    tarball="$(ls -1 "$TOP"/llama_cpp_python-*.tar.gz 2>/dev/null | sort -V | tail -1 || true)"
fi
if [ -z "$tarball" ] || [ ! -f "$tarball" ]; then
    spec="llama-cpp-python${LLAMA_CPP_PYTHON_VERSION:+==$LLAMA_CPP_PYTHON_VERSION}"
    say "downloading the $spec sdist"
    (cd "$TOP" && "$PY" -m pip download -q --no-binary :all: --no-deps "$spec" -d "$TOP" >&2)
    tarball="$(ls -1 "$TOP"/llama_cpp_python-*.tar.gz | sort -V | tail -1)"
fi
SDIST="${tarball%.tar.gz}"
if [ ! -f "$SDIST/vendor/llama.cpp/CMakeLists.txt" ]; then
    say "unpacking $(basename "$tarball")"
    tar -xzf "$tarball" -C "$TOP"
fi
SRC="$SDIST/vendor/llama.cpp"

# 2. configure + build
# AMX: GGML_NATIVE compiles ggml's AMX kernels when the CPU lists amx_tile/amx_int8, and uses them when
# the kernel grants the tile state. On some VMs (this project's: Sapphire Rapids under a hypervisor) both
# hold and the first tile instruction still raises SIGILL (llama.cpp dies in tinygemm_kernel_amx on any
# Q8_0/Q4_0 matmul). A probe runs one tile instruction; if it fails, AMX is compiled out with -mno-amx-*
# (GCC: explicit -mno-* flags win over -march=native's, whatever their order).
EXTRA_FLAGS=""
if [ -f "$TOP/amx-probe.flags" ]; then
    EXTRA_FLAGS="$(cat "$TOP/amx-probe.flags")"   # probed once
elif grep -qw amx_tile /proc/cpuinfo 2>/dev/null; then
    probe="$TOP/amx-probe"
    cat >"$probe.c" <<'CEOF'
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void)
{
    struct { uint8_t palette, start, r[14]; uint16_t colsb[16]; uint8_t rows[16]; } __attribute__((aligned(64))) c;
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */)) return 2;
    memset(&c, 0, sizeof c);
    c.palette = 1, c.colsb[0] = 64, c.rows[0] = 16;
    _tile_loadconfig(&c);
    _tile_zero(0);
    _tile_release();
    return 0;
}
CEOF
    if ! { gcc -O2 -mamx-tile "$probe.c" -o "$probe" 2>/dev/null && ( "$probe"; exit $? ) >/dev/null 2>&1; }; then
        EXTRA_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
        say "the CPU lists AMX but a tile instruction faults here: building without AMX ($EXTRA_FLAGS)"
    fi
    echo "$EXTRA_FLAGS" >"$TOP/amx-probe.flags"
fi
CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=ON
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DGGML_CCACHE=OFF
    "-DCMAKE_C_FLAGS=$EXTRA_FLAGS" "-DCMAKE_CXX_FLAGS=$EXTRA_FLAGS")
stamp="$SRC ${CMAKE_ARGS[*]}"
if [ ! -f "$BLD/CMakeCache.txt" ] || [ "$(cat "$TOP/configure.stamp" 2>/dev/null)" != "$stamp" ]; then
    say "configuring $SRC -> $BLD"
    cmake -S "$SRC" -B "$BLD" "${CMAKE_ARGS[@]}" >"$TOP/cmake.log" 2>&1 \
        || { echo "build_llama_cpp: cmake failed; see $TOP/cmake.log" >&2; exit 1; }
    echo "$stamp" >"$TOP/configure.stamp"
    rm -f "$TOP/build.stamp"
fi
# (cmake's dependency tracking would make a rebuild a no-op, but even that takes a while): build only
# when the last build with this configuration did not complete or an output is missing
missing=0
[ -f "$TOP/build.stamp" ] || missing=1
for t in "${TARGETS[@]}"; do
    case $t in llama) f="$BIN/libllama.so" ;; *) f="$BIN/$t" ;; esac
    [ -e "$f" ] || missing=1
done
if [ $missing = 1 ]; then
    say "building ${TARGETS[*]} with $JOBS jobs (log: $TOP/build.log; about 8 min on 2 cores)"
    start=$(date +%s)
    nice -n 10 cmake --build "$BLD" -j "$JOBS" --target "${TARGETS[@]}" >"$TOP/build.log" 2>&1 \
        || { tail -30 "$TOP/build.log" >&2; echo "build_llama_cpp: build failed; see $TOP/build.log" >&2; exit 1; }
    say "built in $(( $(date +%s) - start )) s"
    touch "$TOP/build.stamp"
fi

# 3. the llama_cpp package's pure-Python dependencies that the project venv lacks
need=()
for m in numpy typing_extensions diskcache jinja2; do
    PYTHONPATH="$TOP/pydeps" "$PY" -c "import $m" 2>/dev/null || need+=("$m")
done
if [ ${#need[@]} -gt 0 ]; then
    say "pip install --target $TOP/pydeps ${need[*]}"
    "$PY" -m pip install -q --target "$TOP/pydeps" "${need[@]/typing_extensions/typing-extensions}" >&2
fi

# 4. check that the package loads the library
PYTHONPATH="$SDIST:$TOP/pydeps" LLAMA_CPP_LIB_PATH="$BIN" "$PY" -c \
    "import llama_cpp; llama_cpp.llama_backend_init()" \
    || { echo "build_llama_cpp: import llama_cpp failed" >&2; exit 1; }

if [ $ENV_ONLY = 1 ]; then
    echo "export LLAMA_CPP_BIN='$BIN'"
    echo "export LLAMA_CPP_LIB_PATH='$BIN'"
    echo "export LLAMA_CPP_PYTHONPATH='$SDIST:$TOP/pydeps'"
    exit 0
fi
cat <<EOF
build_llama_cpp: llama.cpp vendored in $(basename "$SDIST") (built Release, GGML_NATIVE, shared)
  binaries:  $BIN/{$(IFS=,; echo "${TARGETS[*]:0:6}")}
  libraries: $(cd "$BIN" && ls lib*.so | tr '\n' ' ')(in $BIN)
  python:    PYTHONPATH=$SDIST:$TOP/pydeps LLAMA_CPP_LIB_PATH=$BIN $PY -c 'import llama_cpp'
EOF
