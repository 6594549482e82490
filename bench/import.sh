#!/bin/sh
# Bulk import benchmark (bench/RESULTS.md, "Bulk import"): `vela import` of the WordNet/MiniLM set
# (100k x 384, cosine) and of 1M x 128 seeded random vectors (L2) into tables with a default HNSW
# index (engine defaults: m 16, ef_construction 64), against the in-memory build of the same vectors
# by bench's `ann` binary with the same m and ef_construction.
# Needs release builds:
#   cargo build --release -p vela --bin vela -p vela-datasets --bin fvecs2parquet
#   cargo build --release -p vela-bench --bin ann
# Usage: bench/import.sh [wordnet|rand1m|fixed|noindex|widths|peaks|all]   (OUT=/tmp/vbench by default)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
OUT=${OUT:-/tmp/vbench}
W=${WORDNET:-$ROOT/../shared/datasets/wordnet-minilm-384-angular}
mkdir -p "$OUT"
what=${1:-all}

timed() { # timed NAME CMD...: wall time, peak RSS (VmHWM) and load average into $OUT/NAME.log
    name=$1; shift
    echo "== $name: $*" >&2
    uptime > "$OUT/$name.log"
    /usr/bin/time -v "$@" >> "$OUT/$name.log" 2>&1
    uptime >> "$OUT/$name.log"
    grep -E "imported|Elapsed|Maximum resident|load average|build" "$OUT/$name.log" >&2 || true
}

wordnet_parquet() {
    [ -f "$OUT/wordnet.parquet" ] || "$BIN/fvecs2parquet" "$W/base.fvecs" "$OUT/wordnet.parquet" \
        --texts "$W/base_texts.txt.gz"
}

rand_files() { # 1M x 128 standard normal float32, seed 42 (numpy), plus 10 queries and a dummy gt
    [ -f "$OUT/rand-1m-128.fvecs" ] || python3 - "$OUT" <<'PY'
import sys, numpy as np
out = sys.argv[1]; rng = np.random.default_rng(42); d = 128
def vecs(path, a, dt):
    o = np.empty((a.shape[0], d + 1), dtype=dt); o[:, 1:] = a; o.view(np.int32)[:, 0] = d; o.tofile(path)
with open(f"{out}/rand-1m-128.fvecs", "wb") as f:
    for _ in range(10):
        vecs(f, rng.standard_normal((100_000, d), dtype=np.float32), np.float32)
vecs(f"{out}/rand-q.fvecs", rng.standard_normal((10, d), dtype=np.float32), np.float32)
vecs(f"{out}/rand-gt.ivecs", np.tile(np.arange(d, dtype=np.int32), (10, 1)), np.int32)
PY
    [ -f "$OUT/rand-1m-128.parquet" ] || "$BIN/fvecs2parquet" "$OUT/rand-1m-128.fvecs" \
        "$OUT/rand-1m-128.parquet" --compression none
}

wordnet() {
    wordnet_parquet
    rm -rf "$OUT/db-wordnet"
    "$BIN/vela" "$OUT/db-wordnet" -c "CREATE TABLE wordnet (id BIGINT PRIMARY KEY, text TEXT, embedding VECTOR(384))" \
        -c "CREATE INDEX wordnet_idx ON wordnet USING hnsw (embedding vector_cosine_ops)"
    timed import-wordnet "$BIN/vela" import "$OUT/db-wordnet" --table wordnet "$OUT/wordnet.parquet"
    timed ann-wordnet "$BIN/ann" --base "$W/base.fvecs" --query "$W/query.fvecs" --gt "$W/groundtruth.ivecs" \
        --metric cosine --ef-construction 64 --ef 64 --repeats 1 --min-time 0 --warmup 0 --max-queries 100
}

rand1m() {
    rand_files
    rm -rf "$OUT/db-rand"
    "$BIN/vela" "$OUT/db-rand" -c "CREATE TABLE r (id BIGINT PRIMARY KEY, embedding VECTOR(128))" \
        -c "CREATE INDEX r_idx ON r USING hnsw (embedding vector_l2_ops)"
    timed import-rand1m "$BIN/vela" import "$OUT/db-rand" --table r "$OUT/rand-1m-128.parquet"
    timed ann-rand1m "$BIN/ann" --base "$OUT/rand-1m-128.fvecs" --query "$OUT/rand-q.fvecs" \
        --gt "$OUT/rand-gt.ivecs" --metric l2 --ef-construction 64 --ef 16 --repeats 1 --min-time 0 --warmup 0
}

