#!/usr/bin/env bash
# Regenerates the seed corpora in corpus/<fuzzer>/ (committed; run this
# after a format or proto change). Valid inputs of each kind plus a few
# edge cases; the fuzzers mutate from there.
set -euo pipefail
cd "$(dirname "$0")"
root=../..
out=corpus
rm -rf "$out" && mkdir -p "$out/record_codec" "$out/replica_codec" "$out/session_service" "$out/resp"

# --- record_codec: sessions, tombstones and index values, by hand ---
# stamp (8 bytes LE) | flags | zigzag varints | len+node | len+principal | data
rc=$out/record_codec
printf '\x00\x10\x5e\x5f\x2a\x0f\x06\x00\x10\x80\x80\x80\x80\x80\x01\x80\x80\x80\x80\x80\x01\x80\xa0\xbe\xef\x01\x80\x80\x80\x04\x01\x04node\x00{"cart":[1,2]}' >"$rc/anonymous"
printf '\x00\x10\x5e\x5f\x2a\x0f\x06\x00\x11\x02\x02\x02\x02\x00\x01n\x05alice\x00' >"$rc/authenticated"
printf '\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00' >"$rc/zeros"
printf '\xff\xff\xff\xff\xff\xff\xff\x7f\x11\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x01\x01\x01\xff\xff\xff\xff\x0f\x00\x01p' >"$rc/extremes"
printf '\x00\x10\x5e\x5f\x2a\x0f\x06\x00\x80\x80\x80\x04\x07\x05node-7' >"$rc/tombstone"
printf 'alice\x00aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' >"$rc/principal_key"
printf 'a\x00b\x00cccccccccccccccccccccc' >"$rc/principal_key_nul"

# --- protobuf seeds, from text format ---
encode() {  # encode PROTO MESSAGE FILE TEXT
  printf '%s' "$4" | protoc -I"$root/proto" --encode="$2" "$root/proto/$1" >"$3"
}
id=Cq7rBv0KbB4t9xvGJ6yDzBqkNRcHXr8xH1T0uGq3wQk

rp=$out/replica_codec
R=sessiongrid/replica/v1/replica.proto
encode $R sessiongrid.replica.v1.ApplyRequest "$rp/record" "from_node: 'n1' mutations { record { id: '$id' data: 'x' principal: 'alice' create_micros: 1700000000000000 last_access_micros: 1700000000000000 expire_micros: 1800000000000000 ttl_micros: 3600000000 version { wall_millis: 1700000000000 logical: 1 node_id: 'n1' } } }"
encode $R sessiongrid.replica.v1.ApplyRequest "$rp/tombstone" "from_node: 'n2' mutations { tombstone { id: '$id' version { wall_millis: 1700000000001 node_id: 'n2' } deleted_expire_micros: 1800000000000000 } }"
encode $R sessiongrid.replica.v1.ApplyRequest "$rp/record_then_delete" "mutations { record { id: '$id' expire_micros: 1800000000000000 ttl_micros: -1 version { wall_millis: 5 } } } mutations { tombstone { id: '$id' version { wall_millis: 6 } } } mutations { }"
encode $R sessiongrid.replica.v1.ApplyRequest "$rp/expired_huge" "mutations { record { id: 'short' create_micros: -9223372036854775808 expire_micros: 9223372036854775807 ttl_micros: 9223372036854775807 version { wall_millis: -1 logical: 4294967295 } } }"
encode $R sessiongrid.replica.v1.CoordinateRequest "$rp/coordinate_update" "update { id: '$id' data: 'y' principal: '' expected_version { wall_millis: 1 logical: 2 node_id: 'n' } ttl { seconds: 60 nanos: 5 } }"

ss=$out/session_service
S=sessiongrid/v1/session.proto
seed() {  # seed NAME METHOD_BYTE MESSAGE TEXT
  local tmp
  tmp=$(mktemp)
  encode $S "sessiongrid.v1.$3" "$tmp" "$4"
  { printf "\\x$2"; cat "$tmp"; } >"$ss/$1"
  rm -f "$tmp"
}
seed create 00 CreateRequest "data: 'hello' principal: 'bob' ttl { seconds: 3600 }"
seed create_client_id 00 CreateRequest "data: 'x' id: '$id'"
seed create_bad_ttl 00 CreateRequest "ttl { seconds: -5 nanos: -1 }"
seed get 01 GetRequest "id: '$id' touch: true"
seed touch 02 TouchRequest "id: '$id' ttl { seconds: 315360000000 }"
seed update 03 UpdateRequest "id: '$id' data: 'z' principal: 'carol' expected_version { wall_millis: 1 } ttl { seconds: 1 nanos: 999999999 }"
seed delete 04 DeleteRequest "id: '$id' expected_version { wall_millis: 1 logical: 1 node_id: 'fuzz' }"
seed regenerate 05 RegenerateRequest "id: '$id' principal: 'dave'"
seed list 06 ListByPrincipalRequest "principal: 'bob' limit: 2147483647"
seed delete_principal 07 DeleteByPrincipalRequest "principal: 'bob'"
seed batch_get 08 BatchGetRequest "requests { id: '$id' } requests { id: 'bad id!' touch: true }"
seed batch_create 09 BatchCreateRequest "requests { data: 'a' } requests { principal: 'e' ttl { seconds: 1 } }"
seed list_sessions 0a ListSessionsRequest "page_size: 1000 page_token: '$id' include_data: true"
# --- resp: Redis replies as import-redis reads them; the first byte picks
# the size of the pieces the bytes are fed in ---
printf '\x05*2\r\n$4\r\n1792\r\n*2\r\n$5\r\nsess:\r\n$-1\r\n' >"$out/resp/scan"
printf '\x01+OK\r\n-ERR x\r\n:42\r\n$3\r\nabc\r\n*-1\r\n*0\r\n' >"$out/resp/scalars"
printf '\x03*4\r\n$2\r\n{}\r\n:-2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n$-1\r\n' >"$out/resp/get_pttl"

echo "seeds: $(find "$out" -type f | wc -l) files in $out" >&2
