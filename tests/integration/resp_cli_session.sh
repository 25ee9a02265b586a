#!/usr/bin/env bash
# A scripted redis-cli session against the RESP front door: every command
# the front door serves, each reply compared exactly with what redis-cli
# prints (--no-raw, so types show: "(integer) 1", "(nil)", "(error) ...").
#
# usage: resp_cli_session.sh HOST PORT
#
# The database must be empty at the start; the script deletes what it
# wrote before it exits. RESP_TARGET=ringkv (default) also checks what is
# specific to ringkv: only DB 0, SET EX/PX/KEEPTTL refused.
# RESP_TARGET=redis skips those checks, so the script can be checked against
# a real redis-server. Exits 0 when every check passed, 1 with a diff per
# mismatch, 2 when the server cannot be reached.
set -u

if [[ $# -ne 2 ]]; then
	echo "usage: $0 HOST PORT" >&2
	exit 2
fi
HOST=$1
PORT=$2
TARGET=${RESP_TARGET:-ringkv}
case $TARGET in
ringkv | redis) ;;
*)
	echo "RESP_TARGET must be ringkv or redis, not '$TARGET'" >&2
	exit 2
	;;
esac

CLI=(timeout 20 redis-cli -h "$HOST" -p "$PORT" --no-raw)
RAW=(timeout 20 redis-cli -h "$HOST" -p "$PORT" --raw)
checks=0
failures=0
skips=0

# compare NAME WANT GOT: counts a check; prints a unified diff on mismatch.
compare() {
	checks=$((checks + 1))
	if [[ "$3" != "$2" ]]; then
		failures=$((failures + 1))
		echo "FAIL: $1"
		diff -u --label expected --label got <(printf '%s\n' "$2") \
			<(printf '%s\n' "$3") | sed 's/^/    /'
	fi
}

# expect NAME WANT ARGS...: one command on its own connection.
expect() {
	local name=$1 want=$2 got
	shift 2
	got=$("${CLI[@]}" "$@" 2>&1)
	compare "$name" "$want" "$got"
}

# session NAME WANT: the commands on stdin, one per line, on one connection
# (redis-cli splits each line with Redis' quoting rules).
session() {
	local name=$1 want=$2 got
	got=$("${CLI[@]}" 2>&1)
	compare "$name" "$want" "$got"
}

# expect_match NAME REGEX ARGS...: for replies with server-specific parts.
expect_match() {
	local name=$1 regex=$2 got
	shift 2
	got=$("${CLI[@]}" "$@" 2>&1)
	checks=$((checks + 1))
	if ! [[ "$got" =~ $regex ]]; then
		failures=$((failures + 1))
		echo "FAIL: $name"
		echo "    expected to match: $regex"
		printf '%s\n' "$got" | sed 's/^/    got: /'
	fi
}

# ringkv_only NAME: false (and a note) when the target is real Redis.
ringkv_only() {
	if [[ $TARGET == redis ]]; then
		skips=$((skips + 1))
		echo "skip: $1 (RESP_TARGET=redis)"
		return 1
	fi
	return 0
}

if [[ $("${CLI[@]}" PING 2>&1) != PONG ]]; then
	echo "cannot reach a RESP server at $HOST:$PORT" >&2
	exit 2
fi
if [[ $("${CLI[@]}" DBSIZE 2>&1) != "(integer) 0" ]]; then
	echo "the database at $HOST:$PORT must be empty" >&2
	exit 2
fi

# ---- connection ----
expect "PING" "PONG" PING
expect "PING message" '"hello world"' PING "hello world"
expect "ping lower case" "PONG" ping
expect "ECHO" '"hi there"' ECHO "hi there"
expect "ECHO empty" '""' ECHO ""
expect "SELECT 0" "OK" SELECT 0
if ringkv_only "SELECT 1 refused"; then
	expect "SELECT 1 refused" "(error) ERR DB index is out of range" SELECT 1
fi
expect "SELECT not a number" "(error) ERR value is not an integer or out of range" \
	SELECT x
expect "QUIT" "OK" QUIT
hello=$("${CLI[@]}" HELLO 2 2>&1)
compare "HELLO 2 answers proto 2" '"proto"
(integer) 2' "$(printf '%s\n' "$hello" | sed 's/^ *[0-9]*) //' |
	grep -A1 -x '"proto"')"
