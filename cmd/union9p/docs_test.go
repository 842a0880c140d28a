package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func runMain(t *testing.T, args ...string) string {
	t.Helper()
	out, err := union9p(args...).Output()
	if err != nil {
		t.Fatalf("union9p %v: %v", args, err)
	}
	return string(out)
}

// The man page is made from the command definitions: every tool is in it
// with its examples.
func TestManPageCoversTheTools(t *testing.T) {
	page := runMain(t, "man")
	if !strings.HasPrefix(page, ".nh\n.TH union9p") {
		t.Fatalf("not a roff man page:\n%.200s", page)
	}
	for _, cmd := range toolCommands() {
		if !strings.Contains(page, "\n.SH "+cmd.Name+"\n"+cmd.Usage+"\n") {
			t.Errorf("the man page lacks a section for %s", cmd.Name)
		}
	}
	for _, ex := range []string{"union9p diff --lower /srv/base", "union9p fsck -y", "union9p export --upper"} {
		if !strings.Contains(page, ex) {
			t.Errorf("the man page lacks the example %q", ex)
		}
	}
}

// Every layer tool's --help shows examples.
func TestToolHelpHasExamples(t *testing.T) {
	for _, cmd := range toolCommands() {
		help := runMain(t, cmd.Name, "--help")
		if !strings.Contains(help, "Examples:") || !strings.Contains(help, "union9p "+cmd.Name) {
			t.Errorf("union9p %s --help has no examples:\n%s", cmd.Name, help)
		}
	}
}

// The bash completion completes commands and the flags of the command
// typed, from the binary's own definitions.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	// A wrapper named union9p that runs this test binary's main.
	wrapper := dir + "/union9p"
	script := "#!/bin/sh\nUNION9P_TEST_RUN_MAIN=1 exec " + os.Args[0] + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	comp := runMain(t, "completion", "bash")
	if err := os.WriteFile(dir+"/comp.bash", []byte(comp), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"union9p", "vac"}, "vacuum"},
		{[]string{"union9p", "merge", "--in"}, "--in-place"},
		{[]string{"union9p", "export", "--mt"}, "--mtime"},
	} {
		cmd := exec.Command(bash, "-c", `source "$1"; COMP_WORDS=(`+strings.Join(tc.words, " ")+`); COMP_CWORD=`+
			itoa(len(tc.words)-1)+`; _union9p_complete; echo "${COMPREPLY[@]}"`, "bash", dir+"/comp.bash")
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("completing %v: %q %v, want %q", tc.words, out, err, tc.want)
		}
	}
	if fish := runMain(t, "completion", "fish"); !strings.Contains(fish, "complete -c union9p") || !strings.Contains(fish, "in-place") {
		t.Errorf("fish completion lacks the tools:\n%.300s", fish)
	}
}

func itoa(i int) string { return string(rune('0' + i)) }
