# Shell helpers shared by scripts/bootstrap.sh and its steps in scripts/bootstrap.d/.

say() { printf '\033[1m[kumohub]\033[0m %s\n' "$*"; }

# ensure_apt_packages WHY PACKAGE...: install the Debian packages that are missing (as root),
# or name them and fail (as anyone else).
ensure_apt_packages() {
  local why=$1 pkg
  shift
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing $why: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    say "$why needs these packages first (as root): apt-get install ${missing[*]}"
    return 1
  fi
}
