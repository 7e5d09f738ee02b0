# shellcheck shell=bash
# Small helpers shared by the scripts of this repository. Source it, do not run it:
#
#     . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It sets no shell options of its own (the caller chooses `set -euo pipefail`) and defines:
#   log/warn/die          messages on stderr, prefixed with the script's name
#   repo_root             absolute path of the repository (works from any directory)
#   need_root             sets SUDO to "" (root) or "sudo" (not root, sudo available), or dies
#   need_cmd CMD [HINT]   dies with HINT when CMD is not on PATH
#   PYTHON                the interpreter that has scapy (Debian's, not a pyenv/venv one)

# Debian's python3-scapy installs into /usr/lib/python3/dist-packages: only /usr/bin/python3 sees
# it, and another python3 (pyenv, venv) may come first on PATH. Overridable for other systems.
PYTHON=${PYTHON:-/usr/bin/python3}

_lib_script_name=$(basename "${0:-lib.sh}")

log() { printf '%s: %s\n' "$_lib_script_name" "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$_lib_script_name" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$_lib_script_name" "$*" >&2
	exit 1
}

# The repository root: git's idea of it when we are in a work tree, else the parent of scripts/.
repo_root() {
	local here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	git -C "$here" rev-parse --show-toplevel 2>/dev/null || dirname "$here"
}

# Root is needed for apt and services. As root, commands run as they are; otherwise through sudo
# (which must be installed and allowed for this user; sudo itself asks for a password if needed).
need_root() {
	# shellcheck disable=SC2034 # SUDO is for the scripts that source this file
	if [ "$(id -u)" -eq 0 ]; then
		SUDO=""
	elif command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		die "this needs root: run it as root, or install sudo and run it as a sudoer"
	fi
}

need_cmd() {
	command -v "$1" >/dev/null 2>&1 || die "'$1' not found${2:+: $2}"
}
