# bench/lib.bash: what the bench scripts share; sourced, never run. Each script sets HERE (this
# folder) and defines say() before sourcing it.

# Sets PY to a Python that imports faiss and numpy: python3 as it is, else after `pip install
# faiss-cpu numpy` where PyPI answers, else Debian's python3-faiss under /usr/bin/python3 (a
# generic build). $1 names the script in the error when none can be had.
find_faiss_python() {
    has_faiss() { "$1" -c 'import faiss, numpy' >/dev/null 2>&1; }
    PY=""
    if command -v python3 >/dev/null && has_faiss python3; then
        PY=python3
    elif command -v python3 >/dev/null &&
        python3 -m pip install --quiet --timeout 30 --retries 1 faiss-cpu numpy >&2 &&
        has_faiss python3; then
        PY=python3
    elif [ -x /usr/bin/python3 ] && has_faiss /usr/bin/python3; then
        PY=/usr/bin/python3
    else
        say "PyPI not usable here: installing Debian's python3-faiss"
        apt-get install -y python3-faiss python3-numpy >&2 && has_faiss /usr/bin/python3 ||
            { echo "$1: could not install FAISS (pip faiss-cpu or apt python3-faiss)" >&2; exit 1; }
        PY=/usr/bin/python3
    fi
}

# Replaces the section of file $1 that starts with the line $2 (a "## " heading; it runs to the
# next "## " heading or another script's <!-- BEGIN --> block) by the text $3, moved to the end of
# the file; creates the file if needed.
record_section() {
    touch "$1"
    python3 - "$1" "$2" "$3" <<'PY'
import sys
path, head, section = sys.argv[1], sys.argv[2], sys.argv[3]
lines = open(path).read().split('\n')
out, skip = [], False
for ln in lines:
    if ln.strip() == head:
        skip = True
        continue
    if skip and (ln.startswith('## ') or ln.startswith('<!-- BEGIN')):
        skip = False  # the next section, or another script's marked block
    if not skip:
        out.append(ln)
text = '\n'.join(out).rstrip('\n')
text = (text + '\n\n' if text else '') + section.rstrip('\n') + '\n'
open(path, 'w').write(text)
PY
}

# The short commit of the checkout ($1), marked when any of the folders after it has uncommitted
# changes (the measured code is then not that commit).
commit_label() {
    local repo=$1 label
    shift
    label=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ -n "$(git -C "$repo" status --porcelain -- "$@" 2>/dev/null)" ]; then
        label="$label ($* modified)"
    fi
    echo "$label"
}
