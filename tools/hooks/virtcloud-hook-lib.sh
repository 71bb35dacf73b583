# Shared functions of the VirtCloud scheduler and libvirt hooks
# (tools/hooks/, docs/operations.md "Scheduler hooks"). POSIX sh; sourced,
# never run. Needs only the virtcloud CLI, sed and awk.
#
# Configuration: shell variables in /etc/virtcloud/hooks.conf (or the file
# $VIRTCLOUD_HOOKS_CONF names), read by vc_load_conf:
#   VIRTCLOUD_API   agents to ask, A,B,... (default: the CLI's default)
#   VIRTCLOUD_KEY   the client key that signs the hooks' requests, bound
#                   to the scheduler role (virtcloud role add); needed
#                   when the agents require client authentication
#   VC_CLI          the virtcloud binary (default: virtcloud on PATH)
#   VC_NODE_MAP     file of "PATTERN SITE" lines (shell glob on the node
#                   name, first match wins); nodes it does not match are
#                   looked up with `virtcloud host list`
#   VC_LEASE        lease of a job's cluster (default 7d; the epilog
#                   releases it, the lease only bounds a lost epilog)
#   VC_CREATE_TIMEOUT  how long a create keeps retrying (default 60s)
#   VC_WAIT         how long a node waits for its site (default 120s)
#   VC_PARTITIONS   Slurm partitions that get a cluster, space separated
#                   (default: every job)
#   VC_NODE_FAILURE what a per-node prolog does when its site is not
#                   ready in time: requeue (default: `scontrol requeue`
#                   the job, exit 0, node stays up), drain (exit 1: Slurm
#                   drains the node and requeues the job) or ignore
#   VC_SYSLOG       yes (default) to copy messages to syslog via logger
#   VC_BRIDGE_RE    libvirt hook: bridge names of cluster VLANs, an ERE
#                   whose first group is the VLAN (default ^vc([0-9]+)$)
#   VC_BRIDGE_WAIT  libvirt hook: yes (default) to also wait until the
#                   bridge exists on this host

vc_load_conf() {
    _conf=${VIRTCLOUD_HOOKS_CONF:-/etc/virtcloud/hooks.conf}
    if [ -r "$_conf" ]; then
        # shellcheck disable=SC1090
        . "$_conf"
    fi
    if [ -n "${VIRTCLOUD_KEY:-}" ]; then export VIRTCLOUD_KEY; fi
    : "${VC_CLI:=virtcloud}" "${VC_LEASE:=7d}" "${VC_WAIT:=120s}"
    : "${VC_CREATE_TIMEOUT:=60s}" "${VC_NODE_FAILURE:=requeue}"
    : "${VC_SYSLOG:=yes}" "${VC_BRIDGE_WAIT:=yes}"
    : "${VC_BRIDGE_RE:=^vc([0-9]+)\$}"
    VC_TAG=${VC_TAG:-virtcloud-hook}
}

# vc_log MESSAGE: stderr (the scheduler's log) and syslog.
vc_log() {
    printf '%s: %s\n' "$VC_TAG" "$*" >&2
    if [ "$VC_SYSLOG" = yes ] && command -v logger >/dev/null 2>&1; then
        logger -t "$VC_TAG" -- "$*" 2>/dev/null || :
    fi
}

# vc_cli ARGS...: the CLI with the configured agents. Its stdout is ours.
vc_cli() {
    if [ -n "${VIRTCLOUD_API:-}" ]; then
        "$VC_CLI" --api "$VIRTCLOUD_API" "$@"
    else
        "$VC_CLI" "$@"
    fi
}

# vc_seconds DURATION: "90s", "2m", "1h" or a number of seconds -> seconds.
vc_seconds() {
    case $1 in
    *ms) echo 1 ;;
    *s) echo "${1%s}" ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *h) echo $(( ${1%h} * 3600 )) ;;
    *) echo "$1" ;;
    esac
}

# vc_cluster_name PREFIX JOBID: a valid cluster name for the job
# (1-63 of A-Z a-z 0-9 . _ -): "slurm-4242", "pbs-77.server".
vc_cluster_name() {
    printf '%s-%s' "$1" "$2" | tr -c 'A-Za-z0-9._-' '-' | cut -c1-63
}

