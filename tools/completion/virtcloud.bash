# bash completion for virtcloud(8)                         -*- shell-script -*-
#
# Commands, subcommands and options come from `virtcloud help` itself (read
# once per shell), so they follow the installed CLI. Cluster, site and host
# names are asked live from the agents (`--json --stale`, 2 s at most), with
# the --api and --key given on the line being completed.

# The synopsis lines of `virtcloud help`: "cluster create NAME --sites ..."
_virtcloud_synopsis() {
    if [[ -z ${_virtcloud_help-} ]]; then
        _virtcloud_help=$("$1" help 2>/dev/null |
            sed -n 's/^  virtcloud \(.*\)$/\1/p')
    fi
    printf '%s\n' "$_virtcloud_help"
}

# Names of a kind (cluster | site | host) from the agents.
_virtcloud_live() {
    local kind=$1 json
    json=$("${_virtcloud_cmd[@]}" --json --stale --timeout 2s "$kind" list \
        2>/dev/null) || return
    # A site's host objects also have a "name": drop the host arrays first.
    [[ $kind == site ]] && json=$(sed 's/"hosts":\[[^]]*\]//g' <<<"$json")
    grep -o '"name":"[^"]*"' <<<"$json" | sed 's/^"name":"//; s/"$//'
}

_virtcloud() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local i w path=() opts_with_value="api timeout request-id key"
    _virtcloud_cmd=("${COMP_WORDS[0]}")
    COMPREPLY=()

    # The command words typed so far, skipping options and their values;
    # --api and --key are kept for the live look-ups.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == --* ]]; then
            if [[ $w != *=* && " $opts_with_value " == *" ${w#--} "* ]]; then
                [[ $w == --api || $w == --key ]] &&
                    _virtcloud_cmd+=("$w" "${COMP_WORDS[i+1]}")
                ((i++))
            elif [[ $w == --api=* || $w == --key=* ]]; then
                _virtcloud_cmd+=("$w")
            fi
            continue
        fi
        path+=("$w")
    done

    local syn
    syn=$(_virtcloud_synopsis "${COMP_WORDS[0]}")
    # Narrow the synopsis lines word by word while the typed words are
    # command words; depth: how many are. The rest are arguments.
    local lines=$syn depth=0 nl
    for w in "${path[@]}"; do
        nl=$(awk -v d=$((depth + 1)) -v w="$w" '$d == w' <<<"$lines")
        [[ -z $nl ]] && break
        lines=$nl
        ((depth++))
    done
    local nargs=$((${#path[@]} - depth))

    # Values of options.
    case $prev in
    --sites)
        local pre=
        [[ $cur == *,* ]] && pre=${cur%,*},
        COMPREPLY=($(compgen -P "$pre" -W "$(_virtcloud_live site)" \
            -- "${cur##*,}"))
        compopt -o nospace 2>/dev/null
        return ;;
    --site) COMPREPLY=($(compgen -W "$(_virtcloud_live site)" -- "$cur"));
        return ;;
    --host) COMPREPLY=($(compgen -W "$(_virtcloud_live host)" -- "$cur"));
        return ;;
    --cluster) COMPREPLY=($(compgen -W "$(_virtcloud_live cluster)" -- "$cur"));
        return ;;
    --image) COMPREPLY=($(compgen -W "certified user" -- "$cur")); return ;;
    --role) COMPREPLY=($(compgen -W "user scheduler admin" -- "$cur")); return ;;
    --key|--out|--agent-key)
        COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --api|--timeout|--request-id|--lease|--owner|--iface|--trunk|--vlan|\
    --since|--ttl|--limit)
        return ;;
    esac

    # Options: the global ones and those of the command's synopsis lines.
    if [[ $cur == -* ]]; then
        local o
        o=$(grep -o -- '--[a-z][a-z-]*' <<<"$lines" | sort -u)
        COMPREPLY=($(compgen -W "--api --json --timeout --stale --request-id \
            --key --help $o" -- "$cur"))
        return
    fi

    # The next command word, or a positional argument.
    local next=
    ((nargs == 0)) && next=$(awk -v n=$depth '{ w = $(n + 1) }
        w ~ /^[a-z][a-z-]*$/ { print w }' <<<"$lines" | sort -u)
    if [[ -n $next ]]; then
        COMPREPLY=($(compgen -W "$next" -- "$cur"))
        return
    fi
    case "$depth:$nargs:${path[0]-} ${path[1]-}" in
    "2:0:cluster create") ;;
    "2:0:cluster "*)
        COMPREPLY=($(compgen -W "$(_virtcloud_live cluster)" -- "$cur")) ;;
    "2:0:site show"|"2:0:site remove")
        COMPREPLY=($(compgen -W "$(_virtcloud_live site)" -- "$cur")) ;;
    "2:0:host remove"|"2:0:host service")
        COMPREPLY=($(compgen -W "$(_virtcloud_live host)" -- "$cur")) ;;
    "2:1:host service")
        COMPREPLY=($(compgen -W "on off" -- "$cur")) ;;
    "1:0:log-level "*)
        COMPREPLY=($(compgen -W "debug info warn error" -- "$cur")) ;;
    "1:0:help "*)
        COMPREPLY=($(compgen -W "$(awk '{ print $1 }' <<<"$syn" | sort -u)" \
            -- "$cur")) ;;
    esac
}
complete -F _virtcloud virtcloud