hello=$("${CLI[@]}" -3 HELLO 3 2>&1)
compare "HELLO 3 answers a map with proto 3 (redis-cli -3)" '3# "proto" => (integer) 3' \
	"$(printf '%s\n' "$hello" | grep -F '"proto"')"
compare "redis-cli -3: a missing key is (nil)" '(nil)' "$("${CLI[@]}" -3 GET rkv:nosuchkey 2>&1)"
expect "HELLO 4 refused" "(error) NOPROTO unsupported protocol version" HELLO 4

session "CLIENT SETNAME/GETNAME on one connection" '(nil)
OK
"ringkv-test"
OK
(nil)' <<'EOF'
CLIENT GETNAME
CLIENT SETNAME ringkv-test
CLIENT GETNAME
CLIENT SETNAME ""
CLIENT GETNAME
EOF
ids=$(printf 'CLIENT ID\nCLIENT ID\n' | "${CLI[@]}" 2>&1)
compare "CLIENT ID is an integer, stable on a connection" "ok" \
	"$(printf '%s\n' "$ids" | awk 'NR == 1 { first = $0 }
		$0 !~ /^\(integer\) [0-9]+$/ || $0 != first { bad = 1 }
		END { print (NR == 2 && !bad) ? "ok" : "bad: " first }')"
expect "CLIENT SETNAME with a space" \
	"(error) ERR Client names cannot contain spaces, newlines or special characters." \
	CLIENT SETNAME "a b"
expect "CLIENT unknown subcommand" \
	"(error) ERR unknown subcommand 'nope'. Try CLIENT HELP." CLIENT nope

# ---- strings ----
expect "GET missing" "(nil)" GET rkv:k
expect "SET" "OK" SET rkv:k v1
expect "GET" '"v1"' GET rkv:k
expect "get lower case" '"v1"' get rkv:k
expect "SET overwrite" "OK" SET rkv:k v2
expect "SET NX on existing" "(nil)" SET rkv:k x NX
expect "SET XX on existing" "OK" SET rkv:k v3 XX
expect "SET XX on missing" "(nil)" SET rkv:none x XX
expect "SET NX on missing" "OK" SET rkv:nx v NX
expect "SET NX XX" "(error) ERR syntax error" SET rkv:k v NX XX
expect "SET bad option" "(error) ERR syntax error" SET rkv:k v BOGUS
expect "SET EX" "OK" SET rkv:ttl v EX 100
# 100, or 99 when a second turns between the two commands (a loaded machine)
expect_match "TTL" '^\(integer\) (99|100)$' TTL rkv:ttl
expect "SET KEEPTTL" "OK" SET rkv:ttl w KEEPTTL
expect "PERSIST" "(integer) 1" PERSIST rkv:ttl
expect "TTL after PERSIST" "(integer) -1" TTL rkv:ttl
expect "TTL of a missing key" "(integer) -2" TTL rkv:none
expect "SET EX 0" "(error) ERR invalid expire time in 'set' command" SET rkv:ttl v EX 0
"${CLI[@]}" DEL rkv:ttl >/dev/null 2>&1
expect "SETNX on existing" "(integer) 0" SETNX rkv:k x
expect "SETNX on missing" "(integer) 1" SETNX rkv:k2 x
expect "GETSET" '"v3"' GETSET rkv:k v4
expect "GET after GETSET" '"v4"' GET rkv:k
expect "GETSET on missing" "(nil)" GETSET rkv:gs new
expect "MSET" "OK" MSET rkv:a 1 rkv:b 2
expect "MGET with a missing key" '1) "1"
2) (nil)
3) "2"' MGET rkv:a rkv:missing rkv:b
expect "EXISTS counts repeats" "(integer) 3" EXISTS rkv:a rkv:a rkv:b rkv:missing
expect "STRLEN" '(integer) 2' STRLEN rkv:k
expect "STRLEN missing" '(integer) 0' STRLEN rkv:missing
expect "APPEND new" "(integer) 5" APPEND rkv:ap hello
expect "APPEND existing" "(integer) 11" APPEND rkv:ap " world"
expect "GET appended" '"hello world"' GET rkv:ap
session "binary-safe value" 'OK
"a\x00b\r\n\xff"
(integer) 6' <<'EOF'
SET rkv:bin "a\x00b\r\n\xff"
GET rkv:bin
STRLEN rkv:bin
EOF

