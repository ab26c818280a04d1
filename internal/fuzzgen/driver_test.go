package fuzzgen

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBuildWithout(t *testing.T) {
	res := make([]Result, 4)
	var tries [][]int
	live, err := BuildWithout(res, []int{0, 1, 2, 3}, "build", func(live []int) (map[int]error, error) {
		tries = append(tries, slices.Clone(live))
		if slices.Contains(live, 2) {
			return map[int]error{2: errors.New("job 2 does not compile")}, errors.New("build failed")
		}
		return nil, nil
	})
	if err != nil || !slices.Equal(live, []int{0, 1, 3}) || len(tries) != 2 {
		t.Fatalf("got live %v, error %v after builds of %v; want [0 1 3] after two builds", live, err, tries)
	}
	if res[2].Stage != "build" || res[2].Err == nil || res[0].Err != nil {
		t.Errorf("results %+v: want job 2 failed at build, the others untouched", res)
	}
	_, err = BuildWithout(res, []int{0}, "build", func([]int) (map[int]error, error) { return nil, errors.New("no disk") })
	if err == nil || err.Error() != "no disk" {
		t.Errorf("a failure that blames no job gave %v, want it returned", err)
	}
}

// TestRunDriver runs a shell script as the driver: job 1 fails, job 2 kills the driver;
// the driver must run again on job 3 only.
func TestRunDriver(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	script := `echo "$*" >> "$0"
for i in "$@"; do
  echo "begin $i"
  case $i in
    1) echo 'fail 1 "bad shape"' ;;
    2) echo "dying" >&2; exit 3 ;;
    *) echo "ok $i" ;;
  esac
done`
	log := t.TempDir() + "/runs"
	res := make([]Result, 4)
	var read []int
	ok := func(i int) Result { read = append(read, i); return Result{} }
	if err := RunDriver(res, []int{0, 1, 2, 3}, time.Minute, ok, sh, "-c", script, log); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(read, []int{0, 3}) {
		t.Errorf("outputs read for jobs %v, want [0 3]", read)
	}
	if res[1].Stage != "run" || res[1].Err == nil || res[1].Err.Error() != "bad shape" {
		t.Errorf("job 1: %+v, want its failure message", res[1])
	}
	if res[2].Stage != "run" || res[2].Err == nil || !strings.Contains(res[2].Err.Error(), "dying") {
		t.Errorf("job 2: %+v, want the driver's death with its standard error", res[2])
	}
	runs, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(strings.TrimSpace(string(runs)), "\n"); !slices.Equal(got, []string{"0 1 2 3", "3"}) {
		t.Errorf("the driver ran on %q, want on all the jobs, then on job 3", got)
	}
	// A driver that dies before any job is the harness's error.
	err = RunDriver(make([]Result, 1), []int{0}, time.Minute, ok, sh, "-c", "exit 1")
	if err == nil {
		t.Error("a driver that died before its first job gave no error")
	}
}