# vc_expand_nodelist LIST: Slurm's compressed host list ("n[01-03,7],gpu1")
# one name a line. scontrol does it when present; the fallback handles one
# bracket group per name, which is what Slurm prints for flat names.
vc_expand_nodelist() {
    if command -v scontrol >/dev/null 2>&1; then
        scontrol show hostnames "$1" && return 0
    fi
    printf '%s\n' "$1" | awk '
    {
        s = $0; n = 0; depth = 0; cur = ""
        for (i = 1; i <= length(s); i++) {
            ch = substr(s, i, 1)
            if (ch == "[") depth++
            if (ch == "]") depth--
            if (ch == "," && depth == 0) { item[++n] = cur; cur = "" }
            else cur = cur ch
        }
        if (cur != "") item[++n] = cur
        for (k = 1; k <= n; k++) expand(item[k])
    }
    function expand(x,    p, q, pre, post, body, m, parts, j, r, lo, hi, w, v) {
        p = index(x, "[")
        if (p == 0) { print x; return }
        q = index(x, "]")
        pre = substr(x, 1, p - 1); post = substr(x, q + 1)
        body = substr(x, p + 1, q - p - 1)
        m = split(body, parts, ",")
        for (j = 1; j <= m; j++) {
            if (split(parts[j], r, "-") == 2) {
                lo = r[1]; hi = r[2]; w = length(lo)
                for (v = lo + 0; v <= hi + 0; v++)
                    printf "%s%0" w "d%s\n", pre, v, post
            } else print pre parts[j] post
        }
    }'
}

# vc_host_table: reads "HOST SITE" lines of every registered host into
# _vc_hosts, once (in the calling shell: do not call it in $(...)).
vc_host_table() {
    if [ -z "${_vc_hosts_read:-}" ]; then
        _vc_hosts=$(vc_cli --timeout 10s host list 2>/dev/null |
                    awk 'NR > 1 { print $1, $2 }') || _vc_hosts=
        _vc_hosts_read=1
    fi
}

# vc_node_site NODE: sets VC_SITE to the site of NODE (map file, then host
# list); status 1 when neither knows it.
vc_node_site() {
    VC_SITE=
    if [ -n "${VC_NODE_MAP:-}" ] && [ -r "$VC_NODE_MAP" ]; then
        # Read in the shell so that PATTERN is a shell glob.
        while read -r _pat _site _rest; do
            case $_pat in ''|'#'*) continue ;; esac
            # shellcheck disable=SC2254
            case $1 in $_pat) VC_SITE=$_site; return 0 ;; esac
        done < "$VC_NODE_MAP"
    fi
    vc_host_table
    VC_SITE=$(printf '%s\n' "$_vc_hosts" |
              awk -v n="$1" '$1 == n { print $2; exit }')
    [ -n "$VC_SITE" ]
}

# vc_sites_of NODE...: sets VC_SITES to the nodes' sites, "a,b" in
# first-seen order. Fails naming the first node without a site.
vc_sites_of() {
    VC_SITES=
    for _n in "$@"; do
        vc_node_site "$_n" || { vc_log "node $_n: no site (add it to" \
            "${VC_NODE_MAP:-VC_NODE_MAP} or run: virtcloud host add $_n" \
            "--site S --trunk IF)"; return 1; }
        case ",$VC_SITES," in
        *",$VC_SITE,"*) ;;
        *) VC_SITES=${VC_SITES:+$VC_SITES,}$VC_SITE ;;
        esac
    done
}

# vc_json_field KEY JSON: the value of the first KEY of a one-line JSON
# document printed by the CLI (a string unescaped, or a number).
vc_json_field() {
    printf '%s\n' "$2" | awk -v k="\"$1\":" '{
        i = index($0, k); if (!i) next
        s = substr($0, i + length(k)); out = ""
        if (substr(s, 1, 1) != "\"") {
            match(s, /^[-0-9.a-z]*/); print substr(s, 1, RLENGTH); exit
        }
        for (j = 2; j <= length(s); j++) {
            c = substr(s, j, 1)
            if (c == "\\") { j++; out = out substr(s, j, 1); continue }
            if (c == "\"") break
            out = out c
        }
        print out; exit
    }'
}

# vc_try DEADLINE_S ARGS...: runs `vc_cli --json ARGS` until it succeeds,
# fails for good, or DEADLINE_S seconds pass. Retries exit 3 and 4
# (unavailable, unknown outcome: the same request id is safe); never a
# refusal, which the same id would only repeat. Sets VC_OUT (the JSON
# answer) and returns the CLI's last exit status.
vc_try() {
    _end=$(( $(date +%s) + $1 )); shift
    _delay=1
    while :; do
        VC_OUT=$(vc_cli --json "$@" 2>/dev/null); _rc=$?
        case $_rc in
        0) return 0 ;;
        3|4) ;;
        *) return "$_rc" ;;
        esac
        [ "$(date +%s)" -lt "$_end" ] || return "$_rc"
        sleep "$_delay"
        [ "$_delay" -ge 8 ] || _delay=$(( _delay * 2 ))
    done
}