fixed() { # adaptive vs fixed batch sizes, WordNet (same table, index)
    wordnet_parquet
    for rows in adaptive 1024 65536; do
        rm -rf "$OUT/db-fixed"
        "$BIN/vela" "$OUT/db-fixed" -c "CREATE TABLE wordnet (id BIGINT PRIMARY KEY, text TEXT, embedding VECTOR(384))" \
            -c "CREATE INDEX wordnet_idx ON wordnet USING hnsw (embedding vector_cosine_ops)"
        if [ "$rows" = adaptive ]; then set --; else set -- --batch-rows "$rows"; fi
        timed "batch-$rows" "$BIN/vela" import "$OUT/db-fixed" --table wordnet "$OUT/wordnet.parquet" "$@"
    done
}

noindex() { # adaptive vs fixed batch sizes where per-batch cost matters: 1M x 128 into a table
    # WITHOUT a vector index (the WAL fsync and store write per batch are the cost), ROUNDS
    # interleaved rounds (default 3); one line per run in $OUT/noindex.txt
    rand_files
    : > "$OUT/noindex.txt"
    for round in $(seq 1 "${ROUNDS:-3}"); do
        for rows in adaptive 1024 8192 65536; do
            rm -rf "$OUT/db-noindex"
            "$BIN/vela" "$OUT/db-noindex" -c "CREATE TABLE r (id BIGINT PRIMARY KEY, embedding VECTOR(128))" >/dev/null
            if [ "$rows" = adaptive ]; then set --; else set -- --batch-rows "$rows"; fi
            load=$(cut -d' ' -f1 /proc/loadavg)
            /usr/bin/time -f "%e %U %S %M" -o "$OUT/noindex.time" \
                "$BIN/vela" import "$OUT/db-noindex" --table r "$OUT/rand-1m-128.parquet" "$@" 2> "$OUT/noindex.err"
            echo "round=$round batches=$rows load=$load wall,user,sys,maxrss_kb=$(tr ' ' , < "$OUT/noindex.time") $(tail -1 "$OUT/noindex.err")" \
                | tee -a "$OUT/noindex.txt" >&2
        done
    done
    rm -rf "$OUT/db-noindex"
}

width_files() { # tiny rows (4M x id + double) and wide rows (60k x id + ~4 KiB of text), seeded
    [ -f "$OUT/tiny-4m.parquet" ] && [ -f "$OUT/wide-60k.parquet" ] || python3 - "$OUT" <<'PY'
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
out = sys.argv[1]; rng = np.random.default_rng(7); n = 4_000_000
pq.write_table(pa.table({"id": np.arange(n, dtype=np.int64), "x": rng.standard_normal(n)}),
               f"{out}/tiny-4m.parquet", row_group_size=65536, compression="none")
words = ["".join(chr(97 + c) for c in rng.integers(0, 26, rng.integers(2, 10))) for _ in range(5000)]
bodies = [" ".join(words[j] for j in rng.integers(0, 5000, 700))[:4096] for _ in range(60_000)]
pq.write_table(pa.table({"id": np.arange(60_000, dtype=np.int64), "body": bodies}),
               f"{out}/wide-60k.parquet", row_group_size=8192, compression="zstd")
PY
}

timed_import() { # timed_import NAME LABEL VELA FILE [ARGS...]: `VELA import` of $OUT/FILE into
    # table t of $OUT/db-NAME (made beforehand) under /usr/bin/time; one line into $OUT/NAME.txt:
    # LABEL, load, wall, user, sys, max RSS (KiB), the import's summary (or error)
    name=$1; label=$2; vela=$3; file=$4; shift 4
    load=$(cut -d' ' -f1 /proc/loadavg)
    /usr/bin/time -f "%e %U %S %M" -o "$OUT/$name.time" \
        "$vela" import "$OUT/db-$name" --table t "$OUT/$file" "$@" 2> "$OUT/$name.err" || true
    echo "$label load=$load wall,user,sys,maxrss_kb=$(tail -1 "$OUT/$name.time" | tr ' ' ,) $(tail -1 "$OUT/$name.err")" \
        | tee -a "$OUT/$name.txt" >&2
}

