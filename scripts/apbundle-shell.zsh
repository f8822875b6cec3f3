# apbundle-shell.zsh - bind apbundle-shell suggestions to a key in zsh.
#
# Source it from ~/.zshrc after training a model (apbundle-shell train):
#     source /path/to/apbundle-shell.zsh
# Ctrl-X Ctrl-N replaces the text left of the cursor with the best
# completion plus a space (press again to continue with the next token);
# the other candidates are shown below the prompt.  Set APBUNDLE_SHELL_KEY
# (bindkey notation, default '^X^N') before sourcing to use another key,
# APBUNDLE_SHELL_COUNT for the list length (default 5) and
# APBUNDLE_SHELL_MODEL for another model.

_apbundle_shell_complete() {
	local out
	local -a lines rest
	out=$(command apbundle-shell suggest -n "${APBUNDLE_SHELL_COUNT:-5}" -- "$LBUFFER" 2>/dev/null) || return 0
	[[ -n $out ]] || return 0
	lines=("${(@f)out}")
	LBUFFER="${lines[1]%%$'\t'*} "
	rest=("${(@)lines[2,-1]%%$'\t'*}")
	(( ${#rest} )) && zle -M "${(F)rest}"
	return 0
}

zle -N _apbundle_shell_complete
bindkey "${APBUNDLE_SHELL_KEY:-^X^N}" _apbundle_shell_complete