# ---- counters ----
expect "INCR new" "(integer) 1" INCR rkv:c
expect "INCRBY" "(integer) 11" INCRBY rkv:c 10
expect "DECR" "(integer) 10" DECR rkv:c
expect "DECRBY" "(integer) 7" DECRBY rkv:c 3
expect "INCRBY negative" "(integer) 2" INCRBY rkv:c -5
expect "DECR new" "(integer) -1" DECR rkv:d
expect "GET counter" '"2"' GET rkv:c
expect "INCR on a non-integer" "(error) ERR value is not an integer or out of range" \
	INCR rkv:k
expect "SET ' 1'" "OK" SET rkv:sp " 1"
expect "INCR on ' 1' refused" "(error) ERR value is not an integer or out of range" \
	INCR rkv:sp
expect "INCRBY a non-integer" "(error) ERR value is not an integer or out of range" \
	INCRBY rkv:c 1.5
expect "INCRBY +1" "(error) ERR value is not an integer or out of range" \
	INCRBY rkv:c +1
expect "SET max" "OK" SET rkv:max 9223372036854775807
expect "INCR overflow" "(error) ERR increment or decrement would overflow" INCR rkv:max
expect "DECRBY min" "(error) ERR decrement would overflow" \
	DECRBY rkv:c -9223372036854775808

# ---- keyspace ----
expect "DEL" "(integer) 2" DEL rkv:nx rkv:gs rkv:missing
expect "DEL gone" "(integer) 0" DEL rkv:nx
expect "EXISTS after DEL" "(integer) 0" EXISTS rkv:nx
keys="rkv:a rkv:ap rkv:b rkv:bin rkv:c rkv:d rkv:k rkv:k2 rkv:max rkv:sp"
expect "DBSIZE" "(integer) 10" DBSIZE

# SCAN: 60 more keys, walked with MATCH and COUNT until the cursor is 0.
scan_pairs=()
scan_names=()
for i in $(seq 0 59); do
	scan_pairs+=("rkv:scan:$i" "$i")
	scan_names+=("rkv:scan:$i")
done
expect "MSET scan keys" "OK" MSET "${scan_pairs[@]}"
cursor=0
found=""
rounds=0
while :; do
	page=$("${RAW[@]}" SCAN "$cursor" MATCH 'rkv:scan:*' COUNT 7 2>&1)
	cursor=$(printf '%s\n' "$page" | head -n 1)
	found+=$(printf '%s\n' "$page" | tail -n +2 | sed '/^$/d')$'\n'
	rounds=$((rounds + 1))
	if ! [[ $cursor =~ ^[0-9]+$ ]]; then
		compare "SCAN cursor" "a number" "$page"
		break
	fi
	[[ $cursor == 0 || $rounds -ge 1000 ]] && break
done
compare "SCAN returns to cursor 0" "0" "$cursor"
want_scan=$(for i in $(seq 0 59); do echo "rkv:scan:$i"; done | sort)
got_scan=$(printf '%s' "$found" | sed '/^$/d' | sort)
if [[ $TARGET == redis ]]; then
	got_scan=$(printf '%s\n' "$got_scan" | uniq) # Redis may repeat a key
fi
compare "SCAN MATCH finds every key exactly once" "$want_scan" "$got_scan"
expect "SCAN bad cursor" "(error) ERR invalid cursor" SCAN notanumber
expect "SCAN bad COUNT" "(error) ERR value is not an integer or out of range" \
	SCAN 0 COUNT x
expect "SCAN COUNT 0" "(error) ERR syntax error" SCAN 0 COUNT 0
expect "DBSIZE with scan keys" "(integer) 70" DBSIZE

# KEYS, TYPE, TIME; FLUSHDB/FLUSHALL refused (the node runs without
# --enable-flush; tests/integration/test_cluster_flush.c runs them enabled).
got_keys=$("${RAW[@]}" KEYS 'rkv:scan:*' 2>&1 | sort)
compare "KEYS finds every key once" "$want_scan" "$got_keys"
expect "KEYS none" "(empty array)" KEYS 'rkv:nothing:*'
expect "TYPE string" "string" TYPE rkv:a
expect "TYPE none" "none" TYPE rkv:missing
expect_match "TIME" '^1\) "[0-9]{10,}"
2\) "[0-9]{1,6}"$' TIME
if ringkv_only "FLUSHDB refused"; then
	for flush in FLUSHDB FLUSHALL; do
		expect_match "$flush refused" \
			'^\(error\) ERR FLUSHDB and FLUSHALL are disabled on this node: .*--enable-flush' \
			$flush
	done
	expect "nothing flushed" "(integer) 70" DBSIZE
