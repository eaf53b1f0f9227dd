package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Words the API takes (CONTRACT §4), offered by completion.
var (
	entities = []string{"products", "suppliers"}
	formats  = []string{"csv", "excel", "json"}
	statuses = []string{statusQueued, statusRunning, statusCompleted, statusFailed, statusCancelled, statusExpired}
	shells   = []string{"bash", "zsh", "fish"}
)

// flagValues are the words a flag's value may be, by flag name, wherever the flag appears. A
// flag that takes a value and is not here completes as a file name (--out) or not at all.
var flagValues = map[string][]string{
	"format":      formats,
	"entity":      entities,
	"status":      statuses,
	"output":      outputs,
	"o":           outputs,
	"enabled":     {"true", "false"},
	"misfire":     {"run_once", "skip"},
	"overlap":     {"skip", "queue"},
	"compression": {"gzip", "zip"},
	"type":        {"custom", "google_shopping", "amazon", "shopify", "woocommerce", "prestashop"},
}

const completionDoc = `
Prints a completion script for SHELL (bash, zsh or fish): commands, subcommands, flags and the
values of --format, --entity, --status, --output... It is generated from exportctl's own table
of commands and their flags, so it always matches this binary.

  bash:  source <(exportctl completion bash)     (or save it in /etc/bash_completion.d/exportctl)
  zsh:   source <(exportctl completion zsh)
  fish:  exportctl completion fish | source      (or save it in ~/.config/fish/completions/exportctl.fish)`

func (a *app) cmdCompletion(_ context.Context, args []string) error {
	fs := a.flagSet("completion", nil)
	fs.Usage = commandUsage(fs, "completion bash|zsh|fish", completionDoc)
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	spec, err := completionSpecOf(commands)
	if err != nil {
		return err
	}
	switch pos[0] {
	case "bash":
		return writeBash(a.stdout, spec, false)
	case "zsh":
		return writeBash(a.stdout, spec, true)
	case "fish":
		return writeFish(a.stdout, spec)
	}
	return usagef("completion: unknown shell %q (%s)", pos[0], strings.Join(shells, ", "))
}

// flagSpec is one flag as completion offers it.
type flagSpec struct {
	name, usage string
	takesValue  bool
}

// dashed is the flag as typed: -o, --format.
func (f flagSpec) dashed() string {
	if len(f.name) == 1 {
		return "-" + f.name
	}
	return "--" + f.name
}

// complContext is where the cursor may be: a command ("export"), a command's subcommand
// ("schedules list") or none (""), with the flags taken there.
type complContext struct {
	key   string
	cmd   command
	flags []flagSpec
}

type completionSpec struct {
	commands []command
	contexts []complContext // "" first, then each command, then its subcommands
}

// completionSpecOf reads every command's flags from the FlagSet it makes, by running it with
// -h on an app that records its FlagSets and writes nowhere: -h stops each command before it
// does anything.
func completionSpecOf(cmds []command) (completionSpec, error) {
	spec := completionSpec{commands: cmds}
	quiet := newApp(func(string) string { return "" }, io.Discard, io.Discard)
	spec.contexts = append(spec.contexts, complContext{key: "", flags: flagSpecs(quiet.flagSet("exportctl", nil))})
	kinds := map[string]bool{}
	for _, c := range cmds {
		runs := [][]string{{"-h"}}
		for _, s := range c.subs {
			runs = append(runs, []string{s, "-h"})
		}
		for _, args := range runs {
			var sets []*flag.FlagSet
			r := newApp(func(string) string { return "" }, io.Discard, io.Discard)
			r.flagSets = &sets
			if err := c.run(r, context.Background(), args); !errors.Is(err, errHelp) {
				return spec, fmt.Errorf("completion: exportctl %s %s did not stop at -h: %v", c.name, strings.Join(args, " "), err)
			}
			key := c.name
			if len(args) == 2 {
				key += " " + args[0]
			}
			fs := quiet.flagSet(key, nil) // a command without flags of its own (schedules -h) takes the global ones
			if len(sets) > 0 {
				fs = sets[len(sets)-1]
			}
			ctx := complContext{key: key, cmd: c, flags: flagSpecs(fs)}
			for _, f := range ctx.flags {
				if v, seen := kinds[f.name]; seen && v != f.takesValue {
					return spec, fmt.Errorf("completion: flag -%s takes a value in one command and not in another", f.name)
				}
				kinds[f.name] = f.takesValue
			}
			spec.contexts = append(spec.contexts, ctx)
		}
	}
	return spec, nil
}

