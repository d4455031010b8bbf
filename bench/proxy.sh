#!/usr/bin/env bash
# proxy.sh: asycamore's reverse proxy next to nginx's proxy_pass, side by side in one run,
# both forwarding to the SAME upstream (an asycamore serving the harness's routes).
#
# Usage: bench/proxy.sh            (after cargo build --release)
# Environment: ROUNDS [3] DURATION [8] TESTS ["plain_ka static_4k static_1m conn_close"]
#   UPSTREAM_PORT [18190] UPSTREAM_CPU [1] and everything ../shared/bench/compare.sh takes.
#
# The proxies are pinned to core 0 by the harness (its SERVER_CPU), the load generator to
# core 1; the upstream runs on core 1 too, beside the load generator, the same for both
# proxies. Read the proxies' server CPU per request (req/s is bounded by the one core the
# load generator and upstream share). Each proxy keeps up to 32 idle connections to the
# upstream (nginx: `keepalive 32`; asycamore: `max_idle = 32`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
shared=${SHARED_BENCH:-$repo/../shared/bench}
upstream_port=${UPSTREAM_PORT:-18190}
root=${ROOT:-/tmp/asyc-bench-root}
export ROOT=$root
[[ -x $repo/target/release/asycamore ]] || { echo "build first: cargo build --release" >&2; exit 1; }

# The upstream: asycamore with the harness's routes, on its own core.
taskset -c "${UPSTREAM_CPU:-1}" "$here/asycamore-run.sh" "$upstream_port" "$root" metrics=off &
upstream=$!
trap 'kill -TERM $upstream 2>/dev/null; wait $upstream 2>/dev/null' EXIT
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$upstream_port/plaintext" >/dev/null && break
    sleep 0.1
done

# The two proxies, as command lines the harness runs in the foreground.
cat > /tmp/asyc-proxy-asycamore.sh <<SH
#!/usr/bin/env bash
port=\$1
config=/tmp/asyc-proxy-asycamore-\$port.toml
cat > "\$config" <<TOML
[server]
listen = ["127.0.0.1:\$port"]
workers = 1
max_requests_per_connection = 0
[admin]
listen = "127.0.0.1:\$((port + 1000))"
metrics = false
[[upstream]]
name = "app"
servers = [ { address = "127.0.0.1:$upstream_port" } ]
max_idle = 32
[[route]]
name = "app"
path = "/"
handler = "proxy"
upstream = "app"
TOML
exec "$repo/target/release/asycamore" --config "\$config" --log-level warn
SH
cat > /tmp/asyc-proxy-nginx.sh <<SH
#!/usr/bin/env bash
port=\$1
prefix=/tmp/asyc-proxy-nginx-\$port
mkdir -p "\$prefix"
cat > "\$prefix/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
pid \$prefix/nginx.pid;
error_log \$prefix/error.log warn;
events { use epoll; worker_connections 16384; }
http {
    access_log off;
    server_tokens off;
    client_body_temp_path \$prefix/client_body;
    proxy_temp_path       \$prefix/proxy;
    fastcgi_temp_path     \$prefix/fastcgi;
    uwsgi_temp_path       \$prefix/uwsgi;
    scgi_temp_path        \$prefix/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream app { server 127.0.0.1:$upstream_port; keepalive 32; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:\$port backlog=4096;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \\\$host;
            proxy_set_header X-Forwarded-For \\\$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \\\$scheme;
        }
    }
}
CONF
exec nginx -p "\$prefix" -e "\$prefix/error.log" -c "\$prefix/nginx.conf"
SH
chmod +x /tmp/asyc-proxy-asycamore.sh /tmp/asyc-proxy-nginx.sh

TESTS=${TESTS:-"plain_ka static_4k static_1m conn_close"} \
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-8} \
NAME_A=asycamore-proxy NAME_B=nginx-proxy \
    "$shared/compare.sh" '/tmp/asyc-proxy-asycamore.sh {port}' '/tmp/asyc-proxy-nginx.sh {port}'
