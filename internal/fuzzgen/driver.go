package fuzzgen

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// BuildWithout builds a driver program of the live jobs (indices into res) with build,
// which returns the jobs a failed build blames and the error of each. Those jobs fail at
// stage with that error, and the program is built again without them. It returns the jobs
// the program that built holds; its error is for a failure that blames no job.
func BuildWithout(res []Result, live []int, stage string, build func(live []int) (blame map[int]error, err error)) ([]int, error) {
	live = slices.Clone(live)
	for len(live) > 0 {
		blame, err := build(live)
		if err == nil {
			break
		}
		if len(blame) == 0 {
			return nil, err
		}
		for i, jobErr := range blame {
			res[i] = Result{Stage: stage, Err: jobErr}
		}
		live = slices.DeleteFunc(live, func(i int) bool { return blame[i] != nil })
	}
	return live, nil
}

// RunDriver runs the driver program bin, with args then the indices of the live jobs as
// its arguments, until every live job is done. The driver prints "begin I" before job I
// and "ok I" or "fail I MESSAGE" (a Go-quoted string) after it; ok gives the result of a
// job that ended well (its outputs, read back). A job that kills the driver (a crash in a
// kernel, a timeout) is that job's failure, and the driver runs again on the jobs after
// it. The error is for a driver that dies outside any job.
func RunDriver(res []Result, live []int, timeout time.Duration, ok func(i int) Result, bin string, args ...string) error {
	live = slices.Clone(live)
	for len(live) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		cmd := exec.CommandContext(ctx, bin, args...)
		for _, i := range live {
			cmd.Args = append(cmd.Args, strconv.Itoa(i))
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		runErr := cmd.Run()
		cancel()
		done := map[int]bool{}
		begun := -1
		for _, line := range strings.Split(stdout.String(), "\n") {
			word, rest, _ := strings.Cut(line, " ")
			num, msg, _ := strings.Cut(rest, " ")
			i, err := strconv.Atoi(num)
			if err != nil || i < 0 || i >= len(res) {
				continue
			}
			switch word {
			case "begin":
				begun = i
			case "ok":
				done[i] = true
				res[i] = ok(i)
			case "fail":
				done[i] = true
				s, _ := strconv.Unquote(msg)
				res[i] = Result{Stage: "run", Err: fmt.Errorf("%s", s)}
			}
		}
		rest := slices.DeleteFunc(live, func(i int) bool { return done[i] })
		if runErr == nil || len(rest) == 0 {
			break
		}
		if begun < 0 || done[begun] {
			return fmt.Errorf("%s: %v\n%s", bin, runErr, tail(stderr.String(), 40))
		}
		res[begun] = Result{Stage: "run", Err: fmt.Errorf("the driver died in this job: %v\n%s", runErr, tail(stderr.String(), 40))}
		live = slices.DeleteFunc(rest, func(i int) bool { return i == begun })
	}
	return nil
}
