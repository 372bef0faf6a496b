#!/bin/bash
# test-completion.sh: the bash completion of execnet-tool, called as bash
# calls it, against the built tool.
#
# Usage: test-completion.sh COMPLETION_SCRIPT  (EXECNET_TOOL names the tool)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

completion="$1"
# The completion runs "execnet-tool" as the user typed it.
PATH="$(dirname "$EXECNET_TOOL"):$PATH"
failures=0
tests=0

HOME="$(mktemp -d)"
export HOME
trap 'rm -rf "$HOME"' EXIT

mkdir -p "$HOME/.ssh/config.d"
cat > "$HOME/.ssh/config" <<'CONFIG'
Host node7 node8
  User bob
Host *.example.org !skip.example.org
  Port 2222
Include config.d/*.conf
Host *
  IdentityFile ~/.ssh/id_other
CONFIG
cat > "$HOME/.ssh/config.d/lab.conf" <<'CONFIG'
Host labhost
  HostName 10.0.0.7
CONFIG

# shellcheck source=/dev/null
source "$completion"

# Sets COMP_LINE, COMP_POINT, COMP_WORDS and COMP_CWORD for LINE (the text
# before the cursor) as bash does, splitting words at blanks and at = and :
# (COMP_WORDBREAKS), then calls the completion function.
complete_line ()
{
  local line="$1" split
  COMP_LINE="$1"
  COMP_POINT=${#line}
  split="$(printf '%s' "$line" | sed 's/\([=:]\)/ \1 /g')"
  read -r -a COMP_WORDS <<< "$split"
  # "ssh=" ends in a word break: the current word is "=", as in bash.
  [[ "$line" == *[[:space:]] ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _execnet_tool execnet-tool "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
}

# expect LINE WORD...: completing LINE offers each WORD (among others).
expect ()
{
  local line="$1" word found reply
  shift
  tests=$((tests + 1))
  complete_line "$line"
  for word in "$@"; do
    found=0
    for reply in "${COMPREPLY[@]}"; do
      [ "$reply" = "$word" ] && found=1
    done
    if [ "$found" -eq 0 ]; then
      echo "not ok $tests - completing '$line' does not offer '$word' (offers: ${COMPREPLY[*]})"
      failures=$((failures + 1))
      return
    fi
  done
  echo "ok $tests - completing '$line' offers $*"
}

# refuse LINE WORD...: completing LINE offers none of the WORDs.
refuse ()
{
  local line="$1" word reply
  shift
  tests=$((tests + 1))
  complete_line "$line"
  for word in "$@"; do
    for reply in "${COMPREPLY[@]}"; do
      if [ "$reply" = "$word" ]; then
        echo "not ok $tests - completing '$line' offers '$word'"
        failures=$((failures + 1))
        return
      fi
    done
  done
  echo "ok $tests - completing '$line' offers none of $*"
}

COMP_WORDS=(execnet-tool "")
COMP_CWORD=1
expect "execnet-tool sp" spec
expect "execnet-tool spec po" popen
# Keys after //, from the transport: the reply replaces the current word,
# which for popen// is the whole spec, and after ssh= only what follows =.
expect "execnet-tool spec popen//ch" "popen//chdir="
expect "execnet-tool exec popen//dont" "popen//dont_write_bytecode"
expect "execnet-tool trace popen//en" "popen//env:"
expect "execnet-tool spec ssh=node7//ssh_c" "node7//ssh_config="
expect "execnet-tool spec ssh=node7//" "node7//chdir=" "node7//python=" "node7//ssh_config="
refuse "execnet-tool spec popen//" "popen//ssh_config="
# Hosts from ~/.ssh/config and the files it includes, never patterns.
expect "execnet-tool exec ssh=" "=node7" "=node8" "=labhost"
expect "execnet-tool spec ssh=no" "node7" "node8"
expect "execnet-tool spec ssh=la" "labhost"
refuse "execnet-tool spec ssh=" "=*.example.org" "=!skip.example.org" "=*"
# Only the spec is completed as one; the file after it is a file.
refuse "execnet-tool exec popen " "popen"

echo "1..$tests"
[ "$failures" -eq 0 ]
