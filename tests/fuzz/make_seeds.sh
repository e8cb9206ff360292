#!/usr/bin/env bash
# Regenerates the seed corpora in corpus/<fuzzer>/ (committed; run this
# after a format or proto change). Valid inputs of each kind plus a few
# edge cases; the fuzzers mutate from there.
set -euo pipefail
cd "$(dirname "$0")"
root=../..
out=corpus
rm -rf "$out" && mkdir -p "$out/record_codec" "$out/replica_codec" "$out/session_service" "$out/resp" \
  "$out/http_request" "$out/cookie" "$out/classifier" "$out/rules"

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

# --- http_request: request heads; the first byte picks the size of the
# pieces they arrive in (0: whole) ---
hr=$out/http_request
printf '\x00GET /index.html?q=1 HTTP/1.1\r\nHost: app.test\r\nUser-Agent: Mozilla/5.0\r\nCookie: connect.sid=s%%3Aabc.def\r\n\r\n' >"$hr/get"
printf '\x03\r\n\r\nPOST /api/user/cart HTTP/1.1\r\nHost: app.test:8080\r\nContent-Length: 5\r\n\r\nhello' >"$hr/post_body"
printf '\x01POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' >"$hr/chunked"
printf '\x00POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n' >"$hr/smuggle_cl_te"
printf '\x02GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nX-A: a\r\n b\r\n\r\n' >"$hr/two_hosts_obs_fold"
printf '\x00GET http://app.test/x HTTP/1.0\r\n\r\n' >"$hr/absolute_http10"
printf '\x05OPTIONS * HTTP/1.1\r\nHost: [::1]:80\r\nTransfer-Encoding: gzip, chunked\r\n\r\n' >"$hr/options_gzip"
printf '\x00GET / HTTP/2.0\nHost: a\n\n' >"$hr/bare_lf_http2"
# --- cookie: "<name>\n<Cookie header>"; signed with a key the fuzzer's
# signer does not hold (a valid one would be a forged cookie that
# verifies, which the fuzzer treats as a failure) ---
ck=$out/cookie
printf 'connect.sid\ntheme=dark; connect.sid=s%%3AQ2LQ9v7q3Xj5.vS%%2Bq0X3cWl2ZyQ0sJ0d2xrQ%%2FbPp4b2mB0yQ7kqk3Ww2Q; a=1' >"$ck/signed_other_key"
printf 'connect.sid\nconnect.sid="s:abc.def"; connect.sid=second' >"$ck/quoted_duplicate"
printf '__Host-sid\n__Host-sid=s%%3A%%ZZ%%4.%%' >"$ck/bad_escapes"
printf 'connect.sid\n ; ;=; connect.sid = s%%3A%%E2%%82%%AC.x ;' >"$ck/spaces_utf8"
# --- classifier: method, target, Upgrade, User-Agent, Accept, Cookie,
# X-Forwarded-For, peer, separated by NUL ---
cl=$out/classifier
printf 'GET\0/assets/app.js\0\0Mozilla/5.0\0*/*\0\0\0203.0.113.7' >"$cl/asset"
printf 'GET\0/%%61ssets/../api/auth/me?x=1\0\0Mozilla/5.0 Firefox\0text/html\0connect.sid=s%%3Aa.b; auth_token=1\0198.51.100.1, 10.0.0.1\0127.0.0.1' >"$cl/auth_through_proxy"
printf 'GET\0/ws\0websocket\0Googlebot/2.1\0application/json\0\0\0::ffff:192.0.2.9' >"$cl/bot_upgrade"
printf 'OPTIONS\0/dashboard\0\0\0\0connect.sid=x\0not-an-ip, 1.2.3.4\0192.0.2.1' >"$cl/options_bad_xff"
printf 'POST\0/login\0\0Mozilla/5.0 (X11) Chrome/124\0text/html,application/xhtml+xml\0\0\0[2001:db8::1]:443' >"$cl/login_v6"
# --- rules: the rules file format ---
cp "$root/edge/rules/default.yaml" "$out/rules/default.yaml"
printf 'static_extensions:\n  - ".js"\n  - '"'"'.css'"'"'\nstatic_prefixes: []\ninternal_ip_ranges:\n  - "10.0.0.0/8"  # c\n  - fe80::/10\nsession_cookie_name: "sid"\nauth_cookie_names: []\n' >"$out/rules/small"
printf 'static_extensions:\n  - js\ninternal_ip_ranges:\n  - "10.0.0.1/8"\nunknown_key:\n  - x\n' >"$out/rules/errors"

echo "seeds: $(find "$out" -type f | wc -l) files in $out" >&2