widths() { # adaptive vs fixed batch sizes across row widths: tiny rows, 128-d vectors (no index),
    # wide text rows, 384-d vectors with an HNSW index (WordNet). ROUNDS interleaved rounds
    # (default 3) of every SIZES entry (default "adaptive 1024 8192 65536") on every set; one line
    # per run in $OUT/widths.txt: set, batches, load, wall, user, sys, max RSS (KiB), summary.
    rand_files; width_files; wordnet_parquet
    : > "$OUT/widths.txt"
    for round in $(seq 1 "${ROUNDS:-3}"); do
        for data in ${SETS:-tiny vec128 wide wordnet}; do
            case $data in
                tiny) file=tiny-4m.parquet; ddl="CREATE TABLE t (id BIGINT PRIMARY KEY, x DOUBLE PRECISION)" ;;
                vec128) file=rand-1m-128.parquet; ddl="CREATE TABLE t (id BIGINT PRIMARY KEY, embedding VECTOR(128))" ;;
                wide) file=wide-60k.parquet; ddl="CREATE TABLE t (id BIGINT PRIMARY KEY, body TEXT)" ;;
                wordnet) file=wordnet.parquet; ddl="CREATE TABLE t (id BIGINT PRIMARY KEY, text TEXT, embedding VECTOR(384))" ;;
            esac
            for rows in ${SIZES:-adaptive 1024 8192 65536}; do
                rm -rf "$OUT/db-widths"
                "$BIN/vela" "$OUT/db-widths" -c "$ddl" >/dev/null
                if [ "$data" = wordnet ]; then
                    "$BIN/vela" "$OUT/db-widths" -c "CREATE INDEX t_idx ON t USING hnsw (embedding vector_cosine_ops)" >/dev/null
                fi
                if [ "$rows" = adaptive ]; then set --; else set -- --batch-rows "$rows"; fi
                timed_import widths "round=$round set=$data batches=$rows" "$BIN/vela" "$file" "$@"
            done
        done
    done
    rm -rf "$OUT/db-widths"
}

peaks() { # peak RSS and CPU of the import step by several builds of `vela` (e.g. before/after an
    # allocator change: BINS="/tmp/vela-before target/release/vela", default the release build),
    # interleaved, ROUNDS rounds (default 3) over SETS (default "wordnet rand1m"), same tables and
    # index as above; one line per run in $OUT/peaks.txt: set, build, load, wall, user, sys, max
    # RSS (KiB), summary. MALLOC_CONF passes through to a jemalloc build.
    wordnet_parquet; rand_files
    : > "$OUT/peaks.txt"
    for round in $(seq 1 "${ROUNDS:-3}"); do
        for data in ${SETS:-wordnet rand1m}; do
            for bin in ${BINS:-$BIN/vela}; do
                rm -rf "$OUT/db-peaks"
                if [ "$data" = wordnet ]; then
                    "$bin" "$OUT/db-peaks" -c "CREATE TABLE t (id BIGINT PRIMARY KEY, text TEXT, embedding VECTOR(384))" \
                        -c "CREATE INDEX t_idx ON t USING hnsw (embedding vector_cosine_ops)" >/dev/null
                    file=wordnet.parquet
                else
                    "$bin" "$OUT/db-peaks" -c "CREATE TABLE t (id BIGINT PRIMARY KEY, embedding VECTOR(128))" \
                        -c "CREATE INDEX t_idx ON t USING hnsw (embedding vector_l2_ops)" >/dev/null
                    file=rand-1m-128.parquet
                fi
                timed_import peaks "round=$round set=$data build=$bin" "$bin" "$file"
            done
        done
    done
    rm -rf "$OUT/db-peaks"
}

case $what in
    wordnet) wordnet ;;
    rand1m) rand1m ;;
    fixed) fixed ;;
    noindex) noindex ;;
    widths) widths ;;
    peaks) peaks ;;
    all) wordnet; rand1m; fixed ;;
    *) echo "usage: $0 [wordnet|rand1m|fixed|noindex|widths|peaks|all]" >&2; exit 2 ;;
esac