# vc_cluster_state NAME: "state created_ms" of the cluster, "gone" when
# there is none, nothing when no agent answered.
vc_cluster_state() {
    _j=$(vc_cli --json --timeout 10s cluster show "$1" 2>/dev/null); _rc=$?
    if [ $_rc = 0 ]; then
        echo "$(vc_json_field state "$_j") $(vc_json_field created_ms "$_j")"
    elif [ $_rc = 1 ]; then
        case $_j in *'"error":"NOTFOUND"'*) echo gone ;; esac
    fi
}

# vc_job_create PREFIX JOBID RUN SITES OWNER: creates the job's cluster,
# exactly once per run of the job. The request id is PREFIX:JOBID:RUN:
# create; a re-run of the same hook returns the first answer. If that
# answer belongs to a run whose cluster has since been released (a
# requeued job whose scheduler gives no run count), the next id
# (...:create:2, ...) makes a new one. Prints the JSON answer.
vc_job_create() {
    _name=$(vc_cluster_name "$1" "$2")
    _base="$1:$2:$3:create"
    # The job's cluster of an earlier run still being released: wait, or
    # the create would be answered "exists" -- for good, under this id.
    _end=$(( $(date +%s) + $(vc_seconds "$VC_CREATE_TIMEOUT") ))
    while :; do
        case $(vc_cluster_state "$_name") in releasing*) ;; *) break ;; esac
        [ "$(date +%s)" -lt "$_end" ] || break
        sleep 1
    done
    _k=1
    while [ $_k -le 50 ]; do
        _id=$_base; [ $_k = 1 ] || _id="$_base:$_k"
        vc_try "$(vc_seconds "$VC_CREATE_TIMEOUT")" --request-id "$_id" \
            cluster create "$_name" --sites "$4" --owner "$5" \
            --lease "$VC_LEASE" || { _rc=$?; vc_log "cluster create $_name" \
            "(request id $_id) failed: $(vc_json_field message "$VC_OUT")";
            return $_rc; }
        case $(vc_cluster_state "$_name") in
        gone|releasing*) _k=$(( _k + 1 )) ;;  # an earlier run's answer
        *) printf '%s\n' "$VC_OUT"; return 0 ;;
        esac
    done
    vc_log "cluster create $_name: too many earlier runs"; return 1
}

# vc_job_release PREFIX JOBID: releases the job's cluster. The request id
# carries the cluster's creation time, so a re-run of the epilog returns
# the first answer while each run of a requeued job releases its own
# cluster. No cluster: nothing to do.
vc_job_release() {
    _name=$(vc_cluster_name "$1" "$2")
    _st=$(vc_cluster_state "$_name")
    case $_st in
    gone) vc_log "cluster $_name: none to release"; return 0 ;;
    '') vc_log "cluster $_name: no agent answered"; return 3 ;;
    esac
    _id="$1:$2:release:${_st#* }"
    vc_try "$(vc_seconds "$VC_CREATE_TIMEOUT")" --request-id "$_id" \
        cluster release "$_name"; _rc=$?
    case $_rc:$VC_OUT in
    0:*) vc_log "cluster $_name released (request id $_id)"; return 0 ;;
    1:*'"error":"NOTFOUND"'*) return 0 ;;
    esac
    vc_log "cluster release $_name (request id $_id) failed:" \
        "$(vc_json_field message "$VC_OUT")"
    return $_rc
}

# vc_wait_site NAME SITE: waits up to VC_WAIT until SITE applied the
# cluster, asking the agents' local state (--stale: the local site's own
# agent answers even without quorum). Returns 0 (applied, or the job has
# no cluster), else the CLI's exit status.
vc_wait_site() {
    _out=$(vc_cli --json --stale --timeout "$VC_WAIT" cluster wait "$1" \
        --site "$2" 2>&1); _rc=$?
    case $_rc:$_out in
    0:*) return 0 ;;
    1:*'"error":"NOTFOUND"'*) return 0 ;;
    esac
    vc_log "cluster $1 at site $2: $(vc_json_field message "$_out")"
    return $_rc
}
