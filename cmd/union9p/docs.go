package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// The man page and the shell completions are generated from the command
// definitions themselves (urfave/cli), so they never drift from --help.

func manCommand() *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the man page (roff) of union9p and all its commands",
		Description: `Examples:
  union9p man > /usr/local/share/man/man1/union9p.1
  union9p man | man -l -`,
		Action: func(c *cli.Context) error {
			// urfave/cli's page shows a command's UsageText but not its
			// Description, where the details and examples are: put them
			// there for the page (this process only prints it).
			for _, cmd := range c.App.Commands {
				if cmd.Description != "" && cmd.UsageText == "" {
					cmd.UsageText = cmd.Description // shown as an example block
				}
			}
			page, err := c.App.ToMan()
			if err != nil {
				return toolError("man", err)
			}
			_, err = fmt.Fprint(c.App.Writer, page)
			return err
		},
	}
}

// bashCompletion asks the binary for its candidates (urfave/cli's
// --generate-bash-completion) at each <Tab>.
const bashCompletion = `# union9p bash completion: source it, or put it in
# /etc/bash_completion.d/union9p.
_union9p_complete() {
	local cur="${COMP_WORDS[COMP_CWORD]}" words
	if [[ "$cur" == -* ]]; then
		# The flags of the command typed so far.
		words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" - --generate-bash-completion 2>/dev/null)
	elif [[ $COMP_CWORD -eq 1 ]]; then
		words=$("${COMP_WORDS[0]}" --generate-bash-completion 2>/dev/null)
	else
		compopt -o default 2>/dev/null # directories and files
		COMPREPLY=()
		return 0
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
	return 0
}
complete -o bashdefault -F _union9p_complete union9p
`

const zshCompletion = `#compdef union9p
# union9p zsh completion: put it in a directory of $fpath as _union9p.
_union9p() {
	local -a opts
	if [[ "${words[-1]}" == -* ]]; then
		opts=("${(@f)$(${words[@]:0:#words[@]-1} - --generate-bash-completion 2>/dev/null)}")
	elif (( CURRENT == 2 )); then
		opts=("${(@f)$(${words[1]} --generate-bash-completion 2>/dev/null)}")
	fi
	if [[ -n "${opts[1]}" ]]; then
		_describe 'values' opts
	else
		_files
	fi
}
compdef _union9p union9p
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		ArgsUsage: "SHELL",
		Description: `Examples:
  source <(union9p completion bash)
  union9p completion zsh > "${fpath[1]}/_union9p"
  union9p completion fish > ~/.config/fish/completions/union9p.fish`,
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, zshCompletion)
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return toolError("completion", err)
				}
				fmt.Fprint(c.App.Writer, s)
			default:
				return usageErr("completion", "want bash, zsh or fish")
			}
			return nil
		},
	}
}