func flagSpecs(fs *flag.FlagSet) []flagSpec {
	var out []flagSpec
	fs.VisitAll(func(f *flag.Flag) {
		_, usage := flag.UnquoteUsage(f)
		b, isBool := f.Value.(interface{ IsBoolFlag() bool })
		out = append(out, flagSpec{name: f.Name, usage: usage, takesValue: !isBool || !b.IsBoolFlag()})
	})
	return out
}

// valueFlags are the names of the flags that take a value, with the words they may be.
func (s completionSpec) valueFlags() map[string][]string {
	out := map[string][]string{}
	for _, c := range s.contexts {
		for _, f := range c.flags {
			if f.takesValue {
				out[f.name] = flagValues[f.name]
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func dashedAll(fl []flagSpec) string {
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = f.dashed()
	}
	return strings.Join(out, " ")
}

// writeBash writes the bash script; for zsh, the same through zsh's bashcompinit.
func writeBash(w io.Writer, s completionSpec, zsh bool) error {
	var b strings.Builder
	shell, how := "bash", "source <(exportctl completion bash)"
	if zsh {
		shell, how = "zsh", "source <(exportctl completion zsh)"
	}
	fmt.Fprintf(&b, "# %s completion for exportctl, generated by `exportctl completion %s` from its table of\n", shell, shell)
	fmt.Fprintf(&b, "# commands and their flags.   %s\n", how)
	if zsh {
		b.WriteString("autoload -U +X compinit && { (( $+functions[compdef] )) || compinit; }\n")
		b.WriteString("autoload -U +X bashcompinit && bashcompinit\n")
	}
	names := make([]string, len(s.commands))
	for i, c := range s.commands {
		names[i] = c.name
	}
	fmt.Fprintf(&b, "\n_exportctl_commands='%s'\n", strings.Join(names, " "))

	b.WriteString("\n# _exportctl_flags KEY: the flags of a command or subcommand (\"\", \"export\", \"schedules list\").\n")
	b.WriteString("_exportctl_flags() {\n\tcase $1 in\n")
	for _, c := range s.contexts {
		fmt.Fprintf(&b, "\t'%s') echo '%s' ;;\n", c.key, dashedAll(c.flags))
	}
	b.WriteString("\tesac\n}\n")

	b.WriteString("\n# _exportctl_subs CMD: the subcommands of CMD.\n_exportctl_subs() {\n\tcase $1 in\n")
	for _, c := range s.commands {
		if len(c.subs) > 0 {
			fmt.Fprintf(&b, "\t%s) echo '%s' ;;\n", c.name, strings.Join(c.subs, " "))
		}
	}
	b.WriteString("\tesac\n}\n")

	b.WriteString("\n# _exportctl_words CMD: what CMD's first argument may be.\n_exportctl_words() {\n\tcase $1 in\n")
	for _, c := range s.commands {
		if len(c.words) > 0 {
			fmt.Fprintf(&b, "\t%s) echo '%s' ;;\n", c.name, strings.Join(c.words, " "))
		}
	}
	b.WriteString("\tesac\n}\n")

	b.WriteString("\n# _exportctl_value FLAG: the words FLAG's value may be (none: a file name); status 1 when FLAG\n")
	b.WriteString("# takes no value.\n_exportctl_value() {\n\tlocal n=${1#-}\n\tn=${n#-}\n\tcase $n in\n")
	vf := s.valueFlags()
	var free []string
	for _, name := range sortedKeys(vf) {
		if len(vf[name]) == 0 {
			free = append(free, name)
			continue
		}
		fmt.Fprintf(&b, "\t%s) echo '%s' ;;\n", name, strings.Join(vf[name], " "))
	}
	if len(free) > 0 {
		fmt.Fprintf(&b, "\t%s) echo '' ;;\n", strings.Join(free, "|"))
	}
	b.WriteString("\t*) return 1 ;;\n\tesac\n}\n")

	b.WriteString(`
_exportctl() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev='' cmd='' sub='' npos=0 i w vals words=''
	COMPREPLY=()
	((COMP_CWORD > 1)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	# The value of a flag: its words, or a file name (complete -o default).
	if [[ $prev == -* && $prev != *=* ]] && vals=$(_exportctl_value "$prev"); then
		[[ -n $vals ]] && COMPREPLY=($(compgen -W "$vals" -- "$cur"))
		return 0
	fi
	# The command, its subcommand and how many arguments come before the word completed.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ $w == -* ]]; then
			[[ $w != *=* ]] && _exportctl_value "$w" >/dev/null && ((i++))
			continue
		fi
		if [[ -z $cmd ]]; then
			cmd=$w
		elif [[ -z $sub && " $(_exportctl_subs "$cmd") " == *" $w "* ]]; then
			sub=$w
		else
			((npos++))
		fi
	done
	if [[ $cur == -* ]]; then
		local key=$cmd
		[[ -n $sub ]] && key="$cmd $sub"
		COMPREPLY=($(compgen -W "$(_exportctl_flags "$key")" -- "$cur"))
		return 0
	fi
	if [[ -z $cmd ]]; then
		words=$_exportctl_commands
	elif [[ -z $sub && $npos -eq 0 ]]; then
		words="$(_exportctl_subs "$cmd") $(_exportctl_words "$cmd")"
	fi
	[[ -n ${words// /} ]] && COMPREPLY=($(compgen -W "$words" -- "$cur"))
	return 0
}
complete -o default -F _exportctl exportctl
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// fishQuote quotes s for fish, in single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func writeFish(w io.Writer, s completionSpec) error {
	var b strings.Builder
	b.WriteString("# fish completion for exportctl, generated by `exportctl completion fish` from its table of\n")
	b.WriteString("# commands and their flags.   exportctl completion fish | source\n")
	b.WriteString("complete -c exportctl -f\n")
	for _, c := range s.commands {
		fmt.Fprintf(&b, "complete -c exportctl -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	seen := func(words ...string) string { return "__fish_seen_subcommand_from " + strings.Join(words, " ") }
	for _, ctx := range s.contexts {
		var cond string
		switch {
		case ctx.key == "":
			cond = "__fish_use_subcommand"
		case !strings.Contains(ctx.key, " ") && len(ctx.cmd.subs) > 0:
			cond = seen(ctx.cmd.name) + "; and not " + seen(ctx.cmd.subs...)
		case !strings.Contains(ctx.key, " "):
			cond = seen(ctx.cmd.name)
		default:
			cmd, sub, _ := strings.Cut(ctx.key, " ")
			cond = seen(cmd) + "; and " + seen(sub)
		}
		for _, f := range ctx.flags {
			opt := "-l " + f.name
			if len(f.name) == 1 {
				opt = "-s " + f.name
			}
			switch vals := flagValues[f.name]; {
			case !f.takesValue:
			case len(vals) > 0:
				opt += " -x -a " + fishQuote(strings.Join(vals, " "))
			case f.name == "out":
				opt += " -r -F" // a file name
			default:
				opt += " -r"
			}
			fmt.Fprintf(&b, "complete -c exportctl -n %s %s -d %s\n", fishQuote(cond), opt, fishQuote(f.usage))
		}
	}
	for _, c := range s.commands {
		if len(c.subs) > 0 {
			fmt.Fprintf(&b, "complete -c exportctl -n %s -a %s\n",
				fishQuote(seen(c.name)+"; and not "+seen(c.subs...)), fishQuote(strings.Join(c.subs, " ")))
		}
		if len(c.words) > 0 {
			fmt.Fprintf(&b, "complete -c exportctl -n %s -a %s\n",
				fishQuote(seen(c.name)+"; and not "+seen(c.words...)), fishQuote(strings.Join(c.words, " ")))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