fi

# ---- server ----
info=$("${RAW[@]}" INFO 2>&1 | tr -d '\r')
for section in Server Clients Stats Keyspace; do
	compare "INFO has # $section" "# $section" \
		"$(printf '%s\n' "$info" | grep -x "# $section")"
done
compare "INFO keyspace counts keys" "db0:keys=70" \
	"$("${RAW[@]}" INFO keyspace 2>&1 | tr -d '\r' | grep -o '^db0:keys=[0-9]*')"
compare "INFO server alone" "# Server" \
	"$("${RAW[@]}" INFO server 2>&1 | tr -d '\r' | grep '^# ')"
expect "CONFIG GET save" '1) "save"
2) ""' CONFIG GET save
# ringkv logs and fsyncs every write, so it reports appendonly yes; the
# reference redis-server runs with appendonly no.
if [ "${RESP_TARGET:-ringkv}" = redis ]; then appendonly=no; else appendonly=yes; fi
expect "CONFIG GET appendonly" "1) \"appendonly\"
2) \"$appendonly\"" CONFIG GET appendonly
expect "CONFIG GET unknown" "(empty array)" CONFIG GET rkv-no-such-parameter
expect "CONFIG unknown subcommand" \
	"(error) ERR unknown subcommand 'nope'. Try CONFIG HELP." CONFIG nope
expect "CONFIG RESETSTAT" "OK" CONFIG RESETSTAT
expect_match "COMMAND COUNT" '^\(integer\) [1-9][0-9]*$' COMMAND COUNT
expect_match "COMMAND INFO GET" '^1\)  1\) "get"
    2\) \(integer\) 2
    3\) 1\) readonly
       2\) fast
    4\) \(integer\) 1
    5\) \(integer\) 1
    6\) \(integer\) 1' COMMAND INFO get
expect "COMMAND INFO unknown" "1) (nil)" COMMAND INFO rkv-no-such-command
expect_match "COMMAND DOCS GET" '"summary"
 *[0-9]+\) "Get the value of a key"' COMMAND DOCS get

# ---- errors ----
expect "GET wrong arity" "(error) ERR wrong number of arguments for 'get' command" GET
expect "GET too many" "(error) ERR wrong number of arguments for 'get' command" \
	GET a b
expect "SET wrong arity" "(error) ERR wrong number of arguments for 'set' command" \
	SET rkv:k
expect "MSET odd" "(error) ERR wrong number of arguments for 'mset' command" \
	MSET rkv:a 1 rkv:b
expect "MGET wrong arity" "(error) ERR wrong number of arguments for 'mget' command" MGET
expect "DEL wrong arity" "(error) ERR wrong number of arguments for 'del' command" DEL
expect "INCR wrong arity" "(error) ERR wrong number of arguments for 'incr' command" \
	INCR a b
expect "DBSIZE wrong arity" "(error) ERR wrong number of arguments for 'dbsize' command" \
	DBSIZE x
expect "ECHO wrong arity" "(error) ERR wrong number of arguments for 'echo' command" ECHO
expect "CONFIG GET wrong arity" \
	"(error) ERR wrong number of arguments for 'config|get' command" CONFIG GET
expect "CLIENT SETNAME wrong arity" \
	"(error) ERR wrong number of arguments for 'client|setname' command" CLIENT SETNAME
expect "unknown command" \
	"(error) ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b c' " \
	NOSUCHCMD a "b c"
expect "unknown command, no args" \
	"(error) ERR unknown command 'nosuchcmd', with args beginning with: " nosuchcmd

# ---- clean up ----
# shellcheck disable=SC2086 # word splitting of the key list is wanted
expect "DEL everything" "(integer) 70" DEL $keys "${scan_names[@]}"
expect "DBSIZE at the end" "(integer) 0" DBSIZE

echo "resp_cli_session: $checks checks, $failures failed, $skips skipped" \
	"(target $TARGET at $HOST:$PORT)"
[[ $failures -eq 0 ]]
