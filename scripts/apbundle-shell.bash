# apbundle-shell.bash - bind apbundle-shell suggestions to a key in bash.
#
# Source it from ~/.bashrc after training a model (apbundle-shell train):
#     . /path/to/apbundle-shell.bash
# Ctrl-X Ctrl-N replaces the text left of the cursor with the best
# completion plus a space (press again to continue with the next token);
# when there are others they are listed above the prompt.  Set
# APBUNDLE_SHELL_KEY (readline key sequence, default '\C-x\C-n') before
# sourcing to use another key, APBUNDLE_SHELL_COUNT for the list length
# (default 5) and APBUNDLE_SHELL_MODEL for another model.

__apbundle_shell_complete() {
	local left=${READLINE_LINE:0:READLINE_POINT}
	local right=${READLINE_LINE:READLINE_POINT}
	local out best
	out=$(command apbundle-shell suggest -n "${APBUNDLE_SHELL_COUNT:-5}" -- "$left" 2>/dev/null) || return 0
	[ -n "$out" ] || return 0
	best=${out%%$'\n'*}
	best="${best%%$'\t'*} "
	case $out in
	*$'\n'*) printf '%s\n' "$out" | cut -f1 | sed 's/^/  /' >&2 ;;
	esac
	READLINE_LINE=$best$right
	READLINE_POINT=${#best}
}

bind -x "\"${APBUNDLE_SHELL_KEY:-\\C-x\\C-n}\": __apbundle_shell_complete"
