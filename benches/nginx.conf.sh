#!/usr/bin/env bash
# Writes the nginx configuration benches/load.sh compares glgate with: a
# reverse proxy in front of the same upstream, with an allowlist equivalent to
# policies/echoes.yaml written as strictly as nginx allows.
#
#   benches/nginx.conf.sh DIR LISTEN_PORT UPSTREAM_PORT CLIENT_TOKEN GITLAB_TOKEN WORKERS > nginx.conf
#
# How strict, and where nginx cannot follow the policy:
# - Each rule is one anchored regex over "$request_method $request_uri", i.e.
#   over the raw target as the client sent it (not nginx's decoded $uri, where
#   acme%2Fbackend becomes acme/backend and can no longer be told apart from a
#   sub-resource). Path params have the policy's syntax ({project}: numeric id
#   or an encoded full path, {iid}: positive integer, {sha}: 7-64 hex...). GET
#   also allows HEAD, as in the policy.
# - The target is forwarded unchanged (proxy_pass without a URI), so what was
#   checked is what GitLab reads.
# - The client token is compared as a string (glgate compares SHA-256 digests
#   in constant time); the GitLab token is injected; credentials and cookies
#   from the client are not forwarded; Set-Cookie is not relayed.
# - Credential and sudo query parameters are refused.
# - Not expressible in nginx: body parameter checks on the write rules (labels,
#   hooks), owned_if / response_filter on hooks, typed query values, the
#   canonicalization checks (double encoding, dot segments...). The write rules
#   are allowed by method and path only.
set -euo pipefail
dir=$1 listen=$2 upstream=$3 client_token=$4 gitlab_token=$5 workers=$6

# Param syntaxes, as in src/policy/template.rs.
id='[1-9][0-9]{0,18}'
part='[A-Za-z0-9_.][A-Za-z0-9_.-]*'
project="(?:$id|$part(?:%2[Ff]$part)+)"
group="(?:$id|$part(?:%2[Ff]$part)*)"
sha='[0-9A-Fa-f]{7,64}'
label='[^/?#%]+(?:%[0-9A-Fa-f]{2}[^/?#%]*)*'
query='(?:[?][^#]*)?$'
read='(?:GET|HEAD)'

# rule id, method regex, path regex (below /api/v4), separated by spaces
rules=(
  "self.read $read /(?:user|personal_access_tokens/self)"
  "users.read $read /users(?:/$id)?"
  "namespaces.read $read /namespaces"
  "groups.read $read /groups(?:/$group(?:/members(?:/all)?|/descendant_groups|/projects|/merge_requests)?)?"
  "group-labels.read $read /groups/$group/labels(?:/$label)?"
  "group-labels.create POST /groups/$group/labels"
  "group-labels.update PUT /groups/$group/labels(?:/$label)?"
  "group-labels.delete DELETE /groups/$group/labels/$label"
  "hooks.read $read /(?:groups/$group|projects/$project)/hooks(?:/$id)?"
  "hooks.create POST /(?:groups/$group|projects/$project)/hooks"
  "hooks.update PUT /(?:groups/$group|projects/$project)/hooks/$id"
  "hooks.delete DELETE /(?:groups/$group|projects/$project)/hooks/$id"
  "projects.read $read /projects/$project(?:/users|/repository/commits/$sha|/repository/tags)?"
  "merge-requests.read $read /projects/$project/(?:merge_requests(?:/$id(?:/commits|/closes_issues|/resource_label_events|/discussions)?)?|issues/$id/resource_label_events)"
  "merge-requests.labels PUT /projects/$project/merge_requests/$id"
)

cat <<NGINX
worker_processes $workers;
daemon off;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_max_body_size 1m;
  server_tokens off;
  map_hash_bucket_size 256;

  # One access line per request, like glgate's audit line.
  log_format audit escape=json '{"time":"\$time_iso8601","request_id":"\$request_id",'
      '"remote":"\$remote_addr","method":"\$request_method","path":"\$uri",'
      '"rule":"\$glgate_rule","status":\$status,"duration_ms":\$request_time,'
      '"upstream_ms":"\$upstream_response_time","bytes_in":\$request_length,'
      '"bytes_out":\$bytes_sent}';

  map \$http_private_token \$glgate_client {
    default 0;
    "$client_token" 1;
  }
  map \$request_uri \$glgate_forbidden_param {
    default 0;
    "~*[?&](?:sudo|private_token|access_token|job_token|oauth_token)(?:%5B%5D|\\[\\])?(?:=|&|$)" 1;
  }
  map "\$request_method \$request_uri" \$glgate_rule {
    default "";
NGINX
for rule in "${rules[@]}"; do
  read -r name methods path <<<"$rule"
  printf '    "~^%s /api/v4%s%s" %s;\n' "$methods" "$path" "$query" "$name"
done
cat <<NGINX
  }

  upstream gitlab {
    server 127.0.0.1:$upstream;
    keepalive 512;
  }

  server {
    listen 127.0.0.1:$listen backlog=4096;
    access_log $dir/nginx-access.log audit buffer=64k flush=1s;
    default_type application/json;

    location / {
      if (\$glgate_client = 0) {
        return 401 '{"message":"401 Unauthorized"}';
      }
      if (\$glgate_forbidden_param) {
        return 400 '{"message":"400 Bad request - forbidden parameter"}';
      }
      if (\$glgate_rule = "") {
        return 403 '{"message":"403 Forbidden - not allowed by the policy"}';
      }
      proxy_pass http://gitlab;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host 127.0.0.1:$upstream;
      proxy_set_header PRIVATE-TOKEN "$gitlab_token";
      proxy_set_header Authorization "";
      proxy_set_header Cookie "";
      proxy_set_header X-Forwarded-For "";
      proxy_hide_header Set-Cookie;
      proxy_connect_timeout 5s;
      proxy_read_timeout 60s;
    }
  }
}
NGINX
