# Shared by scripts/run and scripts/test (sourced, not run): the system
# packages umlrun needs, installed with apt-get only when missing, and a
# Rust toolchain check.

# busybox-static, e2fsprogs: disk-images/build. uml-utilities: uml_mkcow and
# uml_moo for COW interop tests. user-mode-linux: the reference linux.uml.
# gcc, libc6-dev: C test programs run natively and in the guest. python3,
# python3-matplotlib: benchmark plots. debootstrap: disk-images/build-debian.
UMLRUN_PACKAGES=(busybox-static e2fsprogs uml-utilities user-mode-linux gcc libc6-dev python3 python3-matplotlib debootstrap)

log() { printf '%s: %s\n' "${UMLRUN_SCRIPT:-${0##*/}}" "$*" >&2; }

# The packages of "$@" that dpkg does not list as installed.
missing_packages() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
    done
}

# Install whatever of UMLRUN_PACKAGES is missing; returns non-zero on failure.
install_deps() {
    if ! command -v dpkg-query >/dev/null; then
        log "no dpkg here: install ${UMLRUN_PACKAGES[*]} (or their equivalents) by hand"
        return 1
    fi
    local missing
    mapfile -t missing < <(missing_packages "${UMLRUN_PACKAGES[@]}")
    if [ ${#missing[@]} -eq 0 ]; then
        log "system packages: all ${#UMLRUN_PACKAGES[@]} present"
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { log "need root or sudo to install: ${missing[*]}"; return 1; }
        sudo=(sudo)
    fi
    log "installing: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" </dev/null || return 1
    mapfile -t missing < <(missing_packages "${UMLRUN_PACKAGES[@]}")
    if [ ${#missing[@]} -ne 0 ]; then
        log "still missing after apt-get: ${missing[*]}"
        return 1
    fi
}

# cargo on PATH, or from rustup's default place.
need_cargo() {
    if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    command -v cargo >/dev/null || { log "cargo not found: install a Rust toolchain (rustup) first"; return 1; }
}
