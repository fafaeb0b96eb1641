import { posix } from 'node:path';
import { inputError } from '../core/errors.js';
import { quote } from './quote.js';

// Every write, chmod, chown, mkdir and rm hostctl does on a host by path goes through here,
// so none of them can be steered by a user other than root. The script enters the directory
// one component at a time from `/`, checking each directory it lands in (not the name it
// asked for): owned by root or by the user the script runs as, and writable by group or
// other only if sticky and above the last one. Then it acts RELATIVE to the pinned working
// directory: its entries can be renamed by nobody but root or this user, so no name can be
// swapped for a link between two steps. A symbolic link on the way is followed only when
// root or this user owns it, and then the whole physical path it leads to is checked again
// (so Debian's /lib -> usr/lib is fine and /home/eve/x -> /etc is not).
const FUNCTIONS = `hc_refuse() { printf 'refusing to write under %s: %s\\n' "$hc_want" "$1" >&2; exit 3; }
hc_trust() {
  hc_s=$(stat -c '%u %a %U' -- "$1") || hc_refuse "cannot stat $2"
  set -- "$1" "$2" "$3" $hc_s
  [ "$4" = 0 ] || [ "$4" = "$hc_me" ] || hc_refuse "$2 is owned by $6 (mode $5), not by $hc_who"
  if [ $((0$5 & 022)) -ne 0 ] && { [ "$3" = last ] || [ $((0$5 & 01000)) -eq 0 ]; }; then
    hc_refuse "$2 (owner $6, mode $5) is writable by other users"
  fi
}
hc_link() { [ "$1" = 0 ] || [ "$1" = "$hc_me" ] || hc_refuse "$3 is a symbolic link owned by $2"; }
hc_chain() {
  hc_p=; hc_r=\${1#/}
  hc_trust / / "$([ -n "$hc_r" ] && echo mid || echo "$2")"
  while [ -n "$hc_r" ]; do
    hc_p=$hc_p/\${hc_r%%/*}
    case $hc_r in */*) hc_r=\${hc_r#*/} ;; *) hc_r= ;; esac
    hc_trust "$hc_p" "$hc_p" "$([ -n "$hc_r" ] && echo mid || echo "$2")"
  done
  [ "$1" -ef . ] || hc_refuse "$1 moved while it was being checked"
}
hc_cd() {
  hc_want=$1; hc_mk=$2; hc_me=$(id -u); hc_at=; hc_who=root
  [ "$hc_me" = 0 ] || hc_who="root or $(id -un)"
  set -f; hc_ifs=$IFS; IFS=/; set -- $1; IFS=$hc_ifs; set +f; shift
  cd / || hc_refuse "cannot enter /"
  hc_trust . / "$([ $# -gt 0 ] && echo mid || echo last)"
  for hc_c do
    shift
    hc_l=$([ $# -gt 0 ] && echo mid || echo last)
    if [ -n "$hc_mk" ] && [ ! -e "$hc_c" ] && [ ! -L "$hc_c" ]; then mkdir -- "$hc_c" || hc_refuse "cannot create $hc_at/$hc_c"; fi
    # ./ so that a component "-" is not $OLDPWD and CDPATH is never searched.
    cd -P -- "./$hc_c" 2>/dev/null || hc_refuse "cannot enter $hc_at/$hc_c"
    hc_to=$(pwd -P)
    if [ "$hc_to" = "$hc_at/$hc_c" ]; then
      hc_trust . "$hc_to" "$hc_l"
    else
      hc_s=$(stat -c '%u %U' -- "$hc_at/$hc_c") || hc_refuse "$hc_at/$hc_c changed while it was entered"
      hc_link $hc_s "$hc_at/$hc_c"
      # A link others may move into its directory (a sticky one) is not the one root made there.
      hc_trust "\${hc_at:-/}" "\${hc_at:-/}" last
      hc_chain "$hc_to" "$hc_l"
    fi
    hc_at=\${hc_to%/}
  done
}`;

// An absolute, normalized path with no newline (the shell checks go line by line).
function checked(path: string): string {
  if (!posix.isAbsolute(path) || path.includes('\n') || path.includes('\0')) {
    throw inputError(`path "${path.replace(/\n/g, '\\n')}" must be absolute and on one line`);
  }
  return posix.normalize(path);
}

// A script that enters `dir` safely (creating missing directories with `create`, as mkdir -p
// would) and then runs `body` there. `$hc_at` is then the physical path of the directory.
export function inDirectory(dir: string, body: string, options: { create?: boolean } = {}): string {
  return `${FUNCTIONS}\nhc_cd ${quote(checked(dir))} ${options.create ? 'y' : "''"}\n${body}`;
}

// The same for the directory holding `path`; `body` gets the entry's relative name, quoted.
export function inParentOf(path: string, body: (name: string) => string, options: { create?: boolean } = {}): string {
  const full = checked(path);
  const base = posix.basename(full);
  if (base === '') throw inputError(`path "${path}" names no entry`);
  return inDirectory(posix.dirname(full), body(quote(`./${base}`)), options);
}

// Runs `script` with the privileges of `user` (uid, primary group, supplementary groups), so
// whatever it reaches through names that user controls, it can reach only what the user could.
// util-linux's setpriv is Essential on Debian; a script already running as `user` runs as is.
export function asUser(user: string, script: string, args: readonly string[] = []): string {
  const u = quote(user);
  const rest = ['sh', ...args].join(' ');
  return `hc_script=${quote(script)}
if [ "$(id -un)" = ${u} ]; then /bin/sh -c "$hc_script" ${rest}
else setpriv --reuid=${u} --regid="$(id -g -- ${u})" --init-groups -- /bin/sh -c "$hc_script" ${rest}; fi`;
}
