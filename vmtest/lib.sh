# Shared helpers for the vmtest scripts (sourced, not executed).
# shellcheck shell=bash

VMTEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034  # used by the scripts that source this file
REPO_DIR=$(cd "$VMTEST_DIR/.." && pwd)
# shellcheck disable=SC2034
CACHE_DIR=${VMTEST_CACHE_DIR:-$VMTEST_DIR/.cache}
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

log()  { printf '[vmtest] %s\n' "$*" >&2; }
warn() { printf '\n[vmtest] WARNING: %s\n\n' "$*" >&2; }
die()  { printf '[vmtest] ERROR: %s\n' "$*" >&2; exit 1; }

# The Debian mirrors this machine already uses, read from the system's apt sources (so nothing
# here names a host). Override with VMTEST_DEBIAN_MIRROR / VMTEST_SECURITY_MIRROR.
# Prints "MAIN_URI SECURITY_URI".
debian_mirrors() {
    local main=${VMTEST_DEBIAN_MIRROR:-} sec=${VMTEST_SECURITY_MIRROR:-}
    local f
    local -a files=()
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] && files+=("$f")
    done
    # One "URI SUITE..." line per source entry, for both the one-line and the deb822 format.
    local entries
    entries=$(awk '
        FILENAME ~ /\.sources$/ {
            if ($0 ~ /^[[:space:]]*$/) { if (u != "") print u, s; u = ""; s = ""; next }
            if ($1 == "URIs:") u = $2
            if ($1 == "Suites:") { $1 = ""; s = $0 }
            next
        }
        /^[[:space:]]*deb[[:space:]]/ {
            i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
            print $i, $(i+1)
        }
        ENDFILE { if (u != "") print u, s; u = ""; s = "" }
    ' "${files[@]}" 2>/dev/null)
    if [[ -z $main ]]; then
        main=$(awk '{for (i = 2; i <= NF; i++) if ($i ~ /^(bookworm|bullseye|trixie|sid|stable|unstable)$/) {print $1; exit}}' <<<"$entries")
    fi
    if [[ -z $sec ]]; then
        sec=$(awk '{for (i = 2; i <= NF; i++) if ($i ~ /-security$/) {print $1; exit}}' <<<"$entries")
    fi
    [[ -n $main ]] || die "cannot find the Debian mirror in the system's apt sources; set VMTEST_DEBIAN_MIRROR"
    if [[ -z $sec ]]; then
        sec="${main%/}-security"
    fi
    echo "${main%/} ${sec%/}"
}

# Make a private APT configuration (own sources, lists, cache; the system's dpkg status) in
# directory $1 with the one-line source entries given on stdin. Prints the APT_CONFIG path.
private_apt() {
    local d=$1
    mkdir -p "$d"/lists/partial "$d"/archives/partial "$d"/etc/sources.list.d "$d"/etc/preferences.d "$d"/etc/apt.conf.d
    cat >"$d/etc/sources.list"
    cat >"$d/apt.conf" <<CONF
Dir::State "$d/";
Dir::State::Lists "$d/lists/";
Dir::State::status "/var/lib/dpkg/status";
Dir::Cache "$d/";
Dir::Cache::archives "$d/archives/";
Dir::Etc::SourceList "$d/etc/sources.list";
Dir::Etc::SourceParts "$d/etc/sources.list.d/";
Dir::Etc::Preferences "$d/etc/preferences";
Dir::Etc::PreferencesParts "$d/etc/preferences.d/";
Dir::Etc::Parts "$d/etc/apt.conf.d/";
Acquire::Languages "none";
// The mirror may be a dated snapshot: do not reject its Release files as expired.
Acquire::Check-Valid-Until "false";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
DPkg::Lock::Timeout "300";
APT::Get::Assume-Yes "true";
CONF
    echo "$d/apt.conf"
}

# apt-get update for a private config unless its lists are younger than $2 minutes.
private_apt_update() {
    local conf=$1 max_age=${2:-720} d
    d=$(dirname "$conf")
    if [[ -f $d/updated ]] && [[ -z $(find "$d/updated" -mmin +"$max_age") ]]; then
        return 0
    fi
    log "apt-get update (private lists in $d)"
    # apt-get update may exit 0 when an index could not be fetched: check its log too.
    if APT_CONFIG=$conf apt-get -q update >"$d/update.log" 2>&1 \
        && ! grep -qE '^(W|E): (Failed to fetch|Some index files failed)' "$d/update.log"; then
        touch "$d/updated"
    else
        tail -20 "$d/update.log" >&2
        return 1
    fi
}
